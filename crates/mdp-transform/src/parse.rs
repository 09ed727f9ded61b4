//! Parse a project into a [`Manifest`]: find the files, read the properties (`*.yml`), render every
//! model and test once to learn its `ref`/`source`/`config` calls, resolve configs and relations,
//! and check the graph.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use minijinja::Value;
use serde_json::Value as Json;

use crate::config::NodeConfig;
use crate::error::{Result, TransformError};
use crate::graph::Graph;
use crate::jinja::{JinjaEnv, Phase, Relation, RenderScope, Resolver, RunStartedAt};
use crate::manifest::{
    ColumnDoc, DocBlock, MacroDef, Manifest, Node, RelationName, ResourceType, SourceDetails, TestMetadata,
};
use crate::profiles::Target;
use crate::project::{apply_tree, yaml_to_json, DbtProject};

/// A parsed project, ready to compile.
#[derive(Debug)]
pub struct Parsed {
    pub project: DbtProject,
    pub target: Target,
    pub manifest: Manifest,
    pub graph: Graph,
    pub jinja: JinjaEnv,
    /// The vars of the root project's nodes (and mdp's embedded packages').
    pub vars: Arc<IndexMap<String, Json>>,
    /// The vars of an installed package's nodes: its own defaults under the root project's.
    pub package_vars: HashMap<String, Arc<IndexMap<String, Json>>>,
    /// Context values shared by every node (target, run_started_at, …).
    pub base_context: BTreeMap<String, Value>,
    pub resolver: Arc<Resolver>,
    pub invocation_id: String,
    pub run_started_at: chrono::DateTime<chrono::Utc>,
    /// Non-fatal findings (unknown config keys, unsupported files skipped).
    pub warnings: Vec<String>,
    /// Seeds of embedded packages: path as in the manifest → CSV text.
    pub embedded: HashMap<PathBuf, String>,
}

impl Parsed {
    /// The vars `var()` sees in a node of `package`.
    pub fn vars_for(&self, package: &str) -> Arc<IndexMap<String, Json>> {
        self.package_vars.get(package).unwrap_or(&self.vars).clone()
    }

    /// The text of an embedded package's seed (`None`: read the file from the project).
    pub fn embedded_file(&self, path: &Path) -> Option<&str> {
        self.embedded.get(path).map(String::as_str)
    }
}

/// A package shipped inside the binary (mdp's marketing models): a dbt project whose files are
/// text, parsed beside the user's project. The user's project configures it under its name in
/// `models:` / `seeds:` / `vars:`, and a model or seed of the user's with the same name replaces the
/// package's (the package's own tests of it are dropped with it).
#[derive(Debug, Clone)]
pub struct EmbeddedPackage {
    /// Its `dbt_project.yml`: name, paths, config trees, var defaults.
    pub project: DbtProject,
    /// Path relative to the package root → contents.
    pub files: BTreeMap<PathBuf, String>,
}

/// Where a package's files are: the user's project on disk, an installed package on disk, or an
/// embedded package.
struct Unit<'a> {
    project: &'a DbtProject,
    embedded: Option<&'a BTreeMap<PathBuf, String>>,
    /// An installed package's folder relative to the root project (`dbt_packages/dbt_utils`).
    installed_at: Option<&'a Path>,
}

impl Unit<'_> {
    fn find(&self, dir: &str, extensions: &[&str]) -> Result<Vec<PathBuf>> {
        match self.embedded {
            None => find_files(&self.project.root, dir, extensions),
            Some(files) => Ok(files
                .keys()
                .filter(|f| {
                    f.starts_with(dir)
                        && f.extension().and_then(|e| e.to_str()).is_some_and(|e| extensions.contains(&e))
                })
                .cloned()
                .collect()),
        }
    }

    fn read(&self, file: &Path) -> Result<String> {
        match self.embedded {
            None => read(&self.project.root, file),
            Some(files) => files.get(file).cloned().ok_or_else(|| {
                TransformError::io(self.shown(file), std::io::Error::from(std::io::ErrorKind::NotFound))
            }),
        }
    }

    /// The path a file is known by (manifest, errors, template names): an embedded package's files
    /// are prefixed with its name, so they never collide with the user's.
    fn shown(&self, file: &Path) -> PathBuf {
        match (self.embedded, self.installed_at) {
            (Some(_), _) => Path::new(&self.project.name).join(file),
            (None, Some(at)) => at.join(file),
            (None, None) => file.to_path_buf(),
        }
    }
}

/// Parse the project at `project.root` for `target`, with `--vars` overrides.
pub fn parse(project: DbtProject, target: Target, cli_vars: IndexMap<String, Json>) -> Result<Parsed> {
    parse_with_packages(project, Vec::new(), target, cli_vars)
}

/// Parse the project with embedded packages, and the dbt packages it has installed, beside it.
pub fn parse_with_packages(
    project: DbtProject,
    packages: Vec<EmbeddedPackage>,
    target: Target,
    cli_vars: IndexMap<String, Json>,
) -> Result<Parsed> {
    let invocation_id = uuid::Uuid::new_v4().to_string();
    let run_started_at = chrono::Utc::now();
    let installed = crate::packages::load(&project)?;
    for pkg in &installed {
        if packages.iter().any(|e| e.project.name == pkg.project.name) {
            return Err(TransformError::config(
                pkg.shown_root.join("dbt_project.yml"),
                format!("package `{}` is built into mdp; remove the installed copy", pkg.project.name),
            ));
        }
    }
    // Package defaults, then the project's vars (global and under the package's name), then --vars.
    let mut vars = IndexMap::new();
    for pkg in &packages {
        vars.extend(pkg.project.vars_for(&pkg.project.name));
        vars.extend(project.vars_for(&pkg.project.name));
    }
    vars.extend(project.vars_for(&project.name));
    vars.extend(cli_vars.clone());
    let vars = Arc::new(vars);
    // An installed package's nodes see its own vars, under the root project's (as dbt).
    let package_vars: HashMap<String, Arc<IndexMap<String, Json>>> = installed
        .iter()
        .map(|pkg| {
            let name = &pkg.project.name;
            let mut own = pkg.project.vars_for(name);
            own.extend(project.vars_for(name));
            own.extend(cli_vars.clone());
            (name.clone(), Arc::new(own))
        })
        .collect();
    let dialect = target.dialect();

    let mut base = BTreeMap::new();
    base.insert("target".to_string(), Value::from_serialize(target.to_context()));
    base.insert("schema".to_string(), Value::from(target.schema.clone()));
    base.insert("database".to_string(), Value::from(target.database.clone()));
    base.insert("project_name".to_string(), Value::from(project.name.clone()));
    base.insert("invocation_id".to_string(), Value::from(invocation_id.clone()));
    base.insert("run_started_at".to_string(), Value::from_object(RunStartedAt(run_started_at)));
    base.insert("dbt_version".to_string(), Value::from("1.10.0"));
    base.insert("mdp_version".to_string(), Value::from(env!("CARGO_PKG_VERSION")));
    base.insert("execute".to_string(), Value::from(false));
    // dbt's `flags` (the command is known when compiling; parsing is for every command).
    base.insert("flags".to_string(), minijinja::context! { WHICH => "run", FULL_REFRESH => false });

    let mut jinja = JinjaEnv::new();
    jinja.set_root_package(&project.name);
    for pkg in &packages {
        jinja.add_package(&pkg.project.name, true);
    }
    for pkg in &installed {
        jinja.add_package(&pkg.project.name, false);
    }
    jinja.set_dispatch(project.dispatch.clone());
    let mut p = Parser {
        package: project.name.clone(),
        root: project.name.clone(),
        jinja,
        manifest: Manifest { project_name: project.name.clone(), ..Default::default() },
        vars: vars.clone(),
        package_vars: package_vars.clone(),
        dialect,
        base: base.clone(),
        warnings: Vec::new(),
        target_schema: target.schema.clone(),
        target_database: target.database.clone(),
        custom_naming: false,
        embedded: HashMap::new(),
    };
    // Packages' macros first: a `{% call(…) m() %}` block needs `m` read before it.
    let mut units: Vec<Unit<'_>> = packages
        .iter()
        .map(|pkg| Unit { project: &pkg.project, embedded: Some(&pkg.files), installed_at: None })
        .chain(installed.iter().map(|pkg| Unit {
            project: &pkg.project,
            embedded: None,
            installed_at: Some(&pkg.shown_root),
        }))
        .collect();
    units.push(Unit { project: &project, embedded: None, installed_at: None });

    // Macros first: models and tests may call them.
    let mut custom_materializations: HashMap<String, String> = HashMap::new();
    for unit in &units {
        p.package = unit.project.name.clone();
        let mut macro_files = Vec::new();
        for dir in &unit.project.macro_paths {
            macro_files.extend(unit.find(dir, &["sql"])?);
        }
        for dir in &unit.project.test_paths {
            macro_files.extend(unit.find(&format!("{dir}/generic"), &["sql"])?);
        }
        for file in &macro_files {
            let text = unit.read(file)?;
            let shown = unit.shown(file);
            // Custom materializations are not run: their blocks are set aside (a package may define one
            // no model uses, as dbt_utils 0.x's insert_by_period), and a model that uses one is refused.
            let text = if text.contains("materialization ") && tag_line(&text, "materialization").is_some() {
                let (kept, found) = strip_materializations(&text);
                for (name, line) in found {
                    custom_materializations.insert(name, format!("{}:{line}", shown.display()));
                }
                kept
            } else {
                text
            };
            let names = p.jinja.add_macro_file(&p.package, &rel_str(&shown), &text)?;
            let blocks = macro_blocks(&text);
            for name in names {
                let unique_id = format!("macro.{}.{}", p.package, name);
                let macro_sql = blocks.get(&name).cloned().unwrap_or_default();
                p.manifest.macros.insert(
                    unique_id.clone(),
                    MacroDef {
                        unique_id,
                        name,
                        package: p.package.clone(),
                        original_file_path: shown.clone(),
                        macro_sql,
                    },
                );
            }
        }
    }
    p.custom_naming = ["generate_schema_name", "generate_alias_name", "generate_database_name"]
        .iter()
        .any(|m| p.jinja.macro_package(None, m, &project.name).as_deref() == Some(project.name.as_str()));

    // Docs blocks.
    for unit in &units {
        for dir in &unit.project.docs_paths {
            for file in unit.find(dir, &["md"])? {
                let text = unit.read(&file)?;
                for (name, contents) in doc_blocks(&text) {
                    let unique_id = format!("doc.{}.{}", unit.project.name, name);
                    p.manifest.docs.insert(
                        unique_id.clone(),
                        DocBlock {
                            unique_id,
                            name,
                            package: unit.project.name.clone(),
                            original_file_path: unit.shown(&file),
                            block_contents: contents,
                        },
                    );
                }
            }
        }
    }
    let docs: HashMap<String, String> =
        p.manifest.docs.values().map(|d| (d.name.clone(), d.block_contents.clone())).collect();

    // Nodes: the project's first; a package's model or seed of the same name is left out.
    let root_unit = units.pop().expect("the project");
    let mut replaced = std::collections::HashSet::new();
    for dir in project.model_paths.iter().chain(&project.seed_paths) {
        for file in root_unit.find(dir, &["sql", "csv"])? {
            replaced.insert(stem(&file));
        }
    }
    parse_nodes(&mut p, &root_unit, None, &Default::default(), &docs)?;
    let nothing_replaced = Default::default();
    for unit in &units {
        // Only mdp's embedded packages give way to the project's models of the same name.
        let replaced = if unit.embedded.is_some() { &replaced } else { &nothing_replaced };
        parse_nodes(&mut p, unit, Some(&project), replaced, &docs)?;
    }
    p.package = project.name.clone();
    for node in p.manifest.nodes.values() {
        if let Some(at) = custom_materializations.get(&node.config.materialized) {
            return Err(TransformError::config(
                &node.original_file_path,
                format!(
                    "`{}` is materialized as `{}`, a custom materialization ({{% materialization %}} at {at}), which mdp \
                     does not run yet; mdp builds view, table, incremental and ephemeral",
                    node.name, node.config.materialized
                ),
            ));
        }
    }

    // Resolve edges.
    let mut resolver = Resolver { root_package: p.package.clone(), docs, ..Default::default() };
    for node in p.manifest.nodes.values() {
        match node.resource_type {
            ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot => {
                resolver.refs.insert(
                    (node.package.clone(), node.name.clone()),
                    crate::jinja::RefTarget {
                        unique_id: node.unique_id.clone(),
                        relation: node.relation.clone(),
                        ephemeral: node.is_ephemeral(),
                    },
                );
            }
            ResourceType::Source => {
                let s = node.source.as_ref().expect("source details");
                resolver.sources.insert(
                    (s.source_name.clone(), node.name.clone()),
                    node.relation.clone().expect("source relation"),
                );
            }
            ResourceType::Test => {}
        }
    }
    let ids: Vec<String> = p.manifest.nodes.keys().cloned().collect();
    for id in ids {
        let node = &p.manifest.nodes[&id];
        let mut deps = Vec::new();
        for (package, name) in &node.refs {
            match p.manifest.resolve_ref(&node.package, package.as_deref(), name) {
                Some(target) => deps.push(target.unique_id.clone()),
                None if p.manifest.disabled.values().any(|d| &d.name == name) => {
                    return Err(TransformError::DisabledRef {
                        file: node.original_file_path.clone(),
                        node: node.name.clone(),
                        target: name.clone(),
                    })
                }
                None => {
                    return Err(TransformError::UnknownRef {
                        file: node.original_file_path.clone(),
                        node: node.name.clone(),
                        target: name.clone(),
                        suggestion: p.manifest.closest_ref(name),
                    })
                }
            }
        }
        for (source, table) in &node.sources {
            match p.manifest.source_id(source, table) {
                Some(id) => deps.push(id.to_string()),
                None => {
                    let candidates: Vec<String> = p
                        .manifest
                        .nodes
                        .values()
                        .filter_map(|n| n.source.as_ref().map(|s| format!("{}.{}", s.source_name, n.name)))
                        .collect();
                    let wanted = format!("{source}.{table}");
                    let suggestion = candidates
                        .into_iter()
                        .map(|c| (strsim::jaro_winkler(&wanted, &c), c))
                        .filter(|(s, _)| *s > 0.75)
                        .max_by(|a, b| a.0.total_cmp(&b.0))
                        .map(|(_, c)| c);
                    return Err(TransformError::UnknownSource {
                        file: node.original_file_path.clone(),
                        node: node.name.clone(),
                        source_name: source.clone(),
                        table: table.clone(),
                        suggestion,
                    });
                }
            }
        }
        if let Some(attached) = node.attached_node.clone() {
            if !deps.contains(&attached) {
                deps.insert(0, attached);
            }
        }
        deps.dedup();
        p.manifest.nodes.get_mut(&id).expect("node").depends_on = deps;
    }

    let graph = Graph::build(&p.manifest);
    let order = graph.topological_order().map_err(TransformError::Cycle)?;
    // A node that inlines an introspective ephemeral model is introspective too.
    for id in order {
        let Some(node) = p.manifest.nodes.get(&id) else { continue };
        let inherits = node
            .depends_on
            .iter()
            .any(|d| p.manifest.nodes.get(d).is_some_and(|dep| dep.is_ephemeral() && dep.introspective));
        if inherits {
            p.manifest.nodes.get_mut(&id).expect("node").introspective = true;
        }
    }
    let Parser { jinja, manifest, warnings, embedded, .. } = p;
    Ok(Parsed {
        embedded,
        project,
        target,
        manifest,
        graph,
        jinja,
        vars,
        package_vars,
        base_context: base,
        resolver: Arc::new(resolver),
        invocation_id,
        run_started_at,
        warnings,
    })
}

/// The nodes of one package: properties, seeds, sources, models, singular and generic tests.
/// `root`: the user's project when `unit` is an embedded package (its config trees apply after the
/// package's own); `replaced`: names of the package's models and seeds the project replaces.
fn parse_nodes(
    p: &mut Parser,
    unit: &Unit<'_>,
    root: Option<&DbtProject>,
    replaced: &std::collections::HashSet<String>,
    docs: &HashMap<String, String>,
) -> Result<()> {
    let project = unit.project;
    p.package = project.name.clone();
    let layer =
        |p: &mut Parser, config: &mut NodeConfig, file: &Path, pick: fn(&DbtProject) -> &Json, fqn: &[String]| {
            p.apply_layer(file, apply_tree(config, pick(project), fqn));
            if let Some(root) = root {
                p.apply_layer(file, apply_tree(config, pick(root), fqn));
            }
        };

    // Properties files.
    let mut props = Properties::default();
    let mut props_dirs: Vec<&String> = Vec::new();
    for dir in project.model_paths.iter().chain(&project.seed_paths).chain(&project.snapshot_paths) {
        if !props_dirs.contains(&dir) {
            props_dirs.push(dir);
        }
    }
    for dir in props_dirs {
        for file in unit.find(dir, &["yml", "yaml"])? {
            let text = unit.read(&file)?;
            let value = yaml_to_json(&project.root.join(&file), &text)?;
            props.add(&unit.shown(&file), value, &text)?;
        }
    }

    // Seeds.
    for dir in &project.seed_paths {
        for file in unit.find(dir, &["csv"])? {
            let name = stem(&file);
            if root.is_some() && replaced.contains(&name) {
                continue;
            }
            let fqn = fqn_for(&p.package, dir, &file, &name);
            let shown = unit.shown(&file);
            let mut config = NodeConfig::defaults("seed");
            layer(p, &mut config, &shown, |d| &d.seed_configs, &fqn);
            let entry = props.seeds.get(&name);
            if let Some(e) = entry {
                p.apply_layer(&e.file, config.apply(&e.config));
            }
            let mut node = p.new_node(ResourceType::Seed, &name, &shown, dir, fqn, String::new(), config);
            node.path = file.strip_prefix(dir).unwrap_or(&file).to_path_buf();
            if let Some(e) = entry {
                node.description = p.render_description(&e.description, docs);
                node.columns = e.columns.clone();
                node.meta = e.meta.clone();
            }
            // dbt's seed checksum: the file's sha256, or its path when it is over 1 MiB (not read twice).
            let size = match unit.embedded {
                Some(_) => 0,
                None => std::fs::metadata(unit.project.root.join(&file)).map(|m| m.len()).unwrap_or(0),
            };
            if size <= 1 << 20 {
                let text = unit.read(&file)?;
                node.checksum = checksum(&text);
                if unit.embedded.is_some() {
                    p.embedded.insert(shown.clone(), text);
                }
            } else {
                node.checksum = rel_str(&shown);
            }
            p.assign_relation(&mut node)?;
            p.insert(node)?;
        }
    }

    // Sources.
    for (src, src_file) in &props.sources {
        let tree = match root {
            Some(root) if !root.source_configs.is_null() => &root.source_configs,
            _ => &project.source_configs,
        };
        p.add_source(src, src_file, tree, docs)?;
    }

    // Models.
    for dir in &project.model_paths {
        for file in unit.find(dir, &["sql", "py"])? {
            if file.extension().is_some_and(|e| e == "py") {
                p.warnings.push(format!("{}: Python models are not supported by mdp; skipped", file.display()));
                continue;
            }
            let name = stem(&file);
            if root.is_some() && replaced.contains(&name) {
                continue;
            }
            let fqn = fqn_for(&p.package, dir, &file, &name);
            let shown = unit.shown(&file);
            let mut config = NodeConfig::defaults("view");
            layer(p, &mut config, &shown, |d| &d.model_configs, &fqn);
            let entry = props.models.get(&name);
            if let Some(e) = entry {
                p.apply_layer(&e.file, config.apply(&e.config));
            }
            let raw = unit.read(&file)?;
            let template = rel_str(&shown);
            p.jinja.add_node_template(&p.package, &template, &raw)?;
            let mut node = p.new_node(ResourceType::Model, &name, &shown, dir, fqn, raw, config);
            node.path = file.strip_prefix(dir).unwrap_or(&file).to_path_buf();
            if let Some(e) = entry {
                node.description = p.render_description(&e.description, docs);
                node.columns = e.columns.clone();
                node.meta = e.meta.clone();
            }
            p.render_for_parse(&mut node, &template)?;
            p.assign_relation(&mut node)?;
            p.insert(node)?;
        }
    }
    for name in props.models.keys() {
        let known = p.manifest.by_name.contains_key(&(p.package.clone(), name.clone()))
            || p.manifest.disabled.values().any(|n| &n.name == name)
            || (root.is_some() && replaced.contains(name));
        if !known {
            let file = &props.models[name].file;
            p.warnings.push(format!(
                "{}: properties for model `{name}`, but there is no models/**/{name}.sql",
                file.display()
            ));
        }
    }

    // Snapshots: every `{% snapshot %}` block of the snapshot paths' .sql files.
    for dir in &project.snapshot_paths {
        for file in unit.find(dir, &["sql"])? {
            let text = unit.read(&file)?;
            let shown = unit.shown(&file);
            let blocks = crate::snapshot::blocks(&text).map_err(|e| TransformError::config(&shown, e))?;
            for block in blocks {
                let name = block.name.clone();
                let fqn = fqn_for(&p.package, dir, &file, &name);
                let mut config = NodeConfig::defaults("snapshot");
                layer(p, &mut config, &shown, |d| &d.snapshot_configs, &fqn);
                let entry = props.snapshots.get(&name);
                if let Some(e) = entry {
                    p.apply_layer(&e.file, config.apply(&e.config));
                }
                let raw = text[block.body.clone()].to_string();
                let template = snapshot_template(&shown, &name);
                p.jinja.add_node_template(&p.package, &template, &crate::snapshot::body_template(&text, &block))?;
                let mut node = p.new_node(ResourceType::Snapshot, &name, &shown, dir, fqn, raw, config);
                node.path = file.strip_prefix(dir).unwrap_or(&file).to_path_buf();
                // dbt's checksum of a block node is its file's.
                node.checksum = checksum(&text);
                p.add_snapshot(node, entry, &template, &format!("line {}: ", block.line), docs)?;
            }
        }
    }

    // Snapshots defined in YAML only (dbt 1.9+): `select * from {{ <relation> }}`.
    for (name, entry) in &props.snapshots {
        let Some(relation) = &entry.relation else { continue };
        if p.manifest.by_name.contains_key(&(p.package.clone(), name.clone()))
            || p.manifest.disabled.contains_key(&format!("snapshot.{}.{name}", p.package))
        {
            return Err(TransformError::config(
                &entry.file,
                format!("snapshot `{name}` has a `relation:` here and a {{% snapshot %}} block too; keep one"),
            ));
        }
        let dir = project
            .snapshot_paths
            .iter()
            .chain(&project.model_paths)
            .find(|d| entry.file.starts_with(unit.shown(Path::new(d))))
            .cloned()
            .unwrap_or_default();
        let within = entry.file.strip_prefix(unit.shown(Path::new(&dir))).unwrap_or(&entry.file).to_path_buf();
        let fqn = fqn_for(&p.package, "", &within, name);
        let mut config = NodeConfig::defaults("snapshot");
        layer(p, &mut config, &entry.file, |d| &d.snapshot_configs, &fqn);
        p.apply_layer(&entry.file, config.apply(&entry.config));
        let raw = format!("select * from {{{{ {relation} }}}}");
        let template = snapshot_template(&entry.file, name);
        p.jinja.add_node_template(&p.package, &template, &raw)?;
        let mut node = p.new_node(ResourceType::Snapshot, name, &entry.file, &dir, fqn, raw, config);
        node.path = within;
        node.checksum = entry.file_checksum.clone();
        p.add_snapshot(node, Some(entry), &template, "", docs)?;
    }

    // Singular tests.
    for dir in &project.test_paths {
        for file in unit.find(dir, &["sql"])? {
            if file.starts_with(Path::new(dir).join("generic")) {
                continue;
            }
            let name = stem(&file);
            let fqn = fqn_for(&p.package, dir, &file, &name);
            let shown = unit.shown(&file);
            let mut config = NodeConfig::defaults("test");
            layer(p, &mut config, &shown, |d| &d.test_configs, &fqn);
            let raw = unit.read(&file)?;
            let template = rel_str(&shown);
            p.jinja.add_node_template(&p.package, &template, &raw)?;
            let mut node = p.new_node(ResourceType::Test, &name, &shown, dir, fqn, raw, config);
            node.path = file.strip_prefix(dir).unwrap_or(&file).to_path_buf();
            p.render_for_parse(&mut node, &template)?;
            p.insert(node)?;
        }
    }

    // Unit tests, each on a model of this package.
    for (file, entry) in &props.unit_tests {
        let fixture = |name: &str, ext: &str| {
            crate::unit::find_fixture(&project.root, &project.test_paths, name, ext)
                .and_then(|path| std::fs::read_to_string(path).ok())
        };
        let def = crate::unit::UnitTestDef::parse(entry, &fixture).map_err(|e| TransformError::config(file, e))?;
        let key = (p.package.clone(), def.model.clone());
        let Some(model) = p.manifest.by_name.get(&key).and_then(|id| p.manifest.nodes.get(id)) else {
            if p.manifest.disabled.values().any(|n| n.name == def.model && n.package == p.package) {
                continue; // dbt disables the unit tests of a disabled model
            }
            return Err(TransformError::config(
                file,
                format!("unit test `{}`: `{}` is not a model of {}", def.name, def.model, p.package),
            ));
        };
        if model.resource_type != ResourceType::Model || model.is_ephemeral() {
            return Err(TransformError::config(
                file,
                format!(
                    "unit test `{}`: `{}` is not a model mdp builds (a seed, snapshot or ephemeral)",
                    def.name, def.model
                ),
            ));
        }
        let mut fqn = model.fqn.clone();
        fqn.push(def.name.clone());
        let (model_id, introspective) = (model.unique_id.clone(), model.introspective);
        let mut config = NodeConfig::defaults("test");
        p.apply_layer(file, config.apply(&def.config));
        let mut node = p.new_node(ResourceType::Test, &def.name, file, "", fqn, String::new(), config);
        node.unique_id = format!("unit_test.{}.{}.{}", p.package, def.model, def.name);
        node.checksum = String::new();
        node.path = file.file_name().map(PathBuf::from).unwrap_or_default();
        node.refs = vec![(None, def.model.clone())];
        node.attached_node = Some(model_id);
        node.introspective = introspective;
        node.description = p.render_description(&def.description, docs);
        node.unit_test = Some(Box::new(def));
        p.insert(node)?;
    }

    // Generic tests from properties (not those of a replaced model).
    let test_tree = root.map_or(&project.test_configs, |r| &r.test_configs);
    for def in props.tests.iter() {
        if root.is_some() && def.source.is_none() && replaced.contains(&def.target_name) {
            continue;
        }
        p.add_generic_test(def, test_tree)?;
    }
    Ok(())
}

struct Parser {
    /// The package whose files are being read.
    package: String,
    /// The root project's name.
    root: String,
    jinja: JinjaEnv,
    manifest: Manifest,
    vars: Arc<IndexMap<String, Json>>,
    package_vars: HashMap<String, Arc<IndexMap<String, Json>>>,
    dialect: &'static dyn mdp_warehouse::Dialect,
    base: BTreeMap<String, Value>,
    warnings: Vec<String>,
    target_schema: String,
    target_database: String,
    /// The project overrides generate_schema_name / alias / database.
    custom_naming: bool,
    /// Seeds of embedded packages: shown path → CSV text.
    embedded: HashMap<PathBuf, String>,
}

impl Parser {
    fn scope(&self, phase: Phase) -> RenderScope {
        RenderScope::new(
            phase,
            &self.package,
            Arc::new(Resolver { root_package: self.root.clone(), ..Default::default() }),
            self.package_vars.get(&self.package).unwrap_or(&self.vars).clone(),
            self.dialect,
        )
    }

    fn apply_layer(&mut self, file: &Path, problems: Vec<(String, String)>) {
        for (key, why) in problems {
            self.warnings.push(format!("{}: config `{key}`: {why}; ignored", file.display()));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn new_node(
        &self,
        kind: ResourceType,
        name: &str,
        file: &Path,
        dir: &str,
        fqn: Vec<String>,
        raw: String,
        config: NodeConfig,
    ) -> Node {
        let unique_id = format!("{}.{}.{}", kind.as_str(), self.package, name);
        Node {
            unique_id,
            name: name.to_string(),
            resource_type: kind,
            package: self.package.clone(),
            original_file_path: file.to_path_buf(),
            path: file.strip_prefix(dir).unwrap_or(file).to_path_buf(),
            fqn,
            checksum: checksum(&raw),
            raw_code: raw,
            config,
            relation: None,
            refs: Vec::new(),
            sources: Vec::new(),
            depends_on: Vec::new(),
            description: String::new(),
            columns: IndexMap::new(),
            meta: IndexMap::new(),
            test_metadata: None,
            column_name: None,
            attached_node: None,
            source: None,
            introspective: false,
            unit_test: None,
            depends_on_macros: Vec::new(),
        }
    }

    fn model_value(&self, node: &Node) -> Value {
        crate::compile::model_value(node)
    }

    fn context(&self, node: &Node) -> Value {
        let mut ctx = self.base.clone();
        ctx.insert("model".into(), self.model_value(node));
        ctx.insert(
            "this".into(),
            Value::from_object(Relation::named(None, &self.target_schema, &node.name, self.dialect)),
        );
        Value::from(ctx)
    }

    /// Render once in parse mode: record refs, sources and `config()` calls; apply the calls.
    fn render_for_parse(&mut self, node: &mut Node, template: &str) -> Result<()> {
        let mut scope = self.scope(Phase::Parse);
        if let Json::Object(map) = node.config.to_json() {
            scope.config = map;
        }
        let ctx = self.context(node);
        let (_, scope) = self.jinja.render(template, ctx, scope)?;
        for call in &scope.config_calls {
            let problems = node.config.apply(call);
            self.apply_layer(&node.original_file_path.clone(), problems);
        }
        node.refs = scope.refs;
        node.sources = scope.sources;
        node.introspective = scope.introspective || crate::introspect::may_introspect(&node.raw_code);
        node.depends_on_macros = scope.macros_called;
        Ok(())
    }

    /// The relation a model or seed builds, by dbt's naming rules (or the project's overrides).
    fn assign_relation(&mut self, node: &mut Node) -> Result<()> {
        if node.is_ephemeral() {
            node.relation = None;
            return Ok(());
        }
        let (schema, identifier, database) = if self.custom_naming {
            let custom = |v: &Option<String>| v.clone().map(Value::from).unwrap_or(Value::from(()));
            let model = self.model_value(node);
            let render = |p: &Parser, expr: &str, custom: Value| -> Result<String> {
                let mut ctx = p.base.clone();
                ctx.insert("__custom".into(), custom);
                ctx.insert("__node".into(), model.clone());
                let (out, _) = p.jinja.render_str("<naming>", expr, Value::from(ctx), p.scope(Phase::Compile))?;
                Ok(out.trim().to_string())
            };
            (
                render(self, "{{ generate_schema_name(__custom, __node) }}", custom(&node.config.schema))?,
                render(self, "{{ generate_alias_name(__custom, __node) }}", custom(&node.config.alias))?,
                render(self, "{{ generate_database_name(__custom, __node) }}", custom(&node.config.database))?,
            )
        } else {
            let schema = match &node.config.schema {
                None => self.target_schema.clone(),
                Some(custom) => format!("{}_{}", self.target_schema, custom.trim()),
            };
            let identifier = node
                .config
                .alias
                .clone()
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| node.name.clone());
            (schema, identifier, node.config.database.clone().unwrap_or_else(|| self.target_database.clone()))
        };
        node.relation = Some(RelationName { database: Some(database), schema, identifier });
        Ok(())
    }

    /// The common end of a snapshot's parse (a `{% snapshot %}` block or a YAML-only one): its
    /// properties, one render (its `config()` calls), its config checked (the error names the file,
    /// `at` and what to set), its relation named (`target_schema` / `target_database` win).
    fn add_snapshot(
        &mut self,
        mut node: Node,
        props: Option<&PropsEntry>,
        template: &str,
        at: &str,
        docs: &HashMap<String, String>,
    ) -> Result<()> {
        if let Some(e) = props {
            node.description = self.render_description(&e.description, docs);
            node.columns = e.columns.clone();
            node.meta = e.meta.clone();
        }
        self.render_for_parse(&mut node, template)?;
        if node.config.enabled {
            crate::snapshot::SnapshotSpec::of(&node.config).map_err(|e| {
                TransformError::config(&node.original_file_path, format!("{at}snapshot `{}`: {e}", node.name))
            })?;
        }
        self.assign_relation(&mut node)?;
        let schema = crate::snapshot::target_override(&node.config, "target_schema");
        let database = crate::snapshot::target_override(&node.config, "target_database");
        if let Some(rel) = node.relation.as_mut() {
            if let Some(schema) = schema {
                rel.schema = schema;
            }
            if let Some(database) = database {
                rel.database = Some(database);
            }
        }
        self.insert(node)
    }

    fn insert(&mut self, node: Node) -> Result<()> {
        if !node.config.enabled {
            self.manifest.disabled.insert(node.unique_id.clone(), node);
            return Ok(());
        }
        if matches!(node.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot) {
            let key = (node.package.clone(), node.name.clone());
            if let Some(existing) = self.manifest.by_name.get(&key).and_then(|id| self.manifest.nodes.get(id)) {
                return Err(TransformError::Duplicate {
                    kind: "model, seed or snapshot",
                    name: node.name.clone(),
                    first: existing.original_file_path.clone(),
                    second: node.original_file_path.clone(),
                });
            }
            self.manifest.by_name.insert(key, node.unique_id.clone());
        }
        if let Some(existing) = self.manifest.nodes.get(&node.unique_id) {
            return Err(TransformError::Duplicate {
                kind: node.resource_type.as_str(),
                name: node.name.clone(),
                first: existing.original_file_path.clone(),
                second: node.original_file_path.clone(),
            });
        }
        self.manifest.nodes.insert(node.unique_id.clone(), node);
        Ok(())
    }

    fn render_description(&self, text: &str, docs: &HashMap<String, String>) -> String {
        if !text.contains("{{") {
            return text.to_string();
        }
        let mut scope = self.scope(Phase::Compile);
        scope.resolver =
            Arc::new(Resolver { docs: docs.clone(), root_package: self.root.clone(), ..Default::default() });
        match self.jinja.render_str("<description>", text, Value::from(self.base.clone()), scope) {
            Ok((out, _)) => out,
            Err(_) => text.to_string(),
        }
    }

    /// Render a YAML string value that may hold Jinja (`"{{ target.schema }}"`, `"{{ var('x') }}"`).
    fn render_yaml_str(&self, file: &Path, text: &str) -> Result<String> {
        let label = file.display().to_string();
        self.jinja.render_str(&label, text, Value::from(self.base.clone()), self.scope(Phase::Compile)).map(|(s, _)| s)
    }

    fn add_source(&mut self, src: &Json, file: &Path, tree: &Json, docs: &HashMap<String, String>) -> Result<()> {
        let source_name = src
            .get("name")
            .and_then(Json::as_str)
            .ok_or_else(|| TransformError::config(file, "every entry under `sources:` needs a `name:`"))?
            .to_string();
        let get_str = |v: &Json, k: &str| v.get(k).and_then(Json::as_str).map(str::to_string);
        let schema = match get_str(src, "schema") {
            Some(s) => self.render_yaml_str(file, &s)?,
            None => source_name.clone(),
        };
        let database = match get_str(src, "database") {
            Some(s) => Some(self.render_yaml_str(file, &s)?),
            None => Some(self.target_database.clone()),
        };
        let tables = src.get("tables").and_then(Json::as_array).cloned().unwrap_or_default();
        for table in &tables {
            let name = table
                .get("name")
                .and_then(Json::as_str)
                .ok_or_else(|| {
                    TransformError::config(file, format!("source `{source_name}`: every table needs a `name:`"))
                })?
                .to_string();
            let identifier = match get_str(table, "identifier") {
                Some(s) => self.render_yaml_str(file, &s)?,
                None => name.clone(),
            };
            let fqn = vec![self.package.clone(), source_name.clone(), name.clone()];
            let mut config = NodeConfig::defaults("source");
            let problems = apply_tree(&mut config, tree, &fqn);
            self.apply_layer(file, problems);
            for layer in [src.get("config"), table.get("config")].into_iter().flatten() {
                if let Ok(map) = serde_json::from_value::<IndexMap<String, Json>>(layer.clone()) {
                    let problems = config.apply(&map);
                    self.apply_layer(file, problems);
                }
            }
            let mut node = self.new_node(ResourceType::Source, &name, file, "", fqn, String::new(), config);
            node.unique_id = format!("source.{}.{}.{}", self.package, source_name, name);
            node.relation = Some(RelationName { database: database.clone(), schema: schema.clone(), identifier });
            node.description = self.render_description(get_str(table, "description").as_deref().unwrap_or(""), docs);
            node.columns = columns_of(table);
            node.source = Some(SourceDetails {
                source_name: source_name.clone(),
                source_description: get_str(src, "description").unwrap_or_default(),
                loaded_at_field: get_str(table, "loaded_at_field").or_else(|| get_str(src, "loaded_at_field")),
                freshness: table.get("freshness").or_else(|| src.get("freshness")).cloned(),
                loader: get_str(src, "loader").unwrap_or_default(),
            });
            self.insert(node)?;
        }
        Ok(())
    }

    fn add_generic_test(&mut self, def: &TestDef, tree: &Json) -> Result<()> {
        // `- unique`, `- accepted_values: {values: [...]}`, `- relationships: {arguments: {...}, config: {...}}`.
        let (full_name, mut args) = match &def.test {
            Json::String(s) => (s.clone(), serde_json::Map::new()),
            Json::Object(m) if m.len() == 1 || m.contains_key("test_name") => {
                if let Some(Json::String(test_name)) = m.get("test_name") {
                    (test_name.clone(), m.clone())
                } else {
                    let (k, v) = m.iter().next().expect("one entry");
                    (k.clone(), v.as_object().cloned().unwrap_or_default())
                }
            }
            other => {
                return Err(TransformError::config(
                    &def.file,
                    format!("cannot read test definition {other}: expected a test name or `test_name: {{arguments}}`"),
                ))
            }
        };
        args.remove("test_name");
        let (namespace, test_name) = match full_name.split_once('.') {
            Some((ns, n)) => (Some(ns.to_string()), n.to_string()),
            None => (None, full_name.clone()),
        };
        let macro_name = format!("test_{test_name}");
        let Some(macro_package) = self.jinja.macro_package(namespace.as_deref(), &macro_name, &self.package) else {
            let why = match namespace.as_deref() {
                Some(ns) if !self.jinja.is_package(ns) => format!(
                    "package `{ns}` is not installed (add it to packages.yml and run `dbt deps`, or `mdp deps` for a \
                     local: package)"
                ),
                Some(ns) => format!("package `{ns}` has no test `{test_name}`"),
                None => format!(
                    "define it with {{% test {test_name}(model, column_name) %}} in macros/ or tests/generic/, or \
                     name its package (`package.{test_name}`)"
                ),
            };
            return Err(TransformError::config(
                &def.file,
                format!("`{}`: unknown test `{full_name}`: {why}", def.target_name),
            ));
        };
        // Config: tree, then `config:` and the legacy top-level config keys.
        let custom_name = args.remove("name").and_then(|v| v.as_str().map(str::to_string));
        let mut config_layer = IndexMap::new();
        if let Some(Json::Object(c)) = args.remove("config") {
            config_layer.extend(c);
        }
        for key in ["severity", "where", "limit", "warn_if", "error_if", "tags", "enabled", "store_failures", "meta"] {
            if let Some(v) = args.remove(key) {
                config_layer.insert(key.to_string(), v);
            }
        }
        let mut kwargs: IndexMap<String, Json> = match args.remove("arguments") {
            Some(Json::Object(a)) => a.into_iter().collect(),
            _ => IndexMap::new(),
        };
        kwargs.extend(args);
        if let Some(col) = &def.column {
            kwargs.insert("column_name".into(), Json::String(col.clone()));
        }
        // dbt names a package's test with its namespace first: `dbt_utils_expression_is_true_…`.
        let name_prefix = match &namespace {
            Some(ns) => format!("{ns}_{test_name}"),
            None => test_name.clone(),
        };
        let name = custom_name.unwrap_or_else(|| generic_test_name(&name_prefix, &def.target_name, &kwargs));
        let dir = def.file.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut fqn: Vec<String> = vec![self.package.clone()];
        fqn.extend(dir.components().skip(1).map(|c| c.as_os_str().to_string_lossy().into_owned()));
        fqn.push(name.clone());
        let mut config = NodeConfig::defaults("test");
        let problems = apply_tree(&mut config, tree, &fqn);
        self.apply_layer(&def.file, problems);
        let problems = config.apply(&config_layer);
        self.apply_layer(&def.file, problems);

        // The template: the test macro called with the YAML arguments. Strings that are
        // `ref(...)`/`source(...)` calls are evaluated; other values are passed as data.
        let mut call_args = vec![format!("model={}", def.model_expr())];
        for (k, v) in &kwargs {
            let expr = match v {
                Json::String(s) if is_call_expr(s) => s.clone(),
                // `field: "{{ var('id_column') }}"`: the expression itself, evaluated with the test.
                Json::String(s) if whole_expression(s).is_some() => whole_expression(s).expect("checked").to_string(),
                _ => format!("__kwargs[{}]", serde_json::to_string(k).expect("string")),
            };
            if !is_identifier(k) {
                return Err(TransformError::config(
                    &def.file,
                    format!("test `{full_name}`: argument name `{k}` is not an identifier"),
                ));
            }
            call_args.push(format!("{k}={expr}"));
        }
        let callee = match &namespace {
            Some(ns) => format!("{ns}.{macro_name}"),
            None => macro_name.clone(),
        };
        let raw = format!("{{{{ {callee}({}) }}}}", call_args.join(", "));
        let hash = dbt_test_hash(&name, &test_name, namespace.as_deref(), &def.dbt_model_kwarg(), &kwargs);
        let template = format!("{} (test {name})", def.file.display());
        self.jinja.add_node_template(&self.package, &template, &raw)?;
        let mut node = self.new_node(ResourceType::Test, &name, &def.file, "", fqn, raw, config);
        node.unique_id = format!("test.{}.{}.{}", self.package, name, hash);
        // dbt gives generic tests an empty checksum (their text is generated).
        node.checksum = String::new();
        node.path = def.file.clone();
        node.column_name = def.column.clone();
        node.test_metadata = Some(TestMetadata { name: test_name, namespace, kwargs: kwargs.clone() });
        node.attached_node = Some(def.attached_id(&self.package));
        // Learn the refs (the tested node, `to: ref(...)`) and any config() in the test macro. The
        // built-in tests have no config() and their refs are plain: no render needed (dbt parses them
        // the same way, and a big project has thousands of them).
        if macro_package == crate::namespace::BUILTIN_PACKAGE
            && ["unique", "not_null", "accepted_values", "relationships"].contains(&test_name_of(&node))
        {
            let mut refs = Vec::new();
            let mut sources = Vec::new();
            match &def.source {
                Some((s, t)) => sources.push((s.clone(), t.clone())),
                None => refs.push((None, def.target_name.clone())),
            }
            for v in kwargs.values() {
                if let Json::String(s) = v {
                    if let Some(call) = parse_simple_call(s) {
                        match call {
                            SimpleCall::Ref(name) => refs.push((None, name)),
                            SimpleCall::Source(a, b) => sources.push((a, b)),
                        }
                    }
                }
            }
            node.refs = refs;
            node.sources = sources;
            return self.insert(node);
        }
        let mut scope = self.scope(Phase::Parse);
        if let Json::Object(map) = node.config.to_json() {
            scope.config = map;
        }
        let mut ctx = self.base.clone();
        ctx.insert("__kwargs".into(), Value::from_serialize(&kwargs));
        ctx.insert("model".into(), self.model_value(&node));
        let (_, scope) = self.jinja.render(&template, Value::from(ctx), scope)?;
        for call in &scope.config_calls {
            let problems = node.config.apply(call);
            self.apply_layer(&def.file, problems);
        }
        node.refs = scope.refs;
        node.sources = scope.sources;
        node.introspective = scope.introspective;
        node.depends_on_macros = scope.macros_called;
        self.insert(node)
    }
}

fn test_name_of(node: &Node) -> &str {
    node.test_metadata.as_ref().map(|m| m.name.as_str()).unwrap_or("")
}

enum SimpleCall {
    Ref(String),
    Source(String, String),
}

/// `ref('x')` / `source('a', 'b')` with literal arguments; anything else is `None` (and rendered).
fn parse_simple_call(s: &str) -> Option<SimpleCall> {
    let t = s.trim();
    let (kind, rest) = if let Some(r) = t.strip_prefix("ref(") {
        ("ref", r)
    } else if let Some(r) = t.strip_prefix("source(") {
        ("source", r)
    } else {
        return None;
    };
    let inner = rest.strip_suffix(')')?;
    let args: Vec<String> = inner
        .split(',')
        .map(|a| {
            let a = a.trim();
            let q = a.chars().next()?;
            (q == '\'' || q == '"').then(|| a.strip_prefix(q)?.strip_suffix(q).map(str::to_string)).flatten()
        })
        .collect::<Option<Vec<_>>>()?;
    match (kind, args.as_slice()) {
        ("ref", [name]) => Some(SimpleCall::Ref(name.clone())),
        ("source", [a, b]) => Some(SimpleCall::Source(a.clone(), b.clone())),
        _ => None,
    }
}

/// The expression of a string that is exactly one `{{ expression }}`.
fn whole_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then(|| inner.trim())
}

fn is_call_expr(s: &str) -> bool {
    let t = s.trim();
    (t.starts_with("ref(") || t.starts_with("source(")) && t.ends_with(')')
}

fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// dbt's synthesized generic test name: `<test>_<model>_<args…>` with non-word characters as `_`.
pub fn generic_test_name(test: &str, target: &str, kwargs: &IndexMap<String, Json>) -> String {
    let mut flat = Vec::new();
    let mut keys: Vec<&String> = kwargs.keys().collect();
    keys.sort();
    for k in keys {
        flatten(&kwargs[k], &mut flat);
    }
    let clean = |s: &str| -> String {
        let mut out = String::new();
        let mut last_sub = false;
        for ch in s.chars() {
            if ch.is_ascii_alphanumeric() || ch == '_' {
                out.push(ch);
                last_sub = false;
            } else if !last_sub {
                out.push('_');
                last_sub = true;
            }
        }
        out
    };
    let args: Vec<String> = flat.iter().map(|s| clean(s)).collect();
    format!("{test}_{target}_{}", args.join("__"))
}

fn flatten(v: &Json, out: &mut Vec<String>) {
    match v {
        Json::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        Json::Object(m) => m.values().for_each(|i| flatten(i, out)),
        Json::String(s) => out.push(s.clone()),
        Json::Null => out.push("None".into()),
        Json::Bool(b) => out.push(if *b { "True".into() } else { "False".into() }),
        other => out.push(other.to_string()),
    }
}

/// The hash in a generic test's unique id, as dbt-core computes it: the last 10 hex digits of the
/// md5 of the test's name and the Python `repr` of its metadata (keys sorted, values as `str()`), so
/// that test ids, and with them `--state` comparisons, agree with manifests dbt-core wrote.
fn dbt_test_hash(
    name: &str,
    test_name: &str,
    namespace: Option<&str>,
    model: &str,
    kwargs: &IndexMap<String, Json>,
) -> String {
    use md5::{Digest, Md5};
    // repr({'kwargs': {sorted kwargs with model}, 'name': …, 'namespace': …}), written directly.
    let mut keys: Vec<&str> = kwargs.keys().map(String::as_str).filter(|k| *k != "model").collect();
    keys.push("model");
    keys.sort_unstable();
    let mut text = String::with_capacity(name.len() + 256);
    text.push_str(name);
    text.push_str("{'kwargs': {");
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str(&py_str_repr(key));
        text.push_str(": ");
        match *key {
            "model" => text.push_str(&py_str_repr(model)),
            _ => text.push_str(&py_repr(&kwargs[*key])),
        }
    }
    text.push_str("}, 'name': ");
    text.push_str(&py_str_repr(test_name));
    text.push_str(", 'namespace': ");
    text.push_str(&py_str_repr(namespace.unwrap_or("None")));
    text.push('}');
    let hex = hex(&Md5::digest(text.as_bytes()));
    hex[hex.len() - 10..].to_string()
}

/// Python's `repr` of dbt's hashable metadata: dicts (keys sorted) and lists kept, every other value
/// as its Python `str()` in quotes.
fn py_repr(value: &Json) -> String {
    match value {
        Json::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let items: Vec<String> =
                keys.iter().map(|k| format!("{}: {}", py_str_repr(k), py_repr(&map[*k]))).collect();
            format!("{{{}}}", items.join(", "))
        }
        Json::Array(items) => format!("[{}]", items.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Json::String(s) => py_str_repr(s),
        Json::Bool(true) => py_str_repr("True"),
        Json::Bool(false) => py_str_repr("False"),
        Json::Null => py_str_repr("None"),
        Json::Number(n) => py_str_repr(&match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < 1e16 => format!("{f:.1}"),
            _ => n.to_string(),
        }),
    }
}

/// Python's `repr` of a string: single quotes unless it holds one and no double quote.
fn py_str_repr(s: &str) -> String {
    if !s.contains(['\'', '\\']) && s.bytes().all(|b| b >= 0x20 && b != 0x7f) {
        return format!("'{s}'");
    }
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// A 10-hex-digit FNV-1a hash: stable ids without a crypto dependency.
pub fn short_hash(s: &str) -> String {
    format!("{:016x}", fnv(s))[..10].to_string()
}

/// dbt's file checksum: sha256 of the contents without leading and trailing whitespace, as hex.
pub fn checksum(s: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, s.trim().as_bytes()).as_ref())
}

/// Lower-case hex of `bytes` (a `format!` per byte was most of the checksums' cost).
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Each `{% macro name(…) %}…{% endmacro %}` (or `{% test %}…{% endtest %}`, as `test_name`) of a
/// file, by macro name: dbt's `macro_sql`.
fn macro_blocks(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(pos) = rest.find("{%") {
        let tag = rest[pos + 2..].trim_start_matches('-').trim_start();
        let kind = ["macro", "test"]
            .into_iter()
            .find(|k| tag.strip_prefix(k).is_some_and(|a| a.starts_with(char::is_whitespace)));
        if let Some(kind) = kind {
            let after = tag[kind.len()..].trim_start();
            let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let end_word = format!("end{kind}");
            let start = offset + pos;
            if let Some(end_at) = text[start..].find(&end_word) {
                let close = text[start + end_at..].find("%}").map(|c| start + end_at + c + 2).unwrap_or(text.len());
                let key = if kind == "test" { format!("test_{name}") } else { name };
                out.entry(key).or_insert_with(|| text[start..close].to_string());
                offset = close;
                rest = &text[close..];
                continue;
            }
        }
        offset += pos + 2;
        rest = &rest[pos + 2..];
    }
    out
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// One generic test as declared in a properties file.
#[derive(Debug, Clone)]
struct TestDef {
    file: PathBuf,
    /// The model, seed or source table's name (`orders`, or `raw.events` for sources).
    target_name: String,
    kind: ResourceType,
    source: Option<(String, String)>,
    column: Option<String>,
    test: Json,
}

impl TestDef {
    /// The `model` argument as dbt records it in `test_metadata.kwargs`.
    fn dbt_model_kwarg(&self) -> String {
        match &self.source {
            Some((s, t)) => format!("{{{{ get_where_subquery(source('{s}', '{t}')) }}}}"),
            None => format!("{{{{ get_where_subquery(ref('{}')) }}}}", self.target_name),
        }
    }

    fn model_expr(&self) -> String {
        match &self.source {
            Some((s, t)) => format!("get_where_subquery(source({s:?}, {t:?}))"),
            None => format!("get_where_subquery(ref({:?}))", self.target_name),
        }
    }

    fn attached_id(&self, package: &str) -> String {
        match &self.source {
            Some((s, t)) => format!("source.{package}.{s}.{t}"),
            None => format!("{}.{package}.{}", self.kind.as_str(), self.target_name),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct PropsEntry {
    file: PathBuf,
    /// dbt's checksum of the properties file (a YAML-only snapshot's).
    file_checksum: String,
    /// Snapshots defined in YAML only: the `ref(…)` / `source(…)` they select from.
    relation: Option<String>,
    description: String,
    config: IndexMap<String, Json>,
    columns: IndexMap<String, ColumnDoc>,
    meta: IndexMap<String, Json>,
}

#[derive(Debug, Default)]
struct Properties {
    models: IndexMap<String, PropsEntry>,
    seeds: IndexMap<String, PropsEntry>,
    snapshots: IndexMap<String, PropsEntry>,
    sources: Vec<(Json, PathBuf)>,
    tests: Vec<TestDef>,
    /// `unit_tests:` entries with their file.
    unit_tests: Vec<(PathBuf, Json)>,
}

impl Properties {
    fn add(&mut self, file: &Path, value: Json, text: &str) -> Result<()> {
        let Json::Object(map) = value else { return Ok(()) };
        for (section, kind) in
            [("models", ResourceType::Model), ("seeds", ResourceType::Seed), ("snapshots", ResourceType::Snapshot)]
        {
            let Some(entries) = map.get(section) else { continue };
            let entries = entries.as_array().ok_or_else(|| {
                TransformError::config(file, format!("`{section}:` must be a list of entries with `name:`"))
            })?;
            for entry in entries {
                let name = entry
                    .get("name")
                    .and_then(Json::as_str)
                    .ok_or_else(|| TransformError::config(file, format!("an entry under `{section}:` has no `name:`")))?
                    .to_string();
                let mut config: IndexMap<String, Json> =
                    entry.get("config").and_then(|c| serde_json::from_value(c.clone()).ok()).unwrap_or_default();
                if let Some(tags) = entry.get("tags") {
                    config.insert("tags".into(), tags.clone());
                }
                let relation = match entry.get("relation") {
                    None | Some(Json::Null) => None,
                    Some(Json::String(r)) if kind == ResourceType::Snapshot && is_ref_or_source(r) => Some(r.clone()),
                    Some(other) => {
                        return Err(TransformError::config(
                            file,
                            format!(
                                "`{name}`: `relation:` must be a ref('model') or source('source', 'table') call \
                                 (on a snapshot), not {other}"
                            ),
                        ))
                    }
                };
                let props = PropsEntry {
                    file: file.to_path_buf(),
                    file_checksum: checksum(text),
                    relation,
                    description: entry.get("description").and_then(Json::as_str).unwrap_or("").to_string(),
                    config,
                    columns: columns_of(entry),
                    meta: entry.get("meta").and_then(|m| serde_json::from_value(m.clone()).ok()).unwrap_or_default(),
                };
                let list = match kind {
                    ResourceType::Model => &mut self.models,
                    ResourceType::Seed => &mut self.seeds,
                    _ => &mut self.snapshots,
                };
                if list.contains_key(&name) {
                    return Err(TransformError::config(
                        file,
                        format!("`{name}` has properties in more than one place; keep one entry"),
                    ));
                }
                list.insert(name.clone(), props);
                self.collect_tests(file, entry, &name, kind, None);
            }
        }
        if let Some(tests) = map.get("unit_tests") {
            let tests = tests
                .as_array()
                .ok_or_else(|| TransformError::config(file, "`unit_tests:` must be a list of entries with `name:`"))?;
            self.unit_tests.extend(tests.iter().map(|t| (file.to_path_buf(), t.clone())));
        }
        if let Some(sources) = map.get("sources") {
            let sources =
                sources.as_array().ok_or_else(|| TransformError::config(file, "`sources:` must be a list"))?;
            for src in sources {
                let source_name = src.get("name").and_then(Json::as_str).unwrap_or_default().to_string();
                for table in src.get("tables").and_then(Json::as_array).into_iter().flatten() {
                    let table_name = table.get("name").and_then(Json::as_str).unwrap_or_default().to_string();
                    self.collect_tests(
                        file,
                        table,
                        &format!("{source_name}_{table_name}"),
                        ResourceType::Source,
                        Some((source_name.clone(), table_name)),
                    );
                }
                self.sources.push((src.clone(), file.to_path_buf()));
            }
        }
        Ok(())
    }

    fn collect_tests(
        &mut self,
        file: &Path,
        entry: &Json,
        name: &str,
        kind: ResourceType,
        source: Option<(String, String)>,
    ) {
        let tests_of = |v: &Json| -> Vec<Json> {
            let mut out = Vec::new();
            for key in ["data_tests", "tests"] {
                if let Some(Json::Array(items)) = v.get(key) {
                    out.extend(items.iter().cloned());
                }
            }
            out
        };
        for test in tests_of(entry) {
            self.tests.push(TestDef {
                file: file.to_path_buf(),
                target_name: name.to_string(),
                kind,
                source: source.clone(),
                column: None,
                test,
            });
        }
        for col in entry.get("columns").and_then(Json::as_array).into_iter().flatten() {
            let Some(col_name) = col.get("name").and_then(Json::as_str) else { continue };
            for test in tests_of(col) {
                self.tests.push(TestDef {
                    file: file.to_path_buf(),
                    target_name: name.to_string(),
                    kind,
                    source: source.clone(),
                    column: Some(col_name.to_string()),
                    test,
                });
            }
        }
    }
}

fn columns_of(entry: &Json) -> IndexMap<String, ColumnDoc> {
    let mut out = IndexMap::new();
    for col in entry.get("columns").and_then(Json::as_array).into_iter().flatten() {
        let Some(name) = col.get("name").and_then(Json::as_str) else { continue };
        out.insert(
            name.to_string(),
            ColumnDoc {
                name: name.to_string(),
                description: col.get("description").and_then(Json::as_str).unwrap_or("").to_string(),
                data_type: col.get("data_type").and_then(Json::as_str).map(str::to_string),
                meta: col.get("meta").and_then(|m| serde_json::from_value(m.clone()).ok()).unwrap_or_default(),
            },
        );
    }
    out
}

/// `{% docs name %}…{% enddocs %}` blocks of a Markdown file.
/// Whether `s` is one `ref(...)` or `source(...)` call (a YAML snapshot's `relation:`).
fn is_ref_or_source(s: &str) -> bool {
    let s = s.trim();
    (s.starts_with("ref(") || s.starts_with("source(")) && s.ends_with(')') && !s.contains("}}") && !s.contains("{%")
}

/// The Jinja template name of a snapshot block (a file may hold several).
pub(crate) fn snapshot_template(file: &Path, name: &str) -> String {
    format!("{} (snapshot {name})", rel_str(file))
}

fn doc_blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{%") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("%}") else { break };
        let tag = after[..end].trim_matches('-').trim();
        rest = &after[end + 2..];
        if let Some(name) = tag.strip_prefix("docs").map(str::trim).filter(|n| !n.is_empty()) {
            let Some(close) = find_enddocs(rest) else { break };
            out.push((name.to_string(), rest[..close.0].trim().to_string()));
            rest = &rest[close.1..];
        }
    }
    out
}

fn find_enddocs(text: &str) -> Option<(usize, usize)> {
    let mut offset = 0;
    while let Some(start) = text[offset..].find("{%") {
        let abs = offset + start;
        let end = text[abs..].find("%}")? + abs + 2;
        if text[abs + 2..end - 2].trim_matches('-').trim() == "enddocs" {
            return Some((abs, end));
        }
        offset = end;
    }
    None
}

/// Files under `root/dir` with one of `extensions`, as paths relative to `root`, sorted.
fn find_files(root: &Path, dir: &str, extensions: &[&str]) -> Result<Vec<PathBuf>> {
    let base = root.join(dir);
    if !base.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(&base).sort_by_file_name() {
        let entry = entry.map_err(|e| TransformError::io(&base, std::io::Error::other(e.to_string())))?;
        if entry.file_type().is_file()
            && entry.path().extension().and_then(|e| e.to_str()).is_some_and(|e| extensions.contains(&e))
        {
            out.push(entry.path().strip_prefix(root).expect("under root").to_path_buf());
        }
    }
    Ok(out)
}

fn read(root: &Path, file: &Path) -> Result<String> {
    std::fs::read_to_string(root.join(file)).map_err(|e| TransformError::io(root.join(file), e))
}

fn rel_str(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// `[package, folder…, name]` for a file under resource folder `dir`.
fn fqn_for(package: &str, dir: &str, file: &Path, name: &str) -> Vec<String> {
    let mut fqn = vec![package.to_string()];
    if let Ok(inner) = file.strip_prefix(dir) {
        if let Some(parent) = inner.parent() {
            fqn.extend(parent.components().map(|c| c.as_os_str().to_string_lossy().into_owned()));
        }
    }
    fqn.push(name.to_string());
    fqn
}

/// The 1-based line of the first `{% word` tag in `text` (any whitespace control), if any.
fn tag_line(text: &str, word: &str) -> Option<usize> {
    let mut offset = 0;
    while let Some(found) = text[offset..].find("{%") {
        let at = offset + found;
        let tag = text[at + 2..].trim_start_matches(['-', '+']).trim_start();
        if tag.strip_prefix(word).is_some_and(|rest| rest.starts_with(char::is_whitespace)) {
            return Some(text[..at].matches('\n').count() + 1);
        }
        offset = at + 2;
    }
    None
}

/// `{% materialization name, adapter %}…{% endmaterialization %}` blocks blanked out (their lines kept,
/// so errors elsewhere in the file keep their line numbers); returns the text and (name, line) of each.
fn strip_materializations(text: &str) -> (String, Vec<(String, usize)>) {
    let mut out = String::with_capacity(text.len());
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find("{%") {
        let tag = rest[pos + 2..].trim_start_matches(['-', '+']).trim_start();
        let Some(after) = tag.strip_prefix("materialization").filter(|a| a.starts_with(char::is_whitespace)) else {
            out.push_str(&rest[..pos + 2]);
            rest = &rest[pos + 2..];
            continue;
        };
        let name: String = after.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let line = out.matches('\n').count() + rest[..pos].matches('\n').count() + 1;
        found.push((name, line));
        out.push_str(&rest[..pos]);
        let end = rest[pos..]
            .find("endmaterialization")
            .and_then(|e| rest[pos + e..].find("%}").map(|c| pos + e + c + 2))
            .unwrap_or(rest.len());
        out.extend(std::iter::repeat_n('\n', rest[pos..end].matches('\n').count()));
        rest = &rest[end..];
    }
    out.push_str(rest);
    (out, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedded(files: &[(&str, &str)]) -> EmbeddedPackage {
        let root = Path::new("pkg");
        let project = DbtProject::from_yaml(
            root,
            "name: pkg\nvars: {greeting: package}\nmodels:\n  pkg:\n    +materialized: table\n    +schema: marts\n",
        )
        .unwrap();
        EmbeddedPackage { project, files: files.iter().map(|(p, t)| (PathBuf::from(p), t.to_string())).collect() }
    }

    fn target() -> Target {
        Target {
            profile_name: "p".into(),
            name: "dev".into(),
            schema: "main".into(),
            database: "db".into(),
            threads: 1,
            kind: crate::profiles::TargetKind::DuckDb { path: "x.duckdb".into() },
        }
    }

    #[test]
    fn an_embedded_package_is_parsed_beside_the_project_which_replaces_and_configures_it() {
        let dir = tempfile::tempdir().unwrap();
        let write = |p: &str, t: &str| {
            std::fs::create_dir_all(dir.path().join(p).parent().unwrap()).unwrap();
            std::fs::write(dir.path().join(p), t).unwrap();
        };
        write("dbt_project.yml", "name: mine\nmodels:\n  pkg:\n    kept:\n      +materialized: view\n");
        write("models/replaced.sql", "select 'mine' as who");
        write("models/report.sql", "select * from {{ ref('kept') }}");
        write("macros/who.sql", "{% macro who() %}'project'{% endmacro %}");
        let package = embedded(&[
            ("models/kept.sql", "select {{ who() }} as who, '{{ var(\"greeting\") }}' as g from {{ ref('replaced') }}"),
            ("models/replaced.sql", "select 'package' as who"),
            ("models/schema.yml", "version: 2\nmodels:\n  - name: replaced\n    columns:\n      - name: who\n        data_tests: [not_null]\n"),
            ("macros/who.sql", "{% macro who() %}'package'{% endmacro %}"),
        ]);
        let project = DbtProject::load(dir.path()).unwrap();
        let parsed = parse_with_packages(project, vec![package], target(), IndexMap::new()).unwrap();
        let m = &parsed.manifest;
        let kept = &m.nodes["model.pkg.kept"];
        assert_eq!(kept.original_file_path, Path::new("pkg/models/kept.sql"));
        assert_eq!(kept.fqn, ["pkg", "kept"]);
        assert_eq!(kept.config.materialized, "view", "the project's config tree applies after the package's");
        assert_eq!(kept.relation.as_ref().unwrap().schema, "main_marts");
        assert_eq!(kept.depends_on, ["model.mine.replaced"], "a replaced model resolves to the project's");
        assert!(!m.nodes.contains_key("model.pkg.replaced"));
        assert!(!m.nodes.values().any(|n| n.resource_type == ResourceType::Test), "the replaced model's tests go too");
        assert_eq!(m.nodes["model.mine.report"].depends_on, ["model.pkg.kept"]);
        let existing = Default::default();
        let mut compiler = crate::compile::Compiler::new(&parsed, &existing, Default::default());
        let compiled = compiler.compile("model.pkg.kept").unwrap();
        assert!(compiled.sql.contains("'project' as who, 'package' as g"), "{}", compiled.sql);
    }

    #[test]
    fn generic_test_names_follow_dbt() {
        let mut kw = IndexMap::new();
        kw.insert("column_name".to_string(), Json::from("status"));
        kw.insert(
            "values".to_string(),
            serde_json::json!(["placed", "shipped", "completed", "return_pending", "returned"]),
        );
        assert_eq!(
            generic_test_name("accepted_values", "orders", &kw),
            "accepted_values_orders_status__placed__shipped__completed__return_pending__returned"
        );
        let mut kw = IndexMap::new();
        kw.insert("to".to_string(), Json::from("ref('customers')"));
        kw.insert("field".to_string(), Json::from("customer_id"));
        kw.insert("column_name".to_string(), Json::from("customer_id"));
        assert_eq!(
            generic_test_name("relationships", "orders", &kw),
            "relationships_orders_customer_id__customer_id__ref_customers_"
        );
    }

    #[test]
    fn test_arguments_that_are_one_expression_are_evaluated() {
        assert_eq!(whole_expression("{{ var('id_column') }}"), Some("var('id_column')"));
        assert_eq!(whole_expression("id_{{ x }}"), None, "mixed text stays data");
        assert_eq!(whole_expression("{{ a }} {{ b }}"), None);
        assert!(is_call_expr(" ref('customers') ") && !is_call_expr("refund"));
    }

    #[test]
    fn docs_blocks_are_found() {
        let text = "intro\n{% docs orders_status %}\nOne of:\n- placed\n{% enddocs %}\n{% docs other %}x{% enddocs %}";
        let blocks = doc_blocks(text);
        assert_eq!(
            blocks,
            vec![
                ("orders_status".to_string(), "One of:\n- placed".to_string()),
                ("other".to_string(), "x".to_string())
            ]
        );
    }
}
