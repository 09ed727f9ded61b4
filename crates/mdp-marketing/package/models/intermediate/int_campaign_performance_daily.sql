-- Campaign × day for every enabled platform, each from the stream that carries all of its spend: a
-- platform's campaign-level stream where it has one (Google's campaign_daily, which includes
-- Performance Max campaigns that have no ad rows), its ad-level rows summed otherwise.
{%- set campaign_streams = var('mdp_campaign_streams', {'google_ads': 'campaign_daily'}) %}
with performance as (
{%- for platform in var('mdp_sources') %}
    {% if not loop.first %}union all
    {% endif -%}
    select
        date, platform, source_name, account_id, campaign_id,
        {{ mdp_sum_metrics(reporting=false) }},
        max(loaded_at) as loaded_at
    {%- if platform in campaign_streams %}
    from {{ ref('stg_' ~ platform ~ '__' ~ campaign_streams[platform]) }}
    {%- else %}
    from {{ ref('stg_' ~ platform ~ '__ad_daily') }}
    {%- endif %}
    group by date, platform, source_name, account_id, campaign_id
{%- endfor %}
),

current_entities as (
    select * from {{ ref('int_entity_versions') }} where is_current
)

select
    p.date,
    p.platform,
    p.source_name,
    p.account_id,
    account.name as account_name,
    account.currency,
    p.campaign_id,
    campaign.name as campaign_name,
    {{ mdp_metric_columns('p') }}
from performance as p
left join current_entities as account
    on account.entity_type = 'account' and account.platform = p.platform and account.id = p.account_id
left join current_entities as campaign
    on campaign.entity_type = 'campaign' and campaign.platform = p.platform and campaign.id = p.campaign_id
