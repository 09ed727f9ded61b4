-- One row per account: its latest name and status (the history is in dim_accounts_history).
select
    account_key,
    platform,
    account_id,
    account_name,
    status,
    platform_status,
    currency,
    timezone,
    valid_from as current_since,
    last_seen_on
from {{ ref('dim_accounts_history') }}
where is_current
