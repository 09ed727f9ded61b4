//! `adAnalytics` request building and answer merging: Rest.li 2.0 query strings written by hand, the
//! metric list split into requests of at most [`MAX_FIELDS`] fields, and the partial answers merged back
//! into one element per (pivot values, day).

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use mdp_core::{DateWindow, Platform};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

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
    report_query("q=analytics&pivot=CREATIVE", account_id, window, fields)
}

/// The query string of one `adAnalytics?q=statistics` request: conversions per creative, conversion
/// rule and UTC day (`pivotValues` then holds the creative's and the rule's URNs).
pub fn conversions_query(account_id: &str, window: DateWindow, fields: &[&str]) -> String {
    report_query("q=statistics&pivots=List(CREATIVE,CONVERSION)", account_id, window, fields)
}

fn report_query(finder: &str, account_id: &str, window: DateWindow, fields: &[&str]) -> String {
    format!(
        "{finder}&timeGranularity=DAILY&dateRange=(start:{},end:{})&accounts=List({})&fields={}",
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

/// The key of an element: its (UTC) day and its pivot values (e.g. the creative URN), borrowed from the
/// answer's text.
pub type RowKey<'a> = (NaiveDate, Vec<Cow<'a, str>>);

/// An element's fields as the API wrote them, in order, each value its raw JSON text: merged rows are
/// built from the answers' own text, never from `Value` trees.
#[derive(Debug, Default, Clone)]
pub struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Fields<'a> {
    /// The raw value of a field, if the answers had it.
    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| *value)
    }

    /// The merged element as one JSON object (the raw row's payload), each value as the API wrote it.
    pub fn to_json(&self) -> String {
        let mut out =
            String::with_capacity(16 + self.0.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum::<usize>());
        out.push('{');
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if key.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
                out.push_str(&Value::String(key.to_string()).to_string());
            } else {
                out.push('"');
                out.push_str(key);
                out.push('"');
            }
            out.push(':');
            out.push_str(value.get());
        }
        out.push('}');
        out
    }
}

/// A map key, borrowed from the text unless it has escapes.
#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Fields<'a>, M::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(24));
                while let Some((Key(key), value)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    fields.push((key, value));
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Visit(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct DateRange {
    start: Option<Ymd>,
    end: Option<Ymd>,
}

#[derive(Deserialize, PartialEq)]
struct Ymd {
    year: i32,
    month: u32,
    day: u32,
}

impl Ymd {
    fn date(&self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(self.year, self.month, self.day)
    }
}

/// One `adAnalytics` element read from its text: its key (a DAILY element's range is one day) and fields.
pub fn element(text: &str) -> Result<(RowKey<'_>, Fields<'_>), SourceError> {
    let fields: Fields<'_> = serde_json::from_str(text)
        .map_err(|e| SourceError::malformed(PLATFORM, format!("an element is not an object ({e})")))?;
    let range = fields.get("dateRange").map_or("null", RawValue::get);
    let parsed: Option<DateRange> = serde_json::from_str(range).ok().flatten();
    let start = parsed
        .as_ref()
        .and_then(|r| r.start.as_ref()?.date())
        .ok_or_else(|| SourceError::malformed(PLATFORM, format!("element without dateRange.start: {range}")))?;
    if let Some(end) = parsed.as_ref().and_then(|r| r.end.as_ref()) {
        if end.date() != Some(start) {
            return Err(SourceError::malformed(PLATFORM, format!("a DAILY element covers more than one day: {range}")));
        }
    }
    let pivots_text = fields.get("pivotValues").map_or("null", RawValue::get);
    let pivots: Vec<Key<'_>> = match serde_json::from_str::<Option<Vec<Key<'_>>>>(pivots_text) {
        Ok(Some(values)) if !values.is_empty() => values,
        Ok(_) => return Err(SourceError::malformed(PLATFORM, "element without pivotValues")),
        Err(_) => {
            return Err(SourceError::malformed(PLATFORM, format!("pivot values {pivots_text} are not URNs")));
        }
    };
    Ok(((start, pivots.into_iter().map(|Key(k)| k).collect()), fields))
}

/// Merge one partial answer's element (its text) into `rows`: fields of the same (day, pivot values) are
/// joined; an element only one request returned (all its other metrics zero) still makes a row.
pub fn merge<'a>(rows: &mut BTreeMap<RowKey<'a>, Fields<'a>>, text: &'a str) -> Result<(), SourceError> {
    let (key, fields) = element(text)?;
    let row = rows.entry(key).or_default();
    if row.0.is_empty() {
        *row = fields;
        return Ok(());
    }
    for (name, value) in fields.0 {
        match row.get(&name) {
            Some(existing) if existing.get() != value.get() && !KEY_FIELDS.contains(&name.as_ref()) => {
                return Err(SourceError::malformed(
                    PLATFORM,
                    format!("two answers disagree on {name}: {} and {}", existing.get(), value.get()),
                ));
            }
            Some(_) => {}
            None => row.0.push((name, value)),
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

    fn element(day: u32, creative: u32, metrics: Value) -> String {
        let mut e = json!({
            "dateRange": {"start": {"year": 2026, "month": 6, "day": day}, "end": {"year": 2026, "month": 6, "day": day}},
            "pivotValues": [format!("urn:li:sponsoredCreative:{creative}")],
        });
        e.as_object_mut().unwrap().extend(metrics.as_object().unwrap().clone());
        e.to_string()
    }

    #[test]
    fn partial_answers_merge_on_pivot_and_day() {
        let first = [
            element(1, 7, json!({"impressions": 10})),
            element(2, 7, json!({"impressions": 20})),
            element(1, 8, json!({"impressions": 5})),
        ];
        // The second request's answer comes in another order and lacks creative 8 (all zero there).
        let second = [element(2, 7, json!({"likes": 2})), element(1, 7, json!({"likes": 1}))];
        let contradiction = element(1, 7, json!({"likes": 9}));
        let mut rows = BTreeMap::new();
        for text in first.iter().chain(&second) {
            merge(&mut rows, text).unwrap();
        }
        assert_eq!(rows.len(), 3);
        let key = (NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(), vec![Cow::from("urn:li:sponsoredCreative:7")]);
        assert_eq!(rows[&key].get("impressions").unwrap().get(), "10");
        assert_eq!(rows[&key].get("likes").unwrap().get(), "1");
        let merged: Value = serde_json::from_str(&rows[&key].to_json()).unwrap();
        assert_eq!(merged["pivotValues"][0], "urn:li:sponsoredCreative:7", "the merged payload keeps the keys once");
        assert_eq!((merged["impressions"].as_i64(), merged["likes"].as_i64()), (Some(10), Some(1)));
        assert_eq!(merged.as_object().unwrap().len(), 4);
        let only_first = (NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(), vec![Cow::from("urn:li:sponsoredCreative:8")]);
        assert!(rows[&only_first].get("likes").is_none());
        // Contradicting answers are an error, not a silent overwrite.
        assert!(merge(&mut rows, &contradiction).is_err());
    }

    #[test]
    fn elements_without_keys_or_spanning_days_are_malformed() {
        let mut rows = BTreeMap::new();
        assert!(merge(&mut rows, r#"{"impressions": 1}"#).is_err());
        let wide = json!({"dateRange": {"start": {"year": 2026, "month": 6, "day": 1}, "end": {"year": 2026, "month": 6, "day": 2}}, "pivotValues": ["x"]}).to_string();
        assert!(matches!(merge(&mut rows, &wide), Err(SourceError::Malformed { .. })));
        let no_pivots =
            json!({"dateRange": {"start": {"year": 2026, "month": 6, "day": 1}}, "pivotValues": []}).to_string();
        assert!(matches!(merge(&mut rows, &no_pivots), Err(SourceError::Malformed { .. })));
        assert!(matches!(merge(&mut rows, "[1]"), Err(SourceError::Malformed { .. })));
    }
}
