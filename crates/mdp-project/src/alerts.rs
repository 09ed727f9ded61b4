//! The `alerts:` and `lineage:` sections of `mdp.yml` (built by the alerts work).

use serde::Deserialize;

/// Notifiers for failed runs and checks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {}

/// Where OpenLineage events go.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineageConfig {}
