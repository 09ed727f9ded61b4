-- Google Ads ad snapshots, in the common vocabulary. Hierarchy: campaign → ad group → ad. `campaign_daily` also carries Performance Max campaigns, which have no ad-level rows.
{{ config(enabled=mdp_platform_enabled('google_ads')) }}
{{ mdp_stage_entities('google_ads', 'ads') }}
