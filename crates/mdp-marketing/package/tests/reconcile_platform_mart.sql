-- The platform mart equals the raw layer per platform and day (impressions, clicks, conversions) and
-- the account mart's reporting-currency money per platform and day, exactly.
with raw_totals as (
    select platform, date, sum(impressions) as impressions, sum(clicks) as clicks, sum(conversions) as conversions
    from ({{ mdp_raw_daily_totals('spend') }}) as raw_days
    group by platform, date
),

accounts as (
    select platform, date,
           sum(spend_reporting) as spend_reporting, sum(conversion_value_reporting) as conversion_value_reporting
    from {{ ref('fct_account_performance_daily') }}
    group by platform, date
),

expected as (
    select raw_totals.*, accounts.spend_reporting, accounts.conversion_value_reporting
    from raw_totals
    left join accounts on accounts.platform = raw_totals.platform and accounts.date = raw_totals.date
),

compared as (
    select coalesce(m.platform, e.platform) as platform, coalesce(m.date, e.date) as date
        {%- for c in ['impressions', 'clicks', 'conversions', 'spend_reporting', 'conversion_value_reporting'] %},
        cast(m.{{ c }} as {{ dbt.type_string() }}) as mart_{{ c }},
        cast(e.{{ c }} as {{ dbt.type_string() }}) as expected_{{ c }},
        case when m.{{ c }} is distinct from e.{{ c }} then 1 else 0 end as differs_{{ c }}
        {%- endfor %}
    from {{ ref('fct_platform_performance_daily') }} as m
    full outer join expected as e on m.platform = e.platform and m.date = e.date
)

select * from compared
where differs_impressions + differs_clicks + differs_conversions + differs_spend_reporting + differs_conversion_value_reporting > 0
