//! dbt's node selection syntax (`--select` / `--exclude`), as dbt 1.10 reads it.
//!
//! A [`Selection`] holds the raw `--select` and `--exclude` arguments. Each argument holds one or
//! more criteria separated by spaces (their union); a criterion is one or more atoms separated by
//! commas (their intersection). An atom is
//!
//! ```text
//! [@][N+]method[.key…]:value[+N]        or        [@][N+]value[+N]
//! ```
//!
//! - `+x` / `N+x`: `x` and its ancestors (all, or up to N generations);
//! - `x+` / `x+N`: `x` and its descendants;
//! - `@x`: `x`, its descendants, and every ancestor of those (incompatible with a `+` suffix);
//! - methods: `tag`, `path`, `source`, `resource_type`, `config.<key>`, `package`, `fqn`,
//!   `test_type`, `test_name`, `file`. Without a method, a value holding `/` is a `path`, one ending in
//!   `.sql`/`.py`/`.csv` a `file`, anything else an `fqn` (a node name, a dotted path of folders and
//!   name such as `staging.stg_orders`, a package name, or a folder name).
//! - values take the wildcards `*`, `?` and `[…]` (for `path`, `*` stays inside one folder and `**`
//!   crosses folders). `resource_type` and `test_type` take exact values.
//!
//! Per atom, the graph operators apply to what the method matched, then eager indirect selection
//! adds every test with at least one selected parent (dbt's default `--indirect-selection eager`).
//! Criteria combine, `--exclude` is subtracted, and the resource-type filter applies last.
//!
//! Where mdp departs from dbt:
//! - a criterion that selects nothing is an error with the closest names as a hint (dbt warns);
//! - a bare glob without dots (`stg_*`) also matches node names (dbt matches it against the whole
//!   fqn, so it needs `*.stg_*`);
//! - `config.<key>:` values take wildcards (dbt compares for equality);
//! - `path:` matches only the root project's nodes (other packages' paths are relative to their
//!   own root, which dbt nevertheless matches against the project's folders), and never a node's
//!   properties file (dbt's `patch_path`, which the manifest does not keep).

use std::collections::VecDeque;

use serde_json::Value;

use crate::graph::Graph;
use crate::manifest::{Manifest, Node, ResourceType};
use crate::state::{State, StateCheck};

/// The statuses `result:` selects, as `run_results.json` writes them.
const RESULT_STATUSES: &[&str] = &["success", "error", "fail", "warn", "pass", "skipped", "runtime error"];

/// The selector methods mdp implements, as error messages list them.
pub const METHODS: &[&str] = &[
    "tag",
    "path",
    "source",
    "resource_type",
    "config",
    "package",
    "fqn",
    "test_type",
    "test_name",
    "file",
    "state",
    "result",
];

/// dbt methods that need something mdp does not have (state comparison, run results, exposures, …).
const UNSUPPORTED_METHODS: &[&str] =
    &["source_status", "exposure", "metric", "semantic_model", "saved_query", "group", "access", "version", "wildcard"];

/// dbt resource types mdp has no nodes of: `resource_type:` accepts them and matches nothing.
const OTHER_DBT_RESOURCE_TYPES: &[&str] = &[
    "analysis",
    "operation",
    "exposure",
    "metric",
    "semantic_model",
    "saved_query",
    "macro",
    "doc",
    "group",
    "function",
];

/// Why a selection could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("unknown selector method `{method}` in `{criterion}`; methods: {}", METHODS.join(", "))]
    UnknownMethod { method: String, criterion: String },
    #[error("selector method `{method}` in `{criterion}` is not supported by mdp; methods: {}", METHODS.join(", "))]
    UnsupportedMethod { method: String, criterion: String },
    #[error("`{criterion}` compares with an earlier run: pass --state DIR (the target/ folder holding its manifest.json{})", if *.results { " and run_results.json" } else { "" })]
    NeedsState { criterion: String, results: bool },
    #[error("invalid selector `{criterion}`: {reason}")]
    Invalid { criterion: String, reason: String },
    /// A criterion (one space-separated part of `--select` or `--exclude`) selected no node.
    #[error("`{flag} {criterion}` matched no nodes{}", no_match_hint(.closest, .empty_intersection))]
    NoMatch {
        /// `--select` or `--exclude`.
        flag: &'static str,
        criterion: String,
        /// The closest existing values, written as selectors, best first (at most three).
        closest: Vec<String>,
        /// Every comma-separated part matched some nodes, their intersection none.
        empty_intersection: bool,
    },
}

fn no_match_hint(closest: &[String], empty_intersection: &bool) -> String {
    if *empty_intersection {
        "; each of its comma-separated parts matches nodes, but no node matches all of them".to_string()
    } else if closest.is_empty() {
        String::new()
    } else {
        format!("; closest: {}", closest.join(", "))
    }
}

/// What to select, as given on the command line.
#[derive(Debug, Clone)]
pub struct Selection {
    /// `--select` arguments; empty (or only blank strings): every node.
    pub select: Vec<String>,
    /// `--exclude` arguments, subtracted from the selection.
    pub exclude: Vec<String>,
    /// Keep only these resource types, applied last; empty: every type.
    pub resource_types: Vec<ResourceType>,
    /// Eager indirect selection: a test is selected when any of its parents is (dbt's default). Off
    /// is dbt's `--indirect-selection empty`. `--exclude` always removes the tests of what it
    /// excludes, as in dbt.
    pub indirect: bool,
    /// `--state DIR`: the earlier run `state:` and `result:` compare with.
    pub state: Option<std::sync::Arc<State>>,
}

impl Selection {
    /// Every node, with indirect selection on; the base to build a selection from:
    /// `Selection { select: vec!["tag:nightly".into()], ..Selection::all() }`.
    pub fn all() -> Self {
        Selection { select: Vec::new(), exclude: Vec::new(), resource_types: Vec::new(), indirect: true, state: None }
    }
}

impl Default for Selection {
    fn default() -> Self {
        Selection::all()
    }
}

/// Returns the selected unique ids in manifest order.
///
/// Every argument is parsed before anything is evaluated, so a syntax error anywhere wins over a
/// criterion that matches nothing.
pub fn select(manifest: &Manifest, graph: &Graph, selection: &Selection) -> Result<Vec<String>, SelectError> {
    let include = parse_criteria(&selection.select)?;
    let exclude = parse_criteria(&selection.exclude)?;
    for criterion in include.iter().chain(&exclude) {
        for atom in &criterion.atoms {
            if matches!(atom.method, Method::State(_) | Method::Result) && selection.state.is_none() {
                return Err(SelectError::NeedsState {
                    criterion: criterion.raw.to_string(),
                    results: atom.method == Method::Result,
                });
            }
        }
    }
    let selector = Selector { manifest, graph, state: selection.state.as_deref() };
    let wants_tests = selection.resource_types.is_empty() || selection.resource_types.contains(&ResourceType::Test);

    let mut chosen = if include.is_empty() {
        vec![true; manifest.nodes.len()]
    } else {
        selector.union(&include, "--select", selection.indirect && wants_tests)?
    };
    if !exclude.is_empty() {
        let excluded = selector.union(&exclude, "--exclude", wants_tests)?;
        for (c, e) in chosen.iter_mut().zip(excluded) {
            *c &= !e;
        }
    }
    Ok(manifest
        .nodes
        .values()
        .zip(chosen)
        .filter(|(node, chosen)| {
            *chosen && (selection.resource_types.is_empty() || selection.resource_types.contains(&node.resource_type))
        })
        .map(|(node, _)| node.unique_id.clone())
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// One space-separated criterion: the intersection of its atoms.
#[derive(Debug, Clone, PartialEq)]
struct Criterion<'s> {
    raw: &'s str,
    atoms: Vec<Atom<'s>>,
}

/// One comma-separated part of a criterion.
#[derive(Debug, Clone, PartialEq)]
struct Atom<'s> {
    raw: &'s str,
    /// `@`: descendants and all their ancestors.
    childrens_parents: bool,
    /// `+x` / `N+x`: `Some(None)` all ancestors, `Some(Some(n))` up to n generations.
    parents: Option<Option<usize>>,
    /// `x+` / `x+N`.
    children: Option<Option<usize>>,
    method: Method,
    /// The method as written (`tag`, `config.materialized`), `None` for a bare value.
    method_text: Option<&'s str>,
    value: &'s str,
}

#[derive(Debug, Clone, PartialEq)]
enum Method {
    Fqn,
    Tag,
    Path,
    File,
    Source,
    ResourceType(Option<ResourceType>),
    Config(Vec<String>),
    Package,
    TestType(TestType),
    TestName,
    /// `state:modified`, `state:new`, …: compared with `--state`.
    State(StateCheck),
    /// `result:error`, …: the status in `--state`'s run_results.json.
    Result,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TestType {
    Generic,
    Singular,
    /// dbt unit tests (`test_type:unit`, `resource_type:unit_test`).
    Unit,
}

fn parse_criteria(args: &[String]) -> Result<Vec<Criterion<'_>>, SelectError> {
    let mut out = Vec::new();
    for arg in args {
        for raw in arg.split_whitespace() {
            if raw.split(',').any(str::is_empty) {
                let reason = "empty part before, between or after commas".to_string();
                return Err(SelectError::Invalid { criterion: raw.to_string(), reason });
            }
            let atoms = raw.split(',').map(parse_atom).collect::<Result<Vec<_>, _>>()?;
            out.push(Criterion { raw, atoms });
        }
    }
    Ok(out)
}

/// Parses one atom like dbt's `RAW_SELECTOR_PATTERN`:
/// `(@)?(\d*\+)?(([\w.]+):)?(.*?)(\+\d*)?`.
fn parse_atom(raw: &str) -> Result<Atom<'_>, SelectError> {
    let invalid = |reason: String| SelectError::Invalid { criterion: raw.to_string(), reason };
    if raw.is_empty() {
        return Err(invalid("empty selector".to_string()));
    }
    let mut rest = raw;
    let childrens_parents = match rest.strip_prefix('@') {
        Some(r) => {
            rest = r;
            true
        }
        None => false,
    };
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let parents = if rest[digits..].starts_with('+') {
        let depth = parse_depth(&rest[..digits]).ok_or_else(|| invalid(format!("bad depth `{}`", &rest[..digits])))?;
        rest = &rest[digits + 1..];
        Some(depth)
    } else {
        None
    };
    let trailing = rest.len() - rest.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let body_end = rest.len() - trailing;
    let children = if rest[..body_end].ends_with('+') {
        let depth =
            parse_depth(&rest[body_end..]).ok_or_else(|| invalid(format!("bad depth `{}`", &rest[body_end..])))?;
        rest = &rest[..body_end - 1];
        Some(depth)
    } else {
        None
    };
    if childrens_parents && children.is_some() {
        return Err(invalid(
            "the `@` prefix and a `+` suffix cannot be combined (`@` already selects all descendants)".to_string(),
        ));
    }

    let (method_text, value) = match rest.split_once(':') {
        Some((m, v)) if !m.is_empty() && m.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.') => (Some(m), v),
        _ => (None, rest),
    };
    let method = match method_text {
        None => default_method(value),
        Some(text) => {
            let mut parts = text.split('.');
            let name = parts.next().unwrap_or_default();
            let args: Vec<String> = parts.map(str::to_string).collect();
            let method = match name {
                "fqn" => Method::Fqn,
                "tag" => Method::Tag,
                "path" => Method::Path,
                "file" => Method::File,
                "source" => Method::Source,
                "resource_type" => Method::ResourceType(None),
                "config" => {
                    if args.is_empty() || args.iter().any(String::is_empty) {
                        return Err(invalid("`config` needs a key, as in `config.materialized:table`".to_string()));
                    }
                    Method::Config(args.clone())
                }
                "package" => Method::Package,
                "test_type" => Method::TestType(TestType::Generic),
                "test_name" => Method::TestName,
                "state" => Method::State(StateCheck::Modified),
                "result" => Method::Result,
                _ if UNSUPPORTED_METHODS.contains(&name) => {
                    return Err(SelectError::UnsupportedMethod { method: name.to_string(), criterion: raw.to_string() })
                }
                _ => return Err(SelectError::UnknownMethod { method: name.to_string(), criterion: raw.to_string() }),
            };
            if !args.is_empty() && !matches!(method, Method::Config(_)) {
                return Err(invalid(format!(
                    "`{name}` takes no `.{}` argument (only `config.<key>` does)",
                    args.join(".")
                )));
            }
            method
        }
    };

    if value.is_empty() {
        return Err(invalid(match method_text {
            Some(m) => format!("no value after `{m}:`"),
            None => "no node name".to_string(),
        }));
    }

    // Values checked up front, so a typo fails before anything runs.
    let method = match method {
        Method::ResourceType(_) if value == "unit_test" => Method::TestType(TestType::Unit),
        Method::ResourceType(_) => match ResourceType::parse(value) {
            Some(t) => Method::ResourceType(Some(t)),
            None if OTHER_DBT_RESOURCE_TYPES.contains(&value) => Method::ResourceType(None),
            None => {
                return Err(invalid(format!(
                    "unknown resource type `{value}`; expected model, seed, snapshot, test, unit_test or source"
                )))
            }
        },
        Method::State(_) => match StateCheck::parse(value) {
            Some(check) => Method::State(check),
            None => return Err(invalid(format!("unknown state `{value}`; expected {}", StateCheck::NAMES.join(", ")))),
        },
        Method::Result if !RESULT_STATUSES.contains(&value) => {
            return Err(invalid(format!("unknown result `{value}`; expected {}", RESULT_STATUSES.join(", "))))
        }
        Method::TestType(_) => match value {
            "generic" | "schema" => Method::TestType(TestType::Generic),
            "singular" | "data" => Method::TestType(TestType::Singular),
            "unit" => Method::TestType(TestType::Unit),
            _ => return Err(invalid(format!("unknown test type `{value}`; expected generic, singular or unit"))),
        },
        Method::Source if value.split('.').count() > 3 => {
            return Err(invalid(
                "sources are selected as `source:<source>`, `source:<source>.<table>` or \
                 `source:<package>.<source>.<table>`"
                    .to_string(),
            ))
        }
        other => other,
    };

    Ok(Atom { raw, childrens_parents, parents, children, method, method_text, value })
}

/// `""` → all generations; digits → that many.
fn parse_depth(digits: &str) -> Option<Option<usize>> {
    if digits.is_empty() {
        Some(None)
    } else {
        digits.parse().ok().map(Some)
    }
}

/// dbt's method for a value written without one.
fn default_method(value: &str) -> Method {
    let lower = value.to_ascii_lowercase();
    if value.contains(['/', '\\']) {
        Method::Path
    } else if lower.ends_with(".sql") || lower.ends_with(".py") || lower.ends_with(".csv") {
        Method::File
    } else {
        Method::Fqn
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// A set of nodes: one flag per manifest node, in manifest order.
type NodeSet = Vec<bool>;

struct Selector<'a> {
    manifest: &'a Manifest,
    graph: &'a Graph,
    state: Option<&'a State>,
}

impl<'a> Selector<'a> {
    fn nodes(&self) -> impl Iterator<Item = &'a Node> + 'a {
        self.manifest.nodes.values()
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.manifest.nodes.get_index_of(id)
    }

    /// The union of `criteria`; a criterion that selects nothing is an error.
    fn union(&self, criteria: &[Criterion<'_>], flag: &'static str, indirect: bool) -> Result<NodeSet, SelectError> {
        let mut out = vec![false; self.manifest.nodes.len()];
        for criterion in criteria {
            let mut set: Option<NodeSet> = None;
            let mut parts_matched = true;
            let mut first_unmatched = None;
            for atom in &criterion.atoms {
                let (matched_any, atom_set) = self.eval_atom(atom, indirect);
                if !matched_any && first_unmatched.is_none() {
                    first_unmatched = Some(atom);
                }
                parts_matched &= atom_set.iter().any(|b| *b);
                set = Some(match set {
                    None => atom_set,
                    Some(acc) => acc.into_iter().zip(atom_set).map(|(a, b)| a && b).collect(),
                });
            }
            let set = set.unwrap_or_default();
            // Nothing modified, nothing failed: an answer, not a mistake in the selector.
            let compares = criterion.atoms.iter().any(|a| matches!(a.method, Method::State(_) | Method::Result));
            if !set.iter().any(|b| *b) && !compares {
                return Err(SelectError::NoMatch {
                    flag,
                    criterion: criterion.raw.to_string(),
                    closest: first_unmatched.map(|a| self.closest(a)).unwrap_or_default(),
                    empty_intersection: criterion.atoms.len() > 1 && parts_matched,
                });
            }
            for (o, s) in out.iter_mut().zip(set) {
                *o |= s;
            }
        }
        Ok(out)
    }

    /// The nodes of one atom, and whether its method matched any node at all.
    fn eval_atom(&self, atom: &Atom<'_>, indirect: bool) -> (bool, NodeSet) {
        let base: NodeSet = self.nodes().map(|n| self.matches(atom, n)).collect();
        let matched_any = base.iter().any(|b| *b);
        let mut set = base.clone();
        if atom.childrens_parents {
            let mut with_descendants = self.reach(&base, None, Direction::Down);
            or_into(&mut with_descendants, &base);
            or_into(&mut set, &with_descendants);
            or_into(&mut set, &self.reach(&with_descendants, None, Direction::Up));
        }
        if let Some(depth) = atom.parents {
            or_into(&mut set, &self.reach(&base, depth, Direction::Up));
        }
        if let Some(depth) = atom.children {
            or_into(&mut set, &self.reach(&base, depth, Direction::Down));
        }
        if indirect {
            self.add_attached_tests(&mut set);
        }
        (matched_any, set)
    }

    /// Every node reachable from `start` within `depth` steps (all when `None`).
    fn reach(&self, start: &NodeSet, depth: Option<usize>, direction: Direction) -> NodeSet {
        let ids: Vec<&String> = self.manifest.nodes.keys().collect();
        let mut out = vec![false; ids.len()];
        let mut seen = start.clone();
        let mut queue: VecDeque<(usize, usize)> =
            start.iter().enumerate().filter(|(_, s)| **s).map(|(i, _)| (i, 0)).collect();
        while let Some((i, d)) = queue.pop_front() {
            if depth.is_some_and(|max| d >= max) {
                continue;
            }
            let next = match direction {
                Direction::Up => self.graph.parents(ids[i]),
                Direction::Down => self.graph.children(ids[i]),
            };
            for j in next.iter().filter_map(|id| self.index(id)) {
                out[j] = true;
                if !seen[j] {
                    seen[j] = true;
                    queue.push_back((j, d + 1));
                }
            }
        }
        out
    }

    /// Eager indirect selection: add every test that depends on a node of `set`.
    fn add_attached_tests(&self, set: &mut NodeSet) {
        let selected: Vec<usize> = set.iter().enumerate().filter(|(_, s)| **s).map(|(i, _)| i).collect();
        for i in selected {
            let (id, _) = self.manifest.nodes.get_index(i).expect("index in range");
            for j in self.graph.children(id).iter().filter_map(|c| self.index(c)) {
                if self.manifest.nodes[j].resource_type == ResourceType::Test {
                    set[j] = true;
                }
            }
        }
    }

    fn matches(&self, atom: &Atom<'_>, node: &Node) -> bool {
        let value = atom.value;
        match &atom.method {
            Method::Fqn => node.resource_type != ResourceType::Source && fqn_matches(node, value),
            Method::Tag => node.config.tags.iter().any(|t| glob_match(value, t, false)),
            Method::Path => self.in_root_project(node) && path_matches(value, &slash_path(node)),
            Method::File => {
                let path = slash_path(node);
                let name = path.rsplit('/').next().unwrap_or_default();
                let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
                glob_match(value, name, false) || glob_match(value, stem, false)
            }
            Method::Source => {
                if node.resource_type != ResourceType::Source {
                    return false;
                }
                let parts: Vec<&str> = value.split('.').collect();
                let (package, source, table) = match parts[..] {
                    [source] => ("*", source, "*"),
                    [source, table] => ("*", source, table),
                    [package, source, table] => (package, source, table),
                    _ => return false,
                };
                glob_match(package, &node.package, false)
                    && glob_match(source, source_name(node), false)
                    && glob_match(table, &node.name, false)
            }
            Method::ResourceType(t) => Some(node.resource_type) == *t && !node.is_unit_test(),
            Method::Config(keys) => {
                let config = node.config.to_json();
                let case_insensitive = keys.len() == 1 && keys[0] == "severity";
                config_lookup(&config, keys).is_some_and(|v| config_value_matches(v, value, case_insensitive))
            }
            Method::Package => {
                let pattern = if value == "this" { self.manifest.project_name.as_str() } else { value };
                glob_match(pattern, &node.package, false)
            }
            Method::TestType(kind) => {
                node.resource_type == ResourceType::Test
                    && match kind {
                        TestType::Generic => node.test_metadata.is_some(),
                        TestType::Singular => node.test_metadata.is_none() && !node.is_unit_test(),
                        TestType::Unit => node.is_unit_test(),
                    }
            }
            Method::State(check) => self.state.is_some_and(|state| state.check(*check, node, self.manifest)),
            Method::Result => {
                self.state.and_then(|state| state.results.get(&node.unique_id)).is_some_and(|status| status == value)
            }
            Method::TestName => {
                node.resource_type == ResourceType::Test
                    && node.test_metadata.as_ref().is_some_and(|m| {
                        glob_match(value, &m.name, false)
                            || m.namespace
                                .as_ref()
                                .is_some_and(|ns| glob_match(value, &format!("{ns}.{}", m.name), false))
                    })
            }
        }
    }

    /// `path:` is relative to the root project; other packages' files are relative to their own root.
    fn in_root_project(&self, node: &Node) -> bool {
        self.manifest.project_name.is_empty() || node.package == self.manifest.project_name
    }

    /// Existing values close to what `atom` asked for, written as selectors: the best and those
    /// about as close (at most 3).
    fn closest(&self, atom: &Atom<'_>) -> Vec<String> {
        let prefix = atom.method_text.map(|m| format!("{m}:")).unwrap_or_default();
        let mut first: Vec<String> = Vec::new();
        let mut candidates: Vec<String> = Vec::new();
        match &atom.method {
            Method::Fqn => {
                for node in self.nodes() {
                    match node.resource_type {
                        ResourceType::Source => {
                            // `raw.orders` written for `source:raw.orders`.
                            let full = format!("{}.{}", source_name(node), node.name);
                            if glob_match(atom.value, &full, false) || glob_match(atom.value, source_name(node), false)
                            {
                                first.push(format!("source:{}", atom.value));
                            }
                        }
                        // Generic tests' generated names would crowd out what was meant.
                        ResourceType::Test if node.test_metadata.is_some() => {}
                        _ => {
                            candidates.push(node.name.clone());
                            candidates.push(node.package.clone());
                            let folders = node.fqn.len().saturating_sub(1);
                            candidates.extend(node.fqn.iter().take(folders).skip(1).cloned());
                            if atom.value.contains('.') && node.fqn.len() > 1 {
                                candidates.push(node.fqn[1..].join("."));
                            }
                        }
                    }
                }
            }
            Method::Tag => candidates.extend(self.nodes().flat_map(|n| n.config.tags.iter().cloned())),
            Method::Path => {
                for node in self.nodes().filter(|n| self.in_root_project(n)) {
                    let path = slash_path(node);
                    let mut end = path.len();
                    candidates.push(path.clone());
                    while let Some(pos) = path[..end].rfind('/') {
                        candidates.push(path[..pos].to_string());
                        end = pos;
                    }
                }
            }
            Method::File => {
                candidates.extend(self.nodes().filter_map(|n| slash_path(n).rsplit('/').next().map(str::to_string)))
            }
            Method::Source => {
                for node in self.nodes().filter(|n| n.resource_type == ResourceType::Source) {
                    candidates.push(source_name(node).to_string());
                    candidates.push(format!("{}.{}", source_name(node), node.name));
                }
            }
            Method::Config(keys) => {
                for node in self.nodes() {
                    match config_lookup(&node.config.to_json(), keys) {
                        Some(Value::String(s)) => candidates.push(s.clone()),
                        Some(Value::Array(items)) => {
                            candidates.extend(items.iter().filter_map(|i| i.as_str().map(str::to_string)))
                        }
                        Some(other @ (Value::Bool(_) | Value::Number(_))) => candidates.push(other.to_string()),
                        _ => {}
                    }
                }
            }
            Method::Package => candidates.extend(self.nodes().map(|n| n.package.clone())),
            Method::TestName => {
                candidates.extend(self.nodes().filter_map(|n| n.test_metadata.as_ref()).map(|m| m.name.clone()))
            }
            Method::ResourceType(_) | Method::TestType(_) | Method::State(_) | Method::Result => {}
        }
        if !first.is_empty() {
            first.dedup();
            return first;
        }
        candidates.sort();
        candidates.dedup();
        let mut scored: Vec<(f64, String)> = candidates
            .into_iter()
            .filter(|c| c != atom.value)
            .map(|c| (strsim::jaro_winkler(atom.value, &c), c))
            .filter(|(score, _)| *score > 0.8)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        // The best, and whatever ties with it.
        let best = scored.first().map_or(0.0, |s| s.0);
        scored
            .into_iter()
            .take_while(|(score, _)| best - score <= 0.02)
            .take(3)
            .map(|(_, c)| format!("{prefix}{c}"))
            .collect()
    }
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Up,
    Down,
}

fn or_into(target: &mut NodeSet, other: &NodeSet) {
    for (t, o) in target.iter_mut().zip(other) {
        *t |= *o;
    }
}

/// A source node's source name (from its details, else from `source.<package>.<source>.<table>`).
fn source_name(node: &Node) -> &str {
    match &node.source {
        Some(details) => &details.source_name,
        None => node.unique_id.split('.').nth(2).unwrap_or_default(),
    }
}

/// `original_file_path` with `/` separators and no leading `./`.
fn slash_path(node: &Node) -> String {
    let path = node.original_file_path.to_string_lossy().replace('\\', "/");
    path.trim_start_matches("./").to_string()
}

/// dbt's fqn method (`is_selected_node`, tried with and without the package), plus a glob without
/// dots matching the node's name (`stg_*`).
fn fqn_matches(node: &Node, selector: &str) -> bool {
    if !selector.contains('.') && has_glob(selector) && glob_match(selector, &node.name, false) {
        return true;
    }
    is_selected_node(&node.fqn, selector) || (!node.fqn.is_empty() && is_selected_node(&node.fqn[1..], selector))
}

fn is_selected_node(fqn: &[String], selector: &str) -> bool {
    if fqn.last().is_some_and(|leaf| leaf == selector) {
        return true;
    }
    let flat: Vec<&str> = fqn.iter().flat_map(|segment| segment.split('.')).collect();
    let parts: Vec<&str> = selector.split('.').collect();
    if flat.len() < parts.len() {
        return false;
    }
    for (i, part) in parts.iter().enumerate() {
        if has_glob(part) {
            return glob_match(&parts[i..].join("."), &flat[i..].join("."), false);
        }
        if flat[i] != *part {
            return false;
        }
    }
    true
}

/// Whether `pattern` names the file `file` or one of its folders (dbt globs the project directory
/// and keeps nodes whose file or any parent folder is among the hits).
fn path_matches(pattern: &str, file: &str) -> bool {
    let mut pattern = pattern.replace('\\', "/");
    while let Some(rest) = pattern.strip_prefix("./") {
        pattern = rest.to_string();
    }
    let pattern = pattern.trim_end_matches('/');
    if pattern.is_empty() || pattern == "." {
        return true;
    }
    if glob_match(pattern, file, true) {
        return true;
    }
    let mut end = file.len();
    while let Some(pos) = file[..end].rfind('/') {
        if glob_match(pattern, &file[..pos], true) {
            return true;
        }
        end = pos;
    }
    false
}

/// `config.<key>[.<key>…]` against the config as `config.get()` sees it; `-` and `_` are
/// interchangeable in keys (`pre_hook` finds `pre-hook`).
fn config_lookup<'v>(config: &'v Value, keys: &[String]) -> Option<&'v Value> {
    let mut value = config;
    for key in keys {
        let object = value.as_object()?;
        value = object
            .get(key)
            .or_else(|| object.get(&key.replace('_', "-")))
            .or_else(|| object.get(&key.replace('-', "_")))?;
    }
    Some(value)
}

/// dbt compares config values by equality (a list: membership; `true`/`false` in any case for
/// booleans); mdp also takes wildcards in strings.
fn config_value_matches(value: &Value, pattern: &str, case_insensitive: bool) -> bool {
    match value {
        Value::String(s) if case_insensitive => glob_match(&pattern.to_lowercase(), &s.to_lowercase(), false),
        Value::String(s) => glob_match(pattern, s, false),
        Value::Bool(b) => pattern.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Value::Number(n) => n.to_string() == pattern,
        Value::Array(items) => {
            items.iter().any(|i| !i.is_array() && config_value_matches(i, pattern, case_insensitive))
        }
        Value::Null | Value::Object(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Wildcards

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `**` in a path: anything, `/` included.
    Deep,
    /// `**/` in a path: nothing, or anything ending in `/`.
    DeepDirs,
    /// `[abc]`, `[a-z]`, `[!abc]`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Python's `fnmatch` (case-sensitive): `*`, `?`, `[…]`, `[!…]`. With `path`, `*`, `?` and classes
/// stay within one folder and `**` crosses folders, like `Path.glob`.
fn glob_match(pattern: &str, text: &str, path: bool) -> bool {
    let toks = tokenize(pattern, path);
    let text: Vec<char> = text.chars().collect();
    let n = text.len();
    let allowed = |c: char| !(path && c == '/');
    // cur[j]: the tokens so far match text[..j].
    let mut cur = vec![false; n + 1];
    cur[0] = true;
    for tok in &toks {
        let mut next = vec![false; n + 1];
        match tok {
            Tok::Star | Tok::Deep => {
                let crosses = matches!(tok, Tok::Deep);
                for j in 0..=n {
                    next[j] = cur[j] || (j > 0 && next[j - 1] && (crosses || allowed(text[j - 1])));
                }
            }
            Tok::DeepDirs => {
                let mut any_before = false;
                for j in 0..=n {
                    next[j] = cur[j] || (j > 0 && any_before && text[j - 1] == '/');
                    any_before |= cur[j];
                }
            }
            Tok::Lit(_) | Tok::One | Tok::Class { .. } => {
                for j in 0..n {
                    if !cur[j] {
                        continue;
                    }
                    let c = text[j];
                    next[j + 1] = match tok {
                        Tok::Lit(l) => c == *l,
                        Tok::One => allowed(c),
                        Tok::Class { negated, ranges } => {
                            allowed(c) && (ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated)
                        }
                        _ => unreachable!("handled above"),
                    };
                }
            }
        }
        cur = next;
    }
    cur[n]
}

fn tokenize(pattern: &str, path: bool) -> Vec<Tok> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                let mut j = i;
                while j < chars.len() && chars[j] == '*' {
                    j += 1;
                }
                if path && j - i >= 2 {
                    if chars.get(j) == Some(&'/') {
                        out.push(Tok::DeepDirs);
                        j += 1;
                    } else {
                        out.push(Tok::Deep);
                    }
                } else {
                    out.push(Tok::Star);
                }
                i = j;
            }
            '?' => {
                out.push(Tok::One);
                i += 1;
            }
            '[' => match parse_class(&chars, i) {
                Some((tok, next)) => {
                    out.push(tok);
                    i = next;
                }
                None => {
                    out.push(Tok::Lit('['));
                    i += 1;
                }
            },
            c => {
                out.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    out
}

/// A `[…]` class starting at `chars[start]`, and the index after it; `None` when unclosed (then
/// `[` is a literal, as in `fnmatch`).
fn parse_class(chars: &[char], start: usize) -> Option<(Tok, usize)> {
    let mut j = start + 1;
    let negated = chars.get(j) == Some(&'!');
    if negated {
        j += 1;
    }
    let body_start = j;
    if chars.get(j) == Some(&']') {
        j += 1; // a leading `]` is literal
    }
    while j < chars.len() && chars[j] != ']' {
        j += 1;
    }
    if j >= chars.len() {
        return None;
    }
    let body = &chars[body_start..j];
    let mut ranges = Vec::new();
    let mut k = 0;
    while k < body.len() {
        if k + 2 < body.len() && body[k + 1] == '-' {
            ranges.push((body[k], body[k + 2]));
            k += 3;
        } else {
            ranges.push((body[k], body[k]));
            k += 1;
        }
    }
    Some((Tok::Class { negated, ranges }, j + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    use indexmap::IndexMap;
    use serde_json::json;

    use crate::config::NodeConfig;
    use crate::manifest::{SourceDetails, TestMetadata};

    /// A node of `kind` defined in `file`; `name` is the table for sources and the test name for
    /// tests. `fqn`: package, the folders of `file` below its resource folder, then the name
    /// (sources: source name, table).
    fn node(kind: ResourceType, package: &str, file: &str, name: &str, deps: &[&str]) -> Node {
        let folders: Vec<String> = {
            let parts: Vec<&str> = file.split('/').collect();
            parts[1..parts.len() - 1].iter().map(|s| s.to_string()).collect()
        };
        let (unique_id, fqn_tail, source) = match kind {
            ResourceType::Source => {
                let (src, table) = name.split_once('.').expect("source.table");
                let details = SourceDetails { source_name: src.to_string(), ..Default::default() };
                (format!("source.{package}.{name}"), vec![src.to_string(), table.to_string()], Some(details))
            }
            ResourceType::Test => (format!("test.{package}.{name}.0123456789"), vec![name.to_string()], None),
            other => (format!("{}.{package}.{name}", other.as_str()), vec![name.to_string()], None),
        };
        let materialized = match kind {
            ResourceType::Model => "view",
            ResourceType::Seed => "seed",
            ResourceType::Test => "test",
            ResourceType::Source => "source",
            ResourceType::Snapshot => "snapshot",
        };
        let mut fqn = vec![package.to_string()];
        fqn.extend(folders);
        fqn.extend(fqn_tail);
        Node {
            unique_id,
            name: name.rsplit('.').next().unwrap().to_string(),
            resource_type: kind,
            package: package.to_string(),
            original_file_path: PathBuf::from(file),
            path: PathBuf::from(file.split_once('/').map_or(file, |(_, rest)| rest)),
            fqn,
            raw_code: String::new(),
            config: NodeConfig::defaults(materialized),
            relation: None,
            refs: Vec::new(),
            sources: Vec::new(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            description: String::new(),
            columns: IndexMap::new(),
            meta: IndexMap::new(),
            test_metadata: None,
            column_name: None,
            attached_node: deps.first().map(|d| d.to_string()),
            source,
            checksum: String::new(),
            introspective: false,
            unit_test: None,
            depends_on_macros: Vec::new(),
        }
    }

    fn with_config(mut n: Node, layer: serde_json::Value) -> Node {
        let layer: IndexMap<String, Value> = serde_json::from_value(layer).unwrap();
        assert!(n.config.apply(&layer).is_empty());
        n
    }

    fn generic(mut n: Node, test: &str, namespace: Option<&str>) -> Node {
        n.test_metadata = Some(TestMetadata {
            name: test.to_string(),
            namespace: namespace.map(str::to_string),
            kwargs: IndexMap::new(),
        });
        n
    }

    /// The project `shop` (and one model of the package `utils`):
    ///
    /// ```text
    /// source raw.orders   → stg_orders   → orders → order_items
    /// source raw.payments → stg_payments ↗       ↘
    /// seed raw_customers  → stg_customers ───────→ customers
    /// calendar (package utils), alone
    /// ```
    ///
    /// Tests: not_null on stg_orders and on the source raw.orders, unique on orders, relationships
    /// from order_items to customers, utils.at_least_one on customers, and the singular
    /// assert_positive_totals on orders.
    fn fixture() -> Manifest {
        use ResourceType::*;
        let staging_yml = "models/staging/schema.yml";
        let nodes = vec![
            node(Seed, "shop", "seeds/raw_customers.csv", "raw_customers", &[]),
            node(Source, "shop", "models/staging/sources.yml", "raw.orders", &[]),
            with_config(
                node(Source, "shop", "models/staging/sources.yml", "raw.payments", &[]),
                json!({"tags": ["finance"]}),
            ),
            with_config(
                node(Model, "shop", "models/staging/stg_orders.sql", "stg_orders", &["source.shop.raw.orders"]),
                json!({"tags": ["staging"]}),
            ),
            with_config(
                node(Model, "shop", "models/staging/stg_payments.sql", "stg_payments", &["source.shop.raw.payments"]),
                json!({"tags": ["staging"]}),
            ),
            with_config(
                node(Model, "shop", "models/staging/stg_customers.sql", "stg_customers", &["seed.shop.raw_customers"]),
                json!({"tags": ["staging", "pii"]}),
            ),
            with_config(
                node(
                    Model,
                    "shop",
                    "models/marts/orders.sql",
                    "orders",
                    &["model.shop.stg_orders", "model.shop.stg_payments"],
                ),
                json!({"materialized": "incremental", "tags": ["nightly", "finance"], "unique_key": "order_id"}),
            ),
            with_config(
                node(Model, "shop", "models/marts/order_items.sql", "order_items", &["model.shop.orders"]),
                json!({"materialized": "table", "meta": {"owner": "alice"}, "contract": {"enforced": true}}),
            ),
            with_config(
                node(
                    Model,
                    "shop",
                    "models/marts/core/customers.sql",
                    "customers",
                    &["model.shop.stg_customers", "model.shop.orders"],
                ),
                json!({"materialized": "table", "tags": ["pii"]}),
            ),
            with_config(node(Model, "utils", "models/calendar.sql", "calendar", &[]), json!({"materialized": "table"})),
            generic(
                node(Test, "shop", staging_yml, "not_null_stg_orders_order_id", &["model.shop.stg_orders"]),
                "not_null",
                None,
            ),
            generic(
                node(Test, "shop", "models/marts/schema.yml", "unique_orders_order_id", &["model.shop.orders"]),
                "unique",
                None,
            ),
            generic(
                node(
                    Test,
                    "shop",
                    "models/marts/schema.yml",
                    "relationships_order_items_customer_id",
                    &["model.shop.order_items", "model.shop.customers"],
                ),
                "relationships",
                None,
            ),
            with_config(
                node(
                    Test,
                    "shop",
                    "tests/assert_positive_totals.sql",
                    "assert_positive_totals",
                    &["model.shop.orders"],
                ),
                json!({"tags": ["finance"]}),
            ),
            generic(
                node(
                    Test,
                    "shop",
                    "models/staging/sources.yml",
                    "source_not_null_raw_orders_id",
                    &["source.shop.raw.orders"],
                ),
                "not_null",
                None,
            ),
            with_config(
                generic(
                    node(
                        Test,
                        "shop",
                        "models/marts/core/schema.yml",
                        "at_least_one_customers_id",
                        &["model.shop.customers"],
                    ),
                    "at_least_one",
                    Some("utils"),
                ),
                json!({"severity": "warn"}),
            ),
        ];
        let mut m = Manifest { project_name: "shop".to_string(), ..Default::default() };
        for n in nodes {
            if matches!(n.resource_type, Model | Seed) {
                m.by_name.insert((n.package.clone(), n.name.clone()), n.unique_id.clone());
            }
            m.nodes.insert(n.unique_id.clone(), n);
        }
        m
    }

    /// Runs a selection and returns the selected nodes' names, space-separated, in manifest order.
    fn run(selection: &Selection) -> Result<String, SelectError> {
        let manifest = fixture();
        let graph = Graph::build(&manifest);
        let ids = select(&manifest, &graph, selection)?;
        Ok(ids.iter().map(|id| manifest.nodes[id].name.as_str()).collect::<Vec<_>>().join(" "))
    }

    fn sel(select: &str, exclude: &str, indirect: bool) -> Selection {
        let arg = |s: &str| if s.is_empty() { Vec::new() } else { vec![s.to_string()] };
        Selection { select: arg(select), exclude: arg(exclude), indirect, ..Selection::all() }
    }

    fn check(cases: &[(&str, &str)], indirect: bool) {
        let mut failures = Vec::new();
        for (select, expected) in cases {
            match run(&sel(select, "", indirect)) {
                Ok(got) if got == *expected => {}
                Ok(got) => failures.push(format!("`{select}`:\n   got: {got}\n  want: {expected}")),
                Err(e) => failures.push(format!("`{select}`: error: {e}")),
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    const STAGING_TESTS: &str = "not_null_stg_orders_order_id source_not_null_raw_orders_id";

    #[test]
    fn methods() {
        let all_shop_non_sources = "raw_customers stg_orders stg_payments stg_customers orders order_items customers \
            not_null_stg_orders_order_id unique_orders_order_id relationships_order_items_customer_id \
            assert_positive_totals source_not_null_raw_orders_id at_least_one_customers_id";
        let staging = format!("stg_orders stg_payments stg_customers {STAGING_TESTS}");
        let staging_path = format!("orders payments {staging}");
        let marts = "orders order_items customers unique_orders_order_id relationships_order_items_customer_id \
                     at_least_one_customers_id";
        let package_shop = all_shop_non_sources.replace("raw_customers", "raw_customers orders payments");
        let cases: Vec<(&str, &str)> = vec![
            // Bare names: fqn.
            ("stg_orders", "stg_orders"),
            ("staging.stg_orders", "stg_orders"),
            ("shop.staging.stg_orders", "stg_orders"),
            ("marts.core.customers", "customers"),
            ("staging", staging.as_str()),
            ("stg_*", "stg_orders stg_payments stg_customers"),
            ("stg_?rders", "stg_orders"),
            ("stg_[op]*", "stg_orders stg_payments"),
            ("stg_[!op]*", "stg_customers"),
            ("marts.*", marts),
            ("*.core.*", "customers at_least_one_customers_id"),
            ("utils", "calendar"),
            ("shop", all_shop_non_sources),
            ("raw_customers", "raw_customers"),
            ("assert_positive_totals", "assert_positive_totals"),
            // fqn:
            ("fqn:staging.stg_orders", "stg_orders"),
            ("fqn:utils.calendar", "calendar"),
            // tag:
            ("tag:staging", "stg_orders stg_payments stg_customers"),
            ("tag:fin*", "payments orders assert_positive_totals"),
            ("tag:pii", "stg_customers customers"),
            // path: and bare paths.
            ("path:models/staging", staging_path.as_str()),
            ("path:models/staging/", staging_path.as_str()),
            ("path:./models/staging", staging_path.as_str()),
            ("models/staging/stg_orders.sql", "stg_orders"),
            ("models/marts", marts),
            ("path:models/*/orders.sql", "orders"),
            ("path:models/**/customers.sql", "customers"),
            ("path:models/**/*.sql", "stg_orders stg_payments stg_customers orders order_items customers"),
            ("path:models/mar*", marts),
            ("path:tests", "assert_positive_totals"),
            ("path:seeds/*.csv", "raw_customers"),
            ("path:models/*/core", "customers at_least_one_customers_id"),
            // file: and bare file names.
            ("orders.sql", "orders"),
            ("raw_customers.csv", "raw_customers"),
            ("file:stg_*", "stg_orders stg_payments stg_customers"),
            ("file:sources.yml", "orders payments source_not_null_raw_orders_id"),
            // source:
            ("source:raw", "orders payments"),
            ("source:raw.orders", "orders"),
            ("source:shop.raw.pay*", "payments"),
            ("source:*", "orders payments"),
            // resource_type:
            ("resource_type:seed", "raw_customers"),
            ("resource_type:source", "orders payments"),
            ("resource_type:model", "stg_orders stg_payments stg_customers orders order_items customers calendar"),
            // config.<key>:
            ("config.materialized:incremental", "orders"),
            ("config.materialized:table", "order_items customers calendar"),
            ("config.materialized:incr*", "orders"),
            ("config.meta.owner:alice", "order_items"),
            ("config.contract.enforced:True", "order_items"),
            ("config.unique_key:order_id", "orders"),
            ("config.tags:pii", "stg_customers customers"),
            ("config.severity:WARN", "at_least_one_customers_id"),
            // package:
            ("package:utils", "calendar"),
            ("package:util?", "calendar"),
            ("package:this", package_shop.as_str()),
            // test_type: / test_name:
            ("test_type:singular", "assert_positive_totals"),
            ("test_type:data", "assert_positive_totals"),
            (
                "test_type:generic",
                "not_null_stg_orders_order_id unique_orders_order_id relationships_order_items_customer_id \
                 source_not_null_raw_orders_id at_least_one_customers_id",
            ),
            ("test_name:not_null", STAGING_TESTS),
            ("test_name:at_least_one", "at_least_one_customers_id"),
            ("test_name:utils.at_least_*", "at_least_one_customers_id"),
            ("test_name:rel*", "relationships_order_items_customer_id"),
        ];
        check(&cases, false);
    }

    #[test]
    fn graph_operators() {
        check(
            &[
                (
                    "stg_orders+",
                    "stg_orders orders order_items customers not_null_stg_orders_order_id unique_orders_order_id \
                     relationships_order_items_customer_id assert_positive_totals at_least_one_customers_id",
                ),
                ("stg_orders+1", "stg_orders orders not_null_stg_orders_order_id"),
                (
                    "stg_orders+2",
                    "stg_orders orders order_items customers not_null_stg_orders_order_id unique_orders_order_id \
                     assert_positive_totals",
                ),
                ("+orders", "orders payments stg_orders stg_payments orders"),
                ("1+orders", "stg_orders stg_payments orders"),
                (
                    "2+customers+1",
                    "raw_customers stg_orders stg_payments stg_customers orders customers \
                     relationships_order_items_customer_id at_least_one_customers_id",
                ),
                ("0+orders", "orders"),
                ("+tag:staging", "raw_customers orders payments stg_orders stg_payments stg_customers"),
                ("+source:raw", "orders payments"),
                ("source:raw.payments+1", "payments stg_payments"),
                (
                    "@stg_customers",
                    "raw_customers orders payments stg_orders stg_payments stg_customers orders order_items customers \
                     relationships_order_items_customer_id at_least_one_customers_id",
                ),
                ("@calendar", "calendar"),
                ("+models/marts/orders.sql", "orders payments stg_orders stg_payments orders"),
                (
                    "+path:models/marts/orders.sql+1",
                    "orders payments stg_orders stg_payments orders order_items customers unique_orders_order_id \
                     assert_positive_totals",
                ),
            ],
            false,
        );
    }

    #[test]
    fn union_intersection_and_exclude() {
        check(
            &[
                ("stg_orders stg_payments", "stg_orders stg_payments"),
                ("tag:staging,stg_c*", "stg_customers"),
                ("+customers,resource_type:seed", "raw_customers"),
                ("tag:pii,config.materialized:table", "customers"),
                ("tag:pii,config.materialized:table stg_orders", "stg_orders customers"),
                (
                    "stg_orders+,resource_type:test,test_type:generic",
                    "not_null_stg_orders_order_id unique_orders_order_id relationships_order_items_customer_id \
                     at_least_one_customers_id",
                ),
            ],
            false,
        );
        // Several arguments are a union too.
        let s = Selection {
            select: vec!["stg_orders".into(), "tag:pii  calendar".into()],
            indirect: false,
            ..Selection::all()
        };
        assert_eq!(run(&s).unwrap(), "stg_orders stg_customers customers calendar");
        // Exclusion applies after the union.
        assert_eq!(run(&sel("tag:staging", "stg_payments", false)).unwrap(), "stg_orders stg_customers");
        assert_eq!(run(&sel("+orders", "source:* tag:staging", false)).unwrap(), "orders");
        assert_eq!(run(&sel("marts", "orders+", false)).unwrap(), "");
        // No --select: everything, minus the exclusion.
        assert_eq!(run(&sel("", "shop", false)).unwrap(), "orders payments calendar",);
        assert_eq!(run(&sel("  ", "", false)).unwrap().split(' ').count(), 16);
        // The resource-type filter comes last.
        let s =
            Selection { resource_types: vec![ResourceType::Model, ResourceType::Seed], ..sel("+customers", "", false) };
        assert_eq!(run(&s).unwrap(), "raw_customers stg_orders stg_payments stg_customers orders customers");
        let s = Selection { resource_types: vec![ResourceType::Source], ..Selection::all() };
        assert_eq!(run(&s).unwrap(), "orders payments");
    }

    #[test]
    fn indirect_selection_is_eager() {
        check(
            &[
                // Tests on orders; relationships_… depends on order_items and customers, not orders.
                ("orders", "orders unique_orders_order_id assert_positive_totals"),
                // Any parent selected is enough.
                ("customers", "customers relationships_order_items_customer_id at_least_one_customers_id"),
                ("source:raw.orders", "orders source_not_null_raw_orders_id"),
                (
                    "1+orders",
                    "stg_orders stg_payments orders not_null_stg_orders_order_id unique_orders_order_id \
                     assert_positive_totals",
                ),
                // Per atom, before intersecting: the tests of orders.
                ("orders,resource_type:test", "unique_orders_order_id assert_positive_totals"),
                ("calendar", "calendar"),
            ],
            true,
        );
        // Off: the model only.
        assert_eq!(run(&sel("orders", "", false)).unwrap(), "orders");
        // Tests filtered out by resource type are not added.
        let models = Selection { resource_types: vec![ResourceType::Model], ..sel("orders", "", true) };
        assert_eq!(run(&models).unwrap(), "orders");
        let tests = Selection { resource_types: vec![ResourceType::Test], ..sel("orders", "", true) };
        assert_eq!(run(&tests).unwrap(), "unique_orders_order_id assert_positive_totals");
        // Excluding a model excludes its tests (always, as in dbt), even those picked directly.
        assert_eq!(
            run(&sel("marts", "customers", true)).unwrap(),
            "orders order_items unique_orders_order_id assert_positive_totals"
        );
        assert_eq!(run(&sel("marts", "customers", false)).unwrap(), "orders order_items unique_orders_order_id");
        assert_eq!(run(&sel("resource_type:test", "orders", true)).unwrap().split(' ').count(), 4);
        // The default constructor has it on.
        assert!(Selection::all().indirect && Selection::default().indirect);
    }

    #[test]
    fn errors() {
        let err = |select: &str, exclude: &str| run(&sel(select, exclude, true)).unwrap_err().to_string();
        assert_eq!(
            err("foo:bar", ""),
            "unknown selector method `foo` in `foo:bar`; methods: tag, path, source, resource_type, config, package, \
             fqn, test_type, test_name, file, state, result"
        );
        let unsupported = err("exposure:weekly", "");
        assert!(
            unsupported.starts_with("selector method `exposure` in `exposure:weekly` is not supported"),
            "{unsupported}"
        );
        let needs_state = err("state:modified+", "");
        assert!(needs_state.contains("pass --state DIR"), "{needs_state}");
        assert!(err("state:changed", "").contains("unknown state `changed`; expected new, old, modified"));
        assert_eq!(err("orderz", ""), "`--select orderz` matched no nodes; closest: orders");
        assert_eq!(err("tag:nightlyy", ""), "`--select tag:nightlyy` matched no nodes; closest: tag:nightly");
        assert_eq!(err("stg_orders +orderz", ""), "`--select +orderz` matched no nodes; closest: orders");
        assert_eq!(err("raw.orders", ""), "`--select raw.orders` matched no nodes; closest: source:raw.orders");
        assert_eq!(err("source:rae", ""), "`--select source:rae` matched no nodes; closest: source:raw");
        assert_eq!(
            err("path:models/stagin", ""),
            "`--select path:models/stagin` matched no nodes; closest: path:models/staging"
        );
        assert_eq!(
            err("config.materialized:tabel", ""),
            "`--select config.materialized:tabel` matched no nodes; closest: config.materialized:table"
        );
        assert_eq!(err("tag:zzz", ""), "`--select tag:zzz` matched no nodes");
        assert_eq!(err("resource_type:snapshot", ""), "`--select resource_type:snapshot` matched no nodes");
        assert_eq!(err("orders", "stg_ordrs"), "`--exclude stg_ordrs` matched no nodes; closest: stg_orders");
        assert_eq!(
            err("tag:staging,tag:nightly", ""),
            "`--select tag:staging,tag:nightly` matched no nodes; each of its comma-separated parts matches nodes, but \
             no node matches all of them"
        );
        assert!(err("tag:staging,orderz", "").ends_with("closest: orders"));
        // Syntax errors win over criteria that match nothing, wherever they are.
        assert_eq!(err("orderz", "tag:"), "invalid selector `tag:`: no value after `tag:`");
        assert!(err("nope:", "").starts_with("unknown selector method `nope` in `nope:`"));
        for (select, reason) in [
            ("@orders+", "the `@` prefix and a `+` suffix cannot be combined"),
            (
                "resource_type:view",
                "unknown resource type `view`; expected model, seed, snapshot, test, unit_test or source",
            ),
            ("test_type:integration", "unknown test type `integration`; expected generic, singular or unit"),
            ("source:a.b.c.d", "sources are selected as"),
            ("config:table", "`config` needs a key"),
            ("config.:table", "`config` needs a key"),
            ("tag.x:y", "`tag` takes no `.x` argument"),
            ("+", "no node name"),
            ("2+", "no node name"),
            ("orders,,tag:x", "invalid selector `orders,,tag:x`: empty part"),
            ("orders,", "empty part"),
            ("orders+99999999999999999999999", "bad depth"),
        ] {
            let e = run(&sel(select, "", true)).unwrap_err();
            assert!(matches!(e, SelectError::Invalid { .. }), "{select}: {e:?}");
            assert!(e.to_string().contains(reason), "{select}: {e}");
        }
    }

    #[test]
    fn atom_syntax() {
        let a = parse_atom("2+tag:nightly+3").unwrap();
        assert_eq!(
            (a.parents, a.children, a.method_text, a.value),
            (Some(Some(2)), Some(Some(3)), Some("tag"), "nightly")
        );
        assert_eq!(a.method, Method::Tag);
        let a = parse_atom("@stg_v2").unwrap();
        assert!(a.childrens_parents);
        assert_eq!((a.parents, a.children, a.value, a.method), (None, None, "stg_v2", Method::Fqn));
        let a = parse_atom("+2024_orders").unwrap();
        assert_eq!((a.parents, a.value), (Some(None), "2024_orders"));
        let a = parse_atom("2024_orders+").unwrap();
        assert_eq!((a.parents, a.children, a.value), (None, Some(None), "2024_orders"));
        let a = parse_atom("models/x:y").unwrap();
        assert_eq!((a.method, a.method_text, a.value), (Method::Path, None, "models/x:y"));
        let a = parse_atom("config.meta.owner:a:b").unwrap();
        assert_eq!((a.method, a.value), (Method::Config(vec!["meta".into(), "owner".into()]), "a:b"));
        assert_eq!(parse_atom("x.PY").unwrap().method, Method::File);
        assert_eq!(parse_atom("a+b").unwrap().value, "a+b");
        assert_eq!(parse_atom("@+x").unwrap().parents, Some(None));
    }

    #[test]
    fn wildcards() {
        for (pattern, text, path, want) in [
            ("stg_*", "stg_orders", false, true),
            ("stg_*", "xstg_orders", false, false),
            ("*", "", false, true),
            ("a*b*c", "aXbYbc", false, true),
            ("a?c", "abc", false, true),
            ("a?c", "ac", false, false),
            ("[a-c]x", "bx", false, true),
            ("[!a-c]x", "bx", false, false),
            ("[]]x", "]x", false, true),
            ("[x", "[x", false, true),
            ("a*", "a/b", false, true),
            ("a*", "a/b", true, false),
            ("a/*", "a/b", true, true),
            ("a/**", "a/b/c", true, true),
            ("a/**/c", "a/c", true, true),
            ("a/**/c", "a/b/d/c", true, true),
            ("a/**/c", "a/bc", true, false),
            ("a?b", "a/b", true, false),
            ("exact", "exact", true, true),
        ] {
            assert_eq!(glob_match(pattern, text, path), want, "{pattern} vs {text} (path: {path})");
        }
    }
}
