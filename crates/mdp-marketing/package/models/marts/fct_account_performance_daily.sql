-- Account × day, every enabled platform, in account and reporting currency: the campaign mart summed
-- (so it carries all spend, Performance Max included), KPIs recomputed from the sums.
with summed as (
    select
        date,
        platform,
        account_key,
        account_id,
        max(account_name) as account_name,
        currency,
        reporting_currency,
        max(fx_rate) as fx_rate,
        count(*) as campaigns,
        {{ mdp_sum_metrics() }},
        max(loaded_at) as loaded_at
    from {{ ref('fct_campaign_performance_daily') }}
    group by date, platform, account_key, account_id, currency, reporting_currency
)

select
    *,
    {{ mdp_kpis() }}
from summed
