//! A synthetic identity graph of realistic shape, for benchmarks and load tests.
//!
//! `nhigov fixtures generate --nhis N --seed S` writes an inventory document (the format
//! `nhigov import` reads). For N NHIs: N/5 secrets, N/20 systems (the first few are
//! vaults), N/50 people in N/200 teams. Degrees follow a power law: a handful of hub
//! systems and shared secrets take a large share of the edges. About ten edges per NHI:
//! ownership, 1-2 held secrets, about six systems reached, some role assumptions; each
//! secret authenticates to systems and is stored in a vault; systems depend on systems.
//! Some NHIs are stale (unused for 200+ days), some orphaned (their only owner left),
//! some secrets overdue for rotation. The same seed always gives the same document.

use serde_json::{Value, json};

/// A small, fast, seeded generator (PCG-style LCG); enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// In `0..n`, skewed to low indices: index `n * u^3` puts about a third of the
    /// draws on the first 4% of the range, which makes hubs.
    fn skewed(&mut self, n: usize) -> usize {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        ((n as f64) * u * u * u) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Access privileges, weighted towards read.
const PRIVILEGES: [&str; 4] = ["read", "read", "write", "admin"];

/// What a generated document holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub nodes: usize,
    pub edges: usize,
}

/// Environments, drawn uniformly.
const ENVIRONMENTS: [&str; 4] = ["production", "staging", "development", "test"];

/// Generate the document for `nhis` NHIs from `seed`.
pub fn generate(nhis: usize, seed: u64) -> (Value, Shape) {
    let systems = (nhis / 20).max(4);
    let mut g = Gen {
        rng: Rng(seed ^ 0x9e37_79b9_7f4a_7c15),
        seed,
        nhis,
        secrets: (nhis / 5).max(2),
        systems,
        people: (nhis / 50).max(4),
        teams: (nhis / 200).max(2),
        vaults: (systems / 500).clamp(1, 10),
        nodes: Vec::new(),
        edges: Vec::with_capacity(nhis * 11),
    };
    g.nodes.reserve(g.nhis + g.secrets + g.systems + g.people + g.teams);
    // Each kind in turn, in this order: the draws, and so the document, follow from the seed.
    g.teams_and_people();
    g.systems();
    g.secrets();
    g.nhis();
    let shape = Shape { nodes: g.nodes.len(), edges: g.edges.len() };
    (json!({ "nodes": g.nodes, "edges": g.edges }), shape)
}

/// A document being generated: the draws, the sizes, and what is written so far.
struct Gen {
    rng: Rng,
    seed: u64,
    nhis: usize,
    secrets: usize,
    systems: usize,
    people: usize,
    teams: usize,
    vaults: usize,
    nodes: Vec<Value>,
    edges: Vec<Value>,
}

impl Gen {
    fn teams_and_people(&mut self) {
        for t in 0..self.teams {
            self.nodes.push(json!({ "type": "team", "ref": format!("t{t}"), "name": format!("team-{t}") }));
        }
        for p in 0..self.people {
            // About one person in twenty has left.
            let active = !self.rng.chance(5);
            self.nodes.push(json!({ "type": "person", "ref": format!("p{p}"), "name": format!("person {p}"),
                "email": format!("person{p}@synthetic.example"), "active": active }));
            let team = self.rng.below(self.teams);
            self.edges.push(json!({ "type": "member_of", "from": format!("p{p}"), "to": format!("t{team}") }));
        }
    }

    /// Systems (the first few vaults, the first 2% tier0), each owned by a team and
    /// depending on another, skewed to hubs.
    fn systems(&mut self) {
        let (systems, vaults) = (self.systems, self.vaults);
        for y in 0..systems {
            let kind = if y < vaults {
                "vault"
            } else {
                ["application", "database", "repository", "cloud_account", "saas", "cluster", "pipeline"]
                    [self.rng.below(7)]
            };
            let criticality =
                if y < systems / 50 + vaults { "tier0" } else { ["tier1", "tier2", "tier3"][self.rng.below(3)] };
            let env = ENVIRONMENTS[self.rng.below(4)];
            self.nodes
                .push(json!({ "type": "system", "ref": format!("y{y}"), "kind": kind, "name": format!("system-{y}"),
                "environment": env, "criticality": criticality }));
            let team = self.rng.below(self.teams);
            self.edges.push(json!({ "type": "owns", "from": format!("t{team}"), "to": format!("y{y}") }));
            if y > 0 {
                let dep = self.rng.skewed(systems);
                if dep != y {
                    self.edges.push(json!({ "type": "depends_on", "from": format!("y{y}"), "to": format!("y{dep}") }));
                }
            }
        }
    }

    /// Secrets (15% overdue for rotation), each authenticating to one or two systems
    /// and stored in a vault.
    fn secrets(&mut self) {
        for s in 0..self.secrets {
            let secret_kind = ["api_key", "password", "token", "certificate", "ssh_key", "oauth_secret", "private_key"]
                [self.rng.below(7)];
            let mut secret = json!({ "type": "secret", "ref": format!("s{s}"), "kind": secret_kind,
                "name": format!("secret-{s}"), "fingerprint": format!("synthetic-{}-{s:08}", self.seed),
                "rotation_period_days": 90 });
            secret["issued_at"] = json!(if self.rng.chance(15) { "now-400d" } else { "now-30d" });
            self.nodes.push(secret);
            let mut targets = vec![self.rng.skewed(self.systems)];
            if self.rng.chance(50) {
                targets.push(self.rng.skewed(self.systems));
            }
            targets.sort_unstable();
            targets.dedup();
            for y in targets {
                self.edges.push(json!({ "type": "authenticates_to", "from": format!("s{s}"), "to": format!("y{y}") }));
            }
            let vault = self.rng.below(self.vaults);
            self.edges.push(json!({ "type": "stored_in", "from": format!("s{s}"), "to": format!("y{vault}") }));
        }
    }

    /// NHIs (10% stale), each owned by a team or a person, holding one or two secrets,
    /// reaching three to nine systems, and now and then assuming another NHI.
    fn nhis(&mut self) {
        const KINDS: [&str; 8] = [
            "service_account",
            "api_key",
            "oauth_client",
            "token",
            "certificate",
            "ssh_key",
            "ai_agent",
            "workload_identity",
        ];
        for n in 0..self.nhis {
            let stale = self.rng.chance(10);
            let (kind, env) = (KINDS[self.rng.below(8)], ENVIRONMENTS[self.rng.below(4)]);
            let last_used = if stale { "now-200d" } else { "now-1d" };
            self.nodes.push(json!({ "type": "nhi", "ref": format!("n{n}"), "kind": kind, "name": format!("nhi-{n}"),
                "environment": env, "provider": "synthetic", "external_id": format!("ext-{}-{n}", self.seed),
                "last_used_at": last_used }));
            // Owned by a team, or by one person (who may have left: orphaned).
            let owner = if self.rng.chance(70) {
                format!("t{}", self.rng.below(self.teams))
            } else {
                format!("p{}", self.rng.below(self.people))
            };
            self.edges.push(json!({ "type": "owns", "from": owner, "to": format!("n{n}") }));
            let mut held = vec![self.rng.skewed(self.secrets)];
            if self.rng.chance(50) {
                held.push(self.rng.below(self.secrets));
            }
            held.sort_unstable();
            held.dedup();
            for s in held {
                self.edges.push(json!({ "type": "holds", "from": format!("n{n}"), "to": format!("s{s}") }));
            }
            let reach = 3 + self.rng.below(7);
            let mut reach: Vec<usize> = (0..reach).map(|_| self.rng.skewed(self.systems)).collect();
            reach.sort_unstable();
            reach.dedup();
            for y in reach {
                let privilege = PRIVILEGES[self.rng.below(4)];
                self.edges.push(
                    json!({ "type": "can_access", "from": format!("n{n}"), "to": format!("y{y}"), "privilege": privilege }),
                );
            }
            if n > 0 && self.rng.chance(5) {
                let other = self.rng.below(n);
                self.edges.push(json!({ "type": "assumes", "from": format!("n{n}"), "to": format!("n{other}"), "mechanism": "role_assumption" }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graph_model::inventory::Inventory;

    #[test]
    fn the_same_seed_gives_the_same_graph_and_another_seed_another() {
        assert_eq!(generate(300, 1).0, generate(300, 1).0);
        assert_ne!(generate(300, 1).0, generate(300, 2).0);
    }

    #[test]
    fn a_generated_graph_is_a_valid_inventory_of_the_promised_shape() {
        let (doc, shape) = generate(2_000, 42);
        let inv = Inventory::parse(&doc, chrono::Utc::now()).expect("a valid document");
        assert_eq!((inv.nodes.len(), inv.edges.len()), (shape.nodes, shape.edges));
        let per_nhi = shape.edges as f64 / 2_000.0;
        assert!((8.0..=12.0).contains(&per_nhi), "about ten edges per NHI, got {per_nhi:.1}");
        // Hubs: the busiest system takes far more than its share of can_access edges.
        let mut degree = std::collections::HashMap::new();
        for e in doc["edges"].as_array().unwrap() {
            if e["type"] == "can_access" {
                *degree.entry(e["to"].as_str().unwrap().to_owned()).or_insert(0usize) += 1;
            }
        }
        let max = degree.values().max().copied().unwrap_or(0);
        let mean = degree.values().sum::<usize>() as f64 / degree.len() as f64;
        assert!(max as f64 > 10.0 * mean, "a hub: max {max}, mean {mean:.1}");
    }
}
