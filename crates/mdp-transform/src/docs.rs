//! The documentation site of a parsed project (`mdp docs generate`, and `/docs/` under `mdp serve`)
//! and its lineage graph.
//!
//! Pure, like the rest of loading and compiling: the site is made from the [`Parsed`] project
//! alone (no warehouse I/O). Compiled SQL is the compile phase's output with no existing relations,
//! i.e. what a first build runs (an incremental model shows its full-build query).
//!
//! The site is flat — `index.html`, one page per model, seed and source table
//! ([`node_page_path`]), `docs.css`, `docs.js` and `docs.json` (the same data for machines) side by
//! side — and every link starts with [`DocsOptions::base_href`], so the same files work opened from
//! disk (`""`) and served under a prefix (`"/docs/"`). Templates are minijinja with HTML
//! auto-escaping; the SVG is written with explicit escaping.

pub mod layout;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use minijinja::{context, Environment};
use serde::Serialize;

use crate::compile::{Compiler, Existing};
use crate::manifest::{Node, ResourceType};
use crate::parse::Parsed;

/// One file of the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocFile {
    /// Relative, `/`-separated path within the site, e.g. `index.html`.
    pub path: String,
    pub content: Vec<u8>,
}

/// How to render the site.
#[derive(Debug, Clone, Default)]
pub struct DocsOptions {
    /// Prefix of every link: `""` for the static site (links relative to its folder), `"/docs/"`
    /// when served under `/docs/`. Include the trailing slash.
    pub base_href: String,
    /// The title in the header and the pages' `<title>` (empty: the project's name).
    pub project_title: String,
}

/// Why the site could not be rendered (a bug in a template, not in the project).
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    #[error("docs template {name}: {source}")]
    Template { name: String, source: minijinja::Error },
    #[error("cannot serialize docs.json: {0}")]
    Json(#[from] serde_json::Error),
}

const BASE_HTML: &str = include_str!("docs/templates/base.html");
const INDEX_HTML: &str = include_str!("docs/templates/index.html");
const NODE_HTML: &str = include_str!("docs/templates/node.html");
const DOCS_CSS: &str = include_str!("docs/templates/docs.css");
const DOCS_JS: &str = include_str!("docs/templates/docs.js");

/// The relative path of a node's page within the site: `<unique_id>.html`, with every character
/// outside `A-Z a-z 0-9 . _ -` written as `~` and its UTF-8 bytes in hex (so different ids never
/// share a page and the path needs no URL encoding).
pub fn node_page_path(unique_id: &str) -> String {
    let mut out = String::with_capacity(unique_id.len() + 5);
    for c in unique_id.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "~{b:02X}");
            }
        }
    }
    out.push_str(".html");
    out
}

/// The documentation site: every file, paths relative to the site's root.
pub fn render_site(parsed: &Parsed, options: &DocsOptions) -> Result<Vec<DocFile>, DocsError> {
    let base = options.base_href.as_str();
    let title =
        if options.project_title.is_empty() { parsed.project.name.clone() } else { options.project_title.clone() };
    let clock = std::time::Instant::now();
    let data = SiteData::build(parsed);
    let data_ms = clock.elapsed().as_secs_f64() * 1e3;
    let href = |id: &str| format!("{base}{}", node_page_path(id));

    let mut env = Environment::new();
    // HTML-escape every value (`|safe` ones excepted) with the same escaping as the SVG; `none`
    // prints nothing.
    env.set_formatter(|out, _state, value| {
        if value.is_none() || value.is_undefined() {
            Ok(())
        } else if value.is_safe() {
            write!(out, "{value}").map_err(minijinja::Error::from)
        } else {
            out.write_str(&escape(&value.to_string())).map_err(minijinja::Error::from)
        }
    });
    for (name, text) in [("base.html", BASE_HTML), ("index.html", INDEX_HTML), ("node.html", NODE_HTML)] {
        env.add_template(name, text).map_err(|source| DocsError::Template { name: name.into(), source })?;
    }
    let render = |name: &str, ctx: minijinja::Value| -> Result<Vec<u8>, DocsError> {
        env.get_template(name)
            .and_then(|t| t.render(ctx))
            .map(String::into_bytes)
            .map_err(|source| DocsError::Template { name: name.into(), source })
    };
    let version = env!("CARGO_PKG_VERSION");

    let mut files = Vec::with_capacity(data.nodes.len() + 4);
    let ids: Vec<&str> = graph_ids(parsed).collect();
    let (input, edges) = graph_input(parsed, &ids);
    let laid = layout::layout(&input, &edges);
    let graph = svg(parsed, &ids, &laid, None, &href);
    let graph_ms = clock.elapsed().as_secs_f64() * 1e3 - data_ms;
    let index = render(
        "index.html",
        context! {
            base, title, version, graph,
            project => parsed.project.name,
            stats => data.stats(),
            sections => data.model_sections(),
            sources => data.source_groups(),
            seeds => data.of_type(ResourceType::Seed),
            tests => &data.tests,
        },
    )?;
    files.push(DocFile { path: "index.html".into(), content: index });
    for node in data.nodes.values() {
        let snippet = lineage_svg_around(parsed, &node.unique_id, &href);
        let page = render("node.html", context! { base, title, version, node, snippet })?;
        files.push(DocFile { path: node.page.clone(), content: page });
    }
    files.push(DocFile { path: "docs.css".into(), content: DOCS_CSS.as_bytes().to_vec() });
    files.push(DocFile { path: "docs.js".into(), content: DOCS_JS.as_bytes().to_vec() });
    let json = serde_json::json!({
        "project": parsed.project.name,
        "title": title,
        "mdp_version": version,
        "nodes": data.nodes,
        "tests": data.tests,
        "lineage": lineage_json(&ids, &laid),
    });
    files.push(DocFile { path: "docs.json".into(), content: serde_json::to_vec(&json)? });
    tracing::debug!(
        nodes = ids.len(),
        edges = laid.edges.len(),
        crossings = laid.crossings,
        "docs rendered: data and compiled SQL {data_ms:.0} ms, lineage graph {graph_ms:.0} ms, total {:.0} ms",
        clock.elapsed().as_secs_f64() * 1e3
    );
    Ok(files)
}

/// A standalone `<svg>` of the lineage graph from sources to marts: one
/// `<g class="node" data-id="<unique_id>" data-resource-type="model|source|seed">` per node wrapped in
/// `<a href="{href(unique_id)}">`, edges as paths (`<path class="edge" data-from data-to>`), left to
/// right by layer, with its own scoped `<style>`. Tests are not nodes (see the node pages).
pub fn lineage_svg(parsed: &Parsed, href: &dyn Fn(&str) -> String) -> String {
    let ids: Vec<&str> = graph_ids(parsed).collect();
    let (input, edges) = graph_input(parsed, &ids);
    svg(parsed, &ids, &layout::layout(&input, &edges), None, href)
}

/// The lineage around one node: the node, its parents and its children (tests left out), the node
/// marked `current`. Empty when `unique_id` is not a graph node.
pub fn lineage_svg_around(parsed: &Parsed, unique_id: &str, href: &dyn Fn(&str) -> String) -> String {
    let Some(node) = parsed.manifest.nodes.get(unique_id) else { return String::new() };
    if node.resource_type == ResourceType::Test {
        return String::new();
    }
    let mut ids: Vec<&str> = vec![unique_id];
    for id in parsed.graph.parents(unique_id).iter().chain(parsed.graph.children(unique_id)) {
        if is_graph_node(parsed, id) && !ids.contains(&id.as_str()) {
            ids.push(id);
        }
    }
    let (input, edges) = graph_input(parsed, &ids);
    svg(parsed, &ids, &layout::layout(&input, &edges), Some(unique_id), href)
}

/// The lineage graph's nodes and edges as they are drawn, for `docs.json`.
fn lineage_json(ids: &[&str], laid: &layout::Layout) -> serde_json::Value {
    serde_json::json!({
        "nodes": ids.iter().zip(&laid.nodes).map(|(id, p)| serde_json::json!({
            "unique_id": id, "layer": p.layer, "x": round1(p.x), "y": round1(p.y), "width": round1(p.width), "height": p.height,
        })).collect::<Vec<_>>(),
        "edges": laid.edges.iter().map(|r| [ids[r.from], ids[r.to]]).collect::<Vec<_>>(),
    })
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn is_graph_node(parsed: &Parsed, id: &str) -> bool {
    parsed.manifest.nodes.get(id).is_some_and(|n| n.resource_type != ResourceType::Test)
}

fn graph_ids(parsed: &Parsed) -> impl Iterator<Item = &str> {
    parsed.manifest.nodes.values().filter(|n| n.resource_type != ResourceType::Test).map(|n| n.unique_id.as_str())
}

/// Characters of a label before it is cut with an ellipsis (the full name is the node's tooltip).
const MAX_LABEL_CHARS: usize = 40;
/// Average advance of the 12px label font; boxes are sized from it.
const CHAR_WIDTH: f64 = 7.0;
const BAR_WIDTH: f64 = 5.0;

fn label(node: &Node) -> String {
    let name = &node.name;
    let name = match (&node.source, node.resource_type) {
        (Some(s), ResourceType::Source) => format!("{}.{}", s.source_name, name),
        _ => name.clone(),
    };
    if name.chars().count() > MAX_LABEL_CHARS {
        let cut: String = name.chars().take(MAX_LABEL_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        name
    }
}

fn graph_input(parsed: &Parsed, ids: &[&str]) -> (Vec<layout::InputNode>, Vec<(usize, usize)>) {
    let index: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let input = ids
        .iter()
        .map(|id| {
            let node = &parsed.manifest.nodes[*id];
            let group = group(node);
            layout::InputNode {
                width: (label(node).chars().count() as f64 * CHAR_WIDTH + 24.0 + BAR_WIDTH).max(120.0),
                sort_key: format!("{}|{}|{}|{}", group.rank(), node.package, folder(node), node.name),
            }
        })
        .collect();
    let mut edges = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        for p in parsed.graph.parents(id) {
            if let Some(&j) = index.get(p.as_str()) {
                edges.push((j, i));
            }
        }
    }
    (input, edges)
}

/// The SVG of `ids` laid out as `laid` (from [`graph_input`] of the same ids).
fn svg(
    parsed: &Parsed,
    ids: &[&str],
    laid: &layout::Layout,
    current: Option<&str>,
    href: &dyn Fn(&str) -> String,
) -> String {
    let mut groups: Vec<Group> = ids.iter().map(|id| group(&parsed.manifest.nodes[*id])).collect();
    groups.sort();
    groups.dedup();
    const LEGEND: f64 = 26.0;
    let (w, h) = (laid.width.max(groups.len() as f64 * 110.0 + 16.0).ceil(), (laid.height + LEGEND).ceil());
    let mut s = String::with_capacity(512 + ids.len() * 420 + laid.edges.len() * 160);
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="mdp-lineage" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="Lineage graph: {} nodes, {} edges">"##,
        ids.len(),
        laid.edges.len()
    );
    s.push_str(SVG_STYLE);
    s.push_str(r##"<g class="legend">"##);
    for (i, g) in groups.iter().enumerate() {
        let x = 16.0 + i as f64 * 110.0;
        let _ = write!(
            s,
            r##"<rect x="{x}" y="9" width="10" height="10" rx="2" fill="{}"/><text x="{}" y="18">{}</text>"##,
            g.colour(),
            x + 15.0,
            g.title()
        );
    }
    s.push_str("</g>");
    let _ = write!(s, r##"<g transform="translate(0,{LEGEND})">"##);
    s.push_str(r##"<g class="edges">"##);
    for route in &laid.edges {
        let _ = write!(
            s,
            r##"<path class="edge" data-from="{}" data-to="{}" d="{}"/>"##,
            escape(ids[route.from]),
            escape(ids[route.to]),
            path_data(&route.points)
        );
    }
    s.push_str(r##"</g><g class="nodes">"##);
    for (i, id) in ids.iter().enumerate() {
        let node = &parsed.manifest.nodes[*id];
        let p = &laid.nodes[i];
        let g = group(node);
        let class = if current == Some(*id) { "node current" } else { "node" };
        let _ = write!(
            s,
            r##"<a href="{}"><g class="{class}" data-id="{}" data-resource-type="{}" data-group="{}" transform="translate({:.1},{:.1})"><title>{}</title><rect class="box" width="{:.1}" height="{}" rx="5"/><rect class="bar" width="{BAR_WIDTH}" height="{}" rx="2" fill="{}"/><text x="{}" y="{}">{}</text></g></a>"##,
            escape(&href(id)),
            escape(id),
            node.resource_type.as_str(),
            g.key(),
            p.x,
            p.y,
            escape(&tooltip(node)),
            p.width,
            p.height,
            p.height,
            g.colour(),
            BAR_WIDTH + 9.0,
            p.height / 2.0 + 4.0,
            escape(&label(node)),
        );
    }
    s.push_str("</g></g></svg>");
    s
}

const SVG_STYLE: &str = "<style>\
svg.mdp-lineage{font:12px ui-sans-serif,system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#fff}\
svg.mdp-lineage .legend text{fill:#475569;font-size:11px}\
svg.mdp-lineage .edge{fill:none;stroke:#94a3b8;stroke-width:1.2;opacity:.75}\
svg.mdp-lineage .edge.hot{stroke:#0f172a;stroke-width:2;opacity:1}\
svg.mdp-lineage .node .box{fill:#fff;stroke:#cbd5e1}\
svg.mdp-lineage .node text{fill:#0f172a}\
svg.mdp-lineage a:hover .node .box,svg.mdp-lineage a:focus .node .box{stroke:#0f172a;fill:#f8fafc}\
svg.mdp-lineage .node.current .box{stroke:#0f172a;stroke-width:2;fill:#eff6ff}\
svg.mdp-lineage .node.current text{font-weight:600}\
svg.mdp-lineage .dim{opacity:.15}\
</style>";

/// SVG path data: a curve with horizontal tangents between points that advance, a straight line
/// through a virtual slot (same height).
fn path_data(points: &[(f64, f64)]) -> String {
    let mut d = String::new();
    let Some(&(x0, y0)) = points.first() else { return d };
    let _ = write!(d, "M{x0:.1},{y0:.1}");
    for pair in points.windows(2) {
        let ((ax, ay), (bx, by)) = (pair[0], pair[1]);
        if (ay - by).abs() < 0.05 {
            let _ = write!(d, " L{bx:.1},{by:.1}");
        } else {
            let mid = (bx - ax) / 2.0;
            let _ = write!(d, " C{:.1},{ay:.1} {:.1},{by:.1} {bx:.1},{by:.1}", ax + mid, bx - mid);
        }
    }
    d
}

fn tooltip(node: &Node) -> String {
    let mut t = format!("{} ({})", node.unique_id, node.resource_type.as_str());
    if !node.description.is_empty() {
        let first: String = node.description.lines().next().unwrap_or("").chars().take(200).collect();
        let _ = write!(t, "\n{first}");
    }
    t
}

/// Escape text for XML/HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A node's family for colours and the index's sections: the resource type, and for models the
/// layer by folder (`staging`, `intermediate`, `marts`) or name prefix (`stg_`, `int_`, `fct_`/`dim_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Source,
    Seed,
    Staging,
    Intermediate,
    Marts,
    Model,
    Test,
}

impl Group {
    fn rank(self) -> u8 {
        self as u8
    }
    pub fn key(self) -> &'static str {
        match self {
            Group::Source => "source",
            Group::Seed => "seed",
            Group::Staging => "staging",
            Group::Intermediate => "intermediate",
            Group::Marts => "marts",
            Group::Model => "model",
            Group::Test => "test",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Group::Source => "Sources",
            Group::Seed => "Seeds",
            Group::Staging => "Staging",
            Group::Intermediate => "Intermediate",
            Group::Marts => "Marts",
            Group::Model => "Other models",
            Group::Test => "Tests",
        }
    }
    pub fn colour(self) -> &'static str {
        match self {
            Group::Source => "#16a34a",
            Group::Seed => "#0d9488",
            Group::Staging => "#2563eb",
            Group::Intermediate => "#7c3aed",
            Group::Marts => "#ea580c",
            Group::Model => "#64748b",
            Group::Test => "#475569",
        }
    }
}

/// The family of a node (see [`Group`]).
pub fn group(node: &Node) -> Group {
    match node.resource_type {
        ResourceType::Source => return Group::Source,
        ResourceType::Seed => return Group::Seed,
        ResourceType::Test => return Group::Test,
        ResourceType::Model | ResourceType::Snapshot => {}
    }
    // fqn: package, folders…, name.
    let folders = node.fqn.get(1..node.fqn.len().saturating_sub(1)).unwrap_or(&[]);
    for f in folders {
        let f = f.to_ascii_lowercase();
        if f.starts_with("stag") {
            return Group::Staging;
        }
        if f.starts_with("int") {
            return Group::Intermediate;
        }
        if f.starts_with("mart") {
            return Group::Marts;
        }
    }
    let name = node.name.to_ascii_lowercase();
    if name.starts_with("stg_") {
        Group::Staging
    } else if name.starts_with("int_") {
        Group::Intermediate
    } else if ["fct_", "fact_", "dim_", "mart_"].iter().any(|p| name.starts_with(p)) {
        Group::Marts
    } else {
        Group::Model
    }
}

/// The folder of a node's file within its resource folder (`staging/google_ads`), `/`-separated.
fn folder(node: &Node) -> String {
    let parent =
        node.path.parent().map(|p| p.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>());
    parent.map(|parts| parts.join("/")).unwrap_or_default()
}

fn slash_path(p: &std::path::Path) -> String {
    p.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

// ---- The site's data (template context and docs.json) ----

#[derive(Debug, Clone, Serialize)]
struct Link {
    unique_id: String,
    name: String,
    resource_type: &'static str,
    group: Group,
    page: String,
}

#[derive(Debug, Clone, Serialize)]
struct TestDoc {
    unique_id: String,
    /// The generic test (`not_null`, `relationships`, …) or the singular test's name.
    name: String,
    kind: &'static str,
    column: Option<String>,
    /// The YAML arguments, compactly (`values: [a, b]`), for generic tests.
    arguments: String,
    severity: String,
    /// The node the test is attached to (generic) or the nodes it reads (singular).
    on: Vec<Link>,
    description: String,
    /// A singular test's SQL as written.
    sql: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct ColumnOut {
    name: String,
    description: String,
    data_type: Option<String>,
    tests: Vec<TestDoc>,
}

#[derive(Debug, Clone, Serialize)]
struct SourceOut {
    source_name: String,
    source_description: String,
    loader: String,
    loaded_at_field: Option<String>,
    freshness: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
struct NodeDoc {
    unique_id: String,
    name: String,
    resource_type: &'static str,
    group: Group,
    group_title: &'static str,
    colour: &'static str,
    package: String,
    original_file_path: String,
    folder: String,
    fqn: Vec<String>,
    description: String,
    /// The description's first line, cut at 160 characters, for lists.
    summary: String,
    materialized: Option<String>,
    /// `"schema"."identifier"` as SQL addresses it.
    relation_name: Option<String>,
    database: Option<String>,
    tags: Vec<String>,
    columns: Vec<ColumnOut>,
    tests: Vec<TestDoc>,
    depends_on: Vec<Link>,
    referenced_by: Vec<Link>,
    raw_sql: Option<String>,
    compiled_sql: Option<String>,
    compile_error: Option<String>,
    source: Option<SourceOut>,
    meta: serde_json::Value,
    /// The page's path within the site.
    page: String,
    /// Lower-case text the index's filter matches.
    search: String,
}

struct SiteData {
    /// Graph nodes (no tests) in manifest order.
    nodes: indexmap::IndexMap<String, NodeDoc>,
    tests: Vec<TestDoc>,
}

#[derive(Serialize)]
struct FolderOut<'a> {
    folder: String,
    package: String,
    nodes: Vec<&'a NodeDoc>,
}

#[derive(Serialize)]
struct SectionOut<'a> {
    key: &'static str,
    title: &'static str,
    colour: &'static str,
    count: usize,
    folders: Vec<FolderOut<'a>>,
}

impl SiteData {
    fn build(parsed: &Parsed) -> SiteData {
        let manifest = &parsed.manifest;
        let link = |id: &str| -> Option<Link> {
            let n = manifest.nodes.get(id)?;
            Some(Link {
                unique_id: n.unique_id.clone(),
                name: n.name.clone(),
                resource_type: n.resource_type.as_str(),
                group: group(n),
                page: node_page_path(&n.unique_id),
            })
        };

        // Tests by the node (and column) they are on.
        let mut tests: Vec<TestDoc> = Vec::new();
        let mut column_tests: HashMap<(String, String), Vec<TestDoc>> = HashMap::new();
        let mut node_tests: HashMap<String, Vec<TestDoc>> = HashMap::new();
        for t in manifest.nodes.values().filter(|n| n.resource_type == ResourceType::Test) {
            let on_ids: Vec<String> = match &t.attached_node {
                Some(a) => vec![a.clone()],
                None => t.depends_on.iter().filter(|d| is_graph_node(parsed, d)).cloned().collect(),
            };
            let doc = TestDoc {
                unique_id: t.unique_id.clone(),
                name: t.test_metadata.as_ref().map_or_else(|| t.name.clone(), |m| m.name.clone()),
                kind: if t.test_metadata.is_some() { "generic" } else { "singular" },
                column: t.column_name.clone(),
                arguments: t.test_metadata.as_ref().map(|m| arguments(&m.kwargs)).unwrap_or_default(),
                severity: t.config.severity.to_ascii_lowercase(),
                on: on_ids.iter().filter_map(|id| link(id)).collect(),
                description: t.description.clone(),
                sql: t.test_metadata.is_none().then(|| t.raw_code.clone()),
            };
            for id in &on_ids {
                let documented = t.column_name.as_ref().is_some_and(|c| {
                    manifest.nodes.get(id).is_some_and(|n| n.columns.keys().any(|k| k.eq_ignore_ascii_case(c)))
                });
                match (&t.column_name, documented) {
                    (Some(c), true) => {
                        column_tests.entry((id.clone(), c.to_ascii_lowercase())).or_default().push(doc.clone())
                    }
                    _ => node_tests.entry(id.clone()).or_default().push(doc.clone()),
                }
            }
            tests.push(doc);
        }

        // Compiled SQL of every model (pure: no relation exists, so it is a first build's SQL).
        let existing = Existing::new();
        let mut compiler = Compiler::new(parsed, &existing, Default::default());

        let mut nodes = indexmap::IndexMap::new();
        for node in manifest.nodes.values().filter(|n| n.resource_type != ResourceType::Test) {
            let id = &node.unique_id;
            let g = group(node);
            let mut columns: Vec<ColumnOut> = node
                .columns
                .values()
                .map(|c| ColumnOut {
                    name: c.name.clone(),
                    description: c.description.clone(),
                    data_type: c.data_type.clone().or_else(|| node.config.column_types.get(&c.name).cloned()),
                    tests: column_tests.remove(&(id.clone(), c.name.to_ascii_lowercase())).unwrap_or_default(),
                })
                .collect();
            // A seed's typed columns that no properties file documents.
            for (name, ty) in &node.config.column_types {
                if !columns.iter().any(|c| c.name.eq_ignore_ascii_case(name)) {
                    columns.push(ColumnOut {
                        name: name.clone(),
                        description: String::new(),
                        data_type: Some(ty.clone()),
                        tests: Vec::new(),
                    });
                }
            }
            let (compiled_sql, compile_error) = if node.introspective {
                let why =
                    "compiled when it runs: its Jinja queries the warehouse (run_query, get_columns_in_relation, …)";
                (None, Some(why.to_string()))
            } else if node.resource_type == ResourceType::Model {
                match compiler.compile(id) {
                    Ok(c) => (Some(c.sql), None),
                    Err(e) => (None, Some(e.to_string())),
                }
            } else {
                (None, None)
            };
            let rel = node.relation.as_ref();
            let depends_on: Vec<Link> = parsed.graph.parents(id).iter().filter_map(|p| link(p)).collect();
            let referenced_by: Vec<Link> =
                parsed.graph.children(id).iter().filter(|c| is_graph_node(parsed, c)).filter_map(|c| link(c)).collect();
            let source = node.source.as_ref().map(|s| SourceOut {
                source_name: s.source_name.clone(),
                source_description: s.source_description.clone(),
                loader: s.loader.clone(),
                loaded_at_field: s.loaded_at_field.clone(),
                freshness: s.freshness.clone(),
            });
            let mut search =
                format!("{} {} {} {}", node.name, node.unique_id, node.description, node.config.tags.join(" "));
            if let Some(s) = &source {
                let _ = write!(search, " {}", s.source_name);
            }
            let doc = NodeDoc {
                unique_id: id.clone(),
                name: node.name.clone(),
                resource_type: node.resource_type.as_str(),
                group: g,
                group_title: g.title(),
                colour: g.colour(),
                package: node.package.clone(),
                original_file_path: slash_path(&node.original_file_path),
                folder: folder(node),
                fqn: node.fqn.clone(),
                description: node.description.clone(),
                summary: summary(&node.description),
                materialized: (node.resource_type == ResourceType::Model).then(|| node.config.materialized.clone()),
                relation_name: rel.map(|r| crate::run::relation_name(parsed.target.dialect(), r)),
                database: rel.and_then(|r| r.database.clone()),
                tags: node.config.tags.clone(),
                columns,
                tests: node_tests.remove(id).unwrap_or_default(),
                depends_on,
                referenced_by,
                raw_sql: (node.resource_type == ResourceType::Model).then(|| node.raw_code.clone()),
                compiled_sql,
                compile_error,
                source,
                meta: serde_json::to_value(&node.meta).unwrap_or_default(),
                page: node_page_path(id),
                search: search.to_lowercase(),
            };
            nodes.insert(id.clone(), doc);
        }
        SiteData { nodes, tests }
    }

    fn of_type(&self, t: ResourceType) -> Vec<&NodeDoc> {
        self.nodes.values().filter(|n| n.resource_type == t.as_str()).collect()
    }

    fn stats(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for t in [ResourceType::Model, ResourceType::Source, ResourceType::Seed] {
            m.insert(t.as_str(), self.of_type(t).len());
        }
        m.insert("test", self.tests.len());
        m.insert("column", self.nodes.values().map(|n| n.columns.len()).sum());
        m
    }

    /// Models by layer (staging, intermediate, marts, other), then by package and folder.
    fn model_sections(&self) -> Vec<SectionOut<'_>> {
        let mut sections = Vec::new();
        for g in [Group::Staging, Group::Intermediate, Group::Marts, Group::Model] {
            let mut folders: BTreeMap<(String, String), Vec<&NodeDoc>> = BTreeMap::new();
            for n in self.nodes.values().filter(|n| n.group == g && n.resource_type == "model") {
                folders.entry((n.package.clone(), n.folder.clone())).or_default().push(n);
            }
            if folders.is_empty() {
                continue;
            }
            let count = folders.values().map(Vec::len).sum();
            let folders = folders
                .into_iter()
                .map(|((package, folder), mut nodes)| {
                    nodes.sort_by(|a, b| a.name.cmp(&b.name));
                    FolderOut { folder, package, nodes }
                })
                .collect();
            sections.push(SectionOut { key: g.key(), title: g.title(), colour: g.colour(), count, folders });
        }
        sections
    }

    /// Source tables by source.
    fn source_groups(&self) -> Vec<FolderOut<'_>> {
        let mut by: BTreeMap<(String, String), Vec<&NodeDoc>> = BTreeMap::new();
        for n in self.of_type(ResourceType::Source) {
            let name = n.source.as_ref().map(|s| s.source_name.clone()).unwrap_or_default();
            by.entry((n.package.clone(), name)).or_default().push(n);
        }
        by.into_iter()
            .map(|((package, folder), mut nodes)| {
                nodes.sort_by(|a, b| a.name.cmp(&b.name));
                FolderOut { folder, package, nodes }
            })
            .collect()
    }
}

fn summary(description: &str) -> String {
    let first = description.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    if first.chars().count() > 160 {
        format!("{}…", first.chars().take(159).collect::<String>())
    } else {
        first.to_string()
    }
}

/// Test arguments as compact text: `values: [google_ads, meta_ads]`, `to: ref('dim_accounts'), field: id`.
fn arguments(kwargs: &indexmap::IndexMap<String, serde_json::Value>) -> String {
    fn value(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => format!("[{}]", items.iter().map(value).collect::<Vec<_>>().join(", ")),
            serde_json::Value::Object(m) => {
                format!("{{{}}}", m.iter().map(|(k, v)| format!("{k}: {}", value(v))).collect::<Vec<_>>().join(", "))
            }
            other => other.to_string(),
        }
    }
    kwargs
        .iter()
        .filter(|(k, _)| k.as_str() != "column_name" && k.as_str() != "model")
        .map(|(k, v)| format!("{k}: {}", value(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use super::*;
    use crate::profiles::{Target, TargetKind};
    use crate::project::DbtProject;

    fn target() -> Target {
        Target {
            profile_name: "p".into(),
            name: "dev".into(),
            schema: "main".into(),
            database: "db".into(),
            threads: 1,
            kind: TargetKind::DuckDb { path: "x.duckdb".into() },
        }
    }

    fn parse_dir(dir: &Path) -> Parsed {
        crate::parse::parse(DbtProject::load(dir).unwrap(), target(), Default::default()).unwrap()
    }

    /// A small project whose descriptions and SQL try to break out of the HTML.
    fn hostile_project() -> (tempfile::TempDir, Parsed) {
        let dir = tempfile::tempdir().unwrap();
        let write = |p: &str, t: &str| {
            std::fs::create_dir_all(dir.path().join(p).parent().unwrap()).unwrap();
            std::fs::write(dir.path().join(p), t).unwrap();
        };
        write("dbt_project.yml", "name: shop\nmodels:\n  shop:\n    marts:\n      +materialized: table\n");
        write(
            "models/sources.yml",
            "version: 2\nsources:\n  - name: raw\n    schema: raw\n    description: Raw \"orders\" & more\n    tables:\n      - name: orders\n        description: One row per <order>\n",
        );
        write(
            "models/staging/stg_orders.sql",
            "select id, amount from {{ source('raw', 'orders') }} where amount < 100 and note <> '</script>'",
        );
        write("models/marts/fct_orders.sql", "select * from {{ ref('stg_orders') }}");
        write("seeds/fx.csv", "day,rate\n2026-01-01,1.1\n");
        write(
            "models/marts/schema.yml",
            "version: 2\nmodels:\n  - name: fct_orders\n    description: \"Orders <script>alert('x')</script> & refunds\"\n    columns:\n      - name: id\n        description: The order's <b>id</b>\n        data_tests: [unique, not_null]\n      - name: amount\n        description: Money\n        data_tests:\n          - accepted_values:\n              arguments:\n                values: ['<1>', '2']\n",
        );
        write("tests/orders_positive.sql", "select * from {{ ref('fct_orders') }} where amount < 0");
        let parsed = parse_dir(dir.path());
        (dir, parsed)
    }

    fn file<'a>(files: &'a [DocFile], path: &str) -> &'a str {
        let f = files.iter().find(|f| f.path == path).unwrap_or_else(|| panic!("{path} is in the site"));
        std::str::from_utf8(&f.content).unwrap()
    }

    /// Every `href="…"` and `src="…"` value of an HTML or SVG text, unescaped.
    fn links(html: &str) -> Vec<String> {
        let mut out = Vec::new();
        for attr in ["href=\"", "src=\""] {
            let mut rest = html;
            while let Some(i) = rest.find(attr) {
                rest = &rest[i + attr.len()..];
                let end = rest.find('"').unwrap();
                out.push(rest[..end].replace("&amp;", "&").replace("&#39;", "'"));
                rest = &rest[end..];
            }
        }
        out
    }

    #[test]
    fn descriptions_names_and_sql_render_as_text() {
        let (_dir, parsed) = hostile_project();
        let files = render_site(&parsed, &DocsOptions::default()).unwrap();
        let page = file(&files, &node_page_path("model.shop.fct_orders"));
        assert!(page.contains("Orders &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; refunds"), "{page}");
        assert!(!page.contains("<script>alert"), "a description never becomes markup");
        assert!(page.contains("The order&#39;s &lt;b&gt;id&lt;/b&gt;"));
        let stg = file(&files, &node_page_path("model.shop.stg_orders"));
        assert!(stg.contains("amount &lt; 100 and note &lt;&gt; &#39;&lt;/script&gt;&#39;"), "{stg}");
        assert!(!stg.contains("'</script>'"), "SQL cannot close a tag");
        assert!(stg.contains("&quot;raw&quot;.&quot;orders&quot;"), "the compiled SQL names the real relation: {stg}");
        let index = file(&files, "index.html");
        assert!(!index.contains("<script>alert") && !index.contains("<order>"));
        assert_eq!(index.matches("<script").count(), 1, "only the site's own script tag");
        // The SVG writes its tooltips by hand: they must be escaped too.
        assert!(index.contains("Orders &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; refunds"));
        let source = file(&files, &node_page_path("source.shop.raw.orders"));
        assert!(source.contains("One row per &lt;order&gt;") && source.contains("Raw &quot;orders&quot; &amp; more"));
        // docs.json carries the text as data.
        let json: serde_json::Value = serde_json::from_str(file(&files, "docs.json")).unwrap();
        assert_eq!(
            json["nodes"]["model.shop.fct_orders"]["description"],
            "Orders <script>alert('x')</script> & refunds"
        );
    }

    #[test]
    fn a_model_page_has_its_columns_tests_lineage_and_sql() {
        let (_dir, parsed) = hostile_project();
        let files =
            render_site(&parsed, &DocsOptions { base_href: String::new(), project_title: "Shop docs".into() }).unwrap();
        let json: serde_json::Value = serde_json::from_str(file(&files, "docs.json")).unwrap();
        let fct = &json["nodes"]["model.shop.fct_orders"];
        assert_eq!(fct["materialized"], "table");
        assert_eq!(fct["relation_name"], "\"main\".\"fct_orders\"");
        let id_tests: Vec<&str> =
            fct["columns"][0]["tests"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(id_tests, ["unique", "not_null"]);
        assert_eq!(fct["columns"][1]["tests"][0]["arguments"], "values: [<1>, 2]");
        assert_eq!(fct["tests"][0]["name"], "orders_positive", "the singular test is on the model it reads");
        assert_eq!(fct["depends_on"][0]["unique_id"], "model.shop.stg_orders");
        assert_eq!(json["nodes"]["model.shop.stg_orders"]["referenced_by"][0]["unique_id"], "model.shop.fct_orders");
        assert_eq!(json["nodes"]["model.shop.stg_orders"]["depends_on"][0]["unique_id"], "source.shop.raw.orders");
        assert!(json["nodes"].get("test.shop.orders_positive").is_none(), "tests are not pages");
        let page = file(&files, &node_page_path("model.shop.fct_orders"));
        assert!(page.contains("<title>fct_orders · Shop docs</title>"));
        assert!(page.contains(r#"<tr class="column" data-column="amount">"#));
        assert!(
            page.contains(r#"<g class="node current" data-id="model.shop.fct_orders""#),
            "the snippet centres on the node"
        );
        assert!(page.contains(r#"data-id="model.shop.stg_orders""#), "with its parent");
        assert!(!page.contains(r#"data-id="source.shop.raw.orders""#), "but not its grandparents");
        for path in
            ["index.html", "docs.css", "docs.js", "docs.json", "seed.shop.fx.html", "source.shop.raw.orders.html"]
        {
            file(&files, path);
        }
    }

    #[test]
    fn every_link_starts_with_base_href_and_resolves_to_a_file() {
        let (_dir, parsed) = hostile_project();
        for base in ["", "/docs/"] {
            let files =
                render_site(&parsed, &DocsOptions { base_href: base.into(), project_title: String::new() }).unwrap();
            let paths: HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
            let mut checked = 0;
            for f in files.iter().filter(|f| f.path.ends_with(".html")) {
                for link in links(std::str::from_utf8(&f.content).unwrap()) {
                    let relative =
                        link.strip_prefix(base).unwrap_or_else(|| panic!("{}: link {link} lacks {base:?}", f.path));
                    let target = relative.split('#').next().unwrap();
                    assert!(paths.contains(target), "{}: link {link} points at no file", f.path);
                    checked += 1;
                }
            }
            assert!(checked > 50, "{checked} links checked");
        }
    }

    #[test]
    fn node_page_paths_are_stable_url_safe_and_distinct() {
        assert_eq!(
            node_page_path("model.mdp_marketing.fct_ad_performance_daily"),
            "model.mdp_marketing.fct_ad_performance_daily.html"
        );
        assert_eq!(node_page_path("source.p.my source.tbl/ä"), "source.p.my~20source.tbl~2F~C3~A4.html");
        let ids = ["a b", "a~20b", "a/b", "a?b", "a#b", "A.b", "a.b", "../x", "a%20b"];
        let paths: HashSet<String> = ids.iter().map(|id| node_page_path(id)).collect();
        assert_eq!(paths.len(), ids.len(), "distinct ids, distinct pages");
        for p in &paths {
            assert!(p.chars().all(|c| c.is_ascii_alphanumeric() || "._-~".contains(c)), "{p}");
            assert!(!p.contains('/'), "flat: {p}");
        }
    }

    #[test]
    fn the_lineage_of_a_synthetic_project_is_layered_without_overlaps() {
        let dir = tempfile::tempdir().unwrap();
        crate::synth::write_project(dir.path(), &crate::synth::SynthSpec { models: 120, layers: 6, seed_rows: 3 })
            .unwrap();
        let parsed = parse_dir(dir.path());
        let ids: Vec<&str> = graph_ids(&parsed).collect();
        assert_eq!(ids.len(), 121, "120 models and the seed; tests are not nodes");
        let (input, edges) = graph_input(&parsed, &ids);
        let laid = layout::layout(&input, &edges);
        assert_eq!(laid.nodes.len(), ids.len());
        assert!(!edges.is_empty());
        for &(a, b) in &edges {
            assert!(laid.nodes[a].layer < laid.nodes[b].layer, "{} -> {}", ids[a], ids[b]);
        }
        let seed = ids.iter().position(|id| id.starts_with("seed.")).unwrap();
        assert_eq!(laid.nodes[seed].layer, 0, "the seed is where data enters");
        assert_eq!(laid.nodes.iter().map(|p| p.layer).max(), Some(6), "six model layers after the seed");
        for (i, p) in laid.nodes.iter().enumerate() {
            for q in &laid.nodes[i + 1..] {
                let apart =
                    p.x + p.width <= q.x || q.x + q.width <= p.x || p.y + p.height <= q.y || q.y + q.height <= p.y;
                assert!(apart, "{p:?} overlaps {q:?}");
            }
        }
        let svg = lineage_svg(&parsed, &|id| format!("/docs/{}", node_page_path(id)));
        assert_eq!(svg.matches(r#"<g class="node""#).count(), ids.len());
        for id in &ids {
            assert!(svg.contains(&format!(r#"data-id="{id}""#)), "{id} is drawn");
            assert!(svg.contains(&format!(r#"<a href="/docs/{}">"#, node_page_path(id))), "{id} links to its page");
        }
        assert_eq!(svg.matches(r#"<path class="edge""#).count(), edges.len());
        assert!(!svg.contains("data-resource-type=\"test\""));
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
    }
}
