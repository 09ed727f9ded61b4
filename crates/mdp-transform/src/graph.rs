//! The project DAG: edges from `depends_on`, topological order, cycle detection.

use std::collections::{HashMap, VecDeque};

use crate::manifest::Manifest;

/// Parent and child lists of every node of a [`Manifest`], by unique id.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    parents: HashMap<String, Vec<String>>,
    children: HashMap<String, Vec<String>>,
    /// Node ids in manifest order (stable tie-break for every ordering below).
    order: Vec<String>,
}

/// A dependency cycle, as the list of nodes around it (the first repeated at the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<String>);

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" -> "))
    }
}

impl Graph {
    /// Build the graph. Edges to ids that are not in the manifest (disabled nodes) are dropped;
    /// the parser reports those as errors before this point.
    pub fn build(manifest: &Manifest) -> Graph {
        let mut g = Graph::default();
        for (id, node) in &manifest.nodes {
            g.order.push(id.clone());
            g.children.entry(id.clone()).or_default();
            let parents = g.parents.entry(id.clone()).or_default();
            for dep in &node.depends_on {
                if manifest.nodes.contains_key(dep) && !parents.contains(dep) {
                    parents.push(dep.clone());
                }
            }
        }
        for id in &g.order {
            for p in g.parents[id].clone() {
                g.children.entry(p).or_default().push(id.clone());
            }
        }
        g
    }

    pub fn parents(&self, id: &str) -> &[String] {
        self.parents.get(id).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn children(&self, id: &str) -> &[String] {
        self.children.get(id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// All node ids in manifest order.
    pub fn nodes(&self) -> &[String] {
        &self.order
    }

    /// Every ancestor of `id` up to `depth` generations (`None`: all), without `id` itself.
    pub fn ancestors(&self, id: &str, depth: Option<usize>) -> Vec<String> {
        self.walk(id, depth, |g, n| g.parents(n))
    }

    /// Every descendant of `id` up to `depth` generations (`None`: all), without `id` itself.
    pub fn descendants(&self, id: &str, depth: Option<usize>) -> Vec<String> {
        self.walk(id, depth, |g, n| g.children(n))
    }

    fn walk<'a>(
        &'a self,
        id: &str,
        depth: Option<usize>,
        next: impl Fn(&'a Graph, &str) -> &'a [String],
    ) -> Vec<String> {
        let mut seen: HashMap<&str, ()> = HashMap::new();
        let mut out = Vec::new();
        let mut queue: VecDeque<(&str, usize)> = VecDeque::new();
        queue.push_back((id, 0));
        while let Some((n, d)) = queue.pop_front() {
            if depth.is_some_and(|max| d >= max) {
                continue;
            }
            for m in next(self, n) {
                if m != id && seen.insert(m.as_str(), ()).is_none() {
                    out.push(m.clone());
                    queue.push_back((m.as_str(), d + 1));
                }
            }
        }
        out
    }

    /// All nodes in dependency order (Kahn's algorithm, manifest order among ready nodes), or the
    /// first cycle found.
    pub fn topological_order(&self) -> Result<Vec<String>, Cycle> {
        let mut indegree: HashMap<&str, usize> =
            self.order.iter().map(|id| (id.as_str(), self.parents(id).len())).collect();
        let mut ready: VecDeque<&str> = self.order.iter().map(String::as_str).filter(|id| indegree[id] == 0).collect();
        let mut out = Vec::with_capacity(self.order.len());
        while let Some(id) = ready.pop_front() {
            out.push(id.to_string());
            for c in self.children(id) {
                let d = indegree.get_mut(c.as_str()).expect("child is a node");
                *d -= 1;
                if *d == 0 {
                    ready.push_back(c.as_str());
                }
            }
        }
        if out.len() == self.order.len() {
            return Ok(out);
        }
        let remaining: Vec<&str> = self.order.iter().map(String::as_str).filter(|id| indegree[id] > 0).collect();
        Err(self.find_cycle(&remaining))
    }

    /// A cycle among `candidates` (nodes Kahn's algorithm could not order).
    fn find_cycle(&self, candidates: &[&str]) -> Cycle {
        // Follow parents that are themselves unordered: every such node has one, so the walk must
        // revisit a node, and the path from that node's first visit is a cycle.
        let unordered: std::collections::HashSet<&str> = candidates.iter().copied().collect();
        let mut path: Vec<&str> = vec![candidates[0]];
        loop {
            let current = *path.last().expect("non-empty");
            let next = self
                .parents(current)
                .iter()
                .map(String::as_str)
                .find(|p| unordered.contains(p))
                .expect("an unordered node has an unordered parent");
            if let Some(pos) = path.iter().position(|n| *n == next) {
                let mut cycle: Vec<String> = path[pos..].iter().rev().map(|s| s.to_string()).collect();
                cycle.push(cycle[0].clone());
                return Cycle(cycle);
            }
            path.push(next);
        }
    }
}
