//! The in-process adjacency index of the identity graph and its traversals.
//!
//! SurrealDB is the system of record, but its recursive traversals cost tens of
//! microseconds per node reached, and investigators ask exactly the questions that reach
//! the most nodes ("who can reach the production vault?"). The index keeps every edge of
//! the five traversed kinds, closed ones included (so `asOf` works), as adjacency lists
//! over interned node numbers, and answers with a breadth-first search: shortest hop
//! distance, one witness path, the highest privilege on it. It also holds ownership and
//! membership ([`HELD`]), which no walk follows, so that a page of identities with their
//! owners reads no edge record. It is pure: the store fills it and keeps it in step;
//! nothing here touches the database.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Utc};

use super::edges::{Edge, EdgeId, EdgeKind, governed};
use super::ids::{NodeId, Table};
use super::values::{Criticality, Environment, NhiKind, Privilege};

/// The edge kinds a blast radius follows: identities to their secrets, secrets and
/// identities to systems, identities to the identities they assume, systems to the
/// systems they depend on.
pub const TRAVERSED: [EdgeKind; 5] =
    [EdgeKind::Holds, EdgeKind::AuthenticatesTo, EdgeKind::CanAccess, EdgeKind::Assumes, EdgeKind::DependsOn];

/// Every edge kind the index holds: the traversed ones, then ownership and membership,
/// kept beside them for relation fields (who owns a page of identities) and never walked.
pub const HELD: [EdgeKind; 7] = [
    EdgeKind::Holds,
    EdgeKind::AuthenticatesTo,
    EdgeKind::CanAccess,
    EdgeKind::Assumes,
    EdgeKind::DependsOn,
    EdgeKind::Owns,
    EdgeKind::MemberOf,
];

/// Which way to walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// What the origin can reach.
    Forward,
    /// Who can reach the origin.
    Reverse,
}

/// What the index knows of a node, for totals and filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeMeta {
    pub table: Table,
    pub environment: Option<Environment>,
    pub criticality: Option<Criticality>,
    /// An NHI's kind (a control's scope reads it for the secrets the NHI holds).
    pub nhi_kind: Option<NhiKind>,
    /// An NHI that is disabled, revoked or decommissioned: it acts for no one, so a
    /// walk shows it as an end point and does not pass through it.
    pub inactive: bool,
}

#[derive(Debug, Clone)]
struct IndexedEdge {
    id: EdgeId,
    from: u32,
    to: u32,
    privilege: Option<Privilege>,
    valid_from: DateTime<Utc>,
    valid_to: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    governed: Option<bool>,
    /// Of a traversed kind: walks follow it.
    walked: bool,
}

impl IndexedEdge {
    fn in_force_at(&self, t: DateTime<Utc>) -> bool {
        self.valid_from <= t && self.valid_to.is_none_or(|v| v > t) && self.expires_at.is_none_or(|e| e > t)
    }
}

/// An edge as the index holds it, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct EdgeView<'a> {
    pub id: &'a EdgeId,
    pub from: &'a NodeId,
    pub to: &'a NodeId,
    pub privilege: Option<Privilege>,
    pub governed: Option<bool>,
    pub valid_from: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// What the index knows of an edge, owned: enough for a relation field (a grant's
/// privilege, expiry, start and whether a decision stands behind it) without reading
/// the edge's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeFact {
    pub id: EdgeId,
    pub from: NodeId,
    pub to: NodeId,
    pub privilege: Option<Privilege>,
    pub valid_from: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// `None` for kinds that carry no governed fact.
    pub governed: Option<bool>,
}

impl From<EdgeView<'_>> for EdgeFact {
    fn from(v: EdgeView<'_>) -> EdgeFact {
        EdgeFact {
            id: v.id.clone(),
            from: v.from.clone(),
            to: v.to.clone(),
            privilege: v.privilege,
            valid_from: v.valid_from,
            expires_at: v.expires_at,
            governed: v.governed,
        }
    }
}

impl From<&Edge> for EdgeFact {
    fn from(e: &Edge) -> EdgeFact {
        EdgeFact {
            id: e.id.clone(),
            from: e.from.clone(),
            to: e.to.clone(),
            privilege: e.privilege,
            valid_from: e.valid_from,
            expires_at: e.expires_at,
            governed: e.governed(),
        }
    }
}

/// What the index keeps of an edge: its ends, what it grants, when it is in force, and
/// whether a decision stands behind it. The store reads just this much of every edge
/// when it loads the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldEdge {
    pub id: EdgeId,
    pub from: NodeId,
    pub to: NodeId,
    pub privilege: Option<Privilege>,
    pub valid_from: DateTime<Utc>,
    pub valid_to: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// A decision is recorded as the edge's `granted_by`.
    pub granted: bool,
}

impl From<&Edge> for HeldEdge {
    fn from(e: &Edge) -> HeldEdge {
        HeldEdge {
            id: e.id.clone(),
            from: e.from.clone(),
            to: e.to.clone(),
            privilege: e.privilege,
            valid_from: e.valid_from,
            valid_to: e.valid_to,
            expires_at: e.expires_at,
            granted: e.granted_by.is_some(),
        }
    }
}

/// One edge of a witness path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub edge: EdgeId,
    pub from: NodeId,
    pub to: NodeId,
    pub privilege: Option<Privilege>,
    /// Whether a decision stands behind the edge (`None` for kinds that carry no
    /// governed fact): a path through access nobody approved says so.
    pub governed: Option<bool>,
    /// When the edge lapses on its own (time-boxed access), if it does.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A node reached, how far, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    pub node: NodeId,
    pub meta: NodeMeta,
    pub hops: u32,
    /// A shortest path from the origin (forward) or to the target (reverse), in walking
    /// order from the origin.
    pub path: Vec<Step>,
    /// The highest privilege on the witness path.
    pub max_privilege: Option<Privilege>,
}

/// The result of a bounded traversal.
#[derive(Debug, Clone, Default)]
pub struct Traversal {
    /// The nearest nodes reached, at most the node cap of them.
    pub reached: Vec<Reached>,
    /// More nodes are within the hop cap than the node cap lets `reached` hold.
    pub truncated: bool,
    /// Counts over every node within the hop cap, whatever the node cap.
    pub totals: ReachTotals,
}

/// How many nodes a traversal reaches, by kind, environment, criticality and the
/// highest privilege on their witness path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReachTotals {
    pub nodes: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    pub by_environment: BTreeMap<&'static str, u64>,
    pub by_criticality: BTreeMap<&'static str, u64>,
    pub by_max_privilege: BTreeMap<&'static str, u64>,
}

impl ReachTotals {
    fn add(&mut self, meta: &NodeMeta, highest: Option<Privilege>) {
        self.nodes += 1;
        *self.by_kind.entry(meta.table.as_str()).or_default() += 1;
        if let Some(e) = meta.environment {
            *self.by_environment.entry(e.as_str()).or_default() += 1;
        }
        if let Some(c) = meta.criticality {
            *self.by_criticality.entry(c.as_str()).or_default() += 1;
        }
        if let Some(p) = highest {
            *self.by_max_privilege.entry(p.as_str()).or_default() += 1;
        }
    }
}

/// The adjacency index.
#[derive(Debug, Default, Clone)]
pub struct GraphIndex {
    ids: Vec<NodeId>,
    number: HashMap<NodeId, u32>,
    meta: Vec<Option<NodeMeta>>,
    edges: Vec<IndexedEdge>,
    edge_number: HashMap<EdgeId, u32>,
    /// The walked edges leaving and arriving at each node.
    out: Vec<Vec<u32>>,
    inn: Vec<Vec<u32>>,
    /// The held edges no walk follows (ownership, membership), leaving and arriving.
    side_out: Vec<Vec<u32>>,
    side_inn: Vec<Vec<u32>>,
}

impl GraphIndex {
    pub fn new() -> GraphIndex {
        GraphIndex::default()
    }

    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    pub fn node_count(&self) -> usize {
        self.ids.len()
    }

    fn intern(&mut self, id: &NodeId) -> u32 {
        if let Some(n) = self.number.get(id) {
            return *n;
        }
        let n = self.ids.len() as u32;
        self.ids.push(id.clone());
        self.number.insert(id.clone(), n);
        self.meta.push(None);
        self.out.push(Vec::new());
        self.inn.push(Vec::new());
        self.side_out.push(Vec::new());
        self.side_inn.push(Vec::new());
        n
    }

    /// What is known of `id`, if the index holds it.
    pub fn meta(&self, id: &NodeId) -> Option<NodeMeta> {
        self.number.get(id).and_then(|n| self.meta[*n as usize])
    }

    /// Every walked edge in force at `t`, for scans over the whole graph (compliance
    /// checks).
    pub fn edges_in_force(&self, t: DateTime<Utc>) -> impl Iterator<Item = EdgeView<'_>> {
        self.edges.iter().filter(move |e| e.walked && e.in_force_at(t)).map(|e| self.view(e))
    }

    /// The walked edges in force at `t` leaving `id` (forward) or arriving at it (reverse).
    pub fn edges_at(&self, id: &NodeId, direction: Direction, t: DateTime<Utc>) -> impl Iterator<Item = EdgeView<'_>> {
        self.adjacent(id, direction, false, t)
    }

    /// The edges of `kind` (one of [`HELD`]) in force at `t` leaving `id` (forward) or
    /// arriving at it (reverse).
    pub fn edges_of_kind_at(
        &self,
        id: &NodeId,
        kind: EdgeKind,
        direction: Direction,
        t: DateTime<Utc>,
    ) -> impl Iterator<Item = EdgeView<'_>> {
        self.adjacent(id, direction, !TRAVERSED.contains(&kind), t).filter(move |e| e.id.kind == kind)
    }

    fn adjacent(
        &self,
        id: &NodeId,
        direction: Direction,
        side: bool,
        t: DateTime<Utc>,
    ) -> impl Iterator<Item = EdgeView<'_>> {
        let list = self.number.get(id).map(|&n| match (direction, side) {
            (Direction::Forward, false) => &self.out[n as usize],
            (Direction::Reverse, false) => &self.inn[n as usize],
            (Direction::Forward, true) => &self.side_out[n as usize],
            (Direction::Reverse, true) => &self.side_inn[n as usize],
        });
        list.into_iter()
            .flatten()
            .map(|&e| &self.edges[e as usize])
            .filter(move |e| e.in_force_at(t))
            .map(|e| self.view(e))
    }

    fn view<'a>(&'a self, e: &'a IndexedEdge) -> EdgeView<'a> {
        EdgeView {
            id: &e.id,
            from: &self.ids[e.from as usize],
            to: &self.ids[e.to as usize],
            privilege: e.privilege,
            governed: e.governed,
            valid_from: e.valid_from,
            expires_at: e.expires_at,
        }
    }

    /// Record or refresh what is known of a node.
    pub fn set_meta(&mut self, id: &NodeId, meta: NodeMeta) {
        let n = self.intern(id) as usize;
        self.meta[n] = Some(meta);
    }

    /// Add an edge, or refresh one already known (it was closed, say). Edges of kinds
    /// the index does not hold ([`HELD`]) are ignored.
    pub fn upsert_edge(&mut self, e: &Edge) {
        self.upsert(HeldEdge::from(e));
    }

    /// [`GraphIndex::upsert_edge`] from what the index keeps of an edge.
    pub fn upsert(&mut self, e: HeldEdge) {
        if !HELD.contains(&e.id.kind) {
            return;
        }
        let walked = TRAVERSED.contains(&e.id.kind);
        let (from, to) = (self.intern(&e.from), self.intern(&e.to));
        let governed = governed(e.id.kind, e.granted);
        let number = self.edge_number.get(&e.id).copied();
        let edge = IndexedEdge {
            id: e.id,
            from,
            to,
            privilege: e.privilege,
            valid_from: e.valid_from,
            valid_to: e.valid_to,
            expires_at: e.expires_at,
            governed,
            walked,
        };
        match number {
            Some(n) => self.edges[n as usize] = edge,
            None => {
                let n = self.edges.len() as u32;
                self.edge_number.insert(edge.id.clone(), n);
                self.edges.push(edge);
                let (out, inn) =
                    if walked { (&mut self.out, &mut self.inn) } else { (&mut self.side_out, &mut self.side_inn) };
                out[from as usize].push(n);
                inn[to as usize].push(n);
            }
        }
    }

    fn meta_of(&self, n: u32) -> NodeMeta {
        self.meta[n as usize].unwrap_or(NodeMeta {
            table: self.ids[n as usize].table(),
            environment: None,
            criticality: None,
            nhi_kind: None,
            inactive: false,
        })
    }

    /// Walk from `origin` up to `max_hops` over the edges in force at `at`: every node
    /// within reach is counted in the totals, and the first `node_cap` of them, nearest
    /// first, are returned with their witness paths. `None` when the origin is not in
    /// the graph.
    ///
    /// The walk keeps its state in arrays indexed by node number and builds a path only
    /// for the nodes it returns, so counting the whole reach of a hub costs a pass over
    /// the edges it touches, not ten thousand cloned paths.
    pub fn traverse(
        &self,
        origin: &NodeId,
        direction: Direction,
        max_hops: u32,
        node_cap: usize,
        at: DateTime<Utc>,
    ) -> Option<Traversal> {
        let start = *self.number.get(origin)?;
        let walk = self.walk(start, direction, max_hops, at);
        let mut totals = ReachTotals::default();
        for &n in &walk.order {
            totals.add(&self.meta_of(n), walk.highest[n as usize]);
        }
        let truncated = walk.order.len() > node_cap;
        let reached = walk
            .order
            .iter()
            .take(node_cap)
            .map(|&n| Reached {
                node: self.ids[n as usize].clone(),
                meta: self.meta_of(n),
                hops: walk.hops[n as usize],
                path: self.path_to(&walk, start, n, direction),
                max_privilege: walk.highest[n as usize],
            })
            .collect();
        Some(Traversal { reached, truncated, totals })
    }

    /// Breadth first from node `start`: every node reached, in the order reached, with
    /// its hops, the edge it was first reached by, and the highest privilege on that path.
    fn walk(&self, start: u32, direction: Direction, max_hops: u32, at: DateTime<Utc>) -> Walk {
        let mut w = Walk {
            hops: vec![UNSEEN; self.ids.len()],
            parent: vec![UNSEEN; self.ids.len()],
            highest: vec![None; self.ids.len()],
            order: Vec::new(),
        };
        w.hops[start as usize] = 0;
        let mut queue = VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            let h = w.hops[n as usize];
            if h == max_hops {
                continue;
            }
            // A disabled or revoked identity is reached, but reaches nothing further.
            if n != start && self.meta_of(n).inactive {
                continue;
            }
            let adjacent = match direction {
                Direction::Forward => &self.out[n as usize],
                Direction::Reverse => &self.inn[n as usize],
            };
            for &e in adjacent {
                let edge = &self.edges[e as usize];
                if !edge.in_force_at(at) {
                    continue;
                }
                let next = match direction {
                    Direction::Forward => edge.to,
                    Direction::Reverse => edge.from,
                };
                if w.hops[next as usize] != UNSEEN {
                    continue;
                }
                w.hops[next as usize] = h + 1;
                w.parent[next as usize] = e;
                w.highest[next as usize] = w.highest[n as usize].max(edge.privilege);
                w.order.push(next);
                queue.push_back(next);
            }
        }
        w
    }

    /// The witness path of node `n`: from the origin for a forward walk, towards it for
    /// a reverse one.
    fn path_to(&self, walk: &Walk, start: u32, n: u32, direction: Direction) -> Vec<Step> {
        let mut path = Vec::new();
        let mut at_node = n;
        while at_node != start {
            let e = &self.edges[walk.parent[at_node as usize] as usize];
            path.push(self.step(e));
            at_node = match direction {
                Direction::Forward => e.from,
                Direction::Reverse => e.to,
            };
        }
        // Forward paths were collected target-first; reverse ones already run from the
        // reaching node towards the origin.
        if direction == Direction::Forward {
            path.reverse();
        }
        path
    }

    fn step(&self, e: &IndexedEdge) -> Step {
        Step {
            edge: e.id.clone(),
            from: self.ids[e.from as usize].clone(),
            to: self.ids[e.to as usize].clone(),
            privilege: e.privilege,
            governed: e.governed,
            expires_at: e.expires_at,
        }
    }

    /// A shortest path from `from` to `to` over edges in force at `at`, within
    /// `max_hops`; `None` when there is none. A node's path to itself is empty.
    pub fn shortest_path(&self, from: &NodeId, to: &NodeId, max_hops: u32, at: DateTime<Utc>) -> Option<Vec<Step>> {
        if from == to {
            return self.number.contains_key(from).then(Vec::new);
        }
        let t = self.traverse(from, Direction::Forward, max_hops, usize::MAX, at)?;
        t.reached.into_iter().find(|r| &r.node == to).map(|r| r.path)
    }
}

/// A node number no walk has reached.
const UNSEEN: u32 = u32::MAX;

/// The state of one walk, in arrays indexed by node number.
struct Walk {
    hops: Vec<u32>,
    /// The edge by which each node was first reached.
    parent: Vec<u32>,
    /// The highest privilege on each node's witness path.
    highest: Vec<Option<Privilege>>,
    /// The nodes reached, nearest first.
    order: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use chrono::Duration;

    use super::*;

    /// A small deterministic generator, so failures reproduce.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    const TABLES: [Table; 3] = [Table::Nhi, Table::Secret, Table::System];

    /// A random graph: hubs (low-numbered nodes get most edges), cycles, closed and
    /// expired edges, and edges opened after `t0`.
    fn random_graph(seed: u64, nodes: usize, edges: usize, t0: DateTime<Utc>) -> (Vec<NodeId>, Vec<Edge>) {
        let mut rng = Lcg(seed);
        let ids: Vec<NodeId> = (0..nodes).map(|i| NodeId::generate(TABLES[i % 3])).collect();
        let mut out = Vec::new();
        for _ in 0..edges {
            let hub = |r: &mut Lcg| if r.next(3) == 0 { r.next(3) as usize } else { r.next(nodes as u64) as usize };
            let (a, b) = (hub(&mut rng), hub(&mut rng));
            let kind = TRAVERSED[rng.next(5) as usize];
            let valid_from = t0 - Duration::hours(10) + Duration::hours(rng.next(20) as i64);
            let valid_to = (rng.next(4) == 0).then(|| valid_from + Duration::hours(1 + rng.next(10) as i64));
            let expires_at = (rng.next(6) == 0).then(|| t0 - Duration::hours(5) + Duration::hours(rng.next(10) as i64));
            out.push(Edge {
                id: EdgeId::generate(kind),
                from: ids[a].clone(),
                to: ids[b].clone(),
                privilege: [None, Some(Privilege::Read), Some(Privilege::Write), Some(Privilege::Admin)]
                    [rng.next(4) as usize],
                mechanism: None,
                expires_at,
                valid_from,
                valid_to,
                created_at: valid_from,
                source: None,
                granted_by: None,
            });
        }
        (ids, out)
    }

    fn in_force(e: &Edge, t: DateTime<Utc>) -> bool {
        e.valid_from <= t && e.valid_to.is_none_or(|v| v > t) && e.expires_at.is_none_or(|x| x > t)
    }

    /// Brute force: every walk of up to `max_hops` edges in force, by depth-first
    /// enumeration; the shortest length at which each node first appears.
    fn brute(
        edges: &[Edge],
        origin: &NodeId,
        dir: Direction,
        max_hops: u32,
        t: DateTime<Utc>,
    ) -> BTreeMap<NodeId, u32> {
        let live: Vec<&Edge> = edges.iter().filter(|e| in_force(e, t)).collect();
        let mut best: BTreeMap<NodeId, u32> = BTreeMap::new();
        fn walk(
            live: &[&Edge],
            at: &NodeId,
            depth: u32,
            max: u32,
            dir: Direction,
            origin: &NodeId,
            best: &mut BTreeMap<NodeId, u32>,
        ) {
            if depth == max {
                return;
            }
            for e in live {
                let (here, there) = match dir {
                    Direction::Forward => (&e.from, &e.to),
                    Direction::Reverse => (&e.to, &e.from),
                };
                if here != at || there == origin {
                    continue;
                }
                let d = depth + 1;
                if best.get(there).is_some_and(|b| *b <= d) {
                    continue;
                }
                best.insert(there.clone(), d);
                walk(live, there, d, max, dir, origin, best);
            }
        }
        walk(&live, origin, 0, max_hops, dir, origin, &mut best);
        best
    }

    /// An edge opened an hour before `t0`, in force since.
    fn open_edge(kind: EdgeKind, from: &NodeId, to: &NodeId, t0: DateTime<Utc>) -> Edge {
        Edge {
            id: EdgeId::generate(kind),
            from: from.clone(),
            to: to.clone(),
            privilege: None,
            mechanism: None,
            expires_at: None,
            valid_from: t0 - Duration::hours(1),
            valid_to: None,
            created_at: t0,
            source: None,
            granted_by: None,
        }
    }

    fn index(edges: &[Edge]) -> GraphIndex {
        let mut g = GraphIndex::new();
        for e in edges {
            g.upsert_edge(e);
        }
        g
    }

    fn check_path(edges: &[Edge], r: &Reached, origin: &NodeId, dir: Direction, t: DateTime<Utc>) {
        assert_eq!(r.path.len() as u32, r.hops, "the witness path is as long as the distance");
        let by_id: HashMap<&EdgeId, &Edge> = edges.iter().map(|e| (&e.id, e)).collect();
        for s in &r.path {
            assert!(in_force(by_id[&s.edge], t), "the witness path uses only edges in force");
        }
        let (first, last) = (r.path.first().unwrap(), r.path.last().unwrap());
        match dir {
            Direction::Forward => assert_eq!((&first.from, &last.to), (origin, &r.node)),
            Direction::Reverse => assert_eq!((&first.from, &last.to), (&r.node, origin)),
        }
        for w in r.path.windows(2) {
            assert_eq!(w[0].to, w[1].from, "the witness path is connected");
        }
        assert_eq!(r.max_privilege, r.path.iter().filter_map(|s| s.privilege).max());
    }

    #[test]
    fn traversals_match_brute_force_on_random_graphs() {
        let t0 = Utc::now();
        for seed in 0..60 {
            let (ids, edges) = random_graph(seed, 12 + (seed as usize % 20), 10 + seed as usize * 2, t0);
            let g = index(&edges);
            for at in [t0, t0 - Duration::hours(6), t0 + Duration::hours(6)] {
                for origin in ids.iter().take(6) {
                    for dir in [Direction::Forward, Direction::Reverse] {
                        for max_hops in 1..=4 {
                            let expected = brute(&edges, origin, dir, max_hops, at);
                            let got = g.traverse(origin, dir, max_hops, usize::MAX, at);
                            let got: Vec<Reached> = got.map(|t| t.reached).unwrap_or_default();
                            let got_map: BTreeMap<NodeId, u32> = got.iter().map(|r| (r.node.clone(), r.hops)).collect();
                            assert_eq!(got_map, expected, "seed {seed} hops {max_hops} {dir:?}");
                            for r in &got {
                                check_path(&edges, r, origin, dir, at);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn shortest_paths_match_brute_force() {
        let t0 = Utc::now();
        for seed in 0..40 {
            let (ids, edges) = random_graph(seed, 15, 40, t0);
            let g = index(&edges);
            for a in ids.iter().take(5) {
                let dist = brute(&edges, a, Direction::Forward, 5, t0);
                for b in &ids {
                    if a == b {
                        continue;
                    }
                    let p = g.shortest_path(a, b, 5, t0);
                    assert_eq!(p.as_ref().map(|p| p.len() as u32), dist.get(b).copied(), "seed {seed}");
                }
            }
        }
    }

    #[test]
    fn the_node_cap_truncates_and_says_so() {
        let t0 = Utc::now();
        let hub = NodeId::generate(Table::System);
        let edges: Vec<Edge> = (0..50)
            .map(|_| Edge {
                privilege: Some(Privilege::Read),
                ..open_edge(EdgeKind::CanAccess, &NodeId::generate(Table::Nhi), &hub, t0)
            })
            .collect();
        let g = index(&edges);
        let t = g.traverse(&hub, Direction::Reverse, 3, 10, t0).unwrap();
        assert_eq!(t.reached.len(), 10);
        assert!(t.truncated);
        assert_eq!(t.totals.nodes, 50, "the cap bounds the list, not the count");
        assert_eq!(t.totals.by_kind.get("nhi"), Some(&50));
        assert_eq!(t.totals.by_max_privilege.get("read"), Some(&50));
        let t = g.traverse(&hub, Direction::Reverse, 3, 50, t0).unwrap();
        assert_eq!(t.reached.len(), 50);
        assert!(!t.truncated);
        let distinct: HashSet<&NodeId> = t.reached.iter().map(|r| &r.node).collect();
        assert_eq!(distinct.len(), 50);
    }

    #[test]
    fn a_closed_edge_is_history_and_asof_sees_it() {
        let t0 = Utc::now();
        let (a, b) = (NodeId::generate(Table::Nhi), NodeId::generate(Table::System));
        let mut e = Edge {
            id: EdgeId::generate(EdgeKind::CanAccess),
            from: a.clone(),
            to: b.clone(),
            privilege: Some(Privilege::Admin),
            mechanism: None,
            expires_at: None,
            valid_from: t0 - Duration::hours(2),
            valid_to: None,
            created_at: t0,
            source: None,
            granted_by: None,
        };
        let mut g = index(std::slice::from_ref(&e));
        assert!(g.shortest_path(&a, &b, 3, t0).is_some());
        e.valid_to = Some(t0 - Duration::hours(1));
        g.upsert_edge(&e);
        assert_eq!(g.edge_count(), 1, "an update replaces, it does not add");
        assert!(g.shortest_path(&a, &b, 3, t0).is_none(), "closed now");
        assert!(g.shortest_path(&a, &b, 3, t0 - Duration::minutes(90)).is_some(), "open then");
    }

    #[test]
    fn ownership_is_held_for_relation_fields_and_never_walked() {
        let t0 = Utc::now();
        let (person, nhi, secret) =
            (NodeId::generate(Table::Person), NodeId::generate(Table::Nhi), NodeId::generate(Table::Secret));
        let edge = |kind, from: &NodeId, to: &NodeId| open_edge(kind, from, to, t0);
        let owns = edge(EdgeKind::Owns, &person, &nhi);
        let g = index(&[owns.clone(), edge(EdgeKind::Owns, &person, &secret), edge(EdgeKind::Holds, &nhi, &secret)]);
        let owners: Vec<&EdgeId> =
            g.edges_of_kind_at(&nhi, EdgeKind::Owns, Direction::Reverse, t0).map(|e| e.id).collect();
        assert_eq!(owners, vec![&owns.id]);
        assert_eq!(g.edges_of_kind_at(&nhi, EdgeKind::Holds, Direction::Reverse, t0).count(), 0);
        assert_eq!(g.edges_at(&secret, Direction::Reverse, t0).count(), 1, "the holds edge, not the owns one");
        assert_eq!(g.edges_in_force(t0).count(), 1, "scans see the walked edges only");
        let from_person = g.traverse(&person, Direction::Forward, 3, 100, t0).unwrap();
        assert_eq!(from_person.totals.nodes, 0, "owning is not reaching");
        let to_secret = g.traverse(&secret, Direction::Reverse, 3, 100, t0).unwrap();
        assert_eq!(to_secret.reached.iter().map(|r| &r.node).collect::<Vec<_>>(), vec![&nhi]);
    }
}
