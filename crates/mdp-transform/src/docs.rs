//! The project's documentation site and lineage graph (stand-in kept by the web server's branch until
//! the docs work lands: same interface, plainer pages).
//!
//! [`render_site`] turns a parsed project into static files (an index and one page per model, seed
//! and source with its description, columns, SQL and tests); [`lineage_svg`] draws sources → models
//! as an SVG whose nodes link wherever the caller says.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use crate::manifest::{Node, ResourceType};
use crate::parse::Parsed;

/// One file of the generated site.
#[derive(Debug, Clone)]
pub struct DocFile {
    /// Path relative to the site root (`index.html`, `nodes/model.pkg.name.html`).
    pub path: String,
    pub content: Vec<u8>,
}

/// How the site is rendered.
#[derive(Debug, Clone)]
pub struct DocsOptions {
    /// Prefix of every link inside the site (`/docs/` when served, `./`-style relative otherwise).
    pub base_href: String,
    pub project_title: String,
}

/// Why the site could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    #[error("cannot render the docs site: {0}")]
    Render(String),
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
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

/// The page of a node, relative to the site root.
pub fn node_page_path(unique_id: &str) -> String {
    let safe: String =
        unique_id.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    format!("nodes/{safe}.html")
}

fn documented(node: &Node) -> bool {
    matches!(node.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Source)
}

fn page(title: &str, base: &str, body: &str) -> Vec<u8> {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}pre{{background:#f4f4f4;padding:1rem;overflow:auto}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}}</style></head>\
         <body><p><a href=\"{b}index.html\">All nodes</a></p>{body}</body></html>",
        t = escape(title),
        b = escape(base),
    )
    .into_bytes()
}

/// Render the whole site: `index.html` and one page per model, seed and source.
pub fn render_site(parsed: &Parsed, options: &DocsOptions) -> Result<Vec<DocFile>, DocsError> {
    let manifest = &parsed.manifest;
    let base = &options.base_href;
    let mut tests_of: HashMap<&str, Vec<&Node>> = HashMap::new();
    for node in manifest.nodes.values().filter(|n| n.resource_type == ResourceType::Test) {
        for parent in &node.depends_on {
            tests_of.entry(parent.as_str()).or_default().push(node);
        }
    }
    let mut files = Vec::new();
    let mut index = format!("<h1>{}</h1>", escape(&options.project_title));
    let mut by_type: BTreeMap<&str, Vec<&Node>> = BTreeMap::new();
    for node in manifest.nodes.values().filter(|n| documented(n)) {
        by_type.entry(node.resource_type.as_str()).or_default().push(node);
    }
    for (kind, nodes) in &by_type {
        let _ = write!(index, "<h2>{}s</h2><ul>", escape(kind));
        for node in nodes {
            let _ = write!(
                index,
                "<li><a href=\"{}{}\">{}</a> {}</li>",
                escape(base),
                escape(&node_page_path(&node.unique_id)),
                escape(&node.unique_id),
                escape(&node.description)
            );
        }
        index.push_str("</ul>");
        for node in nodes {
            let mut body = format!(
                "<h1>{}</h1><p>{} <code>{}</code></p><p>{}</p>",
                escape(&node.name),
                escape(kind),
                escape(&node.unique_id),
                escape(&node.description)
            );
            if let Some(relation) = &node.relation {
                let _ = write!(
                    body,
                    "<p>Relation: <code>{}.{}</code></p>",
                    escape(&relation.schema),
                    escape(&relation.identifier)
                );
            }
            if !node.columns.is_empty() {
                body.push_str("<h2>Columns</h2><table><tr><th>Column</th><th>Description</th></tr>");
                for column in node.columns.values() {
                    let _ = write!(
                        body,
                        "<tr><td>{}</td><td>{}</td></tr>",
                        escape(&column.name),
                        escape(&column.description)
                    );
                }
                body.push_str("</table>");
            }
            let parents: Vec<&String> = node.depends_on.iter().collect();
            if !parents.is_empty() {
                body.push_str("<h2>Depends on</h2><ul>");
                for p in parents {
                    let _ = write!(
                        body,
                        "<li><a href=\"{}{}\">{}</a></li>",
                        escape(base),
                        escape(&node_page_path(p)),
                        escape(p)
                    );
                }
                body.push_str("</ul>");
            }
            if let Some(tests) = tests_of.get(node.unique_id.as_str()) {
                body.push_str("<h2>Tests</h2><ul>");
                for test in tests {
                    let _ = write!(body, "<li><code>{}</code></li>", escape(&test.name));
                }
                body.push_str("</ul>");
            }
            if !node.raw_code.is_empty() {
                let _ = write!(body, "<h2>SQL</h2><pre>{}</pre>", escape(&node.raw_code));
            }
            files.push(DocFile { path: node_page_path(&node.unique_id), content: page(&node.name, base, &body) });
        }
    }
    files.push(DocFile { path: "index.html".into(), content: page(&options.project_title, base, &index) });
    Ok(files)
}

/// The lineage graph (sources and seeds → models) as SVG: one column per depth, each node a link
/// (`href(unique_id)`) around `<g class="node" data-id=… data-resource-type=…>`.
pub fn lineage_svg(parsed: &Parsed, href: &dyn Fn(&str) -> String) -> String {
    let manifest = &parsed.manifest;
    let nodes: Vec<&Node> = manifest.nodes.values().filter(|n| documented(n)).collect();
    // Depth = longest path from a root, computed in manifest order until stable (the graph is acyclic).
    let mut depth: HashMap<&str, usize> = nodes.iter().map(|n| (n.unique_id.as_str(), 0)).collect();
    for _ in 0..nodes.len() {
        let mut changed = false;
        for node in &nodes {
            let d = node.depends_on.iter().filter_map(|p| depth.get(p.as_str())).map(|d| d + 1).max().unwrap_or(0);
            if d > depth[node.unique_id.as_str()] {
                depth.insert(node.unique_id.as_str(), d);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut columns: BTreeMap<usize, Vec<&Node>> = BTreeMap::new();
    for node in &nodes {
        columns.entry(depth[node.unique_id.as_str()]).or_default().push(node);
    }
    let (w, h, gap_x, gap_y) = (230.0, 24.0, 60.0, 8.0);
    let mut position: HashMap<&str, (f64, f64)> = HashMap::new();
    let mut max_rows = 0;
    for (col, members) in &columns {
        max_rows = max_rows.max(members.len());
        for (row, node) in members.iter().enumerate() {
            position
                .insert(node.unique_id.as_str(), (*col as f64 * (w + gap_x) + 10.0, row as f64 * (h + gap_y) + 10.0));
        }
    }
    let width = columns.len() as f64 * (w + gap_x) + 20.0;
    let height = max_rows as f64 * (h + gap_y) + 20.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"lineage\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">"
    );
    for node in &nodes {
        let (x2, y2) = position[node.unique_id.as_str()];
        for parent in &node.depends_on {
            if let Some((x1, y1)) = position.get(parent.as_str()) {
                let _ = write!(
                    svg,
                    "<path class=\"edge\" d=\"M{} {} C{} {} {} {} {} {}\" fill=\"none\" stroke=\"#999\"/>",
                    x1 + w,
                    y1 + h / 2.0,
                    x1 + w + gap_x / 2.0,
                    y1 + h / 2.0,
                    x2 - gap_x / 2.0,
                    y2 + h / 2.0,
                    x2,
                    y2 + h / 2.0
                );
            }
        }
    }
    for node in &nodes {
        let (x, y) = position[node.unique_id.as_str()];
        let fill = match node.resource_type {
            ResourceType::Source => "#e3f2e1",
            ResourceType::Seed => "#f6ecd6",
            _ => "#dde8f7",
        };
        let _ = write!(
            svg,
            "<a href=\"{}\"><g class=\"node\" data-id=\"{}\" data-resource-type=\"{}\"><title>{}</title>\
             <rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"4\" fill=\"{fill}\" stroke=\"#678\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"12\" font-family=\"sans-serif\">{}</text></g></a>",
            escape(&href(&node.unique_id)),
            escape(&node.unique_id),
            node.resource_type.as_str(),
            escape(&node.unique_id),
            x + 6.0,
            y + 16.0,
            escape(&node.name)
        );
    }
    svg.push_str("</svg>");
    svg
}
