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

mod catchup;
mod field;
#[cfg(test)]
mod tests;

pub use catchup::{due, Catchup, CatchupParseError};
use field::{has, next_bit, parse_field};
pub use field::{CronError, CronErrorKind, CronField};

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
