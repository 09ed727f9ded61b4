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

    /// An exact decimal; missing, empty or "-" is 0. `what` is formatted only for an error.
    pub(crate) fn decimal(&self, platform: Platform, what: std::fmt::Arguments<'_>) -> Result<Decimal, SourceError> {
        let parse = |s: &str| {
            Decimal::from_str(s)
                .or_else(|_| Decimal::from_scientific(s))
                .map_err(|_| SourceError::malformed(platform, format!("{what} is not a number: {s:?}")))
        };
        match self {
            Scalar::Missing => Ok(Decimal::ZERO),
            Scalar::Str(s) if s.trim().is_empty() || s.trim() == "-" => Ok(Decimal::ZERO),
            Scalar::Str(s) => parse(s.trim()),
            Scalar::Number(n) => parse(n),
            Scalar::Other(other) => Err(SourceError::malformed(platform, format!("{what} is not a number: {other}"))),
        }
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
        whole_number(platform, &what.to_string(), self.decimal(platform, what)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const P: Platform = Platform::MetaAds;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    fn dec(text: &str) -> Option<Decimal> {
        scalar(Some(&raw(text))).decimal(P, format_args!("x")).ok()
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
        assert_eq!(scalar(None).decimal(P, format_args!("x")).unwrap(), Decimal::ZERO, "missing is zero");
        assert_eq!(dec("\"-\""), Some(Decimal::ZERO), "TikTok's not-applicable");
        assert_eq!(dec("\"\""), Some(Decimal::ZERO));
        assert_eq!(dec("\" 5 \""), d("5"));
        assert_eq!(int("\"1000\""), Some(1000));
        assert_eq!(int("7"), Some(7));
        assert_eq!(int("-3"), Some(-3));
        assert_eq!(int("2.0"), Some(2), "a whole float is whole");
        assert_eq!(int("\"1.5\""), None, "fractions are not truncated");
        assert_eq!(int("99999999999999999999"), None, "out of range is an error");
        assert_eq!(scalar(Some(&raw("123"))).text().as_deref(), Some("123"));
        assert_eq!(scalar(Some(&raw("\"a\\\"b\""))).text().as_deref(), Some("a\"b"), "escapes are unescaped");
        assert_eq!(scalar(Some(&raw("true"))).text(), None);
        assert_eq!(text(&json!(123)), Some("123".into()));
    }

    #[test]
    fn bad_numbers_name_the_field() {
        let error = scalar(Some(&raw("\"abc\""))).decimal(P, format_args!("metric {}", "spend")).unwrap_err();
        assert!(matches!(error, SourceError::Malformed { .. }));
        assert!(error.to_string().contains("metric spend is not a number: \"abc\""), "{error}");
        assert!(scalar(Some(&raw("true"))).decimal(P, format_args!("x")).is_err());
        assert!(scalar(Some(&raw("[1]"))).integer(P, format_args!("x")).is_err());
    }
}
