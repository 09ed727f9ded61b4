//! Reading a record of a declared API: fields by path from the API's own JSON text (numbers exact,
//! never through a float), the spec's field expressions, and exploded records that keep their outer
//! record's fields.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use chrono::NaiveDate;
use mdp_core::Platform;
use mdp_spec::model::{FieldExpr, RichField};
use rust_decimal::Decimal;
use serde_json::value::RawValue;

use crate::error::SourceError;
use crate::json::{scalar, Normalized, Scalar};

/// A JSON object's fields, borrowed from its text (a key is copied only when it has escapes), in order.
pub(crate) struct Object<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Object<'a> {
    fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| *value)
    }

    fn contains_key(&self, name: &str) -> bool {
        self.0.iter().any(|(key, _)| key == name)
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &'a RawValue)> {
        self.0.iter().map(|(key, value)| (key.as_ref(), *value))
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Object<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Key<'a>(Cow<'a, str>);
        impl<'de: 'a, 'a> serde::Deserialize<'de> for Key<'a> {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct KeyVisitor;
                impl<'de> serde::de::Visitor<'de> for KeyVisitor {
                    type Value = Key<'de>;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a field name")
                    }
                    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                        Ok(Key(Cow::Borrowed(v)))
                    }
                    fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                        Ok(Key(Cow::Owned(v.to_string())))
                    }
                }
                deserializer.deserialize_str(KeyVisitor)
            }
        }
        struct ObjectVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for ObjectVisitor<'a> {
            type Value = Object<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Object<'a>, M::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    fields.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(Object(fields))
            }
        }
        deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData))
    }
}

/// The value at `path` (dot-separated; a number indexes an array) under `raw`, or `None` when a step
/// is missing or null. `Err` when a step that should be an object or array is something else.
pub(crate) fn at<'a>(raw: &'a RawValue, path: &str) -> Result<Option<&'a RawValue>, String> {
    let mut current = raw;
    for segment in path.split('.') {
        match step(current, segment)? {
            Some(next) => current = next,
            None => return Ok(None),
        }
    }
    Ok((current.get() != "null").then_some(current))
}

fn step<'a>(raw: &'a RawValue, segment: &str) -> Result<Option<&'a RawValue>, String> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'{') => {
            let object: Object<'a> = serde_json::from_str(text).map_err(|e| e.to_string())?;
            Ok(object.get(segment))
        }
        Some(b'[') => {
            let Ok(index) = segment.parse::<usize>() else {
                return Err(format!("`{segment}` is a field name, but here is an array"));
            };
            let items: Vec<&'a RawValue> = serde_json::from_str(text).map_err(|e| e.to_string())?;
            Ok(items.get(index).copied())
        }
        Some(b'n') => Ok(None),
        _ => Err(format!("`{segment}` is read from a {}, not an object", kind_of(text))),
    }
}

fn kind_of(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'"') => "string",
        Some(b't' | b'f') => "boolean",
        Some(b'[') => "array",
        Some(b'{') => "object",
        _ => "number",
    }
}

/// The records of an answer: the array at `records` (the body itself when empty). A missing or null
/// array is no records; anything else there is an error. A `*` segment stands for every value of an
/// object (or entry of an array) there: the records are then the entries of every array reached
/// (Pinterest's report file, `{"<ad id>": [rows…], …}`, is `*`), in order.
pub(crate) fn records<'a>(body: &'a RawValue, records: &str) -> Result<Vec<&'a RawValue>, String> {
    if records.split('.').any(|segment| segment == "*") {
        let mut found = Vec::new();
        let segments: Vec<&str> = records.split('.').collect();
        select(body, &segments, records, &mut found)?;
        return Ok(found);
    }
    let array = if records.is_empty() {
        Some(body)
    } else {
        at(body, records)?.map_or_else(|| missing_records(body, records), |raw| Ok(Some(raw)))?
    };
    match array {
        None => Ok(Vec::new()),
        Some(raw) if raw.get().starts_with('[') => serde_json::from_str(raw.get()).map_err(|e| e.to_string()),
        Some(raw) => Err(format!("`{records}` is a {}, not an array of records", kind_of(raw.get()))),
    }
}

/// [`records`] through `*` segments: what is missing or null under a wildcard is no records.
fn select<'a>(raw: &'a RawValue, segments: &[&str], path: &str, found: &mut Vec<&'a RawValue>) -> Result<(), String> {
    let text = raw.get();
    let Some((first, rest)) = segments.split_first() else {
        return match text.as_bytes().first() {
            Some(b'[') => {
                found.extend(serde_json::from_str::<Vec<&RawValue>>(text).map_err(|e| e.to_string())?);
                Ok(())
            }
            Some(b'n') => Ok(()),
            _ => Err(format!("`{path}` reaches a {}, not an array of records", kind_of(text))),
        };
    };
    if *first != "*" {
        return match step(raw, first)? {
            Some(next) => select(next, rest, path, found),
            None => Ok(()),
        };
    }
    let children: Vec<&'a RawValue> = match text.as_bytes().first() {
        Some(b'{') => {
            let object: Object<'a> = serde_json::from_str(text).map_err(|e| e.to_string())?;
            object.iter().map(|(_, value)| value).collect()
        }
        Some(b'[') => serde_json::from_str(text).map_err(|e| e.to_string())?,
        Some(b'n') => Vec::new(),
        _ => return Err(format!("`*` in `{path}` stands for an object's values, but here is a {}", kind_of(text))),
    };
    for child in children {
        select(child, rest, path, found)?;
    }
    Ok(())
}

/// A body without the records' path at all is not a data page (an error envelope, most likely): only
/// a `null` or a present parent with the field left out reads as no records.
fn missing_records<'a>(body: &'a RawValue, records: &str) -> Result<Option<&'a RawValue>, String> {
    let parent = records.rsplit_once('.').map(|(parent, _)| parent);
    let parent_present = match parent {
        None => body.get().starts_with('{'),
        Some(parent) => at(body, parent)?.is_some(),
    };
    let field = records.rsplit('.').next().unwrap_or(records);
    let explicitly_null = match parent {
        None => Some(body),
        Some(parent) => at(body, parent)?,
    }
    .map(|p| serde_json::from_str::<Object<'_>>(p.get()).is_ok_and(|o| o.contains_key(field)))
    .unwrap_or(false);
    if parent_present && explicitly_null {
        Ok(None)
    } else {
        Err(format!("the answer has no `{records}`"))
    }
}

/// One record: its own fields, and the outer record's when it was exploded out of an array. Each
/// object on the way to a field is parsed once per record, however many fields are read from it.
pub(crate) struct Record<'a> {
    pub(crate) own: &'a RawValue,
    pub(crate) outer: Option<&'a RawValue>,
    /// For a record whose values are arrays by day (`per_day`): the day's index, whose entry a field
    /// holding an array reads.
    pub(crate) day: Option<usize>,
    /// Parsed objects by the address of their text.
    parsed: RefCell<Vec<(usize, Object<'a>)>>,
}

impl<'a> Record<'a> {
    pub(crate) fn new(own: &'a RawValue, outer: Option<&'a RawValue>) -> Record<'a> {
        Record { own, outer, day: None, parsed: RefCell::new(Vec::new()) }
    }

    /// The same record on its `day` (an index into its arrays by day).
    pub(crate) fn on_day(&self, day: usize) -> Record<'a> {
        Record { own: self.own, outer: self.outer, day: Some(day), parsed: RefCell::new(Vec::new()) }
    }

    pub(crate) fn get(&self, path: &str) -> Result<Option<&'a RawValue>, String> {
        let found = match self.at(self.own, path)? {
            Some(value) => Some(value),
            None => match self.outer {
                Some(outer) => self.at(outer, path)?,
                None => None,
            },
        };
        match (self.day, found) {
            // A value per day: the day's entry (none when the array is shorter, or the entry null).
            (Some(day), Some(value)) if value.get().starts_with('[') => {
                Ok(step(value, &day.to_string())?.filter(|entry| entry.get() != "null"))
            }
            _ => Ok(found),
        }
    }

    /// [`at`], with objects parsed once.
    fn at(&self, raw: &'a RawValue, path: &str) -> Result<Option<&'a RawValue>, String> {
        let mut current = raw;
        for segment in path.split('.') {
            let next =
                if current.get().starts_with('{') { self.field(current, segment)? } else { step(current, segment)? };
            match next {
                Some(next) => current = next,
                None => return Ok(None),
            }
        }
        Ok((current.get() != "null").then_some(current))
    }

    fn field(&self, object: &'a RawValue, name: &str) -> Result<Option<&'a RawValue>, String> {
        let address = object.get().as_ptr() as usize;
        let mut parsed = self.parsed.borrow_mut();
        if let Some((_, fields)) = parsed.iter().find(|(known, _)| *known == address) {
            return Ok(fields.get(name));
        }
        let fields: Object<'a> = serde_json::from_str(object.get()).map_err(|e| e.to_string())?;
        let found = fields.get(name);
        parsed.push((address, fields));
        Ok(found)
    }

    /// The record's payload: its JSON text, or for an exploded record the outer record's fields
    /// (without the array) with the entry's.
    pub(crate) fn payload(&self, explode: Option<&str>) -> Result<String, String> {
        let Some(outer) = self.outer else { return Ok(self.own.get().to_string()) };
        let outer: Object<'_> = serde_json::from_str(outer.get()).map_err(|e| e.to_string())?;
        let own: Object<'_> = serde_json::from_str(self.own.get()).map_err(|e| e.to_string())?;
        let array = explode.and_then(|path| path.split('.').next()).unwrap_or_default();
        let mut fields: Vec<(&str, &RawValue)> =
            outer.iter().filter(|(key, _)| *key != array && !own.contains_key(key)).collect();
        fields.extend(own.iter());
        fields.sort_by_key(|(key, _)| *key);
        let mut text = String::from("{");
        for (i, (key, value)) in fields.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&serde_json::to_string(key).expect("a string serializes"));
            text.push(':');
            text.push_str(value.get());
        }
        text.push('}');
        Ok(text)
    }
}

/// The records of one answer's array entry: itself, or one per entry of its `explode` array.
pub(crate) fn expand<'a>(item: &'a RawValue, explode: Option<&str>) -> Result<Vec<Record<'a>>, String> {
    let Some(path) = explode else { return Ok(vec![Record::new(item, None)]) };
    let entries = match at(item, path)? {
        None => Vec::new(),
        Some(raw) if raw.get().starts_with('[') => {
            serde_json::from_str::<Vec<&RawValue>>(raw.get()).map_err(|e| e.to_string())?
        }
        Some(raw) => return Err(format!("`{path}` is a {}, not an array", kind_of(raw.get()))),
    };
    Ok(entries.into_iter().map(|own| Record::new(own, Some(item))).collect())
}

/// A field expression of the spec, ready to read records (a pick's `equals` rendered).
#[derive(Debug, Clone)]
pub(crate) enum Field {
    Path(String),
    Sum(Vec<String>),
    Pick { array: String, key: String, equals: String, value: String },
    Const(String),
}

#[derive(Debug, Clone)]
pub(crate) struct FieldReader {
    /// The column's name, for errors.
    pub(crate) column: String,
    /// Where the spec maps it (`connectors/x.yml:42`), for errors.
    pub(crate) place: String,
    pub(crate) field: Field,
    pub(crate) map: Option<std::collections::BTreeMap<String, String>>,
    pub(crate) divide: Option<u64>,
    pub(crate) format: Option<String>,
}

impl FieldReader {
    pub(crate) fn new(column: &str, place: String, expr: &FieldExpr, render: impl Fn(&str) -> String) -> FieldReader {
        let (field, map, divide, format) = match expr {
            FieldExpr::Path(path) => (Field::Path(path.clone()), None, None, None),
            FieldExpr::Rich(rich) => {
                let RichField { path, sum, pick, value, map, divide, format } = rich.as_ref();
                let field = match (path, sum, pick, value) {
                    (Some(path), ..) => Field::Path(path.clone()),
                    (_, Some(sum), ..) => Field::Sum(sum.clone()),
                    (_, _, Some(pick), _) => Field::Pick {
                        array: pick.array.clone(),
                        key: pick.key.clone(),
                        equals: render(&pick.equals),
                        value: pick.value.clone(),
                    },
                    (.., Some(value)) => Field::Const(value.clone()),
                    _ => Field::Const(String::new()),
                };
                (field, map.clone(), *divide, format.clone())
            }
        };
        FieldReader { column: column.to_string(), place, field, map, divide, format }
    }

    fn what(&self) -> String {
        match &self.field {
            Field::Path(path) => format!("{} (from `{path}`, mapped at {})", self.column, self.place),
            _ => format!("{} (mapped at {})", self.column, self.place),
        }
    }

    /// The field as text (ids, names, statuses, currencies); `None` when missing.
    pub(crate) fn text(&self, platform: Platform, record: &Record<'_>) -> Result<Option<String>, SourceError> {
        match &self.field {
            Field::Const(value) => Ok(Some(value.clone())),
            Field::Path(path) => {
                let raw = record.get(path).map_err(|e| malformed(platform, &self.what(), e))?;
                match scalar(raw) {
                    Scalar::Missing => Ok(None),
                    Scalar::Other(other) => {
                        Err(malformed(platform, &self.what(), format!("expected text or a number, got {other}")))
                    }
                    value => match (value.text(), &self.map) {
                        (Some(text), Some(map)) => match map.get(&text) {
                            Some(mapped) => Ok(Some(mapped.clone())),
                            None => Err(malformed(
                                platform,
                                &self.what(),
                                format!("{text:?} is not in the field's `map`; add it there"),
                            )),
                        },
                        (text, _) => Ok(text),
                    },
                }
            }
            _ => Err(malformed(platform, &self.what(), "a sum or pick is a number, not text".into())),
        }
    }

    /// The field as an exact decimal, divided as the spec says; missing is 0.
    pub(crate) fn decimal(
        &self,
        platform: Platform,
        record: &Record<'_>,
        notes: &mut Normalized,
    ) -> Result<Decimal, SourceError> {
        let what = self.what();
        let read = |raw: Option<&RawValue>, notes: &mut Normalized| {
            scalar(raw).decimal(platform, format_args!("{what}"), notes)
        };
        let value = match &self.field {
            Field::Const(value) => scalar_of(value).decimal(platform, format_args!("{what}"), notes)?,
            Field::Path(path) => read(record.get(path).map_err(|e| malformed(platform, &what, e))?, notes)?,
            Field::Sum(paths) => {
                let mut total = Decimal::ZERO;
                for path in paths {
                    total += read(record.get(path).map_err(|e| malformed(platform, &what, e))?, notes)?;
                }
                total
            }
            Field::Pick { array, key, equals, value } => {
                let entries = match record.get(array).map_err(|e| malformed(platform, &what, e))? {
                    None => Vec::new(),
                    Some(raw) => serde_json::from_str::<Vec<&RawValue>>(raw.get())
                        .map_err(|_| malformed(platform, &what, format!("`{array}` is not an array")))?,
                };
                let mut picked = Decimal::ZERO;
                for entry in entries {
                    let entry_key = scalar(at(entry, key).map_err(|e| malformed(platform, &what, e))?).text();
                    if entry_key.as_deref() == Some(equals.as_str()) {
                        picked += read(at(entry, value).map_err(|e| malformed(platform, &what, e))?, notes)?;
                    }
                }
                picked
            }
        };
        match self.divide {
            Some(divisor) => Ok(value / Decimal::from(divisor)),
            None => Ok(value),
        }
    }

    /// The field as a whole number (counts); missing is 0, a fraction an error.
    pub(crate) fn integer(&self, platform: Platform, record: &Record<'_>) -> Result<i64, SourceError> {
        let mut notes = Normalized::default();
        let value = self.decimal(platform, record, &mut notes)?;
        crate::json::whole_number(platform, &self.what(), value)
    }

    /// The field as a date: ISO `YYYY-MM-DD` (a date-time's first ten characters), or the spec's format.
    pub(crate) fn date(&self, platform: Platform, record: &Record<'_>) -> Result<NaiveDate, SourceError> {
        let text = self
            .text(platform, record)?
            .ok_or_else(|| malformed(platform, &self.what(), "the record has no date".into()))?;
        let parsed = match &self.format {
            Some(format) => NaiveDate::parse_from_str(&text, format),
            None => NaiveDate::parse_from_str(text.get(..10).unwrap_or(&text), "%Y-%m-%d"),
        };
        parsed.map_err(|_| {
            let format = self.format.as_deref().unwrap_or("YYYY-MM-DD");
            malformed(platform, &self.what(), format!("{text:?} is not a date in the form {format}"))
        })
    }
}

fn scalar_of(text: &str) -> Scalar<'_> {
    Scalar::Str(Cow::Borrowed(text))
}

fn malformed(platform: Platform, what: &str, reason: String) -> SourceError {
    SourceError::malformed(platform, format!("{what}: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> &RawValue {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn paths_read_nested_fields_and_array_entries() {
        let body = raw(r#"{"data":{"rows":[{"a":1},{"a":"x"}]},"next":null}"#);
        assert_eq!(at(body, "data.rows.1.a").unwrap().unwrap().get(), r#""x""#);
        assert!(at(body, "next").unwrap().is_none());
        assert!(at(body, "data.nothing.deeper").unwrap().is_none());
        assert!(at(body, "data.rows.a").unwrap_err().contains("array"));
        assert_eq!(records(body, "data.rows").unwrap().len(), 2);
        // An error envelope has no records path at all: not an empty page.
        assert!(records(raw(r#"{"error":{"code":5}}"#), "data.rows").unwrap_err().contains("no `data.rows`"));
        assert!(records(raw(r#"{"data":null}"#), "data").unwrap().is_empty());
        assert!(records(raw(r#"{"data":{"rows":null}}"#), "data.rows").unwrap().is_empty());
    }

    #[test]
    fn a_record_on_a_day_reads_the_days_entry_of_its_arrays() {
        // X's stats: a promoted tweet's metrics, one entry per day of the window (null: no delivery).
        let item =
            raw(r#"{"id":"8u94t","metrics":{"impressions":[10,null,30],"conversion_purchases":{"metric":[1,0]}}}"#);
        let record = Record::new(item, None);
        let day = |i: usize, path: &str| record.on_day(i).get(path).unwrap().map(|v| v.get().to_string());
        assert_eq!(day(0, "metrics.impressions").as_deref(), Some("10"));
        assert_eq!(day(1, "metrics.impressions"), None, "a null entry is a missing value");
        assert_eq!(day(2, "metrics.conversion_purchases.metric"), None, "past the end of a shorter array");
        assert_eq!(day(2, "id").as_deref(), Some(r#""8u94t""#), "a value that is no array is every day's");
        assert_eq!(record.get("metrics.impressions").unwrap().unwrap().get(), "[10,null,30]");
    }

    #[test]
    fn a_wildcard_reads_the_arrays_under_every_key() {
        // Pinterest's report file: rows keyed by the entity they belong to.
        let body =
            raw(r#"{"111":[{"AD_ID":"111","DATE":"2026-01-01"}],"222":[{"AD_ID":"222"},{"AD_ID":"222"}],"333":null}"#);
        let rows = records(body, "*").unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].get(), r#"{"AD_ID":"111","DATE":"2026-01-01"}"#);
        let nested = raw(r#"{"data":[{"rows":[1,2]},{"rows":[3]},{}]}"#);
        assert_eq!(records(nested, "data.*.rows").unwrap().len(), 3);
        assert!(records(raw(r#"{"a":{"b":1}}"#), "*").unwrap_err().contains("not an array"));
        assert!(records(raw(r#"[1]"#), "*").unwrap_err().contains("number"));
    }

    #[test]
    fn money_is_exact_divided_summed_and_picked() {
        let platform = Platform::GoogleAds;
        let row = raw(
            r#"{"spend_micros":"1234567891","a":"0.1","b":0.2,"actions":[{"t":"lead","v":"2"},{"t":"purchase","v":"3.5"}]}"#,
        );
        let record = Record::new(row, None);
        let mut notes = Normalized::default();
        let field = |expr: &str| {
            let expr: FieldExpr = serde_yaml::from_str(expr).unwrap();
            FieldReader::new("spend", "x.yml:1".into(), &expr, |s| s.to_string())
        };
        assert_eq!(
            field("{path: spend_micros, divide: 1000000}").decimal(platform, &record, &mut notes).unwrap().to_string(),
            "1234.567891"
        );
        assert_eq!(field("{sum: [a, b, missing]}").decimal(platform, &record, &mut notes).unwrap().to_string(), "0.3");
        let zone = field("{path: a, map: {'0.1': Europe/Paris}}");
        assert_eq!(zone.text(platform, &record).unwrap().as_deref(), Some("Europe/Paris"));
        let error = field("{path: b, map: {'0.1': Europe/Paris}}").text(platform, &record).unwrap_err().to_string();
        assert!(error.contains("\"0.2\" is not in the field's `map`"), "{error}");
        let pick = field("{pick: {array: actions, key: t, equals: purchase, value: v}}");
        assert_eq!(pick.decimal(platform, &record, &mut notes).unwrap().to_string(), "3.5");
        let error = field("a").integer(platform, &record).unwrap_err().to_string();
        assert!(error.contains("not a whole number"), "{error}");
    }

    #[test]
    fn exploded_records_keep_the_outer_fields() {
        let item = raw(r#"{"ad_id":"9","days":[{"date":"2026-01-01","spend":1},{"date":"2026-01-02","spend":2}]}"#);
        let records = expand(item, Some("days")).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].get("ad_id").unwrap().unwrap().get(), r#""9""#);
        assert_eq!(records[1].payload(Some("days")).unwrap(), r#"{"ad_id":"9","date":"2026-01-02","spend":2}"#);
        let date: FieldExpr = serde_yaml::from_str("date").unwrap();
        let date = FieldReader::new("date", "x.yml:2".into(), &date, |s| s.to_string());
        assert_eq!(date.date(Platform::GoogleAds, &records[0]).unwrap().to_string(), "2026-01-01");
    }
}
