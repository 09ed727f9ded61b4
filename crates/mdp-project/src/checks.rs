//! The `checks:` section of `mdp.yml` (built by the checks work).

use serde::Deserialize;

/// Settings of the monitors `mdp check` runs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksConfig {}
