//! Names for pipeline runs.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The id of one mdp run (an ingest, a build, a backfill). Written into every raw row as `_mdp_run_id`
/// and into the run history.
///
/// New ids are UUID v7, so they sort by creation time, which keeps run-history listings and raw-table
/// scans in chronological order. Ids read back from the warehouse are taken as they are.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(String);

impl RunId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        RunId(uuid::Uuid::now_v7().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RunId {
    fn default() -> Self {
        RunId::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl From<String> for RunId {
    fn from(id: String) -> Self {
        RunId(id)
    }
}

impl FromStr for RunId {
    type Err = Infallible;

    fn from_str(id: &str) -> Result<Self, Self::Err> {
        Ok(RunId(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_unique_uuids_that_sort_by_creation() {
        let first = RunId::new();
        let second = RunId::new();
        assert_ne!(first, second);
        assert!(first < second, "{first} should sort before {second}");
        let parsed = uuid::Uuid::parse_str(first.as_str()).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
    }

    #[test]
    fn round_trips_through_strings() {
        let id: RunId = "run-42".parse().unwrap();
        assert_eq!(id.to_string(), "run-42");
        assert_eq!(RunId::from("run-42".to_owned()), id);
    }
}
