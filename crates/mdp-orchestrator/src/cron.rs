//! Cron schedules: standard 5-field expressions, evaluated in an IANA time zone.
//!
//! The maths here never reads the system clock and never sleeps: every function takes the instants
//! it works on (`after`, `now`, ...) as arguments, so the scheduler injects its clock and tests pin it.
//!
//! # Syntax (Vixie cron, as in crontab and Airflow)
//!
//! Five fields separated by whitespace: `minute hour day-of-month month day-of-week`.
//!
//! | field        | values                                                    |
//! |--------------|-----------------------------------------------------------|
//! | minute       | 0-59                                                      |
//! | hour         | 0-23                                                      |
//! | day-of-month | 1-31                                                      |
//! | month        | 1-12 or `JAN`-`DEC`                                       |
//! | day-of-week  | 0-7 (0 and 7 are Sunday) or `SUN`-`SAT`                   |
//!
//! Each field is `*`, a value, a range `a-b`, or a comma-separated list of those; any item may carry a
//! step: `*/n`, `a-b/n`, or `a/n` (from `a` to the end of the field). Names are case-insensitive.
//! The macros `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly` and `@yearly` (`@annually`)
//! stand for `0 * * * *`, `0 0 * * *`, `0 0 * * 0`, `0 0 1 * *` and `0 0 1 1 *`.
//!
//! Stricter than Vixie cron in three places, each reported by [`CronError`] with the field at fault:
//! a reversed range (`5-2`, `FRI-MON`), a step of 0, and a step as large as the field (`*/60` in the
//! minute field cannot mean "every 60 minutes" and is almost always a mistake).
//!
//! **Day-of-month and day-of-week.** When both are restricted, a day matches if *either* matches
//! (`0 0 13 * FRI` runs on every 13th and on every Friday). When one of them allows every value, only
//! the other one restricts. A field counts as unrestricted when it allows every value, however it is
//! written (`*`, `*/1`, `1-31`, `0-6`): the rule croniter (Airflow) applies. Vixie cron instead looks at
//! the first character, so there `*/2` counts as unrestricted.
//!
//! # Time zones and daylight saving time
//!
//! The fields are matched against the wall-clock time of the time zone given to each call; results are
//! UTC instants. Where a DST transition makes a wall-clock time missing (spring forward) or repeated
//! (fall back), the rule depends on the schedule, as in Vixie cron and cronie (which distinguish
//! "fixed-time" from "wildcard" jobs):
//!
//! * **Fixed-time schedules** (the hour field is restricted, e.g. `30 2 * * *`, `0 */2 * * *`,
//!   `@daily`) run once per matching wall-clock time:
//!   - a time that does not exist (02:30 on the day Europe/Berlin jumps from 02:00 to 03:00) fires once
//!     at the first instant after the gap (03:00 local): the day is not skipped. Several missing times
//!     (`0,30 2 * * *`) fire once together, and not again if 03:00 also matches;
//!   - a time that occurs twice (02:30 on the day Berlin falls back from 03:00 to 02:00) fires once, at
//!     its first occurrence (02:30 summer time).
//! * **Every-hour schedules** (the hour field allows all 24 hours, e.g. `*/15 * * * *`, `@hourly`) follow
//!   the wall clock as it runs: a missing time does not fire (the next hour's run comes anyway) and a
//!   repeated hour runs again. So `*/15 * * * *` keeps firing every 15 real minutes through both
//!   transitions, instead of going quiet for an hour in autumn or firing twice in a row in spring.
//!
//! Cronie decides the same question by the first character of the minute and hour fields; deciding by
//! the hour field's values is close to it and never skips a day for a job pinned to a missing hour.
//!
//! [`CronSchedule::next_after`] steps field by field (month, day, hour, minute) through local time and
//! resolves only the candidate times through the time zone, so it costs a handful of look-ups, not a
//! scan of minutes. It gives up (returns `None`) after [`SEARCH_HORIZON_YEARS`] years: only an
//! expression that can never fire (`0 0 30 2 *`) gets there, since 29 February is at most 8 years
//! from any date.
//!
//! # Catching up
//!
//! [`due`] decides which fire times a job must run now, given the last fire time already run and a
//! [`Catchup`] policy for the ones missed while the scheduler was down.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Days, MappedLocalTime, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

/// How far [`CronSchedule::next_after`] looks before concluding that an expression never fires.
pub const SEARCH_HORIZON_YEARS: i32 = 8;

/// The most fire times [`due`] returns at once with [`Catchup::All`]; the next call continues.
pub const MAX_CATCHUP_RUNS: usize = 1000;

/// With [`Catchup::None`], a fire time at most this many seconds before `now` is on time and runs.
pub const ON_TIME_SECONDS: i64 = 60;

/// How far ahead [`CronSchedule::next_after`] looks for a fall-back transition that will repeat
/// wall-clock times already passed (more than any real transition's size).
const FALL_BACK_LOOKAHEAD_HOURS: i64 = 26;

/// The longest DST gap (or time-zone change) searched for its end, in minutes (Samoa skipped a day).
const MAX_GAP_MINUTES: i64 = 4 * 24 * 60;

const ALL_HOURS: u64 = (1 << 24) - 1;
const ALL_DAYS_OF_MONTH: u64 = ((1 << 32) - 1) & !1;
const ALL_DAYS_OF_WEEK: u64 = (1 << 7) - 1;

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
    const ALL: [CronField; 5] =
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
    expr: String,
    kind: CronErrorKind,
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

/// A parsed 5-field cron expression: minute hour day-of-month month day-of-week.
///
/// Holds the set of allowed values of each field (as bit sets) and the original text, which
/// [`Display`](fmt::Display) and [`CronSchedule::as_str`] give back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    /// Bits 0-59.
    minutes: u64,
    /// Bits 0-23.
    hours: u64,
    /// Bits 1-31.
    days_of_month: u64,
    /// Bits 1-12.
    months: u64,
    /// Bits 0-6, Sunday = 0 (a 7 in the expression is stored as 0).
    days_of_week: u64,
    text: String,
}

impl CronSchedule {
    /// Parse a 5-field expression or a macro (`@daily`, ...). Surrounding whitespace is ignored.
    pub fn parse(expr: &str) -> Result<CronSchedule, CronError> {
        let error = |kind| CronError { expr: expr.to_string(), kind };
        let text = expr.trim();
        let expanded = if text.starts_with('@') {
            match text.to_ascii_lowercase().as_str() {
                "@hourly" => "0 * * * *",
                "@daily" | "@midnight" => "0 0 * * *",
                "@weekly" => "0 0 * * 0",
                "@monthly" => "0 0 1 * *",
                "@yearly" | "@annually" => "0 0 1 1 *",
                _ => return Err(error(CronErrorKind::UnknownMacro { name: text.to_string() })),
            }
        } else {
            text
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != CronField::ALL.len() {
            return Err(error(CronErrorKind::FieldCount { got: fields.len() }));
        }
        let mut masks = [0u64; 5];
        for ((mask, field), item) in masks.iter_mut().zip(CronField::ALL).zip(&fields) {
            *mask = parse_field(item, field).map_err(error)?;
        }
        let [minutes, hours, days_of_month, months, days_of_week] = masks;
        // Sunday is both 0 and 7.
        let days_of_week = (days_of_week | (days_of_week >> 7)) & ALL_DAYS_OF_WEEK;
        Ok(CronSchedule { minutes, hours, days_of_month, months, days_of_week, text: text.to_string() })
    }

    /// The expression as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first fire time strictly after `after`, evaluated in `tz` (see the module doc for DST);
    /// `None` if there is none within [`SEARCH_HORIZON_YEARS`] years.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&tz).naive_local();
        let last_year = local.year().checked_add(SEARCH_HORIZON_YEARS)?;
        let start = truncate_to_minute(local).checked_add_signed(TimeDelta::minutes(1))?;
        if self.follows_wall_clock() {
            return self.next_on_wall_clock(after, local, start, last_year, tz);
        }
        // Fixed-time: every matching local time maps to one instant (first occurrence, or the end of
        // the gap), and that mapping never goes back in time, so the first local match whose instant
        // is after `after` is the answer. Matches whose instant is not (the repeated hour after a fall
        // back, when `after` is in it) are passed over.
        let mut from = start;
        loop {
            let candidate = self.next_match(from, last_year)?;
            if let Some(instant) = fixed_time_instant(candidate, tz) {
                if instant > after {
                    return Some(instant);
                }
            }
            from = candidate.checked_add_signed(TimeDelta::minutes(1))?;
        }
    }

    /// Every fire time in `(from, to]`, in order, at most `limit` of them.
    pub fn fire_times(&self, from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz, limit: usize) -> Vec<DateTime<Utc>> {
        let mut times = Vec::new();
        let mut cursor = from;
        while times.len() < limit {
            match self.next_after(cursor, tz) {
                Some(next) if next <= to => {
                    times.push(next);
                    cursor = next;
                }
                _ => break,
            }
        }
        times
    }

    /// The last fire time in `(from, to]`, if any. Found by bisection: a few dozen
    /// [`Self::next_after`] calls however many fire times the range holds (a year of an every-minute
    /// job after an outage), so prefer it to taking the last of [`Self::fire_times`].
    pub fn last_fire_in(&self, from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        // Invariant: `found` is a fire time in (from, to], and there is none in (end, to].
        let mut found = self.next_after(from, tz).filter(|t| *t <= to)?;
        let mut end = to;
        while self.next_after(found, tz).is_some_and(|t| t <= end) {
            let mid = found + (end - found) / 2;
            match self.next_after(mid, tz).filter(|t| *t <= end) {
                Some(later) => found = later,
                None => end = mid,
            }
        }
        Some(found)
    }

    /// Whether DST transitions are handled by following the wall clock (every-hour schedules) rather
    /// than the fixed-time rules; see the module doc.
    fn follows_wall_clock(&self) -> bool {
        self.hours == ALL_HOURS
    }

    /// [`Self::next_after`] for every-hour schedules: the earliest instant after `after` whose wall-clock
    /// time matches.
    fn next_on_wall_clock(
        &self,
        after: DateTime<Utc>,
        local: NaiveDateTime,
        start: NaiveDateTime,
        last_year: i32,
        tz: Tz,
    ) -> Option<DateTime<Utc>> {
        let mut best = None;
        let mut from = start;
        while let Some(candidate) = self.next_match(from, last_year) {
            if let Some(instant) = wall_clock_instant_after(candidate, tz, after) {
                best = Some(instant);
                break;
            }
            from = candidate.checked_add_signed(TimeDelta::minutes(1))?;
        }
        // A fall back ahead of `after` makes the wall clock repeat times at or before `local`: their
        // second occurrences are after `after` and may come before `best`.
        let ahead = after.checked_add_signed(TimeDelta::hours(FALL_BACK_LOOKAHEAD_HOURS));
        let fall_back = ahead.map_or(0, |ahead| utc_offset_seconds(tz, after) - utc_offset_seconds(tz, ahead));
        if fall_back > 0 {
            let mut from = local.checked_sub_signed(TimeDelta::seconds(i64::from(fall_back))).map(truncate_to_minute);
            while let Some(candidate) = from.and_then(|from| self.next_match(from, last_year)).filter(|c| *c <= local) {
                if let Some(instant) = wall_clock_instant_after(candidate, tz, after) {
                    best = Some(best.map_or(instant, |best: DateTime<Utc>| best.min(instant)));
                }
                from = candidate.checked_add_signed(TimeDelta::minutes(1));
            }
        }
        best
    }

    /// The first local time at or after `start` (a whole minute) that matches every field, looking no
    /// further than the end of `last_year`. Steps field by field: month, day, hour, minute.
    fn next_match(&self, start: NaiveDateTime, last_year: i32) -> Option<NaiveDateTime> {
        let mut date = start.date();
        let (mut hour, mut minute) = (start.hour(), start.minute());
        while date.year() <= last_year {
            if !has(self.months, date.month()) {
                date = self.next_month(date)?;
                (hour, minute) = (0, 0);
                continue;
            }
            if !self.day_matches(date) {
                date = self.next_day(date)?;
                (hour, minute) = (0, 0);
                continue;
            }
            let Some(next_hour) = next_bit(self.hours, hour) else {
                date = self.next_day(date)?;
                (hour, minute) = (0, 0);
                continue;
            };
            if next_hour != hour {
                (hour, minute) = (next_hour, 0);
            }
            match next_bit(self.minutes, minute) {
                Some(next_minute) => return date.and_hms_opt(hour, next_minute, 0),
                None if hour < 23 => (hour, minute) = (hour + 1, 0),
                None => {
                    date = self.next_day(date)?;
                    (hour, minute) = (0, 0);
                }
            }
        }
        None
    }

    /// Whether `date` passes the day-of-month and day-of-week fields (either, when both restrict).
    fn day_matches(&self, date: NaiveDate) -> bool {
        let by_month_day = has(self.days_of_month, date.day());
        let by_week_day = has(self.days_of_week, date.weekday().num_days_from_sunday());
        match (self.days_of_month == ALL_DAYS_OF_MONTH, self.days_of_week == ALL_DAYS_OF_WEEK) {
            (true, true) => true,
            (true, false) => by_week_day,
            (false, true) => by_month_day,
            (false, false) => by_month_day || by_week_day,
        }
    }

    /// The next day after `date` that may match: jumps straight to the next allowed day when only one
    /// day field restricts. May land in the next month, which the caller checks.
    fn next_day(&self, date: NaiveDate) -> Option<NaiveDate> {
        let every_month_day = self.days_of_month == ALL_DAYS_OF_MONTH;
        let every_week_day = self.days_of_week == ALL_DAYS_OF_WEEK;
        if !every_month_day && every_week_day {
            let later_this_month = next_bit(self.days_of_month, date.day() + 1).and_then(|day| date.with_day(day));
            return later_this_month.or_else(|| first_of_next_month(date));
        }
        if every_month_day && !every_week_day {
            let today = date.weekday().num_days_from_sunday();
            let ahead = (1..=7).find(|k| has(self.days_of_week, (today + k) % 7))?;
            return date.checked_add_days(Days::new(u64::from(ahead)));
        }
        date.succ_opt()
    }

    /// The first day of the next allowed month after `date`'s.
    fn next_month(&self, date: NaiveDate) -> Option<NaiveDate> {
        match next_bit(self.months, date.month() + 1) {
            Some(month) => NaiveDate::from_ymd_opt(date.year(), month, 1),
            None => NaiveDate::from_ymd_opt(date.year().checked_add(1)?, next_bit(self.months, 1)?, 1),
        }
    }

    /// Whether a local time matches every field (used by tests as the reference definition).
    #[cfg(test)]
    fn matches(&self, time: NaiveDateTime) -> bool {
        time.second() == 0
            && has(self.minutes, time.minute())
            && has(self.hours, time.hour())
            && has(self.months, time.month())
            && self.day_matches(time.date())
    }
}

impl FromStr for CronSchedule {
    type Err = CronError;

    fn from_str(expr: &str) -> Result<CronSchedule, CronError> {
        CronSchedule::parse(expr)
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parse one field into a bit set of its allowed values.
fn parse_field(text: &str, field: CronField) -> Result<u64, CronErrorKind> {
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

fn has(mask: u64, value: u32) -> bool {
    value < 64 && mask & (1 << value) != 0
}

/// The smallest value at or above `from` in `mask`.
fn next_bit(mask: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = mask & (u64::MAX << from);
    (rest != 0).then(|| rest.trailing_zeros())
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    match date.month() {
        12 => NaiveDate::from_ymd_opt(date.year().checked_add(1)?, 1, 1),
        month => NaiveDate::from_ymd_opt(date.year(), month + 1, 1),
    }
}

fn truncate_to_minute(time: NaiveDateTime) -> NaiveDateTime {
    time.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(time)
}

/// The UTC offset in force at `instant`, in seconds.
fn utc_offset_seconds(tz: Tz, instant: DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&instant.naive_utc()).fix().local_minus_utc()
}

/// The instants a local time maps to, earliest first: none in a gap, two in a fold.
fn instants(local: NaiveDateTime, tz: Tz) -> MappedLocalTime<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        MappedLocalTime::Single(t) => MappedLocalTime::Single(t.to_utc()),
        MappedLocalTime::Ambiguous(a, b) => {
            let (a, b) = (a.to_utc(), b.to_utc());
            MappedLocalTime::Ambiguous(a.min(b), a.max(b))
        }
        MappedLocalTime::None => MappedLocalTime::None,
    }
}

/// Fixed-time rule: a local time fires at its only or first occurrence, or, if it falls in a gap, at
/// the first instant after the gap.
fn fixed_time_instant(local: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    match instants(local, tz) {
        MappedLocalTime::Single(t) | MappedLocalTime::Ambiguous(t, _) => Some(t),
        MappedLocalTime::None => gap_end(local, tz),
    }
}

/// Wall-clock rule: the earliest occurrence of a local time after `after`, if any.
fn wall_clock_instant_after(local: NaiveDateTime, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match instants(local, tz) {
        MappedLocalTime::Single(t) => (t > after).then_some(t),
        MappedLocalTime::Ambiguous(first, second) => [first, second].into_iter().find(|t| *t > after),
        MappedLocalTime::None => None,
    }
}

/// The first instant after the gap that swallows the local time `missing`: the (earliest) instant of
/// the first whole local minute after it that exists. Gallops forward, then bisects.
fn gap_end(missing: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    let instant_at = |minutes: i64| {
        let local = missing.checked_add_signed(TimeDelta::minutes(minutes))?;
        instants(local, tz).earliest()
    };
    let (mut absent, mut present) = (0i64, 1i64);
    while instant_at(present).is_none() {
        absent = present;
        present *= 2;
        if present > MAX_GAP_MINUTES {
            return None;
        }
    }
    while present - absent > 1 {
        let mid = absent + (present - absent) / 2;
        if instant_at(mid).is_some() {
            present = mid;
        } else {
            absent = mid;
        }
    }
    instant_at(present)
}

/// What the scheduler does about fire times it missed while it was not running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Catchup {
    /// Run the most recent missed fire time once.
    #[default]
    Latest,
    /// Run every missed fire time, oldest first (at most [`MAX_CATCHUP_RUNS`] per call).
    All,
    /// Skip missed fire times: run only a fire time that is on time (within [`ON_TIME_SECONDS`]).
    None,
}

impl Catchup {
    /// The policy's name in configuration: `latest`, `all` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Catchup::Latest => "latest",
            Catchup::All => "all",
            Catchup::None => "none",
        }
    }
}

impl fmt::Display for Catchup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A catch-up policy name that is not `latest`, `all` or `none`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown catch-up policy {0:?}: expected one of latest, all, none")]
pub struct CatchupParseError(pub String);

impl FromStr for Catchup {
    type Err = CatchupParseError;

    /// `latest`, `all` or `none`, ignoring ASCII case.
    fn from_str(text: &str) -> Result<Catchup, CatchupParseError> {
        [Catchup::Latest, Catchup::All, Catchup::None]
            .into_iter()
            .find(|policy| policy.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| CatchupParseError(text.to_string()))
    }
}

/// The fire times a job must run now, oldest first.
///
/// `last_scheduled` is the last fire time already run (or started). `None` means the job has never
/// run: nothing is due, the caller records `now` as the starting point and the first run happens at
/// the next fire time after it. With `Some(last)`, the fire times in `(last, now]` are reduced by
/// `catchup`:
///
/// * [`Catchup::Latest`]: only the last of them;
/// * [`Catchup::All`]: all of them, oldest first, at most [`MAX_CATCHUP_RUNS`] (the oldest ones; the
///   next call, after the caller records the last returned time, continues from there);
/// * [`Catchup::None`]: only the last one, and only if it is at most [`ON_TIME_SECONDS`] before `now`
///   (a tick that is on time); missed ones are skipped.
///
/// Because only times after `last` are returned, a caller that records the last returned time as
/// `last_scheduled` never gets a fire time twice.
pub fn due(
    schedule: &CronSchedule,
    tz: Tz,
    last_scheduled: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    catchup: Catchup,
) -> Vec<DateTime<Utc>> {
    let Some(last) = last_scheduled else {
        return Vec::new();
    };
    if now <= last {
        return Vec::new();
    }
    match catchup {
        Catchup::All => schedule.fire_times(last, now, tz, MAX_CATCHUP_RUNS),
        Catchup::Latest => schedule.last_fire_in(last, now, tz).into_iter().collect(),
        Catchup::None => schedule
            .last_fire_in(last, now, tz)
            .filter(|t| now - *t <= TimeDelta::seconds(ON_TIME_SECONDS))
            .into_iter()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("test timestamp").to_utc()
    }

    fn cron(expr: &str) -> CronSchedule {
        CronSchedule::parse(expr).expect("test expression")
    }

    fn error(expr: &str) -> String {
        CronSchedule::parse(expr).expect_err("expression should be rejected").to_string()
    }

    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    #[test]
    fn daily_at_six_in_berlin_follows_summer_and_winter_time() {
        let schedule = cron("0 6 * * *");
        assert_eq!(schedule.next_after(utc("2026-06-30T05:00:00Z"), BERLIN), Some(utc("2026-07-01T04:00:00Z")));
        assert_eq!(schedule.next_after(utc("2026-01-14T05:00:00Z"), BERLIN), Some(utc("2026-01-15T05:00:00Z")));
        // Before six local on the same day: today's run.
        assert_eq!(schedule.next_after(utc("2026-01-14T04:59:59Z"), BERLIN), Some(utc("2026-01-14T05:00:00Z")));
    }

    #[test]
    fn next_after_is_strictly_after() {
        let schedule = cron("0 6 * * *");
        assert_eq!(schedule.next_after(utc("2026-07-01T04:00:00Z"), BERLIN), Some(utc("2026-07-02T04:00:00Z")));
        assert_eq!(schedule.next_after(utc("2026-07-01T03:59:59.999Z"), BERLIN), Some(utc("2026-07-01T04:00:00Z")));
    }

    #[test]
    fn every_two_hours_is_two_hours_apart() {
        let times =
            cron("0 */2 * * *").fire_times(utc("2026-05-01T00:30:00Z"), utc("2026-05-03T00:30:00Z"), BERLIN, 100);
        assert_eq!(times.len(), 24);
        assert!(times.windows(2).all(|pair| pair[1] - pair[0] == TimeDelta::hours(2)));
        assert!(times.iter().all(|t| t.with_timezone(&BERLIN).hour() % 2 == 0));
    }

    #[test]
    fn quarter_hours_in_office_hours_skip_weekends() {
        let schedule = cron("*/15 9-17 * * MON-FRI");
        // Friday 2026-05-08 17:45 CEST is the last run of the week; Monday 09:00 is the next.
        assert_eq!(schedule.next_after(utc("2026-05-08T15:45:00Z"), BERLIN), Some(utc("2026-05-11T07:00:00Z")));
        let week = schedule.fire_times(utc("2026-05-03T22:00:00Z"), utc("2026-05-10T22:00:00Z"), BERLIN, 10_000);
        assert_eq!(week.len(), 5 * 9 * 4);
        for t in &week {
            let local = t.with_timezone(&BERLIN);
            assert!(local.weekday().num_days_from_monday() < 5, "{local} is a weekend");
            assert!((9..=17).contains(&local.hour()) && local.minute() % 15 == 0, "{local}");
        }
    }

    #[test]
    fn both_day_fields_restricted_match_either() {
        let schedule = cron("0 0 13 * FRI");
        let days: Vec<String> = schedule
            .fire_times(utc("2026-02-01T00:00:00Z"), utc("2026-03-16T00:00:00Z"), BERLIN, 100)
            .iter()
            .map(|t| t.with_timezone(&BERLIN).format("%a %d").to_string())
            .collect();
        // February 2026: Fridays 6, 13, 20, 27 (the 13th is a Friday, once); March: Friday 6 and 13.
        assert_eq!(days, ["Fri 06", "Fri 13", "Fri 20", "Fri 27", "Fri 06", "Fri 13"]);
        let more = schedule.fire_times(utc("2026-04-01T00:00:00Z"), utc("2026-04-30T00:00:00Z"), BERLIN, 100);
        let days: Vec<String> = more.iter().map(|t| t.with_timezone(&BERLIN).format("%a %d").to_string()).collect();
        // April 2026: Fridays 3, 10, 17, 24 and Monday the 13th.
        assert_eq!(days, ["Fri 03", "Fri 10", "Mon 13", "Fri 17", "Fri 24"]);
    }

    #[test]
    fn one_day_field_restricted_only_it_counts() {
        // Day-of-week `*`: only the 13th.
        let thirteenth = cron("0 0 13 * *");
        let times = thirteenth.fire_times(utc("2026-01-01T00:00:00Z"), utc("2026-04-01T00:00:00Z"), BERLIN, 100);
        assert!(times.iter().all(|t| t.with_timezone(&BERLIN).day() == 13));
        assert_eq!(times.len(), 3);
        // `*/1` allows every day of the month, so it is unrestricted too: only Fridays.
        let fridays = cron("0 0 */1 * FRI");
        let times = fridays.fire_times(utc("2026-01-01T00:00:00Z"), utc("2026-02-01T00:00:00Z"), BERLIN, 100);
        assert_eq!(times.len(), 5);
        assert!(times.iter().all(|t| t.with_timezone(&BERLIN).weekday() == chrono::Weekday::Fri));
    }

    #[test]
    fn spring_forward_gap_fires_once_after_the_gap() {
        // Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z); 02:30 does not exist that day.
        let schedule = cron("30 2 * * *");
        let times = schedule.fire_times(utc("2026-03-27T12:00:00Z"), utc("2026-03-31T12:00:00Z"), BERLIN, 10);
        assert_eq!(
            times,
            [
                utc("2026-03-28T01:30:00Z"), // 02:30 CET
                utc("2026-03-29T01:00:00Z"), // 03:00 CEST, the first instant after the gap
                utc("2026-03-30T00:30:00Z"), // 02:30 CEST
                utc("2026-03-31T00:30:00Z"),
            ]
        );
        // Several missing times fire once together, not again at 03:00 itself.
        let several = cron("0,30 2,3 * * *");
        let times = several.fire_times(utc("2026-03-28T23:00:00Z"), utc("2026-03-29T02:00:00Z"), BERLIN, 10);
        assert_eq!(times, [utc("2026-03-29T01:00:00Z"), utc("2026-03-29T01:30:00Z")]);
    }

    #[test]
    fn fall_back_overlap_fires_once_at_first_occurrence() {
        // Berlin 2026-10-25: 03:00 CEST (01:00Z) falls back to 02:00 CET; 02:30 happens at 00:30Z and 01:30Z.
        let schedule = cron("30 2 * * *");
        let times = schedule.fire_times(utc("2026-10-24T12:00:00Z"), utc("2026-10-26T12:00:00Z"), BERLIN, 10);
        assert_eq!(times, [utc("2026-10-25T00:30:00Z"), utc("2026-10-26T01:30:00Z")]);
        // Asked from inside the repeated hour, the second 02:30 is still not a fire time.
        assert_eq!(schedule.next_after(utc("2026-10-25T01:10:00Z"), BERLIN), Some(utc("2026-10-26T01:30:00Z")));
        // Asked from the first pass, before 02:30 summer time: that one.
        assert_eq!(schedule.next_after(utc("2026-10-25T00:10:00Z"), BERLIN), Some(utc("2026-10-25T00:30:00Z")));
    }

    #[test]
    fn every_hour_schedules_follow_the_wall_clock_through_dst() {
        let quarter = cron("*/15 * * * *");
        for (from, to) in [
            (utc("2026-03-28T22:00:00Z"), utc("2026-03-29T04:00:00Z")),
            (utc("2026-10-24T22:00:00Z"), utc("2026-10-25T04:00:00Z")),
        ] {
            let times = quarter.fire_times(from, to, BERLIN, 1000);
            assert_eq!(times.len(), 24, "every 15 real minutes for 6 hours");
            assert!(times.windows(2).all(|pair| pair[1] - pair[0] == TimeDelta::minutes(15)));
        }
        // From inside the first pass of the repeated hour, the repeat of 02:00 comes next.
        assert_eq!(quarter.next_after(utc("2026-10-25T00:50:00Z"), BERLIN), Some(utc("2026-10-25T01:00:00Z")));
        let hourly = cron("@hourly");
        let times = hourly.fire_times(utc("2026-10-24T22:30:00Z"), utc("2026-10-25T03:30:00Z"), BERLIN, 100);
        assert_eq!(times.len(), 5);
        assert!(times.windows(2).all(|pair| pair[1] - pair[0] == TimeDelta::hours(1)));
    }

    #[test]
    fn daily_midnight_in_a_zone_whose_midnight_is_skipped() {
        // São Paulo 2018-11-04: 00:00 jumped to 01:00 (-02:00); midnight did not exist.
        let schedule = cron("@daily");
        let tz = chrono_tz::America::Sao_Paulo;
        assert_eq!(schedule.next_after(utc("2018-11-03T12:00:00Z"), tz), Some(utc("2018-11-04T03:00:00Z")));
        assert_eq!(schedule.next_after(utc("2018-11-04T03:00:00Z"), tz), Some(utc("2018-11-05T02:00:00Z")));
    }

    /// Reference definition, minute by minute in UTC: independent of the field-stepping search.
    fn reference_fire_times(
        schedule: &CronSchedule,
        tz: Tz,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let mut times = Vec::new();
        let mut t = from + TimeDelta::minutes(1);
        while t <= to {
            let local = t.with_timezone(&tz).naive_local();
            let previous = (t - TimeDelta::minutes(1)).with_timezone(&tz).naive_local();
            let fires = if schedule.follows_wall_clock() {
                schedule.matches(local)
            } else {
                let first_occurrence = tz.from_local_datetime(&local).earliest().map(|e| e.to_utc()) == Some(t);
                // The first instant after a gap fires for every matching time the gap swallowed.
                let mut skipped = previous + TimeDelta::minutes(1);
                let mut swallowed = false;
                while skipped < local {
                    swallowed |= schedule.matches(skipped);
                    skipped += TimeDelta::minutes(1);
                }
                (schedule.matches(local) && first_occurrence) || swallowed
            };
            if fires {
                times.push(t);
            }
            t += TimeDelta::minutes(1);
        }
        times
    }

    #[test]
    fn matches_minute_by_minute_reference_around_transitions() {
        let zones = [
            (BERLIN, "2026-03-29T01:00:00Z"),
            (BERLIN, "2026-10-25T01:00:00Z"),
            (chrono_tz::America::New_York, "2026-03-08T07:00:00Z"),
            (chrono_tz::America::New_York, "2026-11-01T06:00:00Z"),
            (chrono_tz::Australia::Lord_Howe, "2026-04-04T15:00:00Z"), // 30-minute fall back
            (chrono_tz::Australia::Lord_Howe, "2026-10-03T15:30:00Z"), // 30-minute spring forward
            (chrono_tz::America::Sao_Paulo, "2018-02-18T02:00:00Z"),   // fall back across midnight
            (chrono_tz::America::Sao_Paulo, "2018-11-04T03:00:00Z"),   // midnight skipped
            (chrono_tz::Asia::Kolkata, "2026-06-01T00:00:00Z"),        // +05:30, no DST
        ];
        let expressions = [
            "30 2 * * *",
            "0 0 * * *",
            "30 23 * * *",
            "*/15 * * * *",
            "0 * * * *",
            "45 * * * *",
            "0 */2 * * *",
            "0,30 1-3 * * *",
            "* 2 * * *",
            "0 0 13 * FRI",
        ];
        for (tz, transition) in zones {
            let (from, to) = (utc(transition) - TimeDelta::hours(30), utc(transition) + TimeDelta::hours(30));
            for expr in expressions {
                let schedule = cron(expr);
                let expected = reference_fire_times(&schedule, tz, from, to);
                let got = schedule.fire_times(from, to, tz, 100_000);
                if let Some(i) = (0..got.len().max(expected.len())).find(|&i| got.get(i) != expected.get(i)) {
                    panic!(
                        "{expr} in {tz} around {transition}: fire time #{i} is {:?}, the reference says {:?}",
                        got.get(i),
                        expected.get(i)
                    );
                }
                assert!(!expected.is_empty() || expr.contains("13"), "{expr}: the window should hold fire times");
                // Also from starting points that are not fire times, with seconds.
                let mut start = from;
                while start < to {
                    let want = expected.iter().find(|t| **t > start).copied();
                    let next = schedule.next_after(start, tz);
                    if want.is_some() {
                        assert_eq!(next, want, "{expr} in {tz} after {start}");
                    }
                    // The last fire time up to `start` (bisection) agrees with the reference too.
                    let last = expected.iter().take_while(|t| **t <= start).last().copied();
                    assert_eq!(schedule.last_fire_in(from, start, tz), last, "{expr} in {tz} up to {start}");
                    start += TimeDelta::seconds(7 * 60 + 13);
                }
            }
        }
    }

    #[test]
    fn macros_are_the_usual_expressions() {
        let pairs = [
            ("@hourly", "0 * * * *"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@weekly", "0 0 * * 0"),
            ("@monthly", "0 0 1 * *"),
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
        ];
        let from = utc("2026-01-01T00:00:00Z");
        let to = utc("2028-01-01T00:00:00Z");
        for (name, expr) in pairs {
            let named = cron(name);
            assert_eq!(named.as_str(), name);
            assert_eq!(named.fire_times(from, to, BERLIN, 100), cron(expr).fire_times(from, to, BERLIN, 100), "{name}");
        }
        assert_eq!(cron("@daily").next_after(utc("2026-07-01T12:00:00Z"), BERLIN), Some(utc("2026-07-01T22:00:00Z")));
    }

    #[test]
    fn month_and_day_names_and_sunday_as_seven() {
        assert_eq!(
            cron("0 0 1 jan,Jul *").fire_times(
                utc("2026-01-01T00:00:00Z"),
                utc("2027-01-01T00:00:00Z"),
                chrono_tz::UTC,
                10
            ),
            [utc("2026-07-01T00:00:00Z"), utc("2027-01-01T00:00:00Z")]
        );
        let sundays = [cron("0 12 * * 0"), cron("0 12 * * 7"), cron("0 12 * * SUN"), cron("0 12 * * sun")];
        for schedule in &sundays[1..] {
            assert_eq!(schedule.days_of_week, sundays[0].days_of_week, "{schedule}");
        }
        // 2026-05-03 is a Sunday.
        assert_eq!(
            sundays[1].next_after(utc("2026-05-01T00:00:00Z"), chrono_tz::UTC),
            Some(utc("2026-05-03T12:00:00Z"))
        );
        // A range ending at 7 wraps to Sunday: Friday, Saturday, Sunday.
        let weekend = cron("0 12 * * 5-7");
        let days: Vec<String> = weekend
            .fire_times(utc("2026-05-04T00:00:00Z"), utc("2026-05-11T00:00:00Z"), chrono_tz::UTC, 10)
            .iter()
            .map(|t| t.format("%a").to_string())
            .collect();
        assert_eq!(days, ["Fri", "Sat", "Sun"]);
    }

    #[test]
    fn steps_ranges_and_lists() {
        let schedule = cron("5/20 1-5/2,22 * * *");
        assert_eq!(schedule.minutes, 1 << 5 | 1 << 25 | 1 << 45);
        assert_eq!(schedule.hours, 1 << 1 | 1 << 3 | 1 << 5 | 1 << 22);
        assert_eq!(cron("*/1 * * * *").minutes, (1 << 60) - 1);
    }

    #[test]
    fn text_round_trips_through_display_and_from_str() {
        let schedule: CronSchedule = " */15 9-17 * * MON-FRI ".parse().expect("valid");
        assert_eq!(schedule.to_string(), "*/15 9-17 * * MON-FRI");
        assert_eq!(schedule.as_str(), "*/15 9-17 * * MON-FRI");
        assert_eq!(schedule.to_string().parse::<CronSchedule>(), Ok(schedule));
    }

    #[test]
    fn errors_say_what_is_wrong_and_where() {
        let cases = [
            ("0 25 * * *", r#"cron "0 25 * * *": hour 25 is out of range 0-23"#),
            ("0 0 * *", r#"cron "0 0 * *": expected 5 fields (minute hour day-of-month month day-of-week), got 4"#),
            (
                "0 0 0 * * *",
                r#"cron "0 0 0 * * *": expected 5 fields (minute hour day-of-month month day-of-week), got 6"#,
            ),
            ("", r#"cron "": expected 5 fields (minute hour day-of-month month day-of-week), got 0"#),
            ("60 * * * *", r#"cron "60 * * * *": minute 60 is out of range 0-59"#),
            ("0 0 0 * *", r#"cron "0 0 0 * *": day-of-month 0 is out of range 1-31"#),
            ("0 0 32 * *", r#"cron "0 0 32 * *": day-of-month 32 is out of range 1-31"#),
            ("0 0 * 13 *", r#"cron "0 0 * 13 *": month 13 is out of range 1-12"#),
            ("0 0 * * 8", r#"cron "0 0 * * 8": day-of-week 8 is out of range 0-7"#),
            ("0 0 * * 99999999999", r#"cron "0 0 * * 99999999999": day-of-week 99999999999 is out of range 0-7"#),
            ("x * * * *", r#"cron "x * * * *": minute value "x" is not a number"#),
            ("0 0 * * FUN", r#"cron "0 0 * * FUN": day-of-week value "FUN" is not a number or a day name (SUN-SAT)"#),
            (
                "0 0 * JANUARY *",
                r#"cron "0 0 * JANUARY *": month value "JANUARY" is not a number or a month name (JAN-DEC)"#,
            ),
            ("0 0 L * *", r#"cron "0 0 L * *": day-of-month value "L" is not a number"#),
            ("+5 * * * *", r#"cron "+5 * * * *": minute value "+5" is not a number"#),
            (
                "0 5-2 * * *",
                r#"cron "0 5-2 * * *": hour range "5-2" is reversed: the start must not come after the end"#,
            ),
            (
                "0 0 * * FRI-MON",
                r#"cron "0 0 * * FRI-MON": day-of-week range "FRI-MON" is reversed: the start must not come after the end"#,
            ),
            ("*/0 * * * *", r#"cron "*/0 * * * *": minute step "0" is not a whole number from 1 to 59"#),
            ("*/60 * * * *", r#"cron "*/60 * * * *": minute step "60" is not a whole number from 1 to 59"#),
            ("0 */x * * *", r#"cron "0 */x * * *": hour step "x" is not a whole number from 1 to 23"#),
            ("0 0/ * * *", r#"cron "0 0/ * * *": hour step "" is not a whole number from 1 to 23"#),
            ("1,,2 * * * *", r#"cron "1,,2 * * * *": minute "1,,2" is malformed: a list has an empty item"#),
            (
                "/5 * * * *",
                r#"cron "/5 * * * *": minute "/5" is malformed: a step needs a start: write */n, a-b/n or a/n"#,
            ),
            (
                "*-5 * * * *",
                r#"cron "*-5 * * * *": minute "*-5" is malformed: `*` stands alone or before a step (*/n), not inside a range"#,
            ),
            (
                "1-2-3 * * * *",
                r#"cron "1-2-3 * * * *": minute "1-2-3" is malformed: a range is written start-end, as in 1-5"#,
            ),
            ("-5 * * * *", r#"cron "-5 * * * *": minute "-5" is malformed: a range is written start-end, as in 1-5"#),
            (
                "0 0 1- * *",
                r#"cron "0 0 1- * *": day-of-month "1-" is malformed: a range is written start-end, as in 1-5"#,
            ),
            (
                "@fortnightly",
                r#"cron "@fortnightly": unknown macro "@fortnightly": expected one of @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually"#,
            ),
            (
                "@reboot",
                r#"cron "@reboot": unknown macro "@reboot": expected one of @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually"#,
            ),
        ];
        for (expr, message) in cases {
            assert_eq!(error(expr), message);
        }
        let err = CronSchedule::parse("0 25 * * *").expect_err("invalid");
        assert_eq!(err.expr(), "0 25 * * *");
        assert!(matches!(err.kind(), CronErrorKind::OutOfRange { field: CronField::Hour, .. }));
    }

    #[test]
    fn impossible_dates_never_fire_and_leap_days_are_found() {
        assert_eq!(cron("0 0 30 2 *").next_after(utc("2026-01-01T00:00:00Z"), BERLIN), None);
        assert_eq!(cron("0 0 31 4 *").next_after(utc("2026-01-01T00:00:00Z"), BERLIN), None);
        // 2100 is not a leap year: from 2097 the next 29 February is in 2104.
        assert_eq!(
            cron("0 0 29 2 *").next_after(utc("2097-01-01T00:00:00Z"), chrono_tz::UTC),
            Some(utc("2104-02-29T00:00:00Z"))
        );
    }

    #[test]
    fn fire_times_respects_limit_and_range() {
        let schedule = cron("* * * * *");
        let from = utc("2026-05-01T00:00:00Z");
        assert_eq!(schedule.fire_times(from, utc("2026-05-02T00:00:00Z"), BERLIN, 5).len(), 5);
        assert_eq!(schedule.fire_times(from, utc("2026-05-02T00:00:00Z"), BERLIN, 0), Vec::<DateTime<Utc>>::new());
        // (from, to]: `from` excluded, `to` included.
        assert_eq!(
            schedule.fire_times(from, utc("2026-05-01T00:02:00Z"), BERLIN, 100),
            [utc("2026-05-01T00:01:00Z"), utc("2026-05-01T00:02:00Z")]
        );
        assert!(schedule.fire_times(from, from, BERLIN, 100).is_empty());
    }

    #[test]
    fn catchup_parses_from_config_words() {
        assert_eq!("latest".parse(), Ok(Catchup::Latest));
        assert_eq!("all".parse(), Ok(Catchup::All));
        assert_eq!("None".parse(), Ok(Catchup::None));
        assert_eq!(Catchup::default(), Catchup::Latest);
        assert_eq!(Catchup::All.to_string(), "all");
        assert_eq!(
            "every".parse::<Catchup>().expect_err("unknown").to_string(),
            r#"unknown catch-up policy "every": expected one of latest, all, none"#
        );
    }

    #[test]
    fn due_never_run_job_waits_for_its_next_fire_time() {
        let schedule = cron("0 6 * * *");
        for catchup in [Catchup::Latest, Catchup::All, Catchup::None] {
            assert!(due(&schedule, BERLIN, None, utc("2026-07-01T04:00:00Z"), catchup).is_empty());
        }
    }

    #[test]
    fn due_after_three_days_down() {
        let schedule = cron("0 6 * * *");
        // Last run 2026-07-01 06:00 CEST; back up on 2026-07-04 at 09:00 CEST.
        let last = Some(utc("2026-07-01T04:00:00Z"));
        let now = utc("2026-07-04T07:00:00Z");
        let missed = [utc("2026-07-02T04:00:00Z"), utc("2026-07-03T04:00:00Z"), utc("2026-07-04T04:00:00Z")];
        assert_eq!(due(&schedule, BERLIN, last, now, Catchup::All), missed);
        assert_eq!(due(&schedule, BERLIN, last, now, Catchup::Latest), [missed[2]]);
        // Three hours late is not on time.
        assert!(due(&schedule, BERLIN, last, now, Catchup::None).is_empty());
    }

    #[test]
    fn due_never_returns_a_time_twice() {
        let schedule = cron("*/5 * * * *");
        let now = utc("2026-07-04T07:03:00Z");
        for catchup in [Catchup::Latest, Catchup::All, Catchup::None] {
            let last = utc("2026-07-04T06:48:00Z");
            let first = due(&schedule, BERLIN, Some(last), now, catchup);
            let recorded = first.last().copied().unwrap_or(last);
            assert!(due(&schedule, BERLIN, Some(recorded), now, catchup).is_empty(), "{catchup}");
            // A later tick gets only the new fire time.
            let later = utc("2026-07-04T07:05:10Z");
            assert_eq!(
                due(&schedule, BERLIN, Some(recorded), later, catchup),
                [utc("2026-07-04T07:05:00Z")],
                "{catchup}"
            );
        }
    }

    #[test]
    fn due_latest_and_none_on_a_regular_tick() {
        let schedule = cron("*/5 * * * *");
        let last = Some(utc("2026-07-04T06:55:00Z"));
        // On time: 07:00 is 30 s old.
        let now = utc("2026-07-04T07:00:30Z");
        for catchup in [Catchup::Latest, Catchup::All, Catchup::None] {
            assert_eq!(due(&schedule, BERLIN, last, now, catchup), [utc("2026-07-04T07:00:00Z")], "{catchup}");
        }
        // Exactly 60 s late still counts; 61 s does not.
        assert_eq!(due(&schedule, BERLIN, last, utc("2026-07-04T07:01:00Z"), Catchup::None).len(), 1);
        assert!(due(&schedule, BERLIN, last, utc("2026-07-04T07:01:01Z"), Catchup::None).is_empty());
        // Nothing new yet, or a clock behind the last run: nothing due.
        assert!(due(&schedule, BERLIN, last, utc("2026-07-04T06:59:59Z"), Catchup::Latest).is_empty());
        assert!(due(&schedule, BERLIN, last, utc("2026-07-04T06:00:00Z"), Catchup::All).is_empty());
    }

    #[test]
    fn due_latest_finds_the_last_of_many_missed_times() {
        // Down for a year with an every-minute job: Latest is the last minute, All caps at 1000 oldest.
        let schedule = cron("* * * * *");
        let last = utc("2025-07-04T07:00:00Z");
        let now = utc("2026-07-04T07:00:30Z");
        assert_eq!(due(&schedule, BERLIN, Some(last), now, Catchup::Latest), [utc("2026-07-04T07:00:00Z")]);
        let all = due(&schedule, BERLIN, Some(last), now, Catchup::All);
        assert_eq!(all.len(), MAX_CATCHUP_RUNS);
        assert_eq!(all[0], utc("2025-07-04T07:01:00Z"));
        assert!(all.windows(2).all(|pair| pair[0] < pair[1]));
        // Rare fire times far back.
        let yearly = cron("@yearly");
        assert_eq!(
            due(&yearly, BERLIN, Some(utc("2020-06-01T00:00:00Z")), now, Catchup::Latest),
            [utc("2025-12-31T23:00:00Z")]
        );
    }
}
