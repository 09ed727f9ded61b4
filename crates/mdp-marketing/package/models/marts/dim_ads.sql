-- One row per ad: its latest name and status (the history is in dim_ads_history).
select
    ad_key,
    account_key,
    campaign_key,
    ad_group_key,
    platform,
    ad_id,
    account_id,
    campaign_id,
    ad_group_id,
    ad_name,
    status,
    platform_status,
    valid_from as current_since,
    last_seen_on
from {{ ref('dim_ads_history') }}
where is_current
