//! What the scheduler runs now: the fire times due since the last one run, per a [`Catchup`] policy.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::{CronSchedule, MAX_CATCHUP_RUNS, ON_TIME_SECONDS};

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
