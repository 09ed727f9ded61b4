//! `mdp compile | run | test | seed | build | ls`: the transformation engine on a dbt-compatible project.
//!
//! Which warehouse: the project's `profiles.yml` profile (dbt's rules: `--profiles-dir`,
//! `DBT_PROFILES_DIR`, the project folder, `~/.dbt`; `--target` picks a profile target). A project
//! with an `mdp.yml` but no `profiles.yml` runs on mdp.yml's warehouse target instead.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use indexmap::IndexMap;
use mdp_transform::manifest::{Node, ResourceType};
use mdp_transform::run::{Command, NodeResult, NodeStatus, RunObserver, RunOptions};
use mdp_transform::selector::{select, Selection};
use mdp_transform::{artifacts, LoadOptions, Parsed, Target, TargetKind};
use mdp_warehouse::{connect, Access};

use crate::cli::{GlobalArgs, LsArgs, LsOutput, TransformArgs};
use crate::context::ProjectContext;
use crate::monitoring;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Compile,
    Run,
    Test,
    Seed,
    Snapshot,
    Build,
}

fn parse_vars(vars: Option<&str>) -> Result<IndexMap<String, serde_json::Value>> {
    let Some(text) = vars else { return Ok(IndexMap::new()) };
    let value: serde_yaml::Value =
        serde_yaml::from_str(text).with_context(|| format!("--vars {text:?} is not YAML or JSON"))?;
    let json = serde_json::to_value(value)?;
    match json {
        serde_json::Value::Object(map) => Ok(map.into_iter().collect()),
        serde_json::Value::Null => Ok(IndexMap::new()),
        _ => anyhow::bail!("--vars must be a mapping, e.g. --vars '{{start_date: 2026-01-01}}'"),
    }
}

/// Load and parse the project, printing parse warnings.
pub fn load(global: &GlobalArgs, args: &TransformArgs) -> Result<Parsed> {
    let mut implicit_project_name = None;
    let mut packages = Vec::new();
    let fallback_target = if global.project_dir.join("mdp.yml").is_file() {
        let ctx = ProjectContext::load(global)?;
        implicit_project_name = Some(ctx.project.config.name.to_string());
        packages.extend(marketing_package(&ctx.project)?);
        // The target's `schema` (DuckDB: main, Postgres: public by default): models without a custom
        // schema go there, the marketing package's to `<schema>_staging`, `<schema>_marts`, ….
        let (_, target_config) = ctx.project.target(global.target.as_deref())?;
        let schema = target_config.schema().to_string();
        Some(Target {
            profile_name: "mdp".into(),
            name: ctx.target_name.clone(),
            schema,
            database: ctx.target_name.clone(),
            threads: 4,
            kind: TargetKind::Preset(ctx.options.clone()),
        })
    } else {
        None
    };
    let options = LoadOptions {
        project_dir: global.project_dir.clone(),
        profiles_dir: args.profiles_dir.clone(),
        target: global.target.clone(),
        vars: parse_vars(args.vars.as_deref())?,
        fallback_target,
        implicit_project_name,
        packages,
    };
    let parsed = mdp_transform::load(&options)?;
    for w in &parsed.warnings {
        eprintln!("warning: {w}");
    }
    Ok(parsed)
}

/// mdp's marketing models for an mdp project's enabled sources (none when it has none).
pub fn marketing_package(project: &mdp_project::Project) -> Result<Option<mdp_transform::parse::EmbeddedPackage>> {
    let sources: Vec<mdp_marketing::SourceTables> = project
        .config
        .sources
        .iter()
        .filter(|s| s.enabled)
        .map(|s| source_tables(s.name.as_str(), s.platform))
        .collect();
    let currency = project.config.reporting.currency.to_string();
    Ok(mdp_marketing::package(&sources, &currency, mdp_orchestrator::ingest::RAW_SCHEMA)?)
}

/// A source's raw tables: `accounts` and its connector's streams.
pub fn source_tables(name: &str, platform: mdp_core::Platform) -> mdp_marketing::SourceTables {
    mdp_marketing::SourceTables {
        name: name.to_string(),
        platform,
        streams: std::iter::once("accounts")
            .chain(mdp_sources::kind(platform).streams.iter().map(|spec| spec.name))
            .map(str::to_string)
            .collect(),
    }
}

fn selection(args: &TransformArgs, resource_types: Vec<ResourceType>) -> Result<Selection> {
    let state = match &args.state {
        Some(dir) => Some(std::sync::Arc::new(mdp_transform::state::State::load(dir)?)),
        None => None,
    };
    Ok(Selection {
        select: args.select.clone(),
        exclude: args.exclude.clone(),
        resource_types,
        state,
        ..Selection::all()
    })
}

pub fn ls(global: &GlobalArgs, args: LsArgs) -> Result<ExitCode> {
    let parsed = load(global, &args.common)?;
    let mut types = Vec::new();
    for t in &args.resource_type {
        types.push(
            ResourceType::parse(t)
                .with_context(|| format!("--resource-type {t}: expected model, seed, test or source"))?,
        );
    }
    let ids = select(&parsed.manifest, &parsed.graph, &selection(&args.common, types)?)?;
    let mut out = std::io::stdout().lock();
    for id in ids {
        let node = &parsed.manifest.nodes[&id];
        let line = match args.output {
            LsOutput::Selector => match node.resource_type {
                ResourceType::Source => format!("source:{}", node.fqn.join(".")),
                _ => node.fqn.join("."),
            },
            LsOutput::Name => node.name.clone(),
            LsOutput::Path => node.original_file_path.display().to_string(),
            LsOutput::Json => serde_json::json!({
                "name": node.name, "resource_type": node.resource_type.as_str(), "package_name": node.package,
                "original_file_path": node.original_file_path, "unique_id": node.unique_id,
                "config": node.config.to_json(), "depends_on": {"nodes": node.depends_on},
            })
            .to_string(),
        };
        writeln!(out, "{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `mdp deps`: link the `local:` packages of packages.yml into the install path; name the hub and
/// git packages that are missing (mdp has no client for dbt's package hub or git).
pub fn deps(global: &GlobalArgs) -> Result<ExitCode> {
    use mdp_transform::packages::{install_local, DepOutcome};
    let root = &global.project_dir;
    let project = if root.join("dbt_project.yml").is_file() {
        mdp_transform::DbtProject::load(root)?
    } else if root.join("mdp.yml").is_file() {
        let ctx = ProjectContext::load(global)?;
        mdp_transform::DbtProject::implicit(root, ctx.project.config.name.as_ref())
    } else {
        anyhow::bail!(
            "no dbt_project.yml or mdp.yml in {}: run this in a project folder, or pass --project-dir",
            root.display()
        );
    };
    let outcomes = install_local(&project)?;
    if outcomes.is_empty() {
        println!("no packages declared (packages.yml or dependencies.yml `packages:`)");
        return Ok(ExitCode::SUCCESS);
    }
    let mut missing = 0;
    for outcome in &outcomes {
        match outcome {
            DepOutcome::Installed { name, from } => {
                println!("installed {name} from {} into {}/{name}", from.display(), project.packages_install_path)
            }
            DepOutcome::UpToDate { name } => println!("{name}: installed"),
            DepOutcome::NeedsDbtDeps { spec, location } => {
                missing += 1;
                eprintln!(
                    "{location}: `{spec}` is not installed: mdp installs only local: packages (it has no client for \
                     dbt's package hub or git); run `dbt deps` where there is network, or copy the package into {}/",
                    project.packages_install_path
                );
            }
        }
    }
    Ok(if missing > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

pub async fn run(global: &GlobalArgs, verb: Verb, args: TransformArgs) -> Result<ExitCode> {
    let clock = Instant::now();
    let mut parsed = load(global, &args)?;
    let target_dir = parsed.project.root.join(&parsed.project.target_path);
    let selection = selection(&args, Vec::new())?;
    let ids = select(&parsed.manifest, &parsed.graph, &selection)?;
    if ids.is_empty() && selection.state.is_some() {
        eprintln!(
            "nothing to do: the selection matches no node (nothing changed, or nothing failed, since --state's run)"
        );
    }
    if let (true, Some(state)) = (args.defer, &selection.state) {
        // What this target has built: a ref to anything else reads the state run's relation.
        let existing = match connect(&parsed.target.connect_options(), Access::Read).await {
            Ok(opened) => {
                let existing =
                    mdp_transform::run::existing_relations(opened.warehouse.as_ref()).await.unwrap_or_default();
                let _ = opened.warehouse.close().await;
                existing
            }
            Err(_) => Default::default(),
        };
        let deferred = mdp_transform::state::defer(&mut parsed, state, &ids, &existing, args.favor_state);
        eprintln!("deferring {} unselected nodes to the relations of {}", deferred.len(), state.dir.display());
    }
    let threads = args.threads.unwrap_or(parsed.target.threads).max(1);
    let options = RunOptions {
        command: match verb {
            Verb::Compile | Verb::Run => Command::Run,
            Verb::Test => Command::Test,
            Verb::Seed => Command::Seed,
            Verb::Snapshot => Command::Snapshot,
            Verb::Build => Command::Build,
        },
        threads,
        full_refresh: args.full_refresh,
        target_dir: Some(target_dir.clone()),
    };
    let connect_options = parsed.target.connect_options();
    let counts = count_kinds(&parsed, &ids);
    eprintln!(
        "mdp {}: project {} on {} target `{}` ({}): {counts}; parsed in {} ms",
        verb_name(verb),
        parsed.project.name,
        parsed.target.type_name(),
        parsed.target.name,
        describe(&parsed.target),
        clock.elapsed().as_millis()
    );
    artifacts::write(&target_dir, "manifest.json", &artifacts::manifest_json(&parsed))
        .with_context(|| format!("cannot write {}", target_dir.display()))?;

    if verb == Verb::Compile {
        // Compile needs to know which incremental models exist; a database that is not there yet
        // simply has none. Nodes whose Jinja queries the warehouse are compiled against it, as dbt
        // compile does (what they query must exist: a `build` before).
        let (opened, unopened) = match connect(&connect_options, Access::Read).await {
            Ok(opened) => (Some(opened), String::new()),
            Err(e) => (None, e.to_string()),
        };
        let existing = match &opened {
            Some(opened) => mdp_transform::run::existing_relations(opened.warehouse.as_ref()).await.unwrap_or_default(),
            None => Default::default(),
        };
        let compilable: Vec<String> = ids
            .iter()
            .filter(|id| matches!(parsed.manifest.nodes[*id].resource_type, ResourceType::Model | ResourceType::Test))
            .cloned()
            .collect();
        let mut compiled = mdp_transform::run::compile_nodes(&parsed, &compilable, &existing, &options);
        for id in compilable.iter().filter(|id| parsed.manifest.nodes[*id].introspective) {
            let result = match &opened {
                Some(opened) => mdp_transform::run::compile_with_warehouse(
                    &parsed,
                    opened.warehouse.as_ref(),
                    id,
                    &existing,
                    &options,
                ),
                None => Err(format!(
                    "{}: its Jinja queries the warehouse, and {} cannot be opened ({unopened}); build what it \
                     reads first",
                    parsed.manifest.nodes[id].original_file_path.display(),
                    describe(&parsed.target)
                )),
            };
            compiled.insert(id.clone(), result);
        }
        if let Some(opened) = opened {
            let _ = opened.warehouse.close().await;
        }
        mdp_transform::run::write_files(&mdp_transform::run::compiled_files(&parsed, &compiled, &target_dir));
        let mut errors = 0;
        for id in &compilable {
            if let Some(Err(e)) = compiled.get(id) {
                errors += 1;
                eprintln!("error: {e}");
            }
        }
        let models: Vec<&String> =
            compilable.iter().filter(|id| parsed.manifest.nodes[*id].resource_type == ResourceType::Model).collect();
        if models.len() == 1 && !args.select.is_empty() {
            if let Some(Ok(c)) = compiled.get(models[0]) {
                println!("{}", c.sql);
            }
        }
        eprintln!(
            "compiled {} nodes into {} in {} ms",
            compilable.len() - errors,
            target_dir.join("compiled").display(),
            clock.elapsed().as_millis()
        );
        return Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }

    let session = mdp_orchestrator::RunSession::start(&connect_options, verb_name(verb))
        .await
        .with_context(|| format!("cannot open {} for writing", describe(&parsed.target)))?;
    // In an mdp project, runs are watched: alerts after the run, lineage events for its models.
    let project = match global.project_dir.join("mdp.yml").is_file() {
        true => Some(ProjectContext::load(global)?.project),
        false => None,
    };
    let observer = Console;
    let started = chrono::Utc::now();
    let results = mdp_transform::run::execute(&parsed, session.warehouse.as_ref(), &ids, &options, &observer).await;
    let results = match results {
        Ok(r) => r,
        Err(e) => {
            let error = e.to_string();
            let _ = match &project {
                Some(project) => monitoring::finish_run(session, project, Some(&error)).await,
                None => session.finish(Some(&error)).await.map_err(Into::into),
            };
            return Err(e.into());
        }
    };
    let run_args = serde_json::json!({
        "select": args.select, "exclude": args.exclude, "threads": threads, "full_refresh": args.full_refresh,
        "target": parsed.target.name, "project_dir": parsed.project.root,
    });
    artifacts::write(
        &target_dir,
        "run_results.json",
        &artifacts::run_results_json(&parsed, options.command, &results, run_args),
    )?;
    // Tests feed the same `check_results` as `mdp check`'s monitors (kind `test` / `reconciliation`).
    let test_checks = mdp_monitor::checks::transform_tests::outcomes(&parsed, &results.results);
    if let Err(e) = mdp_monitor::checks::record(session.warehouse.as_ref(), session.run_id.as_str(), &test_checks).await
    {
        eprintln!("warning: cannot record the test results in the check results: {e}");
    }
    let failed: Vec<&NodeResult> =
        results.results.iter().filter(|r| matches!(r.status, NodeStatus::Error | NodeStatus::Fail)).collect();
    let summary = format!(
        "PASS={} WARN={} ERROR={} SKIP={} TOTAL={}",
        results.count(NodeStatus::Success) + results.count(NodeStatus::Pass),
        results.count(NodeStatus::Warn),
        results.count(NodeStatus::Error) + results.count(NodeStatus::Fail),
        results.count(NodeStatus::Skipped),
        results.results.len()
    );
    let outcome = if failed.is_empty() { None } else { Some(format!("{} node(s) failed: {summary}", failed.len())) };
    match &project {
        Some(project) => {
            let emitter = monitoring::lineage_emitter(project);
            let run_id = session.run_id.to_string();
            if let Some(lineage) = monitoring::run_lineage(
                emitter.as_ref(),
                project,
                session.warehouse.as_ref(),
                &connect_options,
                &run_id,
                verb_name(verb),
            ) {
                // Reported once the run is over, with each node's own start and end times.
                let lineage = lineage.with_project(&parsed);
                lineage.run_started(started);
                for r in &results.results {
                    let error = match r.status {
                        NodeStatus::Skipped => continue,
                        NodeStatus::Error | NodeStatus::Fail => Some(r.message.as_str()),
                        NodeStatus::Success | NodeStatus::Pass | NodeStatus::Warn => None,
                    };
                    lineage.task_started(&r.unique_id, r.started_at);
                    lineage.task_finished(&r.unique_id, r.completed_at, error).await;
                }
                lineage.run_finished(chrono::Utc::now(), outcome.as_deref());
            }
            monitoring::finish_run(session, project, outcome.as_deref())
                .await
                .context("cannot record the run's outcome")?;
            monitoring::finish_lineage(emitter).await;
        }
        None => session.finish(outcome.as_deref()).await.context("cannot record the run's outcome")?,
    }
    if !failed.is_empty() {
        eprintln!("\nCompleted with {} error(s):", failed.len());
        for r in &failed {
            eprintln!("\n{}: {}", r.unique_id, r.message);
        }
        let raw_missing = failed.iter().any(|r| {
            r.unique_id.starts_with(&format!("model.{}.stg_", mdp_marketing::PACKAGE_NAME))
                && r.message.contains("does not exist")
        });
        if raw_missing {
            eprintln!(
                "\nhint: the marketing models read the raw tables `mdp ingest` loads; run `mdp ingest` first (or \
                 disable the sources you do not ingest in mdp.yml)"
            );
        }
    }
    eprintln!("\nDone in {:.2}s. {summary}", clock.elapsed().as_secs_f64());
    Ok(if results.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn verb_name(verb: Verb) -> &'static str {
    match verb {
        Verb::Compile => "compile",
        Verb::Run => "run",
        Verb::Test => "test",
        Verb::Seed => "seed",
        Verb::Snapshot => "snapshot",
        Verb::Build => "build",
    }
}

fn describe(target: &Target) -> String {
    format!("{:?}", target.kind)
}

fn count_kinds(parsed: &Parsed, ids: &[String]) -> String {
    let count = |k: ResourceType| ids.iter().filter(|id| parsed.manifest.nodes[*id].resource_type == k).count();
    format!(
        "{} models, {} seeds, {}{} tests, {} sources selected",
        count(ResourceType::Model),
        count(ResourceType::Seed),
        match count(ResourceType::Snapshot) {
            0 => String::new(),
            n => format!("{n} snapshots, "),
        },
        count(ResourceType::Test),
        count(ResourceType::Source)
    )
}

/// dbt-style progress lines on stderr (one `eprintln!` per line, so lines never interleave).
struct Console;

impl RunObserver for Console {
    fn finished(&self, index: usize, total: usize, node: &Node, result: &NodeResult) {
        let what = match node.resource_type {
            ResourceType::Model => format!("{} model {}", node.config.materialized, relation(node)),
            ResourceType::Seed => format!("seed file {}", relation(node)),
            ResourceType::Snapshot => format!("snapshot {}", relation(node)),
            ResourceType::Test if node.is_unit_test() => {
                format!("unit test {}::{}", node.unit_test.as_ref().map_or("", |u| u.model.as_str()), node.name)
            }
            ResourceType::Test => format!("test {}", node.name),
            ResourceType::Source => format!("source {}", node.name),
        };
        let status = match result.status {
            NodeStatus::Success => "OK",
            NodeStatus::Pass => "PASS",
            NodeStatus::Warn => "WARN",
            NodeStatus::Fail => "FAIL",
            NodeStatus::Error => "ERROR",
            NodeStatus::Skipped => "SKIP",
        };
        let detail = match result.status {
            NodeStatus::Success | NodeStatus::Pass => result.message.lines().next().unwrap_or("").to_string(),
            NodeStatus::Warn | NodeStatus::Fail => format!("{} failing rows", result.failures.unwrap_or(0)),
            NodeStatus::Error => "ERROR".into(),
            NodeStatus::Skipped => "SKIP".into(),
        };
        let width = 70usize.saturating_sub(what.len());
        eprintln!(
            "{index:>4} of {total} {status:<5} {what} {} [{detail} in {:.2}s]",
            ".".repeat(width.max(3)),
            result.execution_time
        );
    }
}

fn relation(node: &Node) -> String {
    node.relation.as_ref().map(|r| format!("{}.{}", r.schema, r.identifier)).unwrap_or_else(|| node.name.clone())
}
