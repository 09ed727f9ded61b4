-- Every account currency and day with performance has a rate into the reporting currency. A row here
-- fails the build (and skips the marts) naming the currency and the day: add the rate to your
-- `mdp_fx_rates` table.
select
    currency,
    date as day_without_rate,
    reporting_currency,
    'no ' || coalesce(currency, '(unknown: the account has no currency)') || ' -> ' || reporting_currency
        || ' rate on or before ' || cast(date as {{ dbt.type_string() }}) || ' in mdp_fx_rates' as problem
from {{ ref('int_fx_rates_daily') }}
where rate is null
