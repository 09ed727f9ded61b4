//! The ad account's entity edges: `campaigns`, `adsets` and `ads`, with their effective statuses.

use std::collections::HashMap;

use axum::response::Response;
use serde_json::{json, Value};

use super::paging::fingerprint;
use super::{bad_param, effective, fields, status_list, status_name, EFFECTIVE_STATUSES};
use crate::world::{Account, Status};

pub(super) fn entity_rows(
    account: &Account,
    edge: &str,
    params: &HashMap<String, String>,
) -> Result<(Vec<Value>, u64), Response> {
    let (node_type, known): (&str, &[&str]) = match edge {
        "campaigns" => (
            "Campaign",
            &[
                "id",
                "name",
                "status",
                "effective_status",
                "configured_status",
                "objective",
                "account_id",
                "created_time",
            ],
        ),
        "adsets" => {
            ("AdSet", &["id", "name", "status", "effective_status", "configured_status", "campaign_id", "account_id"])
        }
        _ => (
            "Ad",
            &["id", "name", "status", "effective_status", "configured_status", "campaign_id", "adset_id", "account_id"],
        ),
    };
    let fields = fields(params, known, node_type)?;
    // Without `effective_status`, edges leave out archived and deleted objects.
    let wanted = match params.get("effective_status") {
        Some(raw) => {
            let v: Value =
                serde_json::from_str(raw).map_err(|_| bad_param("param effective_status must be a JSON array"))?;
            status_list(&v, "effective_status")?
        }
        None => EFFECTIVE_STATUSES
            .iter()
            .filter(|s| !matches!(**s, "DELETED" | "ARCHIVED"))
            .map(|s| s.to_string())
            .collect(),
    };
    let mut items = Vec::new();
    let mut push =
        |id: &str, name: &str, status: Status, eff: &str, campaign_id: Option<&str>, adset_id: Option<&str>| {
            if !wanted.iter().any(|w| w == eff) {
                return;
            }
            let mut o = serde_json::Map::new();
            for f in &fields {
                let v = match f.as_str() {
                    "id" => json!(id),
                    "name" => json!(name),
                    "status" | "configured_status" => json!(status_name(status)),
                    "effective_status" => json!(eff),
                    "objective" => json!("OUTCOME_SALES"),
                    "account_id" => json!(account.id),
                    "created_time" => json!("2026-01-05T10:00:00+0100"),
                    "campaign_id" => json!(campaign_id),
                    "adset_id" => json!(adset_id),
                    _ => Value::Null,
                };
                o.insert(f.clone(), v);
            }
            o.entry("id").or_insert_with(|| json!(id));
            items.push(Value::Object(o));
        };
    for c in &account.campaigns {
        match edge {
            "campaigns" => push(&c.id, &c.name, c.status, status_name(c.status), None, None),
            "adsets" => {
                for g in &c.ad_groups {
                    let eff = effective(g.status, &[(c.status, "CAMPAIGN_PAUSED")]);
                    push(&g.id, &g.name, g.status, eff, Some(&c.id), None);
                }
            }
            _ => {
                for g in &c.ad_groups {
                    for ad in &g.ads {
                        let eff = effective(ad.status, &[(c.status, "CAMPAIGN_PAUSED"), (g.status, "ADSET_PAUSED")]);
                        push(&ad.id, &ad.name, ad.status, eff, Some(&c.id), Some(&g.id));
                    }
                }
            }
        }
    }
    let print = fingerprint(&[
        &account.id,
        edge,
        params.get("fields").map_or("", String::as_str),
        params.get("effective_status").map_or("", String::as_str),
    ]);
    Ok((items, print))
}
