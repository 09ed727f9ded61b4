{{ config(severity='warn') }}
-- Rates older than 45 days on the day they convert: the rate table needs new rows.
select currency, date, rate_date, reporting_currency
from {{ ref('int_fx_rates_daily') }}
where rate_date < {{ dbt.dateadd('day', -45, 'date') }}
