//! Rest.li 2.0 query syntax, read by hand and strictly: `List(a,b)` and `(k:v,…)` are literal
//! punctuation, leaves (URNs) are percent-encoded.

use chrono::NaiveDate;

/// A Rest.li 2.0 value: a (percent-decoded) string, `List(…)` or an object `(k:v,…)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RestLi {
    Str(String),
    List(Vec<RestLi>),
    Obj(Vec<(String, RestLi)>),
}

impl RestLi {
    pub(super) fn get(&self, key: &str) -> Option<&RestLi> {
        match self {
            RestLi::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            RestLi::Str(s) => Some(s),
            _ => None,
        }
    }
    pub(super) fn as_list(&self) -> Option<&[RestLi]> {
        match self {
            RestLi::List(items) => Some(items),
            _ => None,
        }
    }
}

/// Decode `%XX` escapes (strictly: a bad escape or non-UTF-8 result is an error).
pub(crate) fn percent_decode(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw.get(i + 1..i + 3).ok_or_else(|| format!("bad percent escape in {raw:?}"))?;
            let byte = u8::from_str_radix(hex, 16).map_err(|_| format!("bad percent escape in {raw:?}"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{raw:?} is not UTF-8 once decoded"))
}

/// Parse one Rest.li 2.0 query value (the raw, still percent-encoded text).
pub(crate) fn parse_restli(raw: &str) -> Result<RestLi, String> {
    let mut parser = Parser { text: raw, pos: 0 };
    let value = parser.value()?;
    if parser.pos != raw.len() {
        return Err(format!("unexpected {:?} at {} in {raw:?}", &raw[parser.pos..], parser.pos));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at {} in {:?}", c as char, self.pos, self.text))
        }
    }
    fn leaf(&mut self) -> Result<String, String> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if matches!(c, b'(' | b')' | b',' | b':') {
                break;
            }
            self.pos += 1;
        }
        percent_decode(&self.text[start..self.pos])
    }
    fn value(&mut self) -> Result<RestLi, String> {
        if self.text[self.pos..].starts_with("List(") {
            self.pos += "List(".len();
            let mut items = Vec::new();
            if self.peek() != Some(b')') {
                loop {
                    items.push(self.value()?);
                    if self.peek() == Some(b',') {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
            }
            self.expect(b')')?;
            return Ok(RestLi::List(items));
        }
        if self.peek() == Some(b'(') {
            self.pos += 1;
            let mut fields = Vec::new();
            if self.peek() != Some(b')') {
                loop {
                    let key = self.leaf()?;
                    if key.is_empty() {
                        return Err(format!("empty key at {} in {:?}", self.pos, self.text));
                    }
                    self.expect(b':')?;
                    fields.push((key, self.value()?));
                    if self.peek() == Some(b',') {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
            }
            self.expect(b')')?;
            return Ok(RestLi::Obj(fields));
        }
        Ok(RestLi::Str(self.leaf()?))
    }
}

/// The raw query as (decoded name, raw value) pairs; a repeated parameter is an error.
pub(crate) fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = percent_decode(name)?;
        if pairs.iter().any(|(n, _)| *n == name) {
            return Err(format!("parameter {name} is given twice"));
        }
        pairs.push((name, value.to_string()));
    }
    Ok(pairs)
}

pub(super) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn date_of(value: &RestLi) -> Option<NaiveDate> {
    let part = |k: &str| value.get(k).and_then(RestLi::as_str).and_then(|s| s.parse::<u32>().ok());
    NaiveDate::from_ymd_opt(i32::try_from(part("year")?).ok()?, part("month")?, part("day")?)
}

/// `dateRange=(start:(year:…,month:…,day:…),end:(…))`; `end` defaults to today.
pub(crate) fn parse_date_range(raw: &str, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), String> {
    let value = parse_restli(raw)?;
    let start = value.get("start").and_then(date_of).ok_or("dateRange.start must be (year:…,month:…,day:…)")?;
    let end = match value.get("end") {
        Some(end) => date_of(end).ok_or("dateRange.end must be (year:…,month:…,day:…)")?,
        None => today,
    };
    if end < start {
        return Err("dateRange.end is before dateRange.start".into());
    }
    Ok((start, end))
}

/// The numeric ids of `accounts=List(urn%3Ali%3AsponsoredAccount%3A…)`.
pub(crate) fn parse_accounts(raw: &str) -> Result<Vec<String>, String> {
    let value = parse_restli(raw)?;
    let items = value.as_list().ok_or("accounts must be List(…)")?;
    if items.is_empty() {
        return Err("accounts must not be empty".into());
    }
    items
        .iter()
        .map(|item| {
            let urn = item.as_str().ok_or("accounts must hold URNs")?;
            urn_id(urn, "sponsoredAccount")
                .map(str::to_string)
                .ok_or_else(|| format!("{urn:?} is not a sponsoredAccount URN"))
        })
        .collect()
}

fn urn_id<'a>(urn: &'a str, kind: &str) -> Option<&'a str> {
    let id = urn.strip_prefix("urn:li:")?.strip_prefix(kind)?.strip_prefix(':')?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
    }

    #[test]
    fn restli_values_parse_lists_objects_and_encoded_leaves() {
        assert_eq!(
            parse_restli("List(urn%3Ali%3AsponsoredAccount%3A1,urn%3Ali%3AsponsoredAccount%3A2)").unwrap(),
            RestLi::List(vec![
                RestLi::Str("urn:li:sponsoredAccount:1".into()),
                RestLi::Str("urn:li:sponsoredAccount:2".into())
            ])
        );
        let search = parse_restli("(status:(values:List(ACTIVE,PAUSED)))").unwrap();
        assert_eq!(
            search.get("status").and_then(|s| s.get("values")),
            Some(&RestLi::List(vec![RestLi::Str("ACTIVE".into()), RestLi::Str("PAUSED".into())]))
        );
        assert_eq!(parse_restli("List()").unwrap(), RestLi::List(vec![]));
        assert!(parse_restli("(start:(year:2026)").is_err(), "unbalanced");
        assert!(parse_restli("List(a,b))").is_err(), "trailing text");
        assert!(parse_restli("(a%ZZ:1)").is_err(), "bad escape");
    }

    #[test]
    fn date_ranges_and_accounts_are_read_strictly() {
        let (start, end) =
            parse_date_range("(start:(year:2026,month:6,day:1),end:(year:2026,month:6,day:30))", today()).unwrap();
        assert_eq!((start, end), (NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(), today()));
        let (_, open_end) = parse_date_range("(start:(year:2026,month:6,day:1))", today()).unwrap();
        assert_eq!(open_end, today());
        assert!(parse_date_range("(start:(year:2026,month:13,day:1))", today()).is_err());
        assert!(parse_date_range("(start:(year:2026,month:6,day:2),end:(year:2026,month:6,day:1))", today()).is_err());
        assert_eq!(parse_accounts("List(urn%3Ali%3AsponsoredAccount%3A507)").unwrap(), vec!["507".to_string()]);
        // Rest.li 2.0 requires the URN's colons to be encoded: a raw colon is syntax.
        assert!(parse_accounts("List(urn:li:sponsoredAccount:507)").is_err());
        assert!(parse_accounts("List(urn%3Ali%3AsponsoredCampaign%3A507)").is_err());
    }
}
