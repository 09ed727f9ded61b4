//! `mdp docs generate`: the static documentation site of the project (models, columns, tests,
//! sources, seeds, lineage), written to `target/docs` (or `--out`). The project is loaded exactly as
//! `mdp compile` loads it (an mdp project includes the `mdp_marketing` package); nothing connects to
//! the warehouse.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use mdp_transform::docs::{render_site, DocsOptions};
use mdp_transform::manifest::ResourceType;

use crate::cli::{DocsArgs, DocsCommand, GlobalArgs, TransformArgs};

pub async fn run(global: &GlobalArgs, args: DocsArgs) -> Result<ExitCode> {
    match args.command {
        DocsCommand::Generate { out, vars, profiles_dir } => generate(global, out, vars, profiles_dir),
    }
}

fn generate(
    global: &GlobalArgs,
    out: Option<PathBuf>,
    vars: Option<String>,
    profiles_dir: Option<PathBuf>,
) -> Result<ExitCode> {
    let clock = Instant::now();
    let load_args = TransformArgs { vars, profiles_dir, ..Default::default() };
    let parsed = super::transform::load(global, &load_args)?;
    let parsed_ms = clock.elapsed().as_millis();
    let out = out.unwrap_or_else(|| parsed.project.root.join(&parsed.project.target_path).join("docs"));

    let render_clock = Instant::now();
    let files =
        render_site(&parsed, &DocsOptions { base_href: String::new(), project_title: parsed.project.name.clone() })
            .context("cannot render the docs site")?;
    let render_ms = render_clock.elapsed().as_millis();

    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let stale = previous_pages(&out);
    let written: HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    for file in &files {
        let path = out.join(&file.path);
        std::fs::write(&path, &file.content).with_context(|| format!("cannot write {}", path.display()))?;
    }
    // Pages of nodes that are gone (a renamed model) would otherwise linger with stale links.
    for page in stale.iter().filter(|p| !written.contains(p.as_str())) {
        let _ = std::fs::remove_file(out.join(page));
    }

    let count = |t: ResourceType| parsed.manifest.nodes.values().filter(|n| n.resource_type == t).count();
    let pages = files.iter().filter(|f| f.path.ends_with(".html")).count();
    let shown = display_path(&out);
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    println!(
        "wrote the docs of {} to {shown}: {} ({}, {}, {}, {} listed) and docs.json, in {} ms (parse {parsed_ms} ms, render {render_ms} ms)",
        parsed.project.name,
        plural(pages, "page"),
        plural(count(ResourceType::Model), "model"),
        plural(count(ResourceType::Source), "source table"),
        plural(count(ResourceType::Seed), "seed"),
        plural(count(ResourceType::Test), "test"),
        clock.elapsed().as_millis(),
    );
    println!(
        "open {} in a browser, or run `mdp serve` and browse /docs/",
        Path::new(&shown).join("index.html").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The node pages a previous `mdp docs generate` wrote into `out` (from its docs.json), so pages of
/// removed nodes can be deleted without touching anything else in the folder.
fn previous_pages(out: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(out.join("docs.json")) else { return Vec::new() };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else { return Vec::new() };
    json["nodes"]
        .as_object()
        .map(|nodes| {
            nodes
                .values()
                .filter_map(|n| n["page"].as_str())
                // Only plain file names of this folder, whatever the file says.
                .filter(|p| p.ends_with(".html") && !p.contains(['/', '\\']) && !p.starts_with('.'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `out` relative to the working directory when it is inside it.
fn display_path(out: &Path) -> String {
    let absolute = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    match std::env::current_dir().ok().and_then(|cwd| absolute.strip_prefix(&cwd).ok().map(Path::to_path_buf)) {
        Some(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => absolute.display().to_string(),
    }
}
