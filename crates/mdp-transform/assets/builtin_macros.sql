{#- Macros every project has, as in dbt-core's global project. A project macro of the same name
    replaces one of these (e.g. a project's own generate_schema_name). -#}

{% macro test_not_null(model, column_name) -%}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is null
{%- endmacro %}

{% macro test_unique(model, column_name) -%}
select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
group by {{ column_name }}
having count(*) > 1
{%- endmacro %}

{% macro test_accepted_values(model, column_name, values, quote=True) -%}
with all_values as (
    select {{ column_name }} as value_field, count(*) as n_records
    from {{ model }}
    group by {{ column_name }}
)
select *
from all_values
where value_field not in (
    {%- for value in values -%}
        {%- if quote -%}'{{ value | replace("'", "''") }}'{%- else -%}{{ value }}{%- endif -%}
        {%- if not loop.last -%}, {% endif -%}
    {%- endfor -%}
)
{%- endmacro %}

{% macro test_relationships(model, column_name, to, field) -%}
with child as (
    select {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
),
parent as (
    select {{ field }} as to_field
    from {{ to }}
)
select from_field
from child
left join parent on child.from_field = parent.to_field
where parent.to_field is null
{%- endmacro %}

{% macro generate_schema_name(custom_schema_name=none, node=none) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ target.schema }}_{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}

{% macro generate_alias_name(custom_alias_name=none, node=none) -%}
    {%- if custom_alias_name -%}{{ custom_alias_name | trim }}{%- else -%}{{ node.name }}{%- endif -%}
{%- endmacro %}

{% macro generate_database_name(custom_database_name=none, node=none) -%}
    {%- if custom_database_name is none -%}{{ target.database }}{%- else -%}{{ custom_database_name | trim }}{%- endif -%}
{%- endmacro %}

{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {{ return("(select * from " ~ relation ~ " where " ~ where ~ ") dbt_subquery") }}
    {%- else -%}
        {{ return(relation) }}
    {%- endif -%}
{%- endmacro %}
