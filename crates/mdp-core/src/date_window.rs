//! Inclusive ranges of calendar days: the unit in which mdp reads, replaces and backfills data.

use std::fmt;
use std::str::FromStr;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

/// A non-empty, inclusive range of calendar days, `start..=end`.
///
/// Dates are the platforms' reporting dates (in each account's time zone), so there is no time of day and
/// no time zone here. Construct through [`DateWindow::new`] (or parse `"2026-01-01..2026-01-31"`), which
/// guarantees `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "UncheckedDateWindow")]
pub struct DateWindow {
    start: NaiveDate,
    end: NaiveDate,
}

/// Why a date window could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateWindowError {
    #[error("date window ends on {end} before it starts on {start}; a window needs start <= end")]
    EndBeforeStart { start: NaiveDate, end: NaiveDate },
    #[error("expected a date window as START..END, e.g. 2026-01-01..2026-01-31, got '{given}'")]
    Malformed { given: String },
    #[error("'{given}' in date window is not a date; expected YYYY-MM-DD, e.g. 2026-01-31")]
    BadDate { given: String },
}

impl DateWindow {
    /// The window `start..=end`; fails when `end` is before `start`.
    pub fn new(start: NaiveDate, end: NaiveDate) -> Result<Self, DateWindowError> {
        if end < start {
            return Err(DateWindowError::EndBeforeStart { start, end });
        }
        Ok(DateWindow { start, end })
    }

    /// The window containing only `day`.
    pub fn single_day(day: NaiveDate) -> Self {
        DateWindow { start: day, end: day }
    }

    /// The `days` days ending on `end` (inclusive), e.g. a look-back window ending today.
    /// A window always holds at least one day, so `days == 0` gives `end..=end`.
    pub fn ending_on(end: NaiveDate, days: u32) -> Self {
        let start = end.checked_sub_days(Days::new(u64::from(days.saturating_sub(1)))).unwrap_or(NaiveDate::MIN);
        DateWindow { start, end }
    }

    pub fn start(&self) -> NaiveDate {
        self.start
    }

    pub fn end(&self) -> NaiveDate {
        self.end
    }

    /// The number of days in the window, counting both ends (always at least 1).
    pub fn days(&self) -> u32 {
        // NaiveDate spans about 95 million days, which fits in u32.
        (self.end - self.start).num_days() as u32 + 1
    }

    pub fn contains(&self, day: NaiveDate) -> bool {
        self.start <= day && day <= self.end
    }

    /// Consecutive windows of at most `max_days` days that exactly cover this one, in date order.
    /// Used to respect platforms' limits on how many days one report request may span.
    /// A window always holds at least one day, so `max_days == 0` is treated as 1.
    pub fn split(&self, max_days: u32) -> Vec<DateWindow> {
        let step = Days::new(u64::from(max_days.max(1) - 1));
        let mut windows = Vec::new();
        let mut start = self.start;
        loop {
            let end = start.checked_add_days(step).map_or(self.end, |end| end.min(self.end));
            windows.push(DateWindow { start, end });
            match end.succ_opt() {
                Some(next) if end < self.end => start = next,
                _ => return windows,
            }
        }
    }
}

impl fmt::Display for DateWindow {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}..{}", self.start, self.end)
    }
}

impl FromStr for DateWindow {
    type Err = DateWindowError;

    /// Parses the [`Display`](fmt::Display) form, `2026-01-01..2026-01-31`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (start, end) =
            text.split_once("..").ok_or_else(|| DateWindowError::Malformed { given: text.to_owned() })?;
        let parse_date = |date: &str| {
            NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
                .map_err(|_| DateWindowError::BadDate { given: date.trim().to_owned() })
        };
        DateWindow::new(parse_date(start)?, parse_date(end)?)
    }
}

/// The serde shape of a window before `start <= end` is checked.
#[derive(Deserialize)]
struct UncheckedDateWindow {
    start: NaiveDate,
    end: NaiveDate,
}

impl TryFrom<UncheckedDateWindow> for DateWindow {
    type Error = DateWindowError;

    fn try_from(unchecked: UncheckedDateWindow) -> Result<Self, Self::Error> {
        DateWindow::new(unchecked.start, unchecked.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn window(text: &str) -> DateWindow {
        text.parse().unwrap()
    }

    #[test]
    fn new_rejects_an_end_before_the_start() {
        let error = DateWindow::new(date("2026-02-01"), date("2026-01-01")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "date window ends on 2026-01-01 before it starts on 2026-02-01; a window needs start <= end"
        );
        assert!(DateWindow::new(date("2026-01-01"), date("2026-01-01")).is_ok());
    }

    #[test]
    fn days_counts_both_ends() {
        assert_eq!(window("2026-01-01..2026-01-01").days(), 1);
        assert_eq!(window("2026-01-01..2026-01-31").days(), 31);
        assert_eq!(window("2024-02-01..2024-03-01").days(), 30); // leap year
    }

    #[test]
    fn split_covers_the_window_exactly() {
        let check = |input: &str, max_days: u32, expected: &[&str]| {
            let parts: Vec<String> = window(input).split(max_days).iter().map(ToString::to_string).collect();
            assert_eq!(parts, expected, "{input} split by {max_days}");
        };
        check("2026-01-01..2026-01-31", 31, &["2026-01-01..2026-01-31"]);
        check("2026-01-01..2026-01-31", 100, &["2026-01-01..2026-01-31"]);
        check(
            "2026-01-01..2026-01-10",
            4,
            &["2026-01-01..2026-01-04", "2026-01-05..2026-01-08", "2026-01-09..2026-01-10"],
        );
        check(
            "2026-01-01..2026-01-03",
            1,
            &["2026-01-01..2026-01-01", "2026-01-02..2026-01-02", "2026-01-03..2026-01-03"],
        );
        check("2026-01-01..2026-01-02", 0, &["2026-01-01..2026-01-01", "2026-01-02..2026-01-02"]);
    }

    #[test]
    fn split_pieces_are_contiguous_and_bounded_for_many_sizes() {
        let whole = window("2025-11-17..2026-03-02");
        for max_days in 1..=120 {
            let parts = whole.split(max_days);
            assert_eq!(parts.first().unwrap().start(), whole.start());
            assert_eq!(parts.last().unwrap().end(), whole.end());
            assert!(parts.iter().all(|part| part.days() <= max_days));
            assert!(parts.windows(2).all(|pair| pair[0].end().succ_opt() == Some(pair[1].start())));
            assert_eq!(parts.iter().map(DateWindow::days).sum::<u32>(), whole.days());
        }
    }

    #[test]
    fn split_at_the_end_of_the_calendar_terminates() {
        let last_days = DateWindow::ending_on(NaiveDate::MAX, 3);
        assert_eq!(last_days.split(2).len(), 2);
    }

    #[test]
    fn ending_on_counts_back_inclusively() {
        assert_eq!(DateWindow::ending_on(date("2026-01-31"), 7).to_string(), "2026-01-25..2026-01-31");
        assert_eq!(DateWindow::ending_on(date("2026-01-31"), 1).to_string(), "2026-01-31..2026-01-31");
        assert_eq!(DateWindow::ending_on(date("2026-01-31"), 0).to_string(), "2026-01-31..2026-01-31");
    }

    #[test]
    fn parse_reports_what_is_wrong() {
        assert_eq!(window("2026-01-01..2026-01-31").to_string(), "2026-01-01..2026-01-31");
        let error = |text: &str| text.parse::<DateWindow>().unwrap_err().to_string();
        assert!(error("2026-01-01").contains("expected a date window as START..END"));
        assert!(error("2026-01-01..yesterday").contains("'yesterday' in date window is not a date"));
        assert!(error("2026-01-31..2026-01-01").contains("before it starts"));
    }

    #[test]
    fn serde_checks_the_order() {
        let parsed: DateWindow = serde_json::from_str(r#"{"start":"2026-01-01","end":"2026-01-02"}"#).unwrap();
        assert_eq!(parsed.days(), 2);
        assert!(serde_json::from_str::<DateWindow>(r#"{"start":"2026-01-02","end":"2026-01-01"}"#).is_err());
    }
}
