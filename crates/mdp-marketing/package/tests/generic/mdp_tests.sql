{#- Rows whose combination of columns is not unique: the grain of a mart. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
select {{ combination_of_columns | join(', ') }}, count(*) as rows_with_this_key
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- Rows where the column is negative. -#}
{% test non_negative(model, column_name) %}
select * from {{ model }} where {{ column_name }} < 0
{% endtest %}

{#- Rows where the expression is not true. -#}
{% test expression_is_true(model, expression) %}
select * from {{ model }} where not ({{ expression }})
{% endtest %}

{#- Rows whose KPIs are not the ratios of the row's own components: each KPI times its denominator
    must give back its numerator, and a KPI is NULL exactly when its denominator is 0. This catches
    averaged ratios, which do not satisfy it. `money`: suffixes of the money columns ('' for account
    currency, '_reporting'). The KPIs and their formulas come from mdp's KPI definitions. -#}
{% test kpis_match_components(model, money=['', '_reporting'], tolerance=0.000001) %}
{%- for kpi, numerator, denominator, scale in mdp_kpi_formulas(money) %}
{% if not loop.first %}union all
{% endif -%}
select '{{ kpi }}' as kpi, cast({{ kpi }} as {{ dbt.type_string() }}) as kpi_value,
       cast({{ numerator }} as {{ dbt.type_string() }}) as numerator, cast({{ denominator }} as {{ dbt.type_string() }}) as denominator
from {{ model }}
where ({{ denominator }} = 0 and {{ kpi }} is not null)
   or ({{ denominator }} <> 0 and {{ kpi }} is null)
   or ({{ denominator }} <> 0 and abs(cast({{ kpi }} as double precision) * cast({{ denominator }} as double precision) / {{ scale }}
        - cast({{ numerator }} as double precision)) > {{ tolerance }} * greatest(abs(cast({{ numerator }} as double precision)), 1))
{%- endfor %}
{% endtest %}
