//! Reading values out of the platforms' JSON the same way everywhere: ids as text, numbers exact.
//!
//! APIs write numbers as strings ("12.34", int64 as "1000") or as JSON numbers; both are read from their
//! text into exact decimals, never through a float. A missing or empty value is 0 (Google omits zeros,
//! TikTok writes "-" for "not applicable"); anything else that is not a number is an error naming the field.

use std::borrow::Cow;
use std::str::FromStr;

use mdp_core::Platform;
use rust_decimal::Decimal;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::SourceError;
use crate::record::DECIMAL_SCALE;

/// The most significant digits an IEEE double's decimal form needs to read back exactly; a number
/// written with more came out of a float printed past its precision.
const DOUBLE_DIGITS: usize = 17;

/// The decimal that `text` denotes when it is a binary double printed with more digits than a double
/// holds: the shortest decimal that reads back as the same double, if it has at most `max_scale`
/// decimals. `None` when the text has at most 17 significant digits (each may be real) or is not
/// plain decimal notation.
pub(crate) fn float_noise(text: &str, max_scale: u32) -> Option<Decimal> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let significant = unsigned.bytes().filter(u8::is_ascii_digit).skip_while(|&b| b == b'0').count();
    if significant <= DOUBLE_DIGITS {
        return None;
    }
    let double: f64 = text.parse().ok()?;
    // Rust prints a double as the shortest decimal that reads back as it, never in exponent form.
    let shortest = Decimal::from_str(&double.to_string()).ok()?;
    (shortest.scale() <= max_scale).then_some(shortest)
}

/// The fields of one row whose number mdp read differently from its text ([`float_noise`]), said in
/// the row's payload under `_mdp_normalized` (field → the decimal read) so nothing changes silently.
#[derive(Debug, Default)]
pub(crate) struct Normalized(Vec<(String, Decimal)>);

impl Normalized {
    /// The row's payload (a JSON object's text) with the notes added, if there are any.
    pub(crate) fn into_payload(self, mut payload: String) -> String {
        if self.0.is_empty() || !payload.ends_with('}') {
            return payload;
        }
        payload.pop();
        if payload.trim_end() != "{" {
            payload.push(',');
        }
        let notes: serde_json::Map<String, Value> =
            self.0.into_iter().map(|(field, value)| (field, Value::String(value.to_string()))).collect();
        payload.push_str("\"_mdp_normalized\":");
        payload.push_str(&Value::Object(notes).to_string());
        payload.push('}');
        payload
    }
}

/// An id or name: a string as is, a number as its text.
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A decimal that must be a whole number (a count).
pub(crate) fn whole_number(platform: Platform, what: &str, d: Decimal) -> Result<i64, SourceError> {
    if !d.fract().is_zero() {
        return Err(SourceError::malformed(platform, format!("{what} is not a whole number: {d}")));
    }
    i64::try_from(d).map_err(|_| SourceError::malformed(platform, format!("{what} is out of range: {d}")))
}

/// A scalar as it is written in borrowed JSON text (a report row's field), read without building a
/// `Value` or copying: a string's contents (unescaped only when it has escapes), a number's digits.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    /// Absent or `null`.
    Missing,
    Str(Cow<'a, str>),
    Number(&'a str),
    /// `true`, `false`, an array or an object: never a number or an id.
    Other(&'a str),
}

/// The scalar at a field read as `Option<&RawValue>` (see [`Scalar`]).
pub(crate) fn scalar(raw: Option<&RawValue>) -> Scalar<'_> {
    let Some(raw) = raw else { return Scalar::Missing };
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => match text.get(1..text.len() - 1) {
            Some(inner) if !inner.contains('\\') => Scalar::Str(Cow::Borrowed(inner)),
            _ => serde_json::from_str::<String>(text).map_or(Scalar::Other(text), |s| Scalar::Str(Cow::Owned(s))),
        },
        Some(b'n') => Scalar::Missing,
        Some(b'-' | b'0'..=b'9') => Scalar::Number(text),
        _ => Scalar::Other(text),
    }
}

impl Scalar<'_> {
    /// An id or name: a string as is, a number as its text.
    pub(crate) fn text(self) -> Option<String> {
        match self {
            Scalar::Str(s) => Some(s.into_owned()),
            Scalar::Number(n) => Some(n.to_string()),
            Scalar::Missing | Scalar::Other(_) => None,
        }
    }

    /// The exact decimal the text writes; missing, empty or "-" is 0. `what` is formatted only for an
    /// error. Returns the text read (none for a zero that was not written).
    fn exact(&self, platform: Platform, what: std::fmt::Arguments<'_>) -> Result<(Decimal, Option<&str>), SourceError> {
        let text = match self {
            Scalar::Missing => return Ok((Decimal::ZERO, None)),
            Scalar::Str(s) if s.trim().is_empty() || s.trim() == "-" => return Ok((Decimal::ZERO, None)),
            Scalar::Str(s) => s.trim(),
            Scalar::Number(n) => n,
            Scalar::Other(other) => {
                return Err(SourceError::malformed(platform, format!("{what} is not a number: {other}")))
            }
        };
        let value = Decimal::from_str(text)
            .or_else(|_| Decimal::from_scientific(text))
            .map_err(|_| SourceError::malformed(platform, format!("{what} is not a number: {text:?}")))?;
        Ok((value, Some(text)))
    }

    /// An exact decimal (see [`Scalar::exact`]).
    ///
    /// A number printed from a binary float with more digits than the float holds (LinkedIn writes
    /// some money as `"5.6299999999999998934"`, the double nearest 5.63) is read as the shortest decimal
    /// denoting the same double, when that fits the raw layer's scale, and noted in `notes` (the row's
    /// payload says so); see [`float_noise`]. Digits that may be real are never rounded.
    pub(crate) fn decimal(
        &self,
        platform: Platform,
        what: std::fmt::Arguments<'_>,
        notes: &mut Normalized,
    ) -> Result<Decimal, SourceError> {
        let (value, text) = self.exact(platform, what)?;
        if value.scale() <= DECIMAL_SCALE {
            return Ok(value);
        }
        match text.and_then(|t| float_noise(t, DECIMAL_SCALE)) {
            Some(read) if read != value.normalize() => {
                notes.0.push((what.to_string(), read));
                Ok(read)
            }
            _ => Ok(value),
        }
    }

    /// A count (see [`Scalar::integer`]) summed as a decimal: exact, never read through [`float_noise`].
    pub(crate) fn count_decimal(
        &self,
        platform: Platform,
        what: std::fmt::Arguments<'_>,
    ) -> Result<Decimal, SourceError> {
        Ok(self.exact(platform, what)?.0)
    }

    /// A whole number from a string or number; a fraction is an error, not truncated.
    pub(crate) fn integer(&self, platform: Platform, what: std::fmt::Arguments<'_>) -> Result<i64, SourceError> {
        let digits = match self {
            Scalar::Str(s) => Some(s.as_ref()),
            Scalar::Number(n) => Some(*n),
            Scalar::Missing | Scalar::Other(_) => None,
        };
        if let Some(n) = digits.and_then(|d| d.parse::<i64>().ok()) {
            return Ok(n);
        }
        whole_number(platform, &what.to_string(), self.exact(platform, what)?.0)
    }
}

/// A payload (a JSON object's text) with `key` added: the JSON texts `rows` as an array (the segment
/// rows a record was summed from, e.g. `_mdp_conversion_actions`); unchanged when there are none.
pub(crate) fn with_rows(payload: &str, key: &str, rows: &[String]) -> String {
    match payload.trim_end().strip_suffix('}') {
        Some(body) if !rows.is_empty() => {
            let sep = if body.trim_end().ends_with('{') { "" } else { "," };
            format!("{body}{sep}\"{key}\":[{}]}}", rows.join(","))
        }
        _ => payload.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn segment_rows_join_the_payload_as_an_array() {
        let rows = ["{\"a\":1}".to_string(), "{\"a\":2}".to_string()];
        assert_eq!(super::with_rows("{\"x\":0}", "_r", &rows), "{\"x\":0,\"_r\":[{\"a\":1},{\"a\":2}]}");
        assert_eq!(super::with_rows("{}", "_r", &rows[..1]), "{\"_r\":[{\"a\":1}]}");
        assert_eq!(super::with_rows("{\"x\":0}", "_r", &[]), "{\"x\":0}");
    }

    use super::*;
    use serde_json::json;

    const P: Platform = Platform::MetaAds;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    fn dec(text: &str) -> Option<Decimal> {
        scalar(Some(&raw(text))).decimal(P, format_args!("x"), &mut Normalized::default()).ok()
    }

    fn int(text: &str) -> Option<i64> {
        scalar(Some(&raw(text))).integer(P, format_args!("x")).ok()
    }

    #[test]
    fn numbers_are_read_exactly_from_strings_and_numbers() {
        let d = |s: &str| Some(Decimal::from_str(s).unwrap());
        assert_eq!(dec("\"12.34\""), d("12.34"));
        assert_eq!(dec("0.1"), d("0.1"), "a JSON number is read from its digits, not through a float");
        assert_eq!(dec("\"1e-7\""), d("0.0000001"));
        assert_eq!(dec("null"), Some(Decimal::ZERO));
        let mut notes = Normalized::default();
        assert_eq!(scalar(None).decimal(P, format_args!("x"), &mut notes).unwrap(), Decimal::ZERO, "missing is zero");
        assert_eq!(dec("\"1.5E+3\""), d("1500"), "scientific notation, upper case");
        assert_eq!(dec("2.0"), d("2"), "an integer sent as a float");
        assert_eq!(dec("\"-\""), Some(Decimal::ZERO), "TikTok's not-applicable");
        assert_eq!(dec("\"\""), Some(Decimal::ZERO));
        assert_eq!(dec("\" 5 \""), d("5"));
        assert_eq!(int("\"1000\""), Some(1000));
        assert_eq!(int("7"), Some(7));
        assert_eq!(int("-3"), Some(-3));
        assert_eq!(int("2.0"), Some(2), "a whole float is whole");
        assert_eq!(int("\"1.5\""), None, "fractions are not truncated");
        assert_eq!(int("99999999999999999999"), None, "out of range is an error");
        assert_eq!(int("\"1.99999999999999999999\""), None, "a count is whole as written, never float-normalized");
        assert_eq!(scalar(Some(&raw("123"))).text().as_deref(), Some("123"));
        assert_eq!(scalar(Some(&raw("\"a\\\"b\""))).text().as_deref(), Some("a\"b"), "escapes are unescaped");
        assert_eq!(scalar(Some(&raw("true"))).text(), None);
        assert_eq!(text(&json!(123)), Some("123".into()));
    }

    #[test]
    fn bad_numbers_name_the_field() {
        let mut notes = Normalized::default();
        let error =
            scalar(Some(&raw("\"abc\""))).decimal(P, format_args!("metric {}", "spend"), &mut notes).unwrap_err();
        assert!(matches!(error, SourceError::Malformed { .. }));
        assert!(error.to_string().contains("metric spend is not a number: \"abc\""), "{error}");
        assert!(scalar(Some(&raw("true"))).decimal(P, format_args!("x"), &mut notes).is_err());
        assert!(scalar(Some(&raw("[1]"))).integer(P, format_args!("x")).is_err());
    }

    #[test]
    fn floats_printed_past_their_precision_are_read_as_the_float_and_noted() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        let mut notes = Normalized::default();
        let read = |text: &str, notes: &mut Normalized| {
            scalar(Some(&raw(text))).decimal(P, format_args!("metric costInLocalCurrency"), notes)
        };
        // As LinkedIn writes it: the double nearest 5.63, to 20 significant digits.
        assert_eq!(read("\"5.6299999999999998934\"", &mut notes).unwrap(), d("5.63"));
        assert_eq!(read("\"0.1000000000000000055511\"", &mut notes).unwrap(), d("0.1"));
        assert_eq!(read("\"-12.339999999999999858\"", &mut notes).unwrap(), d("-12.34"));
        assert_eq!(read("\"1.9599999999999999645\"", &mut notes).unwrap(), d("1.96"), "a JSON string");
        assert_eq!(read("5.6299999999999998934", &mut notes).unwrap(), d("5.63"), "a JSON number");
        assert_eq!(notes.0.len(), 5);
        assert_eq!(notes.0[0], ("metric costInLocalCurrency".to_string(), d("5.63")));

        // Digits that may be real are kept: 17 significant digits or fewer, or sub-cent amounts.
        let mut none = Normalized::default();
        assert_eq!(read("\"5.630000001\"", &mut none).unwrap(), d("5.630000001"));
        assert_eq!(read("\"0.8243\"", &mut none).unwrap(), d("0.8243"));
        assert_eq!(read("\"5.63000000000000000000\"", &mut none).unwrap(), d("5.63"), "trailing zeros are exact");
        // Digits past the raw layer's 9 decimals that a double cannot account for are not rounded here
        // (the load refuses them, naming the field).
        let real = read("\"0.12345678901234567890\"", &mut none).unwrap();
        assert_eq!(real, d("0.12345678901234567890"));
        assert!(none.0.is_empty(), "nothing was normalized: {:?}", none.0);
        assert_eq!(float_noise("1e-7", 9), None, "exponent forms are not float noise");
        assert_eq!(
            read("12345678901234567.5", &mut none).unwrap(),
            d("12345678901234567.5"),
            "few decimals: as written"
        );
    }

    #[test]
    fn notes_are_added_to_the_payload_object() {
        let mut notes = Normalized::default();
        notes.0.push(("metric costInLocalCurrency".into(), Decimal::from_str("5.63").unwrap()));
        let payload = notes.into_payload(r#"{"costInLocalCurrency":"5.6299999999999998934"}"#.into());
        let v: Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(v["costInLocalCurrency"], "5.6299999999999998934", "the API's text is kept");
        assert_eq!(v["_mdp_normalized"]["metric costInLocalCurrency"], "5.63");
        let mut notes = Normalized::default();
        notes.0.push(("x".into(), Decimal::ONE));
        assert_eq!(notes.into_payload("{}".into()), r#"{"_mdp_normalized":{"x":"1"}}"#);
        assert_eq!(Normalized::default().into_payload("{}".into()), "{}", "no notes, no change");
    }
}
