-- Every version of every ad group's name and status: valid from `valid_from` until `valid_to`
-- (exclusive; NULL while current). Join on the name as of a date to match CRM or finance data
-- that still uses an old name.
select
    {{ mdp_key('platform', 'id') }} as ad_group_key,
    {{ mdp_key('platform', 'account_id') }} as account_key,
    {{ mdp_key('platform', 'campaign_id') }} as campaign_key,
    platform,
    id as ad_group_id,
    account_id,
    campaign_id,
    name as ad_group_name,
    status,
    platform_status,
    valid_from,
    valid_to,
    last_seen_on,
    is_current
from {{ ref('int_entity_versions') }}
where entity_type = 'ad_group'
