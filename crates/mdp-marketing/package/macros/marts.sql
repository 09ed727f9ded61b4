{#- `platform:id`: the key of an entity across platforms (ids are unique within a platform only). -#}
{% macro mdp_key(platform_column, id_column) -%}
case when {{ id_column }} is null then null else {{ platform_column }} || ':' || {{ id_column }} end
{%- endmacro %}

{#- Money in the reporting currency: the exact product of the amount and the day's rate. -#}
{% macro mdp_to_reporting(amount, rate) -%}
cast({{ amount }} * {{ rate }} as decimal(38, 19))
{%- endmacro %}

{#- The metric and load columns every performance model carries, from the relation aliased `alias`. -#}
{% macro mdp_metric_columns(alias) -%}
    {%- for column in ['impressions', 'clicks', 'spend', 'conversions', 'conversion_value', 'video_views', 'likes', 'comments', 'shares', 'loaded_at'] %}
    {{ alias }}.{{ column }}{% if not loop.last %},{% endif %}
    {%- endfor %}
{%- endmacro %}

{#- The reporting-currency columns of a performance row `alias` joined to int_fx_rates_daily as `fx`. -#}
{% macro mdp_reporting_columns(alias) -%}
    fx.reporting_currency,
    fx.rate as fx_rate,
    {{ mdp_to_reporting(alias ~ '.spend', 'fx.rate') }} as spend_reporting,
    {{ mdp_to_reporting(alias ~ '.conversion_value', 'fx.rate') }} as conversion_value_reporting
{%- endmacro %}
