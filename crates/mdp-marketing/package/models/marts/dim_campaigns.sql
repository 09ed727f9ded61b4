-- One row per campaign: its latest name and status (the history is in dim_campaigns_history).
select
    campaign_key,
    account_key,
    platform,
    campaign_id,
    account_id,
    campaign_name,
    status,
    platform_status,
    valid_from as current_since,
    last_seen_on
from {{ ref('dim_campaigns_history') }}
where is_current
