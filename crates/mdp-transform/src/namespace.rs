//! Where a macro name leads: dbt's macro namespaces across packages.
//!
//! As in dbt-core, an unqualified call `m()` rendered for a node of package `P` finds `P`'s macro,
//! else the root project's, else dbt's own (mdp's built-ins); another package's macros are reached
//! only as `package.m()`. mdp's embedded packages (the marketing models) are the one exception:
//! their macros are visible unqualified everywhere, after the root project's, which replace theirs
//! also in their own nodes (so a project can override one).
//!
//! `adapter.dispatch('m', 'ns')` searches, in order, the packages the root project's `dispatch:`
//! config lists for `ns` (default: the root project, then `ns` itself), and in each
//! `<adapter>__m`, then `default__m`; packages named there that are not installed are skipped.

use std::collections::HashMap;

/// The package name of mdp's built-in macros: dbt's `dbt` namespace (`dbt.dateadd`).
pub const BUILTIN_PACKAGE: &str = "dbt";

/// One definition of a macro name (cheap to clone: every macro call takes one).
#[derive(Debug, Clone)]
pub struct MacroEntry {
    pub package: std::sync::Arc<str>,
    /// The template (macro file) that defines it.
    pub file: std::sync::Arc<str>,
    /// Whether its file reads dbt's `varargs`/`kwargs`.
    pub reads_extras: bool,
    /// Whether its file may query the warehouse (see [`crate::introspect`]).
    pub may_introspect: bool,
}

/// Every macro definition, by name and package, and how names resolve.
#[derive(Debug, Default)]
pub struct MacroRegistry {
    by_name: HashMap<String, Vec<MacroEntry>>,
    root: String,
    /// Packages besides the root and the built-ins, in the order they were added.
    packages: Vec<String>,
    /// Packages whose macros are visible unqualified from every node (embedded packages).
    everywhere: Vec<String>,
    /// The root project's `dispatch:`: macro namespace → package search order.
    dispatch: HashMap<String, Vec<String>>,
}

/// Where `adapter.dispatch` looks: a package, or (None) the calling node's namespace.
pub type SearchPackage = Option<String>;

impl MacroRegistry {
    pub fn set_root(&mut self, name: &str) {
        self.root = name.to_string();
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn add_package(&mut self, name: &str, visible_everywhere: bool) {
        if !self.packages.iter().any(|p| p == name) {
            self.packages.push(name.to_string());
        }
        if visible_everywhere && !self.everywhere.iter().any(|p| p == name) {
            self.everywhere.push(name.to_string());
        }
    }

    pub fn set_dispatch(&mut self, dispatch: HashMap<String, Vec<String>>) {
        self.dispatch = dispatch;
    }

    /// Whether `name` is a package macros can be looked up in.
    pub fn is_package(&self, name: &str) -> bool {
        name == BUILTIN_PACKAGE || name == self.root || self.packages.iter().any(|p| p == name)
    }

    /// Whether any package defines `name` (the global function exists).
    pub fn knows(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Add a definition. A package defining a name twice keeps the later one; the caller reports it.
    /// Returns the file of the definition it replaced in the same package.
    pub fn add(&mut self, name: &str, entry: MacroEntry) -> Option<String> {
        let list = self.by_name.entry(name.to_string()).or_default();
        let previous = list.iter().position(|e| e.package == entry.package).map(|i| list.remove(i).file.to_string());
        list.push(entry);
        previous
    }

    /// The definition an unqualified call from a node of package `from` reaches.
    pub fn resolve(&self, name: &str, from: &str) -> Option<&MacroEntry> {
        let list = self.by_name.get(name)?;
        let of = |package: &str| list.iter().find(|e| &*e.package == package);
        // An embedded package's macros give way to the root project's, also in its own nodes.
        let (first, second) = match self.everywhere.iter().any(|p| p == from) {
            false => (from, self.root.as_str()),
            true => (self.root.as_str(), from),
        };
        of(first)
            .or_else(|| of(second))
            .or_else(|| self.everywhere.iter().rev().find_map(|p| of(p)))
            .or_else(|| of(BUILTIN_PACKAGE))
    }

    /// The definition of `name` in `package` (`dbt`: the built-ins).
    pub fn in_package(&self, package: &str, name: &str) -> Option<&MacroEntry> {
        self.by_name.get(name)?.iter().find(|e| &*e.package == package)
    }

    /// The packages that define `name`, for a "call it as package.name()" hint.
    pub fn packages_defining(&self, name: &str) -> Vec<String> {
        self.by_name.get(name).map(|l| l.iter().map(|e| e.package.to_string()).collect()).unwrap_or_default()
    }

    /// The packages `adapter.dispatch(_, namespace)` searches, in order (dbt-core's
    /// `_get_search_packages`).
    pub fn search_packages(&self, namespace: Option<&str>) -> Vec<SearchPackage> {
        let Some(ns) = namespace else { return vec![None] };
        if let Some(order) = self.dispatch.get(ns) {
            return order.iter().cloned().map(Some).collect();
        }
        if self.is_package(ns) {
            return vec![Some(self.root.clone()), Some(ns.to_string())];
        }
        vec![None]
    }

    /// `adapter.dispatch(name, namespace)` for `adapter`, called from a node of package `from`: the
    /// macro found, or every name searched (for the error).
    pub fn dispatch(
        &self,
        adapter: &str,
        name: &str,
        namespace: Option<&str>,
        from: &str,
    ) -> Result<(String, &MacroEntry), Vec<String>> {
        let mut attempts = Vec::new();
        for package in self.search_packages(namespace) {
            for prefix in [adapter, "default"] {
                let candidate = format!("{prefix}__{name}");
                let found = match &package {
                    None => self.resolve(&candidate, from),
                    Some(p) => self.in_package(p, &candidate),
                };
                attempts.push(match &package {
                    None => candidate.clone(),
                    Some(p) => format!("{p}.{candidate}"),
                });
                if let Some(entry) = found {
                    return Ok((candidate, entry));
                }
            }
        }
        Err(attempts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(package: &str) -> MacroEntry {
        MacroEntry {
            package: package.into(),
            file: format!("{package}.sql").into(),
            reads_extras: false,
            may_introspect: false,
        }
    }

    fn registry() -> MacroRegistry {
        let mut r = MacroRegistry::default();
        r.set_root("shop");
        r.add_package("utils", false);
        r.add_package("vendor", false);
        r.add_package("embedded", true);
        r
    }

    #[test]
    fn unqualified_calls_resolve_as_in_dbt() {
        let mut r = registry();
        r.add("m", entry("dbt"));
        r.add("m", entry("utils"));
        // Only the built-in and a package define it: the root sees the built-in, the package its own.
        assert_eq!(&*r.resolve("m", "shop").unwrap().package, "dbt");
        assert_eq!(&*r.resolve("m", "utils").unwrap().package, "utils");
        assert_eq!(&*r.resolve("m", "vendor").unwrap().package, "dbt");
        // The root's definition wins for every other package.
        r.add("m", entry("shop"));
        assert_eq!(&*r.resolve("m", "vendor").unwrap().package, "shop");
        assert_eq!(&*r.resolve("m", "utils").unwrap().package, "utils");
        // A package-only macro is not reachable unqualified from the root…
        r.add("only_utils", entry("utils"));
        assert!(r.resolve("only_utils", "shop").is_none());
        assert_eq!(&*r.in_package("utils", "only_utils").unwrap().package, "utils");
        // …except from an embedded package, visible everywhere.
        r.add("helper", entry("embedded"));
        assert_eq!(&*r.resolve("helper", "shop").unwrap().package, "embedded");
        // …and whose macros the root project replaces, also in the embedded package's own nodes.
        r.add("helper", entry("shop"));
        assert_eq!(&*r.resolve("helper", "embedded").unwrap().package, "shop");
    }

    #[test]
    fn dispatch_follows_the_search_order() {
        let mut r = registry();
        r.add("default__cast", entry("utils"));
        r.add("duckdb__cast", entry("vendor"));
        r.add("default__cast", entry("shop"));
        // No dispatch config: the root project, then the namespace.
        let (name, found) = r.dispatch("duckdb", "cast", Some("utils"), "shop").unwrap();
        assert_eq!((name.as_str(), &*found.package), ("default__cast", "shop"));
        // A search order puts the shim package first; a package that is not installed is skipped.
        r.set_dispatch(HashMap::from([(
            "utils".to_string(),
            vec!["missing".to_string(), "vendor".to_string(), "utils".to_string()],
        )]));
        let (name, found) = r.dispatch("duckdb", "cast", Some("utils"), "shop").unwrap();
        assert_eq!((name.as_str(), &*found.package), ("duckdb__cast", "vendor"));
        let (name, found) = r.dispatch("postgres", "cast", Some("utils"), "shop").unwrap();
        assert_eq!((name.as_str(), &*found.package), ("default__cast", "utils"));
        // Nothing found: every name searched, as dbt lists them.
        let attempts = r.dispatch("postgres", "nope", Some("utils"), "shop").unwrap_err();
        assert_eq!(attempts[0], "missing.postgres__nope");
        assert_eq!(attempts.len(), 6);
        // No namespace: the caller's namespace.
        assert!(r.dispatch("duckdb", "cast", None, "shop").is_ok());
        assert!(r.dispatch("duckdb", "cast", None, "vendor").is_ok());
    }
}
