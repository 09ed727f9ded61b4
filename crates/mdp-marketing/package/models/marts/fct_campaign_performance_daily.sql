-- Campaign × day, every enabled platform, in account and reporting currency, with KPIs computed from
-- this row's components. Fed by each platform's stream that carries all of its spend (Google:
-- campaign_daily, including Performance Max; the others: their ad-level rows summed), so it never
-- under-reports.
with joined as (
    select
        performance.date,
        performance.platform,
        {{ mdp_key('performance.platform', 'performance.account_id') }} as account_key,
        {{ mdp_key('performance.platform', 'performance.campaign_id') }} as campaign_key,
        performance.account_id,
        performance.account_name,
        performance.campaign_id,
        performance.campaign_name,
        performance.currency,
        {{ mdp_reporting_columns('performance') }},
        {{ mdp_metric_columns('performance') }}
    from {{ ref('int_campaign_performance_daily') }} as performance
    left join {{ ref('int_fx_rates_daily') }} as fx
        on fx.currency = performance.currency and fx.date = performance.date
)

select
    *,
    {{ mdp_kpis() }}
from joined
