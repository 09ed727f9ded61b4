{#- numerator / denominator as a double, NULL when the denominator is 0 or NULL (never an error, never 0). -#}
{% macro mdp_ratio(numerator, denominator, scale=none) -%}
case when {{ denominator }} is null or {{ denominator }} = 0 then null
     else cast({{ numerator }} as double precision){% if scale %} * {{ scale }}{% endif %} / cast({{ denominator }} as double precision) end
{%- endmacro %}

{#- `mdp_kpis` and `mdp_kpi_formulas` are generated from mdp's KPI definitions (mdp_marketing::kpi) into
    macros/_mdp_kpis.sql when the package is loaded. -#}

{#- The summed metric columns of an aggregation. -#}
{% macro mdp_sum_metrics(reporting=true, engagement=true) -%}
    sum(impressions) as impressions,
    sum(clicks) as clicks,
    sum(spend) as spend,
    sum(conversions) as conversions,
    sum(conversion_value) as conversion_value
{%- if reporting %},
    sum(spend_reporting) as spend_reporting,
    sum(conversion_value_reporting) as conversion_value_reporting
{%- endif %}
{%- if engagement %},
    sum(video_views) as video_views,
    sum(likes) as likes,
    sum(comments) as comments,
    sum(shares) as shares
{%- endif %}
{%- endmacro %}
