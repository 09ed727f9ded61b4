-- Every version of every account's name and status: valid from `valid_from` until `valid_to`
-- (exclusive; NULL while current). Join on the name as of a date to match CRM or finance data
-- that still uses an old name.
select
    {{ mdp_key('platform', 'id') }} as account_key,
    platform,
    id as account_id,
    name as account_name,
    status,
    platform_status,
    currency,
    timezone,
    valid_from,
    valid_to,
    last_seen_on,
    is_current
from {{ ref('int_entity_versions') }}
where entity_type = 'account'
