//! `mdp docs` (being built).

use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::cli::{GlobalArgs, DocsArgs};

pub async fn run(_global: &GlobalArgs, _args: DocsArgs) -> Result<ExitCode> {
    bail!("`mdp docs` is not built yet")
}
