//! The tasks of an orchestrated run: what kind each is (`task_instances.kind`), how its id is spelled
//! and read back ([`TaskId`]), and the retry defaults every task starts from.
//!
//! The orchestrator builds ids with [`TaskId`]'s `Display`; whoever reads `task_instances` (the web
//! server, the CLI) gets the parts back with its `FromStr` instead of splitting strings.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::status::{vocabulary, UnknownWordError};

vocabulary! {
    /// What runs a task, in `task_instances.kind`.
    TaskKind ("task kind") {
        /// Loads one source (one account, one date window) into the raw tables.
        Ingest = "ingest",
        /// Builds a dbt model.
        Model = "model",
        /// Loads a dbt seed.
        Seed = "seed",
        /// Runs a dbt test.
        Test = "test",
        /// Records a dbt snapshot's changes.
        Snapshot = "snapshot",
        /// Runs a dbt unit test.
        UnitTest = "unit_test",
        /// Runs `mdp check`'s monitors after everything else.
        Checks = "checks",
        /// Does nothing (benchmarks and tests of the executor).
        Noop = "noop",
    }
}

/// Retries of a failed task after its first attempt, when neither mdp.yml's `schedule:` nor the
/// command line says otherwise.
pub const DEFAULT_TASK_RETRIES: u32 = 2;
/// The delay before a task's first retry; it doubles with each further retry.
pub const DEFAULT_TASK_RETRY_DELAY: Duration = Duration::from_secs(60);
/// The longest delay between two attempts of a task.
pub const DEFAULT_TASK_MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// The identity of a task of the pipeline, as its id spells it:
///
/// - `ingest.<source>[.<account>][.<from>_<to>]` — an ingest of one source, of one account, of one
///   date window (a backfill's);
/// - a dbt node's unique id, `model.<package>.<name>`, `seed.…`, `test.…`;
/// - `checks` — the monitors.
///
/// Source names are identifiers (no dots); an account id may hold dots, and a window is recognised
/// as the last part only when both its dates parse.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TaskId {
    Ingest {
        source: String,
        account: Option<String>,
        window: Option<(NaiveDate, NaiveDate)>,
    },
    /// A dbt node of kind `model`, `seed`, `snapshot` or `test`, by its unique id.
    Node {
        kind: TaskKind,
        unique_id: String,
    },
    Checks,
}

/// The id of the monitors' task.
pub const CHECKS_TASK_ID: &str = "checks";

impl TaskId {
    /// The kind of task this id names.
    pub fn kind(&self) -> TaskKind {
        match self {
            TaskId::Ingest { .. } => TaskKind::Ingest,
            TaskId::Node { kind, .. } => *kind,
            TaskId::Checks => TaskKind::Checks,
        }
    }

    /// The source an ingest task loads.
    pub fn source(&self) -> Option<&str> {
        match self {
            TaskId::Ingest { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskId::Ingest { source, account, window } => {
                write!(f, "ingest.{source}")?;
                if let Some(account) = account {
                    write!(f, ".{account}")?;
                }
                if let Some((from, to)) = window {
                    write!(f, ".{from}_{to}")?;
                }
                Ok(())
            }
            TaskId::Node { unique_id, .. } => f.write_str(unique_id),
            TaskId::Checks => f.write_str(CHECKS_TASK_ID),
        }
    }
}

/// A string that is not the id of a pipeline task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a task id: expected `ingest.<source>[.<account>][.<from>_<to>]`, a dbt node's unique id \
     (`model.<package>.<name>`, `seed.…`, `test.…`) or `checks`"
)]
pub struct NotATaskIdError(pub String);

/// `YYYY-MM-DD_YYYY-MM-DD`.
fn parse_window(text: &str) -> Option<(NaiveDate, NaiveDate)> {
    let (from, to) = text.split_once('_')?;
    Some((from.parse().ok()?, to.parse().ok()?))
}

impl FromStr for TaskId {
    type Err = NotATaskIdError;

    fn from_str(id: &str) -> Result<Self, Self::Err> {
        let refuse = || NotATaskIdError(id.to_string());
        if id == CHECKS_TASK_ID {
            return Ok(TaskId::Checks);
        }
        let (prefix, rest) = id.split_once('.').ok_or_else(refuse)?;
        if rest.is_empty() {
            return Err(refuse());
        }
        let kind: TaskKind = prefix.parse().map_err(|_: UnknownWordError| refuse())?;
        match kind {
            TaskKind::Ingest => {
                let (source, rest) = match rest.split_once('.') {
                    Some((source, rest)) => (source, Some(rest)),
                    None => (rest, None),
                };
                if source.is_empty() {
                    return Err(refuse());
                }
                let (account, window) = match rest {
                    None => (None, None),
                    Some(rest) => match rest.rsplit_once('.') {
                        Some((account, last)) if parse_window(last).is_some() => (Some(account), parse_window(last)),
                        _ => match parse_window(rest) {
                            Some(window) => (None, Some(window)),
                            None => (Some(rest), None),
                        },
                    },
                };
                if account.is_some_and(str::is_empty) {
                    return Err(refuse());
                }
                Ok(TaskId::Ingest { source: source.to_string(), account: account.map(str::to_string), window })
            }
            TaskKind::Model | TaskKind::Seed | TaskKind::Test | TaskKind::Snapshot | TaskKind::UnitTest => {
                Ok(TaskId::Node { kind, unique_id: id.to_string() })
            }
            TaskKind::Checks | TaskKind::Noop => Err(refuse()),
        }
    }
}

impl Serialize for TaskId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TaskId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn ingest(source: &str, account: Option<&str>, window: Option<(&str, &str)>) -> TaskId {
        TaskId::Ingest {
            source: source.into(),
            account: account.map(Into::into),
            window: window.map(|(a, b)| (date(a), date(b))),
        }
    }

    #[test]
    fn ids_are_spelled_and_read_back_alike() {
        let cases = [
            ("ingest.google_ads", ingest("google_ads", None, None)),
            ("ingest.meta_ads.act_123", ingest("meta_ads", Some("act_123"), None)),
            (
                "ingest.meta_ads.act_123.2026-06-01_2026-06-07",
                ingest("meta_ads", Some("act_123"), Some(("2026-06-01", "2026-06-07"))),
            ),
            ("ingest.tiktok_ads.2026-06-01_2026-06-07", ingest("tiktok_ads", None, Some(("2026-06-01", "2026-06-07")))),
            // An account id with dots keeps them.
            ("ingest.linkedin_ads.urn.li.1.2026-06-01_2026-06-01", {
                ingest("linkedin_ads", Some("urn.li.1"), Some(("2026-06-01", "2026-06-01")))
            }),
            ("ingest.linkedin_ads.urn.li.1", ingest("linkedin_ads", Some("urn.li.1"), None)),
            (
                "model.mdp_marketing.fct_ad_performance_daily",
                TaskId::Node {
                    kind: TaskKind::Model,
                    unique_id: "model.mdp_marketing.fct_ad_performance_daily".into(),
                },
            ),
            ("seed.p.fx", TaskId::Node { kind: TaskKind::Seed, unique_id: "seed.p.fx".into() }),
            ("test.p.not_null_x.abc", TaskId::Node { kind: TaskKind::Test, unique_id: "test.p.not_null_x.abc".into() }),
            ("checks", TaskId::Checks),
        ];
        for (text, id) in cases {
            assert_eq!(text.parse::<TaskId>().as_ref(), Ok(&id), "{text}");
            assert_eq!(id.to_string(), text);
        }
        let id: TaskId = "ingest.meta_ads.7".parse().unwrap();
        assert_eq!((id.kind(), id.source()), (TaskKind::Ingest, Some("meta_ads")));
        assert_eq!("checks".parse::<TaskId>().unwrap().kind(), TaskKind::Checks);
    }

    #[test]
    fn what_is_not_a_task_id_is_refused_with_the_expected_forms() {
        for text in ["", "ingest", "ingest.", "ingest..1", "ingest.a.", "source.p.raw.x", "t1", "noop.x", "checks.x"] {
            assert!(text.parse::<TaskId>().is_err(), "{text:?} parsed");
        }
        let e = "bogus".parse::<TaskId>().unwrap_err().to_string();
        assert!(e.starts_with("`bogus` is not a task id: expected `ingest.<source>"), "{e}");
    }

    #[test]
    fn task_kinds_have_one_spelling() {
        for kind in TaskKind::ALL {
            assert_eq!(kind.as_str().parse::<TaskKind>(), Ok(*kind));
        }
        assert_eq!(TaskKind::Ingest.as_str(), "ingest");
        assert!("node".parse::<TaskKind>().is_err());
    }
}
