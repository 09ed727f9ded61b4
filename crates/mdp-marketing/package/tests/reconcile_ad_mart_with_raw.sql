-- The ad mart, summed per account and day, equals the raw ad-level streams exactly (its own source:
-- for Google that excludes Performance Max, which has no ad rows).
{{ mdp_reconcile(ref('fct_ad_performance_daily'), 'ad') }}
