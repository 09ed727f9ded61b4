//! `mdp check` (being built).

use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::cli::{GlobalArgs, CheckArgs};

pub async fn run(_global: &GlobalArgs, _args: CheckArgs) -> Result<ExitCode> {
    bail!("`mdp check` is not built yet")
}
