//! The five fields of a cron expression: their ranges and names, parsing one field into a bit set of
//! its allowed values, and the errors that name the field at fault.

use std::fmt;

/// One of the five fields of a cron expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronField {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl CronField {
    pub(super) const ALL: [CronField; 5] =
        [CronField::Minute, CronField::Hour, CronField::DayOfMonth, CronField::Month, CronField::DayOfWeek];

    /// The field's name as error messages write it.
    pub fn name(self) -> &'static str {
        match self {
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
        }
    }

    /// The smallest value the field accepts.
    pub fn min(self) -> u32 {
        match self {
            CronField::Minute | CronField::Hour | CronField::DayOfWeek => 0,
            CronField::DayOfMonth | CronField::Month => 1,
        }
    }

    /// The largest value the field accepts (7 for day-of-week: Sunday, like 0).
    pub fn max(self) -> u32 {
        match self {
            CronField::Minute => 59,
            CronField::Hour => 23,
            CronField::DayOfMonth => 31,
            CronField::Month => 12,
            CronField::DayOfWeek => 7,
        }
    }

    /// Names accepted instead of numbers, and the value of the first name.
    fn names(self) -> Option<(&'static [&'static str], u32)> {
        const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
        const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
        match self {
            CronField::Month => Some((&MONTHS, 1)),
            CronField::DayOfWeek => Some((&DAYS, 0)),
            _ => None,
        }
    }

    /// What a value of the field may look like, for error messages.
    fn expected(self) -> &'static str {
        match self {
            CronField::Month => "a number or a month name (JAN-DEC)",
            CronField::DayOfWeek => "a number or a day name (SUN-SAT)",
            _ => "a number",
        }
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What is wrong with a cron expression; [`CronError`] adds the expression itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronErrorKind {
    #[error("expected 5 fields (minute hour day-of-month month day-of-week), got {got}")]
    FieldCount { got: usize },
    #[error(
        "unknown macro {name:?}: expected one of @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually"
    )]
    UnknownMacro { name: String },
    #[error("{field} {value} is out of range {}-{}", field.min(), field.max())]
    OutOfRange { field: CronField, value: String, min: u32, max: u32 },
    #[error("{field} value {token:?} is not {}", field.expected())]
    InvalidValue { field: CronField, token: String },
    #[error("{field} range {token:?} is reversed: the start must not come after the end")]
    ReversedRange { field: CronField, token: String },
    #[error("{field} step {token:?} is not a whole number from 1 to {max_step}")]
    InvalidStep { field: CronField, token: String, max_step: u32 },
    #[error("{field} {token:?} is malformed: {reason}")]
    Malformed { field: CronField, token: String, reason: &'static str },
}

/// A cron expression that could not be parsed: `cron "0 25 * * *": hour 25 is out of range 0-23`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cron {expr:?}: {kind}")]
pub struct CronError {
    pub(super) expr: String,
    pub(super) kind: CronErrorKind,
}

impl CronError {
    /// The expression as given.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// What is wrong with it.
    pub fn kind(&self) -> &CronErrorKind {
        &self.kind
    }
}

/// Parse one field into a bit set of its allowed values.
pub(super) fn parse_field(text: &str, field: CronField) -> Result<u64, CronErrorKind> {
    let malformed = |token: &str, reason| CronErrorKind::Malformed { field, token: token.to_string(), reason };
    let mut mask = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(malformed(text, "a list has an empty item"));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(parse_step(step, field)?)),
            None => (item, None),
        };
        let (first, last) = if range == "*" {
            (field.min(), field.max())
        } else if range.contains('*') {
            return Err(malformed(item, "`*` stands alone or before a step (*/n), not inside a range"));
        } else if let Some((start, end)) = range.split_once('-') {
            if start.is_empty() || end.is_empty() || end.contains('-') {
                return Err(malformed(item, "a range is written start-end, as in 1-5"));
            }
            let (first, last) = (parse_value(start, field)?, parse_value(end, field)?);
            if first > last {
                return Err(CronErrorKind::ReversedRange { field, token: range.to_string() });
            }
            (first, last)
        } else if range.is_empty() {
            return Err(malformed(item, "a step needs a start: write */n, a-b/n or a/n"));
        } else {
            let value = parse_value(range, field)?;
            // `a/n` runs from a to the end of the field.
            (value, if step.is_some() { field.max() } else { value })
        };
        let step = step.unwrap_or(1) as usize;
        for value in (first..=last).step_by(step) {
            mask |= 1 << value;
        }
    }
    Ok(mask)
}

/// Parse a step: a whole number from 1 to the field's span.
fn parse_step(token: &str, field: CronField) -> Result<u32, CronErrorKind> {
    let max_step = field.max() - field.min();
    match token.parse::<u32>() {
        Ok(step) if token.bytes().all(|b| b.is_ascii_digit()) && (1..=max_step).contains(&step) => Ok(step),
        _ => Err(CronErrorKind::InvalidStep { field, token: token.to_string(), max_step }),
    }
}

/// Parse a single value: a number in the field's range, or a month or day name.
fn parse_value(token: &str, field: CronField) -> Result<u32, CronErrorKind> {
    if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
        return match token.parse::<u32>() {
            Ok(value) if (field.min()..=field.max()).contains(&value) => Ok(value),
            _ => Err(CronErrorKind::OutOfRange { field, value: token.to_string(), min: field.min(), max: field.max() }),
        };
    }
    if let Some((names, first)) = field.names() {
        if let Some(index) = names.iter().position(|name| name.eq_ignore_ascii_case(token)) {
            return Ok(first + index as u32);
        }
    }
    Err(CronErrorKind::InvalidValue { field, token: token.to_string() })
}

pub(super) fn has(mask: u64, value: u32) -> bool {
    value < 64 && mask & (1 << value) != 0
}

/// The smallest value at or above `from` in `mask`.
pub(super) fn next_bit(mask: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = mask & (u64::MAX << from);
    (rest != 0).then(|| rest.trailing_zeros())
}
