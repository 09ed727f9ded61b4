-- The rate into the reporting currency for every account currency and day that has performance:
-- the pair's latest rate on or before the day (rates are published on business days), 1 for the
-- reporting currency itself, NULL when there is none, which the test fx_rates_exist turns into an
-- error naming the currency and the day (never a silent NULL or 1.0 in the marts).
{%- set reporting = var('mdp_reporting_currency') | upper %}
with needed as (
    select distinct currency, date from {{ ref('int_campaign_performance_daily') }}
    union
    select distinct currency, date from {{ ref('int_ad_performance_daily') }}
),

rates as (
    select
        cast(rate_date as date) as rate_date,
        upper(from_currency) as from_currency,
        cast(rate as decimal(18, 10)) as rate
    from {{ ref('mdp_fx_rates') }}
    where upper(to_currency) = '{{ reporting }}'
),

candidates as (
    select
        needed.currency,
        needed.date,
        rates.rate,
        rates.rate_date,
        row_number() over (partition by needed.currency, needed.date order by rates.rate_date desc) as rank_by_recency
    from needed
    left join rates
        on rates.from_currency = upper(needed.currency) and rates.rate_date <= needed.date
)

select
    currency,
    date,
    '{{ reporting }}' as reporting_currency,
    case when upper(currency) = '{{ reporting }}' then cast(1 as decimal(18, 10)) else rate end as rate,
    case when upper(currency) = '{{ reporting }}' then date else rate_date end as rate_date
from candidates
where rank_by_recency = 1
