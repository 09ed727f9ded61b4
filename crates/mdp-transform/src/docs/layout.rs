//! Layered left-to-right layout of a DAG (Sugiyama's method, kept small):
//!
//! 1. **Layers**: longest path from the roots (sources, seeds, models without parents are layer 0),
//!    so every edge goes from a lower to a higher layer.
//! 2. **Virtual nodes**: an edge spanning several layers gets one invisible slot per layer it
//!    crosses, so it is routed around the boxes instead of through them, and takes part in the
//!    ordering.
//! 3. **Order within a layer**: barycenter sweeps (down, then up), keeping the order with the
//!    fewest crossings (counted exactly, by inversions, per pair of adjacent layers).
//! 4. **Coordinates**: columns as wide as their widest label; vertical positions pulled towards
//!    the neighbours' centres, then made non-overlapping with the least total movement (isotonic
//!    regression, pool-adjacent-violators), so edges stay as straight as the order allows.
//!
//! Everything is deterministic: the same graph gives the same picture.

/// A node to lay out.
#[derive(Debug, Clone)]
pub struct InputNode {
    /// Width of its box (its label's width plus padding).
    pub width: f64,
    /// The initial order within its layer (smaller first); ties keep the input order.
    pub sort_key: String,
}

/// Where a node went.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub layer: usize,
    /// Top-left corner and size of its box.
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// An edge as a polyline: start at the parent's right side, through each virtual slot, end at the
/// child's left side. Drawn as horizontal-tangent curves between consecutive points.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub from: usize,
    pub to: usize,
    pub points: Vec<(f64, f64)>,
}

/// A finished layout.
#[derive(Debug, Clone)]
pub struct Layout {
    /// One per input node, same index.
    pub nodes: Vec<Placed>,
    pub edges: Vec<Route>,
    pub width: f64,
    pub height: f64,
    /// Crossings of the chosen order (between adjacent layers, virtual slots included).
    pub crossings: u64,
}

/// Sizes and gaps.
pub const NODE_HEIGHT: f64 = 30.0;
const VIRTUAL_HEIGHT: f64 = 6.0;
const V_GAP: f64 = 12.0;
const H_GAP: f64 = 90.0;
const MARGIN: f64 = 16.0;
const ORDER_SWEEPS: usize = 8;
const PLACE_SWEEPS: usize = 6;

/// One slot of a layer: a real node or a virtual one (part of a long edge).
#[derive(Debug, Clone)]
struct Item {
    real: Option<usize>,
    layer: usize,
    height: f64,
    /// Neighbours in the layer above (layer − 1) and below (layer + 1), as item indices.
    up: Vec<usize>,
    down: Vec<usize>,
}

/// Lay out `nodes` with `edges` (parent index, child index). Duplicate edges and self-loops are
/// ignored. The graph must be acyclic (a project's graph is: the parser refuses cycles); edges of a
/// cycle, should one be passed, are drawn but may point backwards.
pub fn layout(nodes: &[InputNode], edges: &[(usize, usize)]) -> Layout {
    let n = nodes.len();
    let mut edge_list: Vec<(usize, usize)> =
        edges.iter().copied().filter(|(a, b)| a != b && *a < n && *b < n).collect();
    edge_list.sort_unstable();
    edge_list.dedup();

    let layers = assign_layers(n, &edge_list);
    let layer_count = layers.iter().copied().max().map_or(0, |m| m + 1);

    // Items: the real nodes first (item i = node i), then virtual slots.
    let mut items: Vec<Item> = (0..n)
        .map(|i| Item { real: Some(i), layer: layers[i], height: NODE_HEIGHT, up: Vec::new(), down: Vec::new() })
        .collect();
    // Per edge, the chain of items it passes through (both ends included).
    let mut chains: Vec<Vec<usize>> = Vec::with_capacity(edge_list.len());
    for &(a, b) in &edge_list {
        let mut chain = vec![a];
        if layers[b] > layers[a] {
            for layer in layers[a] + 1..layers[b] {
                items.push(Item { real: None, layer, height: VIRTUAL_HEIGHT, up: Vec::new(), down: Vec::new() });
                chain.push(items.len() - 1);
            }
        }
        chain.push(b);
        for pair in chain.windows(2) {
            let (u, v) = (pair[0], pair[1]);
            if items[v].layer == items[u].layer + 1 {
                items[u].down.push(v);
                items[v].up.push(u);
            }
        }
        chains.push(chain);
    }

    // Initial order: real nodes by sort key, virtual slots after them (the first sweep moves them).
    let mut order: Vec<Vec<usize>> = vec![Vec::new(); layer_count];
    for (i, item) in items.iter().enumerate() {
        order[item.layer].push(i);
    }
    for layer in &mut order {
        layer.sort_by(|&a, &b| {
            let key = |i: usize| items[i].real.map(|r| (0, nodes[r].sort_key.as_str(), r)).unwrap_or((1, "", i));
            key(a).cmp(&key(b))
        });
    }
    let mut position = vec![0usize; items.len()];
    let set_positions = |order: &Vec<Vec<usize>>, position: &mut Vec<usize>| {
        for layer in order {
            for (p, &i) in layer.iter().enumerate() {
                position[i] = p;
            }
        }
    };
    set_positions(&order, &mut position);
    let mut best = order.clone();
    let mut best_crossings = count_crossings(&items, &order, &position);
    for sweep in 0..ORDER_SWEEPS {
        if best_crossings == 0 {
            break;
        }
        let downward = sweep % 2 == 0;
        let layer_ids: Vec<usize> =
            if downward { (1..layer_count).collect() } else { (0..layer_count.saturating_sub(1)).rev().collect() };
        for l in layer_ids {
            let mut keyed: Vec<(f64, usize, usize)> = order[l]
                .iter()
                .enumerate()
                .map(|(p, &i)| {
                    let neighbours = if downward { &items[i].up } else { &items[i].down };
                    let bary = if neighbours.is_empty() {
                        p as f64
                    } else {
                        neighbours.iter().map(|&j| position[j] as f64).sum::<f64>() / neighbours.len() as f64
                    };
                    (bary, p, i)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            order[l] = keyed.into_iter().map(|(_, _, i)| i).collect();
            for (p, &i) in order[l].iter().enumerate() {
                position[i] = p;
            }
        }
        let crossings = count_crossings(&items, &order, &position);
        if crossings < best_crossings {
            best_crossings = crossings;
            best = order.clone();
        }
    }
    let order = best;
    set_positions(&order, &mut position);

    // Columns: as wide as the widest real node of the layer.
    let mut column_width = vec![0.0f64; layer_count];
    for (i, node) in nodes.iter().enumerate() {
        column_width[layers[i]] = column_width[layers[i]].max(node.width);
    }
    let mut column_x = vec![MARGIN; layer_count];
    for l in 1..layer_count {
        column_x[l] = column_x[l - 1] + column_width[l - 1] + H_GAP;
    }

    // Vertical placement: stacked, then pulled towards neighbours without overlapping.
    let mut y = vec![0.0f64; items.len()];
    let tallest = order.iter().map(|layer| stack_height(&items, layer)).fold(0.0, f64::max);
    for layer in &order {
        let mut top = (tallest - stack_height(&items, layer)) / 2.0;
        for &i in layer {
            y[i] = top;
            top += items[i].height + V_GAP;
        }
    }
    let center = |y: &[f64], i: usize| y[i] + items[i].height / 2.0;
    for sweep in 0..PLACE_SWEEPS {
        let downward = sweep % 2 == 0;
        let layer_ids: Vec<usize> =
            if downward { (1..layer_count).collect() } else { (0..layer_count.saturating_sub(1)).rev().collect() };
        for l in layer_ids {
            let desired: Vec<f64> = order[l]
                .iter()
                .map(|&i| {
                    let neighbours = if downward { &items[i].up } else { &items[i].down };
                    if neighbours.is_empty() {
                        y[i]
                    } else {
                        let c = neighbours.iter().map(|&j| center(&y, j)).sum::<f64>() / neighbours.len() as f64;
                        c - items[i].height / 2.0
                    }
                })
                .collect();
            let sizes: Vec<f64> = order[l].iter().map(|&i| items[i].height + V_GAP).collect();
            for (&i, top) in order[l].iter().zip(place_without_overlap(&desired, &sizes)) {
                y[i] = top;
            }
        }
    }
    let min_y = y.iter().copied().fold(f64::INFINITY, f64::min);
    let shift = if min_y.is_finite() { MARGIN - min_y } else { 0.0 };
    for v in &mut y {
        *v += shift;
    }

    let placed: Vec<Placed> = (0..n)
        .map(|i| Placed {
            layer: layers[i],
            x: column_x[layers[i]],
            y: y[i],
            width: column_width[layers[i]],
            height: NODE_HEIGHT,
        })
        .collect();
    let routes: Vec<Route> = edge_list
        .iter()
        .zip(&chains)
        .map(|(&(a, b), chain)| {
            let mut points = Vec::with_capacity(chain.len() * 2);
            let pa = &placed[a];
            points.push((pa.x + pa.width, pa.y + pa.height / 2.0));
            for &v in &chain[1..chain.len() - 1] {
                let l = items[v].layer;
                let cy = center(&y, v);
                points.push((column_x[l], cy));
                points.push((column_x[l] + column_width[l], cy));
            }
            let pb = &placed[b];
            points.push((pb.x, pb.y + pb.height / 2.0));
            Route { from: a, to: b, points }
        })
        .collect();
    let width = column_x.last().zip(column_width.last()).map_or(2.0 * MARGIN, |(x, w)| x + w + MARGIN);
    let height = items.iter().enumerate().map(|(i, it)| y[i] + it.height).fold(0.0, f64::max) + MARGIN;
    Layout { nodes: placed, edges: routes, width, height: height.max(2.0 * MARGIN), crossings: best_crossings }
}

/// Longest-path layering in topological order (Kahn's algorithm). Nodes left over by a cycle go
/// one layer past their placed parents.
fn assign_layers(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indegree = vec![0usize; n];
    for &(a, b) in edges {
        children[a].push(b);
        parents[b].push(a);
        indegree[b] += 1;
    }
    let mut layer = vec![0usize; n];
    let mut done = vec![false; n];
    let mut ready: std::collections::VecDeque<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    while let Some(i) = ready.pop_front() {
        done[i] = true;
        for &c in &children[i] {
            layer[c] = layer[c].max(layer[i] + 1);
            indegree[c] -= 1;
            if indegree[c] == 0 {
                ready.push_back(c);
            }
        }
    }
    for i in 0..n {
        if !done[i] {
            layer[i] = parents[i].iter().filter(|&&p| done[p]).map(|&p| layer[p] + 1).max().unwrap_or(0);
            done[i] = true;
        }
    }
    layer
}

fn stack_height(items: &[Item], layer: &[usize]) -> f64 {
    layer.iter().map(|&i| items[i].height + V_GAP).sum::<f64>() - if layer.is_empty() { 0.0 } else { V_GAP }
}

/// Crossings between every pair of adjacent layers: segments sorted by their upper end, then the
/// inversions among their lower ends (a Fenwick tree), O(E log E).
fn count_crossings(items: &[Item], order: &[Vec<usize>], position: &[usize]) -> u64 {
    let mut total = 0u64;
    for l in 0..order.len().saturating_sub(1) {
        let mut segments: Vec<(usize, usize)> =
            order[l].iter().flat_map(|&u| items[u].down.iter().map(move |&v| (position[u], position[v]))).collect();
        segments.sort_unstable();
        let size = order[l + 1].len();
        let mut tree = vec![0u64; size + 1];
        for (seen, &(_, lower)) in segments.iter().enumerate() {
            // Count earlier segments whose lower end is strictly to the right of this one's.
            let mut not_greater = 0u64;
            let mut k = lower + 1;
            while k > 0 {
                not_greater += tree[k];
                k &= k - 1;
            }
            total += seen as u64 - not_greater;
            let mut k = lower + 1;
            while k <= size {
                tree[k] += 1;
                k += k & k.wrapping_neg();
            }
        }
    }
    total
}

/// Tops for boxes in a fixed order, each at least its predecessor's top plus its predecessor's
/// size, as close to `desired` as possible (least squares): isotonic regression of
/// `desired[i] − offset[i]` by pool-adjacent-violators, then the offsets added back.
fn place_without_overlap(desired: &[f64], sizes: &[f64]) -> Vec<f64> {
    let mut offsets = Vec::with_capacity(desired.len());
    let mut acc = 0.0;
    for s in sizes {
        offsets.push(acc);
        acc += s;
    }
    // Blocks of (mean, count).
    let mut blocks: Vec<(f64, usize)> = Vec::with_capacity(desired.len());
    for (d, o) in desired.iter().zip(&offsets) {
        blocks.push((d - o, 1));
        while blocks.len() > 1 {
            let (m2, c2) = blocks[blocks.len() - 1];
            let (m1, c1) = blocks[blocks.len() - 2];
            if m1 <= m2 {
                break;
            }
            blocks.pop();
            let merged = ((m1 * c1 as f64 + m2 * c2 as f64) / (c1 + c2) as f64, c1 + c2);
            *blocks.last_mut().expect("two blocks") = merged;
        }
    }
    let mut out = Vec::with_capacity(desired.len());
    for (mean, count) in blocks {
        for _ in 0..count {
            let o = offsets[out.len()];
            out.push(mean + o);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<InputNode> {
        (0..n).map(|i| InputNode { width: 100.0 + (i % 3) as f64 * 20.0, sort_key: format!("{i:04}") }).collect()
    }

    fn assert_invariants(input: &[InputNode], edges: &[(usize, usize)], layout: &Layout) {
        assert_eq!(layout.nodes.len(), input.len(), "every node is placed");
        for &(a, b) in edges {
            assert!(layout.nodes[a].layer < layout.nodes[b].layer, "edge {a}->{b} goes to a higher layer");
            assert!(layout.nodes[a].x + layout.nodes[a].width < layout.nodes[b].x, "edge {a}->{b} points right");
        }
        for (i, p) in layout.nodes.iter().enumerate() {
            assert!(p.x >= 0.0 && p.y >= 0.0 && p.x + p.width <= layout.width && p.y + p.height <= layout.height);
            assert!(p.width >= input[i].width, "a box fits its label");
            for q in &layout.nodes[i + 1..] {
                let apart =
                    p.x + p.width <= q.x || q.x + q.width <= p.x || p.y + p.height <= q.y || q.y + q.height <= p.y;
                assert!(apart, "boxes overlap: {p:?} {q:?}");
            }
        }
        for route in &layout.edges {
            assert!(route.points.windows(2).all(|w| w[0].0 <= w[1].0), "an edge runs left to right");
        }
    }

    #[test]
    fn a_diamond_with_a_long_edge_is_layered_and_routed_around_the_middle() {
        // 0 -> 1 -> 2 -> 3, and 0 -> 3 (spans three layers), 0 -> 4 -> 3.
        let input = nodes(5);
        let edges = [(0, 1), (1, 2), (2, 3), (0, 3), (0, 4), (4, 3), (0, 1)];
        let layout = layout(&input, &edges);
        assert_invariants(&input, &edges, &layout);
        let layers: Vec<usize> = layout.nodes.iter().map(|p| p.layer).collect();
        assert_eq!(layers, [0, 1, 2, 3, 1], "longest path from the root");
        assert_eq!(layout.edges.len(), 6, "the duplicate edge is drawn once");
        let long = layout.edges.iter().find(|r| (r.from, r.to) == (0, 3)).unwrap();
        assert_eq!(long.points.len(), 2 + 2 * 2, "through one virtual slot in each of layers 1 and 2");
        assert_eq!(layout.crossings, 0);
    }

    #[test]
    fn barycenter_sweeps_untangle_a_crossed_bipartite_graph() {
        // Layer 0: 0..4; layer 1: 4..8; node i feeds 4 + (3 - i): fully reversed = 6 crossings in input order.
        let input = nodes(8);
        let edges: Vec<(usize, usize)> = (0..4).map(|i| (i, 4 + (3 - i))).collect();
        let layout = layout(&input, &edges);
        assert_invariants(&input, &edges, &layout);
        assert_eq!(layout.crossings, 0);
        for &(a, b) in &edges {
            assert!((layout.nodes[a].y - layout.nodes[b].y).abs() < 1e-9, "a single edge is drawn straight");
        }
    }

    #[test]
    fn crossings_are_counted_exactly() {
        let items = |down: Vec<Vec<usize>>| -> Vec<Item> {
            let mut v: Vec<Item> =
                down.into_iter().map(|d| Item { real: None, layer: 0, height: 1.0, up: vec![], down: d }).collect();
            for _ in 0..3 {
                v.push(Item { real: None, layer: 1, height: 1.0, up: vec![], down: vec![] });
            }
            v
        };
        // Upper 0,1,2 → lower 3,4,5: 0→5, 1→4, 2→3 cross pairwise: 3 crossings; 0→3 and 0→4 none.
        let it = items(vec![vec![5], vec![4], vec![3]]);
        let order = vec![vec![0, 1, 2], vec![3, 4, 5]];
        let position = vec![0, 1, 2, 0, 1, 2];
        assert_eq!(count_crossings(&it, &order, &position), 3);
        let it = items(vec![vec![3, 4], vec![5], vec![]]);
        assert_eq!(count_crossings(&it, &order, &position), 0);
        // Shared endpoints never cross: 0→4, 1→4.
        let it = items(vec![vec![4], vec![4], vec![3]]);
        assert_eq!(count_crossings(&it, &order, &position), 2);
    }

    #[test]
    fn overlap_removal_keeps_order_and_spacing_with_least_movement() {
        let tops = place_without_overlap(&[10.0, 10.0, 10.0], &[10.0, 10.0, 10.0]);
        assert_eq!(tops, [0.0, 10.0, 20.0], "three boxes wanting one spot share it around their mean");
        let tops = place_without_overlap(&[0.0, 100.0, 50.0], &[10.0, 10.0, 10.0]);
        assert!(tops.windows(2).all(|w| w[1] - w[0] >= 10.0 - 1e-9), "{tops:?}");
        assert_eq!(tops[0], 0.0, "a box already clear stays");
    }

    #[test]
    fn an_empty_graph_and_isolated_nodes_lay_out() {
        let empty = layout(&[], &[]);
        assert!(empty.nodes.is_empty() && empty.width > 0.0 && empty.height > 0.0);
        let input = nodes(3);
        let l = layout(&input, &[]);
        assert_invariants(&input, &[], &l);
        assert!(l.nodes.iter().all(|p| p.layer == 0));
    }
}
