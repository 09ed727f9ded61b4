//! `adAnalytics` request building and answer merging: Rest.li 2.0 query strings written by hand, the
//! metric list split into requests of at most [`MAX_FIELDS`] fields, and the partial answers merged back
//! into one element per (pivot values, day).

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use mdp_core::{DateWindow, Platform};
use serde_json::{Map, Value};

use crate::error::SourceError;

const PLATFORM: Platform = Platform::LinkedInAds;

/// Most fields one `adAnalytics` request may name. LinkedIn documents 20 metrics; mdp counts the two key
/// fields too (as Airbyte does), which is never refused.
pub const MAX_FIELDS: usize = 20;

/// The fields every request names, so each partial answer can be merged: LinkedIn only returns the
/// fields asked for, keys included.
pub const KEY_FIELDS: [&str; 2] = ["dateRange", "pivotValues"];

/// Percent-encode a Rest.li leaf (a URN, a page token): everything but RFC 3986 unreserved characters,
/// so `:` becomes `%3A` and cannot be read as Rest.li syntax.
pub fn encode_leaf(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn restli_date(day: NaiveDate) -> String {
    format!("(year:{},month:{},day:{})", day.year(), day.month(), day.day())
}

/// The query string of one `adAnalytics?q=analytics` request: creative × UTC day for one account.
/// Rest.li punctuation (`List(…)`, `(k:v)`, commas) stays literal; only the URN is encoded.
pub fn analytics_query(account_id: &str, window: DateWindow, fields: &[&str]) -> String {
    format!(
        "q=analytics&pivot=CREATIVE&timeGranularity=DAILY&dateRange=(start:{},end:{})&accounts=List({})&fields={}",
        restli_date(window.start()),
        restli_date(window.end()),
        encode_leaf(&format!("urn:li:sponsoredAccount:{account_id}")),
        fields.join(","),
    )
}

/// The field lists of the requests that together read `metrics`: each has the key fields and at most
/// `max_fields - 2` metrics, in the given order, without duplicates.
pub fn field_chunks<'a>(metrics: &[&'a str], max_fields: usize) -> Vec<Vec<&'a str>> {
    let per_request = max_fields.saturating_sub(KEY_FIELDS.len()).max(1);
    let mut unique: Vec<&'a str> = Vec::with_capacity(metrics.len());
    for &metric in metrics {
        if !KEY_FIELDS.contains(&metric) && !unique.contains(&metric) {
            unique.push(metric);
        }
    }
    unique.chunks(per_request).map(|chunk| KEY_FIELDS.iter().copied().chain(chunk.iter().copied()).collect()).collect()
}

/// The key of an element: its (UTC) day and its pivot values (e.g. the creative URN).
pub type RowKey = (NaiveDate, Vec<String>);

fn ymd(value: &Value) -> Option<NaiveDate> {
    let part = |k: &str| value[k].as_u64().and_then(|n| u32::try_from(n).ok());
    NaiveDate::from_ymd_opt(i32::try_from(part("year")?).ok()?, part("month")?, part("day")?)
}

/// The key of one `adAnalytics` element; a DAILY element's range is one day.
pub fn row_key(element: &Value) -> Result<RowKey, SourceError> {
    let range = &element["dateRange"];
    let start = ymd(&range["start"])
        .ok_or_else(|| SourceError::malformed(PLATFORM, format!("element without dateRange.start: {range}")))?;
    if let Some(end) = range.get("end").filter(|e| !e.is_null()) {
        if ymd(end) != Some(start) {
            return Err(SourceError::malformed(PLATFORM, format!("a DAILY element covers more than one day: {range}")));
        }
    }
    let pivots = element["pivotValues"]
        .as_array()
        .filter(|values| !values.is_empty())
        .ok_or_else(|| SourceError::malformed(PLATFORM, "element without pivotValues"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| SourceError::malformed(PLATFORM, format!("pivot value {v} is not a URN")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((start, pivots))
}

/// Merge one partial answer's `elements` into `rows`: fields of the same (day, pivot values) are
/// joined; an element only one request returned (all its other metrics zero) still makes a row.
pub fn merge(rows: &mut BTreeMap<RowKey, Map<String, Value>>, elements: Vec<Value>) -> Result<(), SourceError> {
    for element in elements {
        let key = row_key(&element)?;
        let Value::Object(fields) = element else {
            return Err(SourceError::malformed(PLATFORM, "an element is not an object"));
        };
        let row = rows.entry(key).or_default();
        for (name, value) in fields {
            match row.get(&name) {
                Some(existing) if existing != &value && !KEY_FIELDS.contains(&name.as_str()) => {
                    return Err(SourceError::malformed(
                        PLATFORM,
                        format!("two answers disagree on {name}: {existing} and {value}"),
                    ));
                }
                Some(_) => {}
                None => {
                    row.insert(name, value);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queries_keep_restli_syntax_literal_and_encode_urns() {
        let window = DateWindow::new(
            NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
        )
        .unwrap();
        assert_eq!(
            analytics_query("123", window, &["dateRange", "pivotValues", "impressions"]),
            "q=analytics&pivot=CREATIVE&timeGranularity=DAILY&dateRange=(start:(year:2026,month:6,day:1),end:(year:2026,month:6,day:30))&accounts=List(urn%3Ali%3AsponsoredAccount%3A123)&fields=dateRange,pivotValues,impressions"
        );
        assert_eq!(encode_leaf("a b/c=d"), "a%20b%2Fc%3Dd");
        // reqwest (the url crate) leaves Rest.li punctuation and existing escapes alone.
        let url =
            reqwest::Url::parse(&format!("http://h/rest/adAnalytics?{}", analytics_query("1", window, &["dateRange"])))
                .unwrap();
        assert!(url.as_str().ends_with("accounts=List(urn%3Ali%3AsponsoredAccount%3A1)&fields=dateRange"), "{url}");
    }

    #[test]
    fn field_lists_are_split_with_the_keys_in_every_request() {
        let metrics: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
        let metrics: Vec<&str> = metrics.iter().map(String::as_str).collect();
        let chunks = field_chunks(&metrics, MAX_FIELDS);
        assert_eq!(chunks.len(), 3, "18 + 18 + 4 metrics");
        assert!(chunks.iter().all(|c| c.len() <= MAX_FIELDS && c[..2] == KEY_FIELDS));
        let back: Vec<&str> = chunks.iter().flat_map(|c| c[2..].iter().copied()).collect();
        assert_eq!(back, metrics, "every metric once, in order");
        assert_eq!(
            field_chunks(&["impressions", "dateRange", "impressions"], 20),
            vec![vec!["dateRange", "pivotValues", "impressions"]]
        );
        assert_eq!(
            field_chunks(&["a", "b", "c"], 3),
            vec![
                vec!["dateRange", "pivotValues", "a"],
                vec!["dateRange", "pivotValues", "b"],
                vec!["dateRange", "pivotValues", "c"]
            ]
        );
    }

    fn element(day: u32, creative: u32, metrics: Value) -> Value {
        let mut e = json!({
            "dateRange": {"start": {"year": 2026, "month": 6, "day": day}, "end": {"year": 2026, "month": 6, "day": day}},
            "pivotValues": [format!("urn:li:sponsoredCreative:{creative}")],
        });
        e.as_object_mut().unwrap().extend(metrics.as_object().unwrap().clone());
        e
    }

    #[test]
    fn partial_answers_merge_on_pivot_and_day() {
        let mut rows = BTreeMap::new();
        merge(
            &mut rows,
            vec![
                element(1, 7, json!({"impressions": 10})),
                element(2, 7, json!({"impressions": 20})),
                element(1, 8, json!({"impressions": 5})),
            ],
        )
        .unwrap();
        // The second request's answer comes in another order and lacks creative 8 (all zero there).
        merge(&mut rows, vec![element(2, 7, json!({"likes": 2})), element(1, 7, json!({"likes": 1}))]).unwrap();
        assert_eq!(rows.len(), 3);
        let key = (NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(), vec!["urn:li:sponsoredCreative:7".to_string()]);
        assert_eq!(rows[&key]["impressions"], 10);
        assert_eq!(rows[&key]["likes"], 1);
        let only_first = (NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(), vec!["urn:li:sponsoredCreative:8".to_string()]);
        assert!(rows[&only_first].get("likes").is_none());
        // Contradicting answers are an error, not a silent overwrite.
        assert!(merge(&mut rows, vec![element(1, 7, json!({"likes": 9}))]).is_err());
    }

    #[test]
    fn elements_without_keys_or_spanning_days_are_malformed() {
        let mut rows = BTreeMap::new();
        assert!(merge(&mut rows, vec![json!({"impressions": 1})]).is_err());
        let wide = json!({"dateRange": {"start": {"year": 2026, "month": 6, "day": 1}, "end": {"year": 2026, "month": 6, "day": 2}}, "pivotValues": ["x"]});
        assert!(matches!(merge(&mut rows, vec![wide]), Err(SourceError::Malformed { .. })));
    }
}
