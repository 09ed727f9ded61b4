-- Ad × day, every enabled platform, in account and reporting currency, with KPIs computed from this
-- row's components. Fed by each platform's ad-level stream (Google's ad_daily has no Performance Max
-- spend: use fct_campaign_performance_daily for campaign and account totals).
with joined as (
    select
        performance.date,
        performance.platform,
        {{ mdp_key('performance.platform', 'performance.account_id') }} as account_key,
        {{ mdp_key('performance.platform', 'performance.campaign_id') }} as campaign_key,
        {{ mdp_key('performance.platform', 'performance.ad_group_id') }} as ad_group_key,
        {{ mdp_key('performance.platform', 'performance.ad_id') }} as ad_key,
        performance.account_id,
        performance.account_name,
        performance.campaign_id,
        performance.campaign_name,
        performance.ad_group_id,
        performance.ad_group_name,
        performance.ad_id,
        performance.ad_name,
        performance.currency,
        {{ mdp_reporting_columns('performance') }},
        {{ mdp_metric_columns('performance') }}
    from {{ ref('int_ad_performance_daily') }} as performance
    left join {{ ref('int_fx_rates_daily') }} as fx
        on fx.currency = performance.currency and fx.date = performance.date
)

select
    *,
    {{ mdp_kpis() }}
from joined
