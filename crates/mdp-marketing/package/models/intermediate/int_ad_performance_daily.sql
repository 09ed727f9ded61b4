-- All enabled platforms' ad-level daily rows, unioned, with the account currency and the latest
-- names. A platform's spend outside ads (Google Performance Max) is not here: see
-- int_campaign_performance_daily.
with performance as (
{%- for platform in var('mdp_sources') %}
    {% if not loop.first %}union all
    {% endif -%}
    select * from {{ ref('stg_' ~ platform ~ '__ad_daily') }}
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
    p.ad_group_id,
    ad_group.name as ad_group_name,
    p.ad_id,
    ad.name as ad_name,
    {{ mdp_metric_columns('p') }}
from performance as p
left join current_entities as account
    on account.entity_type = 'account' and account.platform = p.platform and account.id = p.account_id
left join current_entities as campaign
    on campaign.entity_type = 'campaign' and campaign.platform = p.platform and campaign.id = p.campaign_id
left join current_entities as ad_group
    on ad_group.entity_type = 'ad_group' and ad_group.platform = p.platform and ad_group.id = p.ad_group_id
left join current_entities as ad
    on ad.entity_type = 'ad' and ad.platform = p.platform and ad.id = p.ad_id
