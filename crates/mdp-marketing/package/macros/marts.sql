{#- `platform:id`: the key of an entity across platforms (ids are unique within a platform only). -#}
{% macro mdp_key(platform_column, id_column) -%}
case when {{ id_column }} is null then null else {{ platform_column }} || ':' || {{ id_column }} end
{%- endmacro %}

{#- Money in the reporting currency: the exact product of the amount and the day's rate. -#}
{% macro mdp_to_reporting(amount, rate) -%}
cast({{ amount }} * {{ rate }} as decimal(38, 19))
{%- endmacro %}
