-- The campaign mart, summed per account and day, equals the raw layer's full-spend streams exactly.
{{ mdp_reconcile(ref('fct_campaign_performance_daily'), 'spend') }}
