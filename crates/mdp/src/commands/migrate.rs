//! `mdp migrate`: create or upgrade the metadata schema.

use anyhow::Result;
use mdp_warehouse::meta::{current_version, Metadata};

use crate::cli::GlobalArgs;
use crate::context::ProjectContext;

pub async fn run(global: &GlobalArgs) -> Result<()> {
    let context = ProjectContext::load(global)?;
    // Opening a writer session migrates; the run is recorded like any other write.
    let session = context.start_run("migrate").await?;
    let version = Metadata::new(session.warehouse.as_ref()).version().await;
    let described = session.warehouse.describe();
    session.finish(None).await?;
    let version = version?.unwrap_or(0);
    println!("metadata schema of {described} is at version {version} (this mdp: {})", current_version());
    Ok(())
}
