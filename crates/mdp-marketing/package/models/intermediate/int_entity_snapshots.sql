-- Every entity snapshot (accounts, campaigns, ad groups, ads) of every enabled platform, one row per
-- entity and snapshot day: the input of the name and status history.
{%- set ns = namespace(first=true) %}
{%- for platform in var('mdp_sources') %}
{%- for stream in ['accounts', 'campaigns', 'ad_groups', 'ads'] %}
{% if not ns.first %}union all
{% endif -%}
select * from {{ ref('stg_' ~ platform ~ '__' ~ stream) }}
{%- set ns.first = false %}
{%- endfor %}
{%- endfor %}
