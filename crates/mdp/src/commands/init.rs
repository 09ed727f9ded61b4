//! `mdp init DIR`: scaffold a new project.

use anyhow::{Context, Result};

use crate::cli::InitArgs;

pub fn run(args: InitArgs) -> Result<()> {
    let name = args.name.unwrap_or_else(|| mdp_project::project_name_for(&args.dir));
    let created = mdp_project::scaffold(&args.dir, &name)
        .with_context(|| format!("cannot create a project in {}", args.dir.display()))?;
    println!("created project '{name}' in {}:", args.dir.display());
    for path in &created {
        println!("  {}", path.display());
    }
    println!(
        "\nnext:\n  cd {}\n  mdp doctor        # check the project\n  mdp migrate       # create the warehouse and its metadata",
        args.dir.display()
    );
    Ok(())
}
