{#- The raw layer's totals per platform, account and day, from each platform's `stream_kind` stream:
    'spend' (the stream that carries all spend: Google's campaign_daily, the others' ad_daily) or
    'ad' (ad_daily everywhere). Summed over the platform's sources. -#}
{% macro mdp_raw_daily_totals(stream_kind) -%}
{%- set campaign_streams = var('mdp_campaign_streams', {'google_ads': 'campaign_daily'}) %}
{%- set ns = namespace(first=true) %}
select platform, account_id, date,
       sum(impressions) as impressions, sum(clicks) as clicks, sum(spend) as spend,
       sum(conversions) as conversions, sum(conversion_value) as conversion_value
from (
{%- for platform in var('mdp_sources') %}
{%- set stream = campaign_streams[platform] if (stream_kind == 'spend' and platform in campaign_streams) else 'ad_daily' %}
{%- for name in var('mdp_sources')[platform] %}
    {% if not ns.first %}union all
    {% endif -%}
    select '{{ platform }}' as platform, cast(account_id as {{ dbt.type_string() }}) as account_id, cast(date as date) as date,
           impressions, clicks, spend, conversions, conversion_value
    from {{ source('mdp_raw', name ~ '__' ~ stream) }}
{%- set ns.first = false %}
{%- endfor %}
{%- endfor %}
) as raw_rows
group by platform, account_id, date
{%- endmacro %}

{#- One row per platform, account, day and metric where a mart's daily totals differ from the raw
    layer's: the mart, both values. Compared exactly (DECIMAL), a missing day on either side as 0. -#}
{% macro mdp_reconcile(mart_relation, stream_kind) -%}
{%- set metrics = ['impressions', 'clicks', 'spend', 'conversions', 'conversion_value'] %}
with raw_totals as (
    {{ mdp_raw_daily_totals(stream_kind) }}
),

mart_totals as (
    select platform, account_id, date,
           sum(impressions) as impressions, sum(clicks) as clicks, sum(spend) as spend,
           sum(conversions) as conversions, sum(conversion_value) as conversion_value
    from {{ mart_relation }}
    group by platform, account_id, date
),

compared as (
    select
        coalesce(mart_totals.platform, raw_totals.platform) as platform,
        coalesce(mart_totals.account_id, raw_totals.account_id) as account_id,
        coalesce(mart_totals.date, raw_totals.date) as date
        {%- for m in metrics %},
        coalesce(mart_totals.{{ m }}, 0) as mart_{{ m }},
        coalesce(raw_totals.{{ m }}, 0) as raw_{{ m }}
        {%- endfor %}
    from mart_totals
    full outer join raw_totals
        on mart_totals.platform = raw_totals.platform
        and mart_totals.account_id = raw_totals.account_id
        and mart_totals.date = raw_totals.date
)

{%- for m in metrics %}
{% if not loop.first %}union all
{% endif -%}
select '{{ mart_relation.identifier }}' as mart, platform, account_id, date, '{{ m }}' as metric,
       cast(mart_{{ m }} as {{ dbt.type_string() }}) as mart_value, cast(raw_{{ m }} as {{ dbt.type_string() }}) as raw_value
from compared
where mart_{{ m }} <> raw_{{ m }}
{%- endfor %}
{%- endmacro %}
