-- Name and status history of every entity (slowly changing dimension, type 2): consecutive snapshots
-- with the same name and status are one version, valid from its first snapshot day until the first
-- day of the next version (exclusive; NULL for the current version).
with snapshots as (
    select * from {{ ref('int_entity_snapshots') }}
),

marked as (
    select
        *,
        case
            when lag(snapshot_date) over entity_days is null then 1
            when name is distinct from lag(name) over entity_days then 1
            when platform_status is distinct from lag(platform_status) over entity_days then 1
            else 0
        end as starts_version
    from snapshots
    window entity_days as (partition by platform, entity_type, id order by snapshot_date)
),

numbered as (
    select
        *,
        sum(starts_version) over (
            partition by platform, entity_type, id order by snapshot_date
            rows between unbounded preceding and current row
        ) as version
    from marked
),

versions as (
    select
        platform,
        entity_type,
        id,
        version,
        min(snapshot_date) as valid_from,
        max(snapshot_date) as last_seen_on,
        max(account_id) as account_id,
        max(name) as name,
        max(platform_status) as platform_status,
        max(status) as status,
        max(campaign_id) as campaign_id,
        max(ad_group_id) as ad_group_id,
        max(currency) as currency,
        max(timezone) as timezone
    from numbered
    group by platform, entity_type, id, version
)

select
    *,
    lead(valid_from) over (partition by platform, entity_type, id order by version) as valid_to,
    case when lead(valid_from) over (partition by platform, entity_type, id order by version) is null
        then true else false end as is_current
from versions
