//! Reading values out of the platforms' JSON the same way everywhere: ids as text, numbers exact.
//!
//! APIs write numbers as strings ("12.34", int64 as "1000") or as JSON numbers; both are read from their
//! text into exact decimals, never through a float. A missing or empty value is 0 (Google omits zeros,
//! TikTok writes "-" for "not applicable"); anything else that is not a number is an error naming the field.

use std::str::FromStr;

use mdp_core::Platform;
use rust_decimal::Decimal;
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

/// An exact decimal from a JSON string or number; missing, empty or "-" is 0.
pub(crate) fn decimal(platform: Platform, what: &str, value: &Value) -> Result<Decimal, SourceError> {
    let parse = |s: &str| {
        Decimal::from_str(s)
            .or_else(|_| Decimal::from_scientific(s))
            .map_err(|_| SourceError::malformed(platform, format!("{what} is not a number: {s:?}")))
    };
    match value {
        Value::Null => Ok(Decimal::ZERO),
        Value::String(s) if s.trim().is_empty() || s.trim() == "-" => Ok(Decimal::ZERO),
        Value::String(s) => parse(s.trim()),
        Value::Number(n) => parse(&n.to_string()),
        other => Err(SourceError::malformed(platform, format!("{what} is not a number: {other}"))),
    }
}

/// A whole number from a JSON string or number; a fraction is an error, not truncated.
pub(crate) fn integer(platform: Platform, what: &str, value: &Value) -> Result<i64, SourceError> {
    if let Some(n) = value.as_i64() {
        return Ok(n);
    }
    whole_number(platform, what, decimal(platform, what, value)?)
}

/// A decimal that must be a whole number (a count).
pub(crate) fn whole_number(platform: Platform, what: &str, d: Decimal) -> Result<i64, SourceError> {
    if !d.fract().is_zero() {
        return Err(SourceError::malformed(platform, format!("{what} is not a whole number: {d}")));
    }
    i64::try_from(d).map_err(|_| SourceError::malformed(platform, format!("{what} is out of range: {d}")))
}

/// A scalar out of borrowed JSON text as a `Value`, cheaply: a string without escapes is copied as it
/// is, anything else parsed. Missing is `Null` (read as 0 or absent by the functions above).
pub(crate) fn raw_scalar(raw: Option<&serde_json::value::RawValue>) -> Value {
    let Some(raw) = raw else { return Value::Null };
    let text = raw.get();
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Value::String(inner.to_string()),
        _ => serde_json::from_str(text).unwrap_or(Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const P: Platform = Platform::MetaAds;

    #[test]
    fn numbers_are_read_exactly_from_strings_and_numbers() {
        assert_eq!(decimal(P, "spend", &json!("12.34")).unwrap(), Decimal::from_str("12.34").unwrap());
        assert_eq!(decimal(P, "conversions", &json!(0.1)).unwrap(), Decimal::from_str("0.1").unwrap());
        assert_eq!(decimal(P, "x", &json!("1e-7")).unwrap(), Decimal::from_str("0.0000001").unwrap());
        assert_eq!(decimal(P, "x", &Value::Null).unwrap(), Decimal::ZERO);
        assert_eq!(decimal(P, "x", &json!("-")).unwrap(), Decimal::ZERO);
        assert!(matches!(decimal(P, "spend", &json!("abc")), Err(SourceError::Malformed { .. })));
        assert_eq!(integer(P, "clicks", &json!("1000")).unwrap(), 1000);
        assert_eq!(integer(P, "clicks", &json!(7)).unwrap(), 7);
        assert!(integer(P, "clicks", &json!("1.5")).is_err(), "fractions are not truncated");
        assert_eq!(text(&json!(123)), Some("123".into()));
    }
}
