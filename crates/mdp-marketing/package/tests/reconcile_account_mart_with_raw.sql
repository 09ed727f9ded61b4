-- The account mart's spend, impressions, clicks, conversions and conversion value equal the raw
-- layer's totals (each platform's full-spend stream) per platform, account and day, exactly. A row
-- here names the platform, account, day, metric and both values.
{{ mdp_reconcile(ref('fct_account_performance_daily'), 'spend') }}
