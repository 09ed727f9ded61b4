//! The status words mdp stores and shows: how a run ended (`runs.status`) and what became of each task of
//! an orchestrated run (`task_instances.state`).
//!
//! Each vocabulary is one enum with one spelling per word ([`as_str`](RunStatus::as_str), `FromStr`,
//! `Display`, serde): the orchestrator writes these words, the alerts and the web server read them back,
//! and none of them spells a word by hand. Check statuses (`pass`, `warn`, …) live with the monitors
//! (`mdp_monitor::checks::CheckStatus`), dbt's node statuses with the transform engine.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A word that is not part of a status vocabulary. Its message lists the words that are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {vocabulary} `{given}`; expected one of {expected}")]
pub struct UnknownWordError {
    pub vocabulary: &'static str,
    pub given: String,
    pub expected: String,
}

/// An enum of words: the variants, their one spelling, `ALL`, `as_str`, `Display`, `FromStr`.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $word:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $word)] $variant, )+
        }

        impl $name {
            /// Every word of the vocabulary.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word as stored and shown.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownWordError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $name::ALL.iter().copied().find(|v| v.as_str() == text).ok_or_else(|| UnknownWordError {
                    vocabulary: $what,
                    given: text.to_string(),
                    expected: $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "),
                })
            }
        }
    };
}
pub(crate) use vocabulary;

vocabulary! {
    /// How a run ended, in `runs.status`.
    RunStatus ("run status") {
        Running = "running",
        Success = "success",
        Failed = "failed",
    }
}

vocabulary! {
    /// The state of a task of an orchestrated run, in `task_instances.state`: `running` while an attempt
    /// runs, then one final state.
    TaskState ("task state") {
        Running = "running",
        Success = "success",
        Failed = "failed",
        /// Not run: an upstream task failed.
        UpstreamFailed = "upstream_failed",
        /// Not run: the run was cancelled first.
        Skipped = "skipped",
    }
}

impl TaskState {
    /// Whether the task has ended (every state but `running`).
    pub fn is_final(self) -> bool {
        self != TaskState::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_parses_back_to_itself_and_serializes_as_stored() {
        for status in RunStatus::ALL {
            assert_eq!(status.as_str().parse::<RunStatus>(), Ok(*status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        for state in TaskState::ALL {
            assert_eq!(state.to_string().parse::<TaskState>(), Ok(*state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        assert_eq!(TaskState::UpstreamFailed.as_str(), "upstream_failed");
    }

    #[test]
    fn an_unknown_word_is_refused_with_the_words_that_exist() {
        let e = "succeeded".parse::<RunStatus>().unwrap_err();
        assert_eq!(e.to_string(), "unknown run status `succeeded`; expected one of running, success, failed");
        assert!("Failed".parse::<TaskState>().is_err(), "words are case-sensitive, as stored");
    }
}
