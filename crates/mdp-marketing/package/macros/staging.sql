{#- Whether a platform takes part: mdp sets var('mdp_sources') to the enabled sources of mdp.yml,
    {platform: [source names]}; a platform's staging models are disabled when it has none. -#}
{% macro mdp_platform_enabled(platform) -%}
  {{- return(var('mdp_sources', {}).get(platform, []) | length > 0) -}}
{%- endmacro %}

{#- A daily performance stream in the common vocabulary. The connector has already made the typed
    columns exact: Google's micros divided, Meta's conversions summed over the configured action
    types, LinkedIn's creative → campaign → campaign group mapped to ad → ad group → campaign.
    `conversion_definition` says what the source counted as a conversion when the row was loaded
    (its options, in the platform's field names); NULL for rows loaded before mdp recorded it. -#}
{% macro mdp_stage_performance(platform, stream) -%}
{%- for name in var('mdp_sources', {}).get(platform, []) %}
{% if not loop.first %}union all
{% endif -%}
select
    cast(date as date) as date,
    '{{ platform }}' as platform,
    '{{ name }}' as source_name,
    cast(account_id as {{ dbt.type_string() }}) as account_id,
    cast(campaign_id as {{ dbt.type_string() }}) as campaign_id,
    cast(ad_group_id as {{ dbt.type_string() }}) as ad_group_id,
    cast(ad_id as {{ dbt.type_string() }}) as ad_id,
    cast(impressions as bigint) as impressions,
    cast(clicks as bigint) as clicks,
    cast(spend as decimal(38, 9)) as spend,
    cast(conversions as decimal(38, 9)) as conversions,
    cast(conversion_value as decimal(38, 9)) as conversion_value,
    cast(video_views as bigint) as video_views,
    cast(likes as bigint) as likes,
    cast(comments as bigint) as comments,
    cast(shares as bigint) as shares,
    cast(_mdp_conversion_definition as {{ dbt.type_string() }}) as conversion_definition,
    _mdp_extracted_at as loaded_at
from {{ source('mdp_raw', name ~ '__' ~ stream) }}
{%- endfor %}
{%- endmacro %}

{#- The platform's status word mapped to active / paused / removed (the raw word is kept too). -#}
{% macro mdp_status(column) -%}
case
    when upper({{ column }}) in ('ENABLED', 'ENABLE', 'ACTIVE', 'CAMPAIGN_STATUS_ENABLE', 'ADGROUP_STATUS_DELIVERY_OK', 'AD_STATUS_DELIVERY_OK') then 'active'
    when upper({{ column }}) in ('PAUSED', 'DISABLE', 'DISABLED', 'CAMPAIGN_PAUSED', 'ADSET_PAUSED', 'CAMPAIGN_STATUS_DISABLE', 'INACTIVE', 'ON_HOLD', 'DRAFT', 'PENDING_DELETION') then 'paused'
    when upper({{ column }}) in ('REMOVED', 'DELETED', 'DELETE', 'ARCHIVED', 'CANCELED', 'CANCELLED', 'COMPLETED', 'CAMPAIGN_STATUS_DELETE', 'CLOSED') then 'removed'
    when {{ column }} is null then null
    else 'other'
end
{%- endmacro %}

{#- An entity snapshot stream (accounts, campaigns, ad_groups, ads) in the common vocabulary. -#}
{% macro mdp_stage_entities(platform, stream) -%}
{%- set entity_type = {'accounts': 'account', 'campaigns': 'campaign', 'ad_groups': 'ad_group', 'ads': 'ad'}[stream] -%}
{%- for name in var('mdp_sources', {}).get(platform, []) %}
{% if not loop.first %}union all
{% endif -%}
select
    '{{ platform }}' as platform,
    '{{ name }}' as source_name,
    '{{ entity_type }}' as entity_type,
    cast(account_id as {{ dbt.type_string() }}) as account_id,
    cast(id as {{ dbt.type_string() }}) as id,
    name,
    status as platform_status,
    {{ mdp_status('status') }} as status,
    cast(campaign_id as {{ dbt.type_string() }}) as campaign_id,
    cast(ad_group_id as {{ dbt.type_string() }}) as ad_group_id,
    currency,
    timezone,
    cast(_mdp_snapshot_date as date) as snapshot_date,
    _mdp_extracted_at as loaded_at
from {{ source('mdp_raw', name ~ '__' ~ stream) }}
{%- endfor %}
{%- endmacro %}
