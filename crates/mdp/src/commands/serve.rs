//! `mdp serve` (being built).

use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::cli::{GlobalArgs, ServeArgs};

pub async fn run(_global: &GlobalArgs, _args: ServeArgs) -> Result<ExitCode> {
    bail!("`mdp serve` is not built yet")
}
