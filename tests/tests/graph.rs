//! Investigating the graph through the API: blast radius, who can reach, path, as of a
//! time, checked against a brute-force walk of the same edges.

use std::collections::{BTreeMap, HashMap};

use nhigov_tests::{TestServer, code};
use serde_json::{Value, json};

const BLAST: &str = "query($f: ID!, $h: Int!, $at: DateTime) { blastRadius(from: $f, maxHops: $h, asOf: $at) {
    truncated totals { nodes byKind { key count } }
    reached(first: 1000) { id hops maxPrivilege path { edge kind from to privilege } } } }";

#[tokio::test]
async fn blast_radius_who_can_reach_and_path_on_a_small_world() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let t = s.as_("ines");
    let d = s.ok(&t, BLAST, json!({ "f": w.id("bot"), "h": 3 })).await;
    let reached: HashMap<&str, u64> = d["blastRadius"]["reached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["hops"].as_u64().unwrap()))
        .collect();
    assert_eq!(reached, HashMap::from([(w.id("key"), 1), (w.id("db"), 1)]));
    assert_eq!(d["blastRadius"]["totals"]["nodes"], 2);
    let d = s
        .ok(
            &t,
            "query($t: ID!) { whoCanReach(target: $t) { reached { id hops maxPrivilege node { ... on Nhi { name } } } } }",
            json!({ "t": w.id("db") }),
        )
        .await;
    let who: Vec<&str> =
        d["whoCanReach"]["reached"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(who.contains(&w.id("bot")) && who.contains(&w.id("key")), "{who:?}");
    let d = s
        .ok(
            &t,
            "query($a: ID!, $b: ID!) { path(from: $a, to: $b) { kind from to } }",
            json!({ "a": w.id("bot"), "b": w.id("db") }),
        )
        .await;
    assert_eq!(d["path"], json!([{ "kind": "CAN_ACCESS", "from": w.id("bot"), "to": w.id("db") }]));
    let d = s
        .ok(
            &t,
            "query($a: ID!, $b: ID!) { path(from: $a, to: $b) { kind } }",
            json!({ "a": w.id("db"), "b": w.id("bot") }),
        )
        .await;
    assert_eq!(d["path"], Value::Null, "no path against the edges");
    // Over the hop cap: refused, not slow. From a system: refused.
    let (_, body) = s.gql(&t, BLAST, json!({ "f": w.id("bot"), "h": 7 })).await;
    assert_eq!((code(&body), body["errors"][0]["extensions"]["field"].as_str()), ("BAD_USER_INPUT", Some("maxHops")));
    let (_, body) = s.gql(&t, BLAST, json!({ "f": w.id("db"), "h": 2 })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn an_approved_grant_widens_the_blast_radius_and_as_of_shows_before() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let before = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let d = s
        .ok(
            &s.as_("priya"),
            "mutation($i: RequestInput!) { createRequest(input: $i) { id } }",
            json!({ "i": { "kind": "GRANT_ACCESS", "subjectId": w.id("bot"), "targetId": w.id("vault"), "privilege": "ADMIN", "justification": "j" } }),
        )
        .await;
    let r = d["createRequest"]["id"].clone();
    for who in ["jules", "kim"] {
        s.ok(
            &s.as_(who),
            "mutation($r: ID!) { decideRequest(id: $r, outcome: APPROVE, rationale: \"ok\") { request { status } } }",
            json!({ "r": r }),
        )
        .await;
    }
    let ids = |d: &Value| -> Vec<String> {
        d["blastRadius"]["reached"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
    };
    let now = s.ok(&s.as_("ines"), BLAST, json!({ "f": w.id("bot"), "h": 3 })).await;
    assert!(ids(&now).contains(&w.id("vault").to_owned()));
    let vault =
        now["blastRadius"]["reached"].as_array().unwrap().iter().find(|r| r["id"] == w.id("vault")).unwrap().clone();
    assert_eq!(vault["maxPrivilege"], "ADMIN");
    let then = s.ok(&s.as_("ines"), BLAST, json!({ "f": w.id("bot"), "h": 3, "at": before.to_rfc3339() })).await;
    assert!(!ids(&then).contains(&w.id("vault").to_owned()), "as of before the grant: {then}");
}

/// A small deterministic generator.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Shortest hop counts by depth-first enumeration of every walk.
fn brute(edges: &[(String, String)], origin: &str, max: u64) -> BTreeMap<String, u64> {
    fn walk(
        edges: &[(String, String)],
        at: &str,
        depth: u64,
        max: u64,
        origin: &str,
        best: &mut BTreeMap<String, u64>,
    ) {
        if depth == max {
            return;
        }
        for (a, b) in edges {
            if a != at || b == origin || best.get(b).is_some_and(|d| *d <= depth + 1) {
                continue;
            }
            best.insert(b.clone(), depth + 1);
            walk(edges, b, depth + 1, max, origin, best);
        }
    }
    let mut best = BTreeMap::new();
    walk(edges, origin, 0, max, origin, &mut best);
    best
}

#[tokio::test]
async fn answers_equal_a_brute_force_walk_on_a_random_graph_before_and_after_closing_edges() {
    let s = TestServer::start().await;
    let admin = s.admin().await;
    let mut rng = Lcg(7);
    // 12 NHIs, 8 secrets, 10 systems; hubs (the first few of each) get most edges.
    let mut nodes = Vec::new();
    for i in 0..12 {
        nodes.push(json!({ "type": "nhi", "ref": format!("n{i}"), "kind": "token", "name": format!("n{i}"), "environment": "production" }));
    }
    for i in 0..8 {
        nodes.push(json!({ "type": "secret", "ref": format!("s{i}"), "kind": "token", "name": format!("s{i}"), "fingerprint": format!("fingerprint-{i:04}") }));
    }
    for i in 0..10 {
        nodes.push(json!({ "type": "system", "ref": format!("y{i}"), "kind": "database", "name": format!("y{i}"), "environment": "production" }));
    }
    let pick = |rng: &mut Lcg, prefix: &str, n: u64| -> String {
        let i = if rng.next(3) == 0 { rng.next(2) } else { rng.next(n) };
        format!("{prefix}{i}")
    };
    let mut edges = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..90 {
        let (kind, from, to) = match rng.next(5) {
            0 => ("holds", pick(&mut rng, "n", 12), pick(&mut rng, "s", 8)),
            1 => ("authenticates_to", pick(&mut rng, "s", 8), pick(&mut rng, "y", 10)),
            2 => ("can_access", pick(&mut rng, "n", 12), pick(&mut rng, "y", 10)),
            3 => ("assumes", pick(&mut rng, "n", 12), pick(&mut rng, "n", 12)),
            _ => ("depends_on", pick(&mut rng, "y", 10), pick(&mut rng, "y", 10)),
        };
        if from == to || !seen.insert((kind, from.clone(), to.clone())) {
            continue;
        }
        let mut e = json!({ "type": kind, "from": from, "to": to });
        if kind == "can_access" {
            e["privilege"] = json!("read");
        }
        edges.push(e);
    }
    let d = s
        .ok(
            &admin,
            "mutation($d: JSON!) { importInventory(document: $d) { ids { ref id } } }",
            json!({ "d": { "nodes": nodes, "edges": edges } }),
        )
        .await;
    let id_of: HashMap<String, String> = d["importInventory"]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["ref"].as_str().unwrap().to_owned(), r["id"].as_str().unwrap().to_owned()))
        .collect();
    let pairs = |list: &[Value]| -> Vec<(String, String)> {
        list.iter()
            .map(|e| (id_of[e["from"].as_str().unwrap()].clone(), id_of[e["to"].as_str().unwrap()].clone()))
            .collect()
    };
    let check = |all: Vec<(String, String)>, at: Option<String>| {
        let s = &s;
        let admin = admin.clone();
        let id_of = id_of.clone();
        async move {
            for i in 0..12 {
                let origin = id_of[&format!("n{i}")].clone();
                for h in 1..=4u64 {
                    let d = s.ok(&admin, BLAST, json!({ "f": origin, "h": h, "at": at })).await;
                    let got: BTreeMap<String, u64> = d["blastRadius"]["reached"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| (r["id"].as_str().unwrap().to_owned(), r["hops"].as_u64().unwrap()))
                        .collect();
                    assert_eq!(got, brute(&all, &origin, h), "n{i} within {h} hops as of {at:?}");
                }
            }
        }
    };
    let all = pairs(&edges);
    check(all.clone(), None).await;

    // Close a third of the can_access and assumes edges underneath, then compare now
    // (without them) and as of before (with them).
    let before = chrono::Utc::now().to_rfc3339();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let closed: Vec<Value> = s
        .store
        .execute_raw(
            "LET $gone = array::concat((SELECT VALUE id FROM can_access LIMIT 6), (SELECT VALUE id FROM assumes LIMIT 4));
             UPDATE $gone SET valid_to = time::now(), open_key = NONE RETURN in, out;",
        )
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    assert!(!closed.is_empty());
    let gone: Vec<(String, String)> =
        closed.iter().map(|e| (e["in"].as_str().unwrap().to_owned(), e["out"].as_str().unwrap().to_owned())).collect();
    let mut remaining = all.clone();
    for g in &gone {
        if let Some(p) = remaining.iter().position(|e| e == g) {
            remaining.remove(p);
        }
    }
    check(remaining, None).await;
    check(all, Some(before)).await;
}

#[tokio::test]
async fn a_case_keeps_its_traversals_snapshots_and_what_changed_since_it_opened() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let ines = s.as_("ines");
    let d = s
        .ok(
            &ines,
            "mutation($n: ID!) { openCase(input: { title: \"bot\", subjectIds: [$n] }) { id } }",
            json!({ "n": w.id("bot") }),
        )
        .await;
    let case = d["openCase"]["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    // A snapshot is evidence with its digest, and the traversal is on the case.
    let d = s
        .ok(
            &ines,
            "mutation($c: ID!, $n: ID!) { snapshotBlastRadius(caseId: $c, from: $n) { kind sha256 content intact } }",
            json!({ "c": case, "n": w.id("bot") }),
        )
        .await;
    let snap = &d["snapshotBlastRadius"];
    assert_eq!(snap["kind"], "GRAPH_SNAPSHOT");
    assert_eq!(snap["intact"], true);
    let content: Value = serde_json::from_str(snap["content"].as_str().unwrap()).unwrap();
    let nodes: Vec<&str> = content["reached"].as_array().unwrap().iter().map(|r| r["node"].as_str().unwrap()).collect();
    assert!(nodes.contains(&w.id("db")), "{content}");

    // The graph changes while the case is open: the vault is granted.
    s.store
        .relate(&graph_model::NewEdge {
            kind: graph_model::EdgeKind::CanAccess,
            from: graph_model::NodeId::parse(w.id("bot")).unwrap(),
            to: graph_model::NodeId::parse(w.id("vault")).unwrap(),
            attrs: graph_model::EdgeAttrs {
                privilege: Some(graph_model::Privilege::Admin),
                mechanism: None,
                expires_at: None,
            },
        })
        .await
        .unwrap();
    let d = s
        .ok(
            &ines,
            "query($c: ID!, $n: ID!) { case(id: $c) { blastRadius(from: $n) { added removed atOpening { totals { nodes } } now { totals { nodes } } } } }",
            json!({ "c": case, "n": w.id("bot") }),
        )
        .await;
    let br = &d["case"]["blastRadius"];
    assert_eq!(br["added"], json!([w.id("vault")]));
    assert_eq!(br["removed"], json!([]));
    assert_eq!(
        br["atOpening"]["totals"]["nodes"].as_u64().unwrap() + 1,
        br["now"]["totals"]["nodes"].as_u64().unwrap()
    );

    // Reading the case's blast radius wrote nothing: only the snapshot's walk is there.
    let recorded = |d: &Value| d["case"]["traversals"].as_array().unwrap().len();
    let traversals = "query($c: ID!) { case(id: $c) { traversals { query actor asOf target } timeline { event } } }";
    let d = s.ok(&ines, traversals, json!({ "c": case })).await;
    assert_eq!(recorded(&d), 1, "a query never writes: {d}");

    // A walk is kept on the case by asking for it: another reader's who-can-reach, and
    // a path as of the opening. A scanner may walk the graph but not write on cases.
    let record = "mutation($c: ID!, $q: TraversalQuery!, $o: ID!, $to: ID, $at: DateTime) {
        recordTraversal(caseId: $c, input: { query: $q, origin: $o, to: $to, asOf: $at }) { query actor reached truncated } }";
    let d = s.ok(&s.as_("vic"), record, json!({ "c": case, "q": "WHO_CAN_REACH", "o": w.id("vault") })).await;
    assert_eq!(d["recordTraversal"]["actor"], "vic@corp.example");
    assert!(d["recordTraversal"]["reached"].as_u64().unwrap() >= 1, "{d}");
    let (_, body) =
        s.gql(&s.as_("scanner"), record, json!({ "c": case, "q": "WHO_CAN_REACH", "o": w.id("vault") })).await;
    assert_eq!(code(&body), "FORBIDDEN");
    let opened = opened_at(&s, &ines, &case).await;
    let d =
        s.ok(&ines, record, json!({ "c": case, "q": "PATH", "o": w.id("bot"), "to": w.id("db"), "at": opened })).await;
    assert_eq!(d["recordTraversal"]["reached"], 1, "a path records its length");
    let (_, body) = s.gql(&ines, record, json!({ "c": case, "q": "PATH", "o": w.id("bot") })).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "to");
    let (_, body) =
        s.gql(&ines, record, json!({ "c": "case:doesnotexist", "q": "BLAST_RADIUS", "o": w.id("bot") })).await;
    assert_eq!(code(&body), "NOT_FOUND");

    let d = s.ok(&s.as_("ada"), traversals, json!({ "c": case })).await;
    let queries: Vec<(&str, &str, bool)> = d["case"]["traversals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["query"].as_str().unwrap(), t["actor"].as_str().unwrap(), t["asOf"].is_string()))
        .collect();
    assert_eq!(
        queries,
        [
            ("blast_radius", "ines@corp.example", false),
            ("who_can_reach", "vic@corp.example", false),
            ("path", "ines@corp.example", true),
        ]
    );
    assert_eq!(d["case"]["traversals"][2]["target"], w.id("db"));
    let in_timeline = d["case"]["timeline"].as_array().unwrap().iter().filter(|e| e["event"] == "traversal").count();
    assert_eq!(in_timeline, 3);
}

#[tokio::test]
async fn the_node_cap_bounds_the_list_and_never_the_count() {
    let mut cfg = nhigov::config::Config::default();
    cfg.graph.node_cap = 5;
    let s = TestServer::start_with(cfg).await;
    let t = s.admin().await;
    let d = s
        .ok(
            &t,
            "mutation { createSystem(input: { kind: VAULT, name: \"hub\", environment: PRODUCTION, criticality: TIER0 }) { id } }",
            json!({}),
        )
        .await;
    let hub = d["createSystem"]["id"].as_str().unwrap().to_owned();
    let mut nhis = Vec::new();
    for i in 0..12 {
        let d = s
            .ok(
                &t,
                "mutation($n: String!) { createNhi(input: { kind: TOKEN, name: $n, environment: PRODUCTION }) { id } }",
                json!({ "n": format!("reader-{i}") }),
            )
            .await;
        nhis.push(d["createNhi"]["id"].as_str().unwrap().to_owned());
    }
    let doc = json!({ "nodes": [], "edges": nhis.iter().map(|n| json!({ "type": "can_access", "from": n, "to": hub, "privilege": "read" })).collect::<Vec<_>>() });
    s.ok(&t, "mutation($d: JSON!) { importInventory(document: $d) { edges } }", json!({ "d": doc })).await;
    let d = s
        .ok(
            &t,
            "query($t: ID!) { whoCanReach(target: $t) { truncated totals { nodes byKind { key count } byMaxPrivilege { key count } } reached(first: 100) { id } } }",
            json!({ "t": hub }),
        )
        .await;
    let r = &d["whoCanReach"];
    assert_eq!(r["truncated"], true);
    assert_eq!(r["reached"].as_array().unwrap().len(), 5, "the list stops at the cap");
    assert_eq!(r["totals"]["nodes"], 12, "the count does not");
    assert_eq!(r["totals"]["byKind"], json!([{ "key": "nhi", "count": 12 }]));
    assert_eq!(r["totals"]["byMaxPrivilege"], json!([{ "key": "read", "count": 12 }]));
    s.stop().await;
}

/// When a case opened.
async fn opened_at(s: &TestServer, token: &str, case: &str) -> String {
    let d = s.ok(token, "query($c: ID!) { case(id: $c) { openedAt } }", json!({ "c": case })).await;
    d["case"]["openedAt"].as_str().unwrap().to_owned()
}
