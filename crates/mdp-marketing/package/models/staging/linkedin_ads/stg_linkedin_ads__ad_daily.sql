-- LinkedIn Ads daily ad performance, in the common vocabulary. Hierarchy: campaign group (our campaign) → campaign (our ad group) → creative (our ad). Report days are UTC.
{{ config(enabled=mdp_platform_enabled('linkedin_ads')) }}
{{ mdp_stage_performance('linkedin_ads', 'ad_daily') }}
