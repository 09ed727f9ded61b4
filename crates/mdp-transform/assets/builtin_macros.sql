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

{#- Cross-database macros (dbt-core's, callable as `dbt.date_trunc(...)` or `date_trunc(...)`):
    one SQL spelling per warehouse, chosen with adapter.dispatch so a project can override one. -#}

{% macro date_trunc(datepart, date) -%}
    date_trunc('{{ datepart }}', {{ date }})
{%- endmacro %}

{% macro dateadd(datepart, interval, from_date_or_timestamp) -%}
    {{ return(adapter.dispatch('dateadd')(datepart, interval, from_date_or_timestamp)) }}
{%- endmacro %}

{% macro duckdb__dateadd(datepart, interval, from_date_or_timestamp) -%}
    date_add({{ from_date_or_timestamp }}, interval ({{ interval }}) {{ datepart }})
{%- endmacro %}

{% macro default__dateadd(datepart, interval, from_date_or_timestamp) -%}
    {{ from_date_or_timestamp }} + ((interval '1 {{ datepart }}') * ({{ interval }}))
{%- endmacro %}

{% macro datediff(first_date, second_date, datepart) -%}
    {{ return(adapter.dispatch('datediff')(first_date, second_date, datepart)) }}
{%- endmacro %}

{% macro duckdb__datediff(first_date, second_date, datepart) -%}
    date_diff('{{ datepart }}', ({{ first_date }})::timestamp, ({{ second_date }})::timestamp)
{%- endmacro %}

{% macro default__datediff(first_date, second_date, datepart) -%}
    {%- if datepart == 'year' -%}
        (date_part('year', ({{ second_date }})::date) - date_part('year', ({{ first_date }})::date))
    {%- elif datepart == 'quarter' -%}
        ((date_part('year', ({{ second_date }})::date) - date_part('year', ({{ first_date }})::date)) * 4 + date_part('quarter', ({{ second_date }})::date) - date_part('quarter', ({{ first_date }})::date))
    {%- elif datepart == 'month' -%}
        ((date_part('year', ({{ second_date }})::date) - date_part('year', ({{ first_date }})::date)) * 12 + date_part('month', ({{ second_date }})::date) - date_part('month', ({{ first_date }})::date))
    {%- elif datepart == 'day' -%}
        (({{ second_date }})::date - ({{ first_date }})::date)
    {%- elif datepart == 'week' -%}
        floor((({{ second_date }})::date - ({{ first_date }})::date) / 7.0)
    {%- elif datepart == 'hour' -%}
        floor(extract(epoch from (({{ second_date }})::timestamp - ({{ first_date }})::timestamp)) / 3600)
    {%- elif datepart == 'minute' -%}
        floor(extract(epoch from (({{ second_date }})::timestamp - ({{ first_date }})::timestamp)) / 60)
    {%- elif datepart == 'second' -%}
        floor(extract(epoch from (({{ second_date }})::timestamp - ({{ first_date }})::timestamp)))
    {%- else -%}
        {{ exceptions.raise_compiler_error("datediff: unsupported datepart " ~ datepart) }}
    {%- endif -%}
{%- endmacro %}

{% macro safe_cast(field, type) -%}
    {%- if target.type == 'duckdb' -%}try_cast({{ field }} as {{ type }}){%- else -%}cast({{ field }} as {{ type }}){%- endif -%}
{%- endmacro %}

{% macro cast(field, type) -%}
    cast({{ field }} as {{ type }})
{%- endmacro %}

{% macro safe_divide(numerator, denominator) -%}
    ({{ numerator }}) / nullif(({{ denominator }}), 0)
{%- endmacro %}

{% macro concat(fields) -%}
    {{ fields | join(' || ') }}
{%- endmacro %}

{% macro hash(field) -%}
    md5(cast({{ field }} as varchar))
{%- endmacro %}

{% macro any_value(expression) -%}
    {%- if target.type == 'duckdb' -%}any_value({{ expression }}){%- else -%}min({{ expression }}){%- endif -%}
{%- endmacro %}

{% macro bool_or(expression) -%}
    bool_or({{ expression }})
{%- endmacro %}

{% macro split_part(string_text, delimiter_text, part_number) -%}
    split_part({{ string_text }}, {{ delimiter_text }}, {{ part_number }})
{%- endmacro %}

{% macro length(expression) -%}
    length({{ expression }})
{%- endmacro %}

{% macro right(string_text, length_expression) -%}
    right({{ string_text }}, {{ length_expression }})
{%- endmacro %}

{% macro string_literal(value) -%}
    '{{ value | replace("'", "''") }}'
{%- endmacro %}

{% macro escape_single_quotes(expression) -%}
    {{ expression | replace("'", "''") }}
{%- endmacro %}

{% macro cast_bool_to_text(field) -%}
    cast({{ field }} as varchar)
{%- endmacro %}

{% macro current_timestamp() -%}
    now()
{%- endmacro %}

{% macro type_string() %}varchar{% endmacro %}

{% macro type_timestamp() %}timestamp{% endmacro %}

{% macro type_int() %}integer{% endmacro %}

{% macro type_bigint() %}bigint{% endmacro %}

{% macro type_float() %}float{% endmacro %}

{% macro type_numeric() %}numeric(28, 6){% endmacro %}

{% macro type_boolean() %}boolean{% endmacro %}

{#- dbt's relation lookups: the relation when it exists in the warehouse, else none (none while parsing). -#}
{% macro load_relation(relation) -%}
    {{ return(adapter.get_relation(database=relation.database, schema=relation.schema, identifier=relation.identifier)) }}
{%- endmacro %}

{% macro load_cached_relation(relation) -%}
    {{ return(load_relation(relation)) }}
{%- endmacro %}
