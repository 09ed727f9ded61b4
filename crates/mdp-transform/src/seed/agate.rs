//! Values as agate's types `cast` them with dbt's settings: numbers (Python's `Decimal`), booleans,
//! dates and datetimes (Python's `strptime`) and ISO 8601 datetimes (the `isodate` package).

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};

/// Python's `decimal` context precision, which agate's `Number.cast` rounds to (`Decimal(d) * sign`).
pub(super) const DECIMAL_PRECISION: usize = 28;

/// A value as one agate type's `cast` sees it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Parsed<T> {
    Null,
    Value(T),
    /// `cast` raises `CastError`: the column cannot be this type.
    Invalid,
}

/// Python's `str.strip()`: Unicode whitespace plus the ASCII separators `\x1c`–`\x1f`.
pub(super) fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

/// dbt's null values for every type: `null` and the empty string (compared after `strip().lower()`).
pub(super) fn is_null_word(stripped: &str) -> bool {
    stripped.is_empty() || stripped.eq_ignore_ascii_case("null")
}

// ----- numbers -----

/// A finite decimal, normalised: `digits × 10^exp`, no leading or trailing zeros in `digits`
/// (empty for zero).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Dec {
    neg: bool,
    pub(super) digits: Vec<u8>,
    pub(super) exp: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Num {
    Finite(Dec),
    NaN,
    Inf { neg: bool },
}

impl Dec {
    /// The value as an integer, rounded half away from zero when it has decimals; `None` when it
    /// does not fit an i128.
    pub(super) fn to_i128(&self) -> Option<i128> {
        if self.digits.is_empty() {
            return Some(0);
        }
        let (keep, round_up) = if self.exp >= 0 {
            (self.digits.len(), false)
        } else {
            let drop = usize::try_from(-self.exp).ok()?;
            if drop > self.digits.len() {
                (0, false) // below 0.1: rounds to 0
            } else {
                let keep = self.digits.len() - drop;
                (keep, self.digits[keep] >= b'5')
            }
        };
        let mut v: i128 = 0;
        for &d in &self.digits[..keep] {
            v = v.checked_mul(10)?.checked_add(i128::from(d - b'0'))?;
        }
        if self.exp > 0 {
            v = v.checked_mul(10i128.checked_pow(u32::try_from(self.exp).ok()?)?)?;
        }
        if round_up {
            v = v.checked_add(1)?;
        }
        Some(if self.neg { -v } else { v })
    }

    pub(super) fn to_f64(&self) -> f64 {
        if self.digits.is_empty() {
            return if self.neg { -0.0 } else { 0.0 };
        }
        let digits = std::str::from_utf8(&self.digits).unwrap_or("0");
        let text = format!("{}{digits}e{}", if self.neg { "-" } else { "" }, self.exp);
        text.parse().unwrap_or(f64::NAN)
    }
}

/// Currency symbols agate's `Number` strips (`agate.data_types.number.DEFAULT_CURRENCY_SYMBOLS`).
const CURRENCY_SYMBOLS: [char; 19] =
    ['؋', '$', 'ƒ', '៛', '¥', '₡', '₱', '£', '€', '¢', '﷼', '₪', '₩', '₭', '₮', '₦', '฿', '₤', '₫'];

/// agate `Number.cast` (en_US): strip, null values, `%`, a leading `-`, currency symbols, `,`
/// grouping, then Python's `Decimal`. With `round`, the result is rounded to 28 significant digits
/// as `Decimal(d) * sign` rounds it.
pub(super) fn parse_number(value: &str, round: bool) -> Parsed<Num> {
    let d = py_strip(value);
    if is_null_word(d) {
        return Parsed::Null;
    }
    let d = d.trim_matches('%');
    let (neg, mut d) = match d.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, d),
    };
    for symbol in CURRENCY_SYMBOLS {
        d = d.trim_matches(symbol);
    }
    let cleaned: String = d.chars().filter(|&c| c != ',').collect();
    match py_decimal(&cleaned, round) {
        Some(Num::Finite(mut dec)) => {
            dec.neg ^= neg;
            Parsed::Value(Num::Finite(dec))
        }
        Some(Num::Inf { neg: inner }) => Parsed::Value(Num::Inf { neg: inner ^ neg }),
        Some(Num::NaN) => Parsed::Value(Num::NaN),
        None => Parsed::Invalid,
    }
}

/// Python's `Decimal(str)`: surrounding whitespace and underscores ignored, optional sign, digits
/// with an optional point, optional exponent; `inf`, `infinity`, `nan` in any case. A signalling
/// `snan` is rejected (agate's multiplication by the sign raises on it).
fn py_decimal(s: &str, round: bool) -> Option<Num> {
    let without_underscores: String = s.chars().filter(|&c| c != '_').collect();
    let s = py_strip(&without_underscores);
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(Num::Inf { neg });
    }
    if let Some(payload) = lower.strip_prefix("nan") {
        return payload.bytes().all(|b| b.is_ascii_digit()).then_some(Num::NaN);
    }
    let bytes = body.as_bytes();
    let mut i = 0;
    let mut coefficient: Vec<u8> = Vec::with_capacity(bytes.len());
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        coefficient.push(bytes[i]);
        i += 1;
    }
    let mut frac_len: i64 = 0;
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            coefficient.push(bytes[i]);
            frac_len += 1;
            i += 1;
        }
    }
    if coefficient.is_empty() {
        return None;
    }
    let mut exp: i64 = 0;
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        i += 1;
        let exp_neg = match bytes.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            exp = exp.saturating_mul(10).saturating_add(i64::from(bytes[i] - b'0'));
            i += 1;
        }
        if i == start {
            return None;
        }
        if exp_neg {
            exp = -exp;
        }
    }
    if i != bytes.len() {
        return None;
    }
    let mut exp = exp.saturating_sub(frac_len);
    let lead = coefficient.iter().take_while(|&&b| b == b'0').count();
    coefficient.drain(..lead);
    if round && coefficient.len() > DECIMAL_PRECISION {
        exp = exp.saturating_add(round_half_even(&mut coefficient, DECIMAL_PRECISION));
    }
    let trail = coefficient.iter().rev().take_while(|&&b| b == b'0').count();
    coefficient.truncate(coefficient.len() - trail);
    if coefficient.is_empty() {
        exp = 0;
    } else {
        exp = exp.saturating_add(trail as i64);
    }
    Some(Num::Finite(Dec { neg, digits: coefficient, exp }))
}

/// Round the digit string `digits` (no leading zeros) to `keep` digits, half to even; returns how
/// much the exponent grows.
fn round_half_even(digits: &mut Vec<u8>, keep: usize) -> i64 {
    let dropped = digits.len() - keep;
    let first = digits[keep];
    let rest_nonzero = digits[keep + 1..].iter().any(|&b| b != b'0');
    let last_odd = (digits[keep - 1] - b'0') % 2 == 1;
    let up = first > b'5' || (first == b'5' && (rest_nonzero || last_odd));
    digits.truncate(keep);
    let mut grow = dropped as i64;
    if up {
        let mut i = keep;
        loop {
            if i == 0 {
                // 999… → 1000…: one digit more than kept, so drop the last zero.
                digits.insert(0, b'1');
                digits.truncate(keep);
                grow += 1;
                break;
            }
            i -= 1;
            if digits[i] == b'9' {
                digits[i] = b'0';
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    grow
}

// ----- booleans -----

/// agate `Boolean.cast` with dbt's values: commas removed, strip, `true` / `false` in any case.
pub(super) fn parse_bool(value: &str) -> Parsed<bool> {
    let without_commas: String = value.chars().filter(|&c| c != ',').collect();
    let d = py_strip(&without_commas);
    if is_null_word(d) {
        Parsed::Null
    } else if d.eq_ignore_ascii_case("true") {
        Parsed::Value(true)
    } else if d.eq_ignore_ascii_case("false") {
        Parsed::Value(false)
    } else {
        Parsed::Invalid
    }
}

// ----- dates and times: Python's strptime -----

/// Candidates for a strptime directive at the start of `s`, in the order of the directive's regex
/// alternatives: (value, length).
type Cands = [Option<(u32, usize)>; 5];

fn digit(b: Option<&u8>, range: std::ops::RangeInclusive<u8>) -> Option<u32> {
    b.filter(|b| range.contains(b)).map(|b| u32::from(b - b'0'))
}

fn two(s: &[u8], first: std::ops::RangeInclusive<u8>, second: std::ops::RangeInclusive<u8>) -> Option<(u32, usize)> {
    Some((digit(s.first(), first)? * 10 + digit(s.get(1), second)?, 2))
}

fn one(s: &[u8], range: std::ops::RangeInclusive<u8>) -> Option<(u32, usize)> {
    Some((digit(s.first(), range)?, 1))
}

/// `%m`: `1[0-2]|0[1-9]|[1-9]`
fn month_cands(s: &[u8]) -> Cands {
    [two(s, b'1'..=b'1', b'0'..=b'2'), two(s, b'0'..=b'0', b'1'..=b'9'), one(s, b'1'..=b'9'), None, None]
}

/// `%d`: `3[01]|[12]\d|0[1-9]|[1-9]| [1-9]`
fn day_cands(s: &[u8]) -> Cands {
    let space_digit = if s.first() == Some(&b' ') { one(&s[1..], b'1'..=b'9').map(|(v, _)| (v, 2)) } else { None };
    [
        two(s, b'3'..=b'3', b'0'..=b'1'),
        two(s, b'1'..=b'2', b'0'..=b'9'),
        two(s, b'0'..=b'0', b'1'..=b'9'),
        one(s, b'1'..=b'9'),
        space_digit,
    ]
}

/// `%H`: `2[0-3]|[0-1]\d|\d`
fn hour_cands(s: &[u8]) -> Cands {
    [two(s, b'2'..=b'2', b'0'..=b'3'), two(s, b'0'..=b'1', b'0'..=b'9'), one(s, b'0'..=b'9'), None, None]
}

/// `%M`: `[0-5]\d|\d`
fn minute_cands(s: &[u8]) -> Cands {
    [two(s, b'0'..=b'5', b'0'..=b'9'), one(s, b'0'..=b'9'), None, None, None]
}

/// `%S`: `6[0-1]|[0-5]\d|\d`
fn second_cands(s: &[u8]) -> Cands {
    [two(s, b'6'..=b'6', b'0'..=b'1'), two(s, b'0'..=b'5', b'0'..=b'9'), one(s, b'0'..=b'9'), None, None]
}

/// The first candidate after which `rest` holds; strptime's regex backtracks the same way.
fn pick(s: &[u8], cands: Cands, rest: impl Fn(&[u8]) -> bool) -> Option<(u32, &[u8])> {
    cands.into_iter().flatten().find(|&(_, len)| rest(&s[len..])).map(|(v, len)| (v, &s[len..]))
}

/// `%Y-%m-` then the day's candidates: (year, month, text from the day on).
fn year_month(s: &[u8]) -> Option<(i32, u32, &[u8])> {
    if s.len() < 5 || !s[..4].iter().all(u8::is_ascii_digit) || s[4] != b'-' {
        return None;
    }
    let year = s[..4].iter().fold(0i32, |acc, b| acc * 10 + i32::from(b - b'0'));
    let (month, rest) = pick(&s[5..], month_cands(&s[5..]), |r| r.first() == Some(&b'-'))?;
    Some((year, month, &rest[1..]))
}

/// A date as Python's `datetime` accepts it (years 1–9999).
fn ymd(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    if !(1..=9999).contains(&year) {
        return None;
    }
    NaiveDate::from_ymd_opt(year, month, day)
}

/// agate `Date` with dbt's `date_format="%Y-%m-%d"` (`datetime.strptime`).
pub(super) fn parse_date(value: &str) -> Parsed<NaiveDate> {
    let d = py_strip(value);
    if is_null_word(d) {
        return Parsed::Null;
    }
    strptime_date(d.as_bytes()).map_or(Parsed::Invalid, Parsed::Value)
}

fn strptime_date(d: &[u8]) -> Option<NaiveDate> {
    let (year, month, rest) = year_month(d)?;
    // The last directive takes its first matching alternative; the rest must then be empty.
    let (day, rest) = pick(rest, day_cands(rest), |_| true)?;
    if !rest.is_empty() {
        return None;
    }
    ymd(year, month, day)
}

/// agate `DateTime` with dbt's `datetime_format="%Y-%m-%d %H:%M:%S"` (the space matches any run of
/// whitespace, as in strptime).
pub(super) fn parse_datetime(value: &str) -> Parsed<NaiveDateTime> {
    let d = py_strip(value);
    if is_null_word(d) {
        return Parsed::Null;
    }
    strptime_datetime(d.as_bytes()).map_or(Parsed::Invalid, Parsed::Value)
}

fn strptime_datetime(d: &[u8]) -> Option<NaiveDateTime> {
    // strptime turns the format's space into `\s+`.
    let is_space = |b: &u8| b.is_ascii_whitespace() || *b == 0x0b;
    let (year, month, rest) = year_month(d)?;
    let (day, rest) = pick(rest, day_cands(rest), |r| r.first().is_some_and(is_space))?;
    let rest = &rest[rest.iter().take_while(|b| is_space(b)).count()..];
    let (hour, rest) = pick(rest, hour_cands(rest), |r| r.first() == Some(&b':'))?;
    let (minute, rest) = pick(&rest[1..], minute_cands(&rest[1..]), |r| r.first() == Some(&b':'))?;
    let (second, rest) = pick(&rest[1..], second_cands(&rest[1..]), |_| true)?;
    if !rest.is_empty() {
        return None;
    }
    Some(ymd(year, month, day)?.and_time(NaiveTime::from_hms_opt(hour, minute, second)?))
}

// ----- ISO 8601: the `isodate` package -----

/// A datetime from `isodate.parse_datetime`: the wall-clock time and the UTC offset in seconds, if any.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct IsoDateTime {
    pub(super) local: NaiveDateTime,
    pub(super) offset_seconds: Option<i64>,
}

/// dbt's `ISODateTime.cast`: strip, null values, then `isodate.parse_datetime` (exactly one `T`).
pub(super) fn parse_iso_datetime(value: &str) -> Parsed<IsoDateTime> {
    let d = py_strip(value);
    if is_null_word(d) {
        return Parsed::Null;
    }
    isodate_datetime(d).map_or(Parsed::Invalid, Parsed::Value)
}

fn isodate_datetime(d: &str) -> Option<IsoDateTime> {
    let mut parts = d.split('T');
    let (date, time) = (parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let date = iso_date(date.as_bytes())?;
    let (time, offset_seconds) = iso_time(time.as_bytes())?;
    Some(IsoDateTime { local: date.and_time(time), offset_seconds })
}

/// Match `s` against `template` (`#` a digit, anything else itself); the digit runs' values.
fn template(s: &[u8], template: &str) -> Option<Vec<u32>> {
    let t = template.as_bytes();
    if s.len() != t.len() {
        return None;
    }
    let mut groups = Vec::new();
    let mut current: Option<u32> = None;
    for (&c, &p) in s.iter().zip(t) {
        if p == b'#' {
            if !c.is_ascii_digit() {
                return None;
            }
            current = Some(current.unwrap_or(0) * 10 + u32::from(c - b'0'));
        } else {
            if c != p {
                return None;
            }
            groups.extend(current.take());
        }
    }
    groups.extend(current);
    Some(groups)
}

/// `isodate.parse_date` with 4-digit years, tried in isodate's order.
fn iso_date(s: &[u8]) -> Option<NaiveDate> {
    let days = |date: NaiveDate, n: i64| {
        date.checked_add_signed(chrono::Duration::days(n)).filter(|d| (1..=9999).contains(&d.year()))
    };
    // Python: date(year, int(month) or 1, day) — a month of 00 means January.
    let calendar = |y: u32, m: u32, d: u32| ymd(y as i32, if m == 0 { 1 } else { m }, d);
    let week = |y: u32, w: u32, d: u32| {
        let jan1 = ymd(y as i32, 1, 1)?;
        let weeks = i64::from(w) - i64::from(jan1.iso_week().week() == 1);
        days(jan1, weeks * 7 - i64::from(jan1.weekday().number_from_monday()) + i64::from(d))
    };
    let ordinal = |y: u32, d: u32| days(ymd(y as i32, 1, 1)?, i64::from(d) - 1);
    if let Some(g) = template(s, "####-##-##").or_else(|| template(s, "########")) {
        // The basic form is one digit run: split it.
        let (y, m, d) = if g.len() == 3 { (g[0], g[1], g[2]) } else { (g[0] / 10_000, g[0] / 100 % 100, g[0] % 100) };
        return calendar(y, m, d);
    }
    if let Some(g) = template(s, "####-W##-#") {
        return week(g[0], g[1], g[2]);
    }
    if let Some(g) = template(s, "####W###") {
        return week(g[0], g[1] / 10, g[1] % 10);
    }
    if let Some(g) = template(s, "####-###") {
        return ordinal(g[0], g[1]);
    }
    if let Some(g) = template(s, "#######") {
        return ordinal(g[0] / 1000, g[0] % 1000);
    }
    if let Some(g) = template(s, "####-W##") {
        return week(g[0], g[1], 1);
    }
    if let Some(g) = template(s, "####W##") {
        return week(g[0], g[1], 1);
    }
    if let Some(g) = template(s, "####-##") {
        return calendar(g[0], g[1], 1);
    }
    if let Some(g) = template(s, "######") {
        return calendar(g[0] / 100, g[0] % 100, 1);
    }
    if let Some(g) = template(s, "####") {
        return ymd(g[0] as i32, 1, 1);
    }
    if let Some(g) = template(s, "##") {
        return ymd(g[0] as i32 * 100 + 1, 1, 1);
    }
    None
}

/// `isodate.parse_time`: `hh:mm:ss`, `hhmmss`, `hh:mm`, `hhmm`, `hh`, the last component with an
/// optional `.`/`,` fraction, then an optional `Z`, `±hh`, `±hhmm` or `±hh:mm`.
fn iso_time(s: &[u8]) -> Option<(NaiveTime, Option<i64>)> {
    #[derive(Clone, Copy)]
    enum Last {
        Second,
        Minute,
        Hour,
    }
    let forms: [(&str, Last); 5] = [
        ("##:##:##", Last::Second),
        ("######", Last::Second),
        ("##:##", Last::Minute),
        ("####", Last::Minute),
        ("##", Last::Hour),
    ];
    for (form, last) in forms {
        let Some(head) = s.get(..form.len()) else { continue };
        let Some(groups) = template(head, form) else { continue };
        let mut rest = &s[form.len()..];
        // Optional fraction: a separator and at least one digit.
        let mut fraction: &[u8] = &[];
        if matches!(rest.first(), Some(b'.' | b',')) {
            let n = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
            if n > 0 {
                fraction = &rest[1..=n];
                rest = &rest[n + 1..];
            }
        }
        let Some(offset) = iso_offset(rest) else { continue };
        // The first form that matches decides; a value out of range makes the whole parse fail.
        let (hour, minute, second) = match (groups.len(), last) {
            (3, _) => (groups[0], groups[1], groups[2]),
            (2, _) => (groups[0], groups[1], 0),
            (1, Last::Second) => (groups[0] / 10_000, groups[0] / 100 % 100, groups[0] % 100),
            (1, Last::Minute) => (groups[0] / 100, groups[0] % 100, 0),
            _ => (groups[0], 0, 0),
        };
        let time = match last {
            // Seconds: the fraction floored to microseconds.
            Last::Second => {
                let micros = fraction
                    .iter()
                    .chain(std::iter::repeat(&b'0'))
                    .take(6)
                    .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
                NaiveTime::from_hms_micro_opt(hour, minute, second, micros)
            }
            // Minutes: fraction × 60 s floored to microseconds.
            Last::Minute => {
                let (total, _) = scale_fraction(fraction, 60_000_000);
                let total = u32::try_from(total).ok()?;
                NaiveTime::from_hms_micro_opt(hour, minute, total / 1_000_000, total % 1_000_000)
            }
            // Hours: fraction × 3600 s; isodate rounds the microseconds half to even and fails at 1 s.
            Last::Hour => {
                let (floor, half) = scale_fraction(fraction, 3_600_000_000);
                let floor = u32::try_from(floor).ok()?;
                let mut micros = floor % 1_000_000;
                match half {
                    std::cmp::Ordering::Greater => micros += 1,
                    std::cmp::Ordering::Equal if micros % 2 == 1 => micros += 1,
                    _ => {}
                }
                if micros >= 1_000_000 {
                    return None;
                }
                NaiveTime::from_hms_micro_opt(hour, floor / 60_000_000, floor / 1_000_000 % 60, micros)
            }
        };
        return Some((time?, offset));
    }
    None
}

/// `0.fraction × unit`: its floor, and how the remainder compares with one half.
fn scale_fraction(fraction: &[u8], unit: u128) -> (u128, std::cmp::Ordering) {
    let digits = &fraction[..fraction.len().min(20)];
    let numerator = digits.iter().fold(0u128, |acc, b| acc * 10 + u128::from(b - b'0'));
    let denominator = 10u128.pow(digits.len() as u32);
    let scaled = numerator * unit;
    (scaled / denominator, (2 * (scaled % denominator)).cmp(&denominator))
}

/// isodate's time zone: empty (none), `Z`, `±hh`, `±hhmm`, `±hh:mm`. `Some(None)` for no zone.
fn iso_offset(s: &[u8]) -> Option<Option<i64>> {
    match s {
        [] => Some(None),
        [b'Z'] => Some(Some(0)),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let g = template(rest, "##").or_else(|| template(rest, "####")).or_else(|| template(rest, "##:##"))?;
            let (h, m) = match g.as_slice() {
                [h] if rest.len() == 2 => (*h, 0),
                [hm] => (hm / 100, hm % 100),
                [h, m] => (*h, *m),
                _ => return None,
            };
            let seconds = i64::from(h) * 3600 + i64::from(m) * 60;
            Some(Some(if *sign == b'-' { -seconds } else { seconds }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isodate_forms() {
        // Expected values from isodate 0.7.2 through dbt's ISODateTime.cast.
        let cases = [
            ("2020-W01-1T00:00", "2019-12-30 00:00:00"),
            ("2020W011T00", "2019-12-30 00:00:00"),
            ("2020-032T12", "2020-02-01 12:00:00"),
            ("2020032T12", "2020-02-01 12:00:00"),
            ("2020-W53T00", "2020-12-28 00:00:00"),
            ("2020-01T10:30", "2020-01-01 10:30:00"),
            ("202001T10", "2020-01-01 10:00:00"),
            ("2020T10", "2020-01-01 10:00:00"),
            ("20T10", "2001-01-01 10:00:00"),
            ("2020-00-05T10:00", "2020-01-05 10:00:00"),
            ("2020-01-05T10.5", "2020-01-05 10:30:00"),
            ("2020-01-05T10:30.5", "2020-01-05 10:30:30"),
            ("2020-01-05T10:00:00,5Z", "2020-01-05 10:00:00.500"),
        ];
        for (input, expected) in cases {
            let Parsed::Value(v) = parse_iso_datetime(input) else { panic!("{input} should parse") };
            assert_eq!(v.local.to_string(), expected, "{input}");
        }
        for input in
            ["2020-01-05T10.9999999999", "2020-01-05T10:00:60", "2020-01-05", "2020-01-05T10:00T", "2020-01-05t10"]
        {
            assert_eq!(parse_iso_datetime(input), Parsed::Invalid, "{input}");
        }
    }

    #[test]
    fn number_parsing_matches_agate() {
        let int = |s: &str| match parse_number(s, true) {
            Parsed::Value(Num::Finite(d)) => d.to_i128(),
            _ => None,
        };
        assert_eq!(int("- 5"), Some(-5));
        assert_eq!(int("%-5"), Some(-5));
        assert_eq!(int("5%%"), Some(5));
        assert_eq!(int(".5"), Some(1)); // rounded, only for the integer view
        assert_eq!(parse_number("null", true), Parsed::Null);
        assert_eq!(parse_number(" NULL ", true), Parsed::Null);
        assert_eq!(parse_number("nan5", true), Parsed::Value(Num::NaN));
        // 29 nines round half to even into 1E+29.
        let Parsed::Value(Num::Finite(d)) = parse_number("99999999999999999999999999995", true) else { panic!() };
        assert_eq!((d.digits.as_slice(), d.exp), (&b"1"[..], 29));
        let Parsed::Value(Num::Finite(d)) = parse_number("1.00000000000000000000000000015", true) else { panic!() };
        assert_eq!((d.digits.as_slice(), d.exp), (&b"1"[..], 0));
    }
}
