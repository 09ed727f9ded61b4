-- Meta Ads ad group snapshots, in the common vocabulary. Hierarchy: campaign → ad set (our ad group) → ad. Conversions are the action types configured in `options.conversion_action_types`.
{{ config(enabled=mdp_platform_enabled('meta_ads')) }}
{{ mdp_stage_entities('meta_ads', 'ad_groups') }}
