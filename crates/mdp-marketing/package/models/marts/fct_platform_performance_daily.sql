-- Platform (channel) × day in the reporting currency: the account mart summed, KPIs recomputed from
-- the sums. Money is in the reporting currency only, because one platform's accounts can bill in
-- different currencies.
with summed as (
    select
        date,
        platform,
        reporting_currency,
        count(*) as accounts,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        sum(conversions) as conversions,
        sum(spend_reporting) as spend_reporting,
        sum(conversion_value_reporting) as conversion_value_reporting,
        sum(video_views) as video_views,
        sum(likes) as likes,
        sum(comments) as comments,
        sum(shares) as shares,
        max(loaded_at) as loaded_at
    from {{ ref('fct_account_performance_daily') }}
    group by date, platform, reporting_currency
)

select
    *,
    {{ mdp_kpis(money=['_reporting']) }}
from summed
