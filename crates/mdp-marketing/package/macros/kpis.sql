{#- numerator / denominator as a double, NULL when the denominator is 0 or NULL (never an error, never 0). -#}
{% macro mdp_ratio(numerator, denominator, scale=none) -%}
case when {{ denominator }} is null or {{ denominator }} = 0 then null
     else cast({{ numerator }} as double precision){% if scale %} * {{ scale }}{% endif %} / cast({{ denominator }} as double precision) end
{%- endmacro %}

{#- The KPIs of a row from its (already summed) components. `money`: the suffixes of the money
    columns to compute the money KPIs for, e.g. ['', '_reporting']. -#}
{% macro mdp_kpis(money=['', '_reporting']) -%}
    {{ mdp_ratio('clicks', 'impressions') }} as ctr,
    {{ mdp_ratio('conversions', 'clicks') }} as cvr
{%- for m in money %},
    {{ mdp_ratio('spend' ~ m, 'clicks') }} as cpc{{ m }},
    {{ mdp_ratio('spend' ~ m, 'impressions', 1000) }} as cpm{{ m }},
    {{ mdp_ratio('spend' ~ m, 'conversions') }} as cpa{{ m }},
    {{ mdp_ratio('conversion_value' ~ m, 'spend' ~ m) }} as roas{{ m }}
{%- endfor %}
{%- endmacro %}

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
