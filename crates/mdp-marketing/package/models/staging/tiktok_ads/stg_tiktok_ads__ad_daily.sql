-- TikTok Ads daily ad performance, in the common vocabulary. Hierarchy: campaign → ad group → ad.
{{ config(enabled=mdp_platform_enabled('tiktok_ads')) }}
{{ mdp_stage_performance('tiktok_ads', 'ad_daily') }}
