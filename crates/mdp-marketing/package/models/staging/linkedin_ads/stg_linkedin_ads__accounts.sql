-- LinkedIn Ads account snapshots, in the common vocabulary. Hierarchy: campaign group (our campaign) → campaign (our ad group) → creative (our ad). Report days are UTC.
{{ config(enabled=mdp_platform_enabled('linkedin_ads')) }}
{{ mdp_stage_entities('linkedin_ads', 'accounts') }}
