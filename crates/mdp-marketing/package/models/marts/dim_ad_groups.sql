-- One row per ad group: its latest name and status (the history is in dim_ad_groups_history).
select
    ad_group_key,
    account_key,
    campaign_key,
    platform,
    ad_group_id,
    account_id,
    campaign_id,
    ad_group_name,
    status,
    platform_status,
    valid_from as current_since,
    last_seen_on
from {{ ref('dim_ad_groups_history') }}
where is_current
