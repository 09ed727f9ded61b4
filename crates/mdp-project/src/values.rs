//! Small validated values of the project file. Each parses once, with a message that says what was
//! expected and what was found, so the rest of mdp never re-checks them.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A name mdp may turn into a table or schema name: a lowercase letter, then lowercase letters, digits or
/// `_`, at most 63 characters (PostgreSQL's identifier limit), so it never needs quoting in SQL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identifier(String);

impl Identifier {
    const MAX_LENGTH: usize = 63;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a string is not an [`Identifier`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a lowercase name such as google_ads (a letter, then letters, digits or _; at most 63 characters), got '{given}'")]
pub struct InvalidIdentifier {
    pub given: String,
}

impl FromStr for Identifier {
    type Err = InvalidIdentifier;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid = text.len() <= Self::MAX_LENGTH
            && text.starts_with(|first: char| first.is_ascii_lowercase())
            && text
                .chars()
                .all(|character| character.is_ascii_lowercase() || character.is_ascii_digit() || character == '_');
        if valid {
            Ok(Identifier(text.to_owned()))
        } else {
            Err(InvalidIdentifier { given: text.to_owned() })
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl AsRef<str> for Identifier {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Identifier {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Identifier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(FromStrVisitor::<Identifier>::new("a lowercase name such as google_ads"))
    }
}

/// An ISO 4217 currency code: three uppercase letters, e.g. `EUR`.
///
/// Only the shape is checked: the FX rate table, not a list compiled into mdp, decides which currencies
/// can be converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a currency is three ASCII letters")
    }
}

/// Why a string is not a [`Currency`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a 3-letter ISO 4217 currency code such as EUR, got '{given}'")]
pub struct InvalidCurrency {
    pub given: String,
}

impl FromStr for Currency {
    type Err = InvalidCurrency;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.as_bytes() {
            &[first, second, third] if text.bytes().all(|byte| byte.is_ascii_uppercase()) => {
                Ok(Currency([first, second, third]))
            }
            _ => Err(InvalidCurrency { given: text.to_owned() }),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(FromStrVisitor::<Currency>::new("a 3-letter ISO 4217 currency code such as EUR"))
    }
}

/// Why a string is not an IANA time zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an IANA time zone name such as Europe/Berlin or UTC, got '{given}'{suggestion}")]
pub struct InvalidTimeZone {
    pub given: String,
    suggestion: String,
}

pub(crate) fn parse_time_zone(text: &str) -> Result<Tz, InvalidTimeZone> {
    text.parse().map_err(|_| {
        let names = chrono_tz::TZ_VARIANTS.iter().map(|zone| zone.name());
        // Case-insensitive first: `europe/berlin` is the commonest slip.
        let suggestion = chrono_tz::TZ_VARIANTS
            .iter()
            .map(|zone| zone.name())
            .find(|name| name.eq_ignore_ascii_case(text))
            .or_else(|| crate::diagnostic::closest(text, names));
        InvalidTimeZone {
            given: text.to_owned(),
            suggestion: suggestion.map(|name| format!(" (did you mean {name}?)")).unwrap_or_default(),
        }
    })
}

pub(crate) fn deserialize_time_zone<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Tz, D::Error> {
    struct TimeZoneVisitor;
    impl Visitor<'_> for TimeZoneVisitor {
        type Value = Tz;
        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("an IANA time zone name such as Europe/Berlin or UTC")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<Tz, E> {
            parse_time_zone(text).map_err(E::custom)
        }
    }
    deserializer.deserialize_str(TimeZoneVisitor)
}

pub(crate) fn deserialize_optional_date<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<NaiveDate>, D::Error> {
    struct DateVisitor;
    impl Visitor<'_> for DateVisitor {
        type Value = NaiveDate;
        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a date as YYYY-MM-DD such as 2026-01-01")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<NaiveDate, E> {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| E::custom(format!("expected a date as YYYY-MM-DD such as 2026-01-01, got '{text}'")))
        }
    }
    deserializer.deserialize_str(DateVisitor).map(Some)
}

/// Account ids as strings, accepting unquoted numbers (`accounts: [1234567890]`) since YAML users write them.
pub(crate) fn deserialize_account_ids<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct AccountId(String);
    impl<'de> Deserialize<'de> for AccountId {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct AccountIdVisitor;
            impl Visitor<'_> for AccountIdVisitor {
                type Value = AccountId;
                fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                    formatter.write_str("an account id such as \"1234567890\"")
                }
                fn visit_str<E: de::Error>(self, text: &str) -> Result<AccountId, E> {
                    Ok(AccountId(text.to_owned()))
                }
                fn visit_u64<E: de::Error>(self, number: u64) -> Result<AccountId, E> {
                    Ok(AccountId(number.to_string()))
                }
                fn visit_i64<E: de::Error>(self, number: i64) -> Result<AccountId, E> {
                    Ok(AccountId(number.to_string()))
                }
            }
            deserializer.deserialize_any(AccountIdVisitor)
        }
    }
    let ids = Vec::<AccountId>::deserialize(deserializer)?;
    Ok(ids.into_iter().map(|AccountId(id)| id).collect())
}

/// Deserializes a string through `FromStr`, whose error message is the one the user sees.
struct FromStrVisitor<T> {
    expecting: &'static str,
    marker: std::marker::PhantomData<T>,
}

impl<T> FromStrVisitor<T> {
    fn new(expecting: &'static str) -> Self {
        FromStrVisitor { expecting, marker: std::marker::PhantomData }
    }
}

impl<T: FromStr<Err: fmt::Display>> Visitor<'_> for FromStrVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        text.parse().map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for valid in ["google_ads", "a", "mdp_meta", "prod2", "x_1_"] {
            assert!(valid.parse::<Identifier>().is_ok(), "{valid}");
        }
        for invalid in ["", "Google", "google-ads", "1st", "_x", "a b", &"a".repeat(64)] {
            assert!(invalid.parse::<Identifier>().is_err(), "{invalid}");
        }
    }

    #[test]
    fn currencies() {
        assert_eq!("EUR".parse::<Currency>().unwrap().as_str(), "EUR");
        assert_eq!(
            "euro".parse::<Currency>().unwrap_err().to_string(),
            "expected a 3-letter ISO 4217 currency code such as EUR, got 'euro'"
        );
        for invalid in ["eur", "EU", "EURO", "E1R", "ÉUR"] {
            assert!(invalid.parse::<Currency>().is_err(), "{invalid}");
        }
    }

    #[test]
    fn time_zones_suggest_the_intended_name() {
        assert_eq!(parse_time_zone("Europe/Berlin").unwrap(), chrono_tz::Europe::Berlin);
        assert_eq!(parse_time_zone("UTC").unwrap(), chrono_tz::UTC);
        let message = parse_time_zone("europe/berlin").unwrap_err().to_string();
        assert!(message.ends_with("got 'europe/berlin' (did you mean Europe/Berlin?)"), "{message}");
        let message = parse_time_zone("Europe/Berlinn").unwrap_err().to_string();
        assert!(message.contains("did you mean Europe/Berlin?"), "{message}");
        let message = parse_time_zone("CEST+2").unwrap_err().to_string();
        assert!(
            message.starts_with("expected an IANA time zone name such as Europe/Berlin or UTC, got 'CEST+2'"),
            "{message}"
        );
    }
}
