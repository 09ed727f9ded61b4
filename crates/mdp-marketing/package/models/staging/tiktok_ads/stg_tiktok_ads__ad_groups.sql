-- TikTok Ads ad group snapshots, in the common vocabulary. Hierarchy: campaign → ad group → ad.
{{ config(enabled=mdp_platform_enabled('tiktok_ads')) }}
{{ mdp_stage_entities('tiktok_ads', 'ad_groups') }}
