-- TikTok Ads campaign snapshots, in the common vocabulary. Hierarchy: campaign → ad group → ad.
{{ config(enabled=mdp_platform_enabled('tiktok_ads')) }}
{{ mdp_stage_entities('tiktok_ads', 'campaigns') }}
