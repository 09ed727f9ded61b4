//! Rendering GAQL rows from the world: nested lowerCamelCase objects, int64 as strings, zero fields
//! left out (proto3 JSON).

use chrono::{Days, NaiveDate};

use mdp_core::GoogleConversionMetric;

use super::gaql::{Query, Resource};
use crate::conversions::{google_conversions, ConversionAction};
use crate::json::{json_int, json_key, json_str};
use crate::world::{Account, Ad, AdGroup, Campaign, Metrics, Status, HISTORY_DAYS};
use crate::Sandbox;

fn camel(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    let mut upper = false;
    for c in segment.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

pub(super) fn camel_path(field: &str) -> Vec<String> {
    field.split('.').map(camel).collect()
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Active => "ENABLED",
        Status::Paused => "PAUSED",
        Status::Removed => "REMOVED",
    }
}

/// One row's entities, day and metrics.
struct Row<'a> {
    account: &'a Account,
    campaign: Option<&'a Campaign>,
    ad_group: Option<&'a AdGroup>,
    ad: Option<&'a Ad>,
    date: Option<NaiveDate>,
    metrics: Metrics,
    /// Rows segmented by conversion action: the action (its metrics are that action's alone).
    action: Option<ConversionAction>,
}

/// An int64 as proto3 JSON writes it: a string, omitted when zero.
fn int64(buf: &mut Vec<u8>, v: i64) -> bool {
    if v == 0 {
        return false;
    }
    buf.push(b'"');
    json_int(buf, v);
    buf.push(b'"');
    true
}

fn double(buf: &mut Vec<u8>, micros: i64) -> bool {
    // micros / 1e6 is correctly rounded, and JSON prints the shortest text that reads back the same
    // double: 1.5, 45.67.
    if micros == 0 {
        return false;
    }
    serde_json::to_writer(&mut *buf, &(micros as f64 / 1_000_000.0)).expect("writing JSON to a Vec");
    true
}

/// A string value: `Some(s)` is written, `None` leaves the field out.
fn text(buf: &mut Vec<u8>, s: Option<&str>) -> bool {
    match s {
        Some(s) => {
            json_str(buf, s);
            true
        }
        None => false,
    }
}

/// Write one field's value; `false` (with nothing written) when the row leaves it out.
fn write_field(buf: &mut Vec<u8>, row: &Row<'_>, field: &str) -> bool {
    let a = row.account;
    let m = &row.metrics;
    match field {
        "customer.id" => text(buf, Some(&a.id)),
        "customer.resource_name" => text(buf, Some(&format!("customers/{}", a.id))),
        "customer.descriptive_name" => text(buf, Some(&a.name)),
        "customer.currency_code" => text(buf, Some(a.currency)),
        "customer.time_zone" => text(buf, Some(a.timezone)),
        "campaign.id" => text(buf, row.campaign.map(|c| c.id.as_str())),
        "campaign.resource_name" | "ad_group.campaign" => {
            text(buf, row.campaign.map(|c| format!("customers/{}/campaigns/{}", a.id, c.id)).as_deref())
        }
        "campaign.name" => text(buf, row.campaign.map(|c| c.name.as_str())),
        "campaign.status" => text(buf, row.campaign.map(|c| status_name(c.status))),
        "campaign.advertising_channel_type" => {
            text(buf, row.campaign.map(|c| if c.performance_max { "PERFORMANCE_MAX" } else { "SEARCH" }))
        }
        "ad_group.id" => text(buf, row.ad_group.map(|g| g.id.as_str())),
        "ad_group.resource_name" | "ad_group_ad.ad_group" => {
            text(buf, row.ad_group.map(|g| format!("customers/{}/adGroups/{}", a.id, g.id)).as_deref())
        }
        "ad_group.name" => text(buf, row.ad_group.map(|g| g.name.as_str())),
        "ad_group.status" => text(buf, row.ad_group.map(|g| status_name(g.status))),
        "ad_group_ad.ad.id" => text(buf, row.ad.map(|ad| ad.id.as_str())),
        "ad_group_ad.ad.name" => text(buf, row.ad.map(|ad| ad.name.as_str())),
        "ad_group_ad.ad.type" => text(buf, row.ad.map(|_| "RESPONSIVE_SEARCH_AD")),
        "ad_group_ad.ad.resource_name" => {
            text(buf, row.ad.map(|ad| format!("customers/{}/ads/{}", a.id, ad.id)).as_deref())
        }
        "ad_group_ad.status" => text(buf, row.ad.map(|ad| status_name(ad.status))),
        "ad_group_ad.resource_name" => match (row.ad_group, row.ad) {
            (Some(g), Some(ad)) => text(buf, Some(&format!("customers/{}/adGroupAds/{}~{}", a.id, g.id, ad.id))),
            _ => false,
        },
        "conversion_action.id" => text(buf, row.action.map(ConversionAction::id)),
        "conversion_action.name" => text(buf, row.action.map(ConversionAction::name)),
        "conversion_action.resource_name" => text(
            buf,
            row.action.map(|action| format!("customers/{}/conversionActions/{}", a.id, action.id())).as_deref(),
        ),
        "conversion_action.status" => text(buf, row.action.map(|_| "ENABLED")),
        "conversion_action.category" => text(buf, row.action.map(ConversionAction::category)),
        "conversion_action.primary_for_goal" => match row.action {
            Some(action) => {
                buf.extend_from_slice(if action.primary() { b"true" } else { b"false" });
                true
            }
            None => false,
        },
        "segments.conversion_action" => text(
            buf,
            row.action.map(|action| format!("customers/{}/conversionActions/{}", a.id, action.id())).as_deref(),
        ),
        "segments.conversion_action_name" => text(buf, row.action.map(ConversionAction::name)),
        "segments.date" => match row.date {
            Some(d) => {
                use std::io::Write;
                write!(buf, "\"{d}\"").expect("writing to a Vec");
                true
            }
            None => false,
        },
        "metrics.impressions" => int64(buf, m.impressions),
        "metrics.clicks" => int64(buf, m.clicks),
        "metrics.cost_micros" => int64(buf, m.spend_micros),
        "metrics.conversions" => double(buf, m.conversions_micros),
        "metrics.conversions_value" => double(buf, m.conversion_value_micros),
        "metrics.all_conversions" => double(buf, google_conversions(m, GoogleConversionMetric::AllConversions).0),
        "metrics.all_conversions_value" => double(buf, google_conversions(m, GoogleConversionMetric::AllConversions).1),
        "metrics.view_through_conversions" => int64(buf, m.view_through_conversions),
        "metrics.video_views" | "metrics.video_trueview_views" => int64(buf, m.video_views),
        _ => false,
    }
}

/// The nested shape of a query's rows, worked out once per query: lowerCamelCase keys, each a field
/// or an object of further keys.
#[derive(Debug)]
enum Node {
    Leaf(String, String),
    Object(String, Vec<Node>),
}

fn plan_insert(nodes: &mut Vec<Node>, path: &[String], field: &str) {
    match path {
        [] => {}
        [last] => {
            // A field named twice (or a resource name also selected) keeps one key, as a map would.
            if !nodes.iter().any(|n| matches!(n, Node::Leaf(k, _) | Node::Object(k, _) if k == last)) {
                nodes.push(Node::Leaf(last.clone(), field.to_string()));
            }
        }
        [first, rest @ ..] => {
            let at = nodes.iter().position(|n| matches!(n, Node::Object(k, _) if k == first));
            let at = match at {
                Some(at) => at,
                None => {
                    if nodes.iter().any(|n| matches!(n, Node::Leaf(k, _) if k == first)) {
                        return;
                    }
                    nodes.push(Node::Object(first.clone(), Vec::new()));
                    nodes.len() - 1
                }
            };
            if let Node::Object(_, children) = &mut nodes[at] {
                plan_insert(children, rest, field);
            }
        }
    }
}

fn plan(fields: &[String], resource: Resource) -> Vec<Node> {
    let mut nodes = Vec::new();
    // The FROM resource, and every resource whose fields are selected, carry their resource name.
    let owners = [
        (Resource::Customer, "customer", "customer.resource_name"),
        (Resource::Campaign, "campaign", "campaign.resource_name"),
        (Resource::AdGroup, "ad_group", "ad_group.resource_name"),
        (Resource::AdGroupAd, "ad_group_ad", "ad_group_ad.resource_name"),
        (Resource::ConversionAction, "conversion_action", "conversion_action.resource_name"),
    ];
    for (owner, prefix, name) in owners {
        let selected = fields.iter().any(|f| f.split('.').next() == Some(prefix));
        if owner == resource || selected {
            plan_insert(&mut nodes, &camel_path(name), name);
        }
    }
    for f in fields {
        plan_insert(&mut nodes, &camel_path(f), f);
    }
    nodes
}

/// Write the members of one object (without braces); objects left empty are left out.
fn write_nodes(buf: &mut Vec<u8>, nodes: &[Node], row: &Row<'_>) -> bool {
    let mut any = false;
    for node in nodes {
        let mark = buf.len();
        if any {
            buf.push(b',');
        }
        let written = match node {
            Node::Leaf(key, field) => {
                json_key(buf, key);
                write_field(buf, row, field)
            }
            Node::Object(key, children) => {
                json_key(buf, key);
                buf.push(b'{');
                let written = write_nodes(buf, children, row);
                buf.push(b'}');
                written
            }
        };
        if written {
            any = true;
        } else {
            buf.truncate(mark);
        }
    }
    any
}

fn render_row(buf: &mut Vec<u8>, row: &Row<'_>, plan: &[Node]) {
    buf.push(b'{');
    write_nodes(buf, plan, row);
    buf.push(b'}');
}

/// Write the query's rows into `buf`, calling `before_row` ahead of each (for separators).
pub(super) fn render(
    sandbox: &Sandbox,
    account: &Account,
    query: &Query,
    buf: &mut Vec<u8>,
    mut before_row: impl FnMut(&mut Vec<u8>),
) {
    let world = &sandbox.world;
    let version = sandbox.version();
    let plan = plan(&query.fields, query.resource);
    let limit = query.limit.unwrap_or(usize::MAX);
    let mut count = 0usize;
    let mut emit = |buf: &mut Vec<u8>, row: &Row<'_>| {
        if count >= limit {
            return;
        }
        count += 1;
        before_row(buf);
        render_row(buf, row, &plan);
    };
    if query.resource == Resource::ConversionAction {
        for action in ConversionAction::ALL {
            let row = Row {
                account,
                campaign: None,
                ad_group: None,
                ad: None,
                date: None,
                metrics: Metrics::default(),
                action: Some(action),
            };
            emit(buf, &row);
        }
        return;
    }
    // The entities of the FROM resource.
    let mut entities: Vec<(Option<&Campaign>, Option<&AdGroup>, Option<&Ad>)> = Vec::new();
    match query.resource {
        Resource::Customer => entities.push((None, None, None)),
        Resource::Campaign => entities.extend(account.campaigns.iter().map(|c| (Some(c), None, None))),
        Resource::AdGroup => entities
            .extend(account.campaigns.iter().flat_map(|c| c.ad_groups.iter().map(move |g| (Some(c), Some(g), None)))),
        Resource::AdGroupAd => entities.extend(account.campaigns.iter().flat_map(|c| {
            c.ad_groups.iter().flat_map(move |g| g.ads.iter().map(move |ad| (Some(c), Some(g), Some(ad))))
        })),
        Resource::ConversionAction => unreachable!("listed above"),
    }
    let with_metrics = query.fields.iter().any(|f| f.starts_with("metrics.") || f == "segments.date");
    let segmented = query.fields.iter().any(|f| f == "segments.date");
    let by_action = query.fields.iter().any(|f| f.starts_with("segments.conversion_action"));
    let units: Vec<_> = world.units(account).collect();
    for entity in &entities {
        let (campaign, ad_group, ad) = *entity;
        if !with_metrics {
            emit(buf, &Row { account, campaign, ad_group, ad, date: None, metrics: Metrics::default(), action: None });
            continue;
        }
        // The units an entity's metrics add up, worked out once per entity.
        let members: Vec<_> = units
            .iter()
            .filter(|unit| match entity {
                (_, _, Some(ad)) => unit.ad.is_some_and(|u| u.id == ad.id),
                (_, Some(g), None) => unit.ad_group.is_some_and(|u| u.id == g.id),
                (Some(c), None, None) => unit.campaign.id == c.id,
                _ => true,
            })
            .collect();
        let metrics_of = |day: NaiveDate| {
            let mut total = Metrics::default();
            for unit in &members {
                total.add(&world.unit_metrics(account, unit, day, version));
            }
            total
        };
        let start = query
            .start
            .unwrap_or(world.today - Days::new(HISTORY_DAYS))
            .max(world.today - Days::new(HISTORY_DAYS + 30));
        let end = query.end.unwrap_or(world.today).min(world.today);
        let days = start.iter_days().take_while(|d| *d <= end);
        if segmented {
            for day in days {
                let metrics = metrics_of(day);
                if metrics.is_zero() {
                    continue; // rows without delivery are not returned
                }
                if by_action {
                    for action in ConversionAction::ALL {
                        let metrics = action.part(&metrics);
                        if !metrics.is_zero() {
                            emit(
                                buf,
                                &Row {
                                    account,
                                    campaign,
                                    ad_group,
                                    ad,
                                    date: Some(day),
                                    metrics,
                                    action: Some(action),
                                },
                            );
                        }
                    }
                    continue;
                }
                emit(buf, &Row { account, campaign, ad_group, ad, date: Some(day), metrics, action: None });
            }
        } else {
            let mut metrics = Metrics::default();
            for day in days {
                metrics.add(&metrics_of(day));
            }
            if !metrics.is_zero() {
                emit(buf, &Row { account, campaign, ad_group, ad, date: None, metrics, action: None });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::PLATFORM;
    use super::*;
    use serde_json::{json, Value};

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn rows_are_nested_camel_case_with_strings_for_int64_and_no_zero_fields() {
        let world = crate::World::new(1, date("2026-06-30"), crate::Scale::default());
        let account = world.accounts(PLATFORM).next().unwrap();
        let campaign = &account.campaigns[0];
        let metrics = Metrics {
            impressions: 100,
            clicks: 0,
            spend_micros: 1_230_000,
            conversions_micros: 1_500_000,
            ..Metrics::default()
        };
        let row = Row {
            account,
            campaign: Some(campaign),
            ad_group: None,
            ad: None,
            date: Some(date("2026-06-01")),
            metrics,
            action: None,
        };
        let fields: Vec<String> = [
            "campaign.id",
            "segments.date",
            "metrics.impressions",
            "metrics.clicks",
            "metrics.cost_micros",
            "metrics.conversions",
        ]
        .map(String::from)
        .to_vec();
        let mut buf = Vec::new();
        render_row(&mut buf, &row, &plan(&fields, Resource::Campaign));
        let v: Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["campaign"]["id"], json!(campaign.id));
        assert_eq!(v["campaign"]["resourceName"], json!(format!("customers/{}/campaigns/{}", account.id, campaign.id)));
        assert_eq!(v["metrics"]["impressions"], json!("100"));
        assert_eq!(v["metrics"]["costMicros"], json!("1230000"));
        assert_eq!(v["metrics"]["conversions"], json!(1.5));
        assert!(v["metrics"].get("clicks").is_none(), "zero fields are omitted");
        assert_eq!(v["segments"]["date"], json!("2026-06-01"));
    }
}
