//! No one governs alone: every change to a governed fact (access, roles, activity, an
//! NHI's status, a system's criticality, tokens, policy) is a decision in the chain, and
//! the ones a second person must approve wait for them. Tried from outside by the people
//! these rules must stop: one admin alone, and a leaked ingest token.

use nhigov_tests::{TestServer, World, code};
use serde_json::{Value, json};

const DECISIONS: &str = "{ verifyDecisionChain { ok length } }";

async fn chain_length(s: &TestServer) -> u64 {
    let d = s.ok(&s.as_("ada"), DECISIONS, json!({})).await;
    assert_eq!(d["verifyDecisionChain"]["ok"], true, "{d}");
    d["verifyDecisionChain"]["length"].as_u64().unwrap()
}

/// A governed mutation's answer waits for a second person: a REQUESTED decision and a
/// PENDING request, both on record. The request's id.
fn waits(d: &Value, field: &str) -> String {
    let payload = &d[field];
    assert_eq!(payload["decision"]["outcome"], "REQUESTED", "{field}: {d}");
    assert_eq!(payload["request"]["status"], "PENDING", "{field}: {d}");
    payload["request"]["id"].as_str().expect("a request id").to_owned()
}

/// A node's fields, read by the auditor.
async fn node(s: &TestServer, id: &str, on: &str, fields: &str) -> Value {
    let q = format!("query($i: ID!) {{ node(id: $i) {{ ... on {on} {{ {fields} }} }} }}");
    s.ok(&s.as_("ada"), &q, json!({ "i": id })).await["node"].clone()
}

const DECIDE: &str =
    "mutation($i: ID!, $o: DecideOutcome!) { decideRequest(id: $i, outcome: $o, rationale: \"checked\") {
    decision { outcome } request { status } } }";

#[tokio::test]
async fn one_admin_alone() {
    let s = TestServer::start().await;
    let w: World = s.world().await;
    let sam = s.as_("sam");
    let start = chain_length(&s).await;

    // 1. ADMIN access to the tier0 vault: a grant request, not an edge.
    let d = s
        .ok(
            &sam,
            "mutation($a: ID!, $b: ID!) { relate(input: { kind: CAN_ACCESS, from: $a, to: $b, privilege: ADMIN }) {
                relation { id } decision { outcome } request { id kind status } } }",
            json!({ "a": w.id("bot"), "b": w.id("vault") }),
        )
        .await;
    let grant = waits(&d, "relate");
    assert!(d["relate"]["relation"].is_null());
    assert_eq!(d["relate"]["request"]["kind"], "GRANT_ACCESS");
    let open = s
        .ok(
            &sam,
            "query($i: ID!) { node(id: $i) { ... on Nhi { access { system { id } } } } }",
            json!({ "i": w.id("bot") }),
        )
        .await;
    assert!(!open.to_string().contains(w.id("vault")), "no access was opened: {open}");

    // 2. Sam gives himself the approver role: it waits, and he cannot approve it himself.
    let d = s
        .ok(
            &sam,
            "mutation($p: ID!) { updatePerson(id: $p, input: { roles: [ADMIN, APPROVER] }) {
                person { roles } decision { outcome } request { id status } } }",
            json!({ "p": w.id("sam") }),
        )
        .await;
    let self_grant = waits(&d, "updatePerson");
    assert_eq!(d["updatePerson"]["person"]["roles"], json!(["ADMIN"]));
    let (_, body) = s.gql(&sam, DECIDE, json!({ "i": self_grant, "o": "APPROVE" })).await;
    assert_eq!(code(&body), "SOD_VIOLATION", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["rule"], "requester_cannot_approve");

    // 3. A token for the approver Jules, to act as Jules: refused, and on record. A
    // person's tokens are made by that person.
    let (_, body) = s
        .gql(
            &sam,
            "mutation($p: ID!) { createApiToken(principalId: $p, name: \"as jules\", scopes: [APPROVER]) { token } }",
            json!({ "p": w.id("jules") }),
        )
        .await;
    assert_eq!(code(&body), "SOD_VIOLATION", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["rule"], "own_token_only", "{body}");
    assert!(body["data"].is_null() || body["data"]["createApiToken"].is_null(), "no token text: {body}");

    // 4. The vault lowered from TIER0 to TIER3: it waits, and the vault stays tier0.
    let d = s
        .ok(
            &sam,
            "mutation($i: ID!) { updateSystem(id: $i, input: { criticality: TIER3 }, rationale: \"not critical\") {
                system { criticality } decision { outcome } request { id status } } }",
            json!({ "i": w.id("vault") }),
        )
        .await;
    let lowering = waits(&d, "updateSystem");
    assert_eq!(d["updateSystem"]["system"]["criticality"], "TIER0");

    // 5. A policy without "requester cannot approve": it waits; and even in force it
    // would not let anyone approve their own request (the floor).
    let d = s
        .ok(
            &sam,
            "mutation { publishPolicy(input: { name: \"lax\", rules: [] }, rationale: \"fewer rules\") {
                decision { outcome } request { id status } } }",
            json!({}),
        )
        .await;
    waits(&d, "publishPolicy");
    let p = s.ok(&sam, "{ policy { version } }", json!({})).await;
    assert_eq!(p["policy"]["version"], 1);

    // 6. Revoking applies at once (it takes access away); bringing back waits.
    let d = s
        .ok(
            &sam,
            "mutation($i: ID!) { updateNhi(id: $i, input: { status: REVOKED }) { nhi { status } decision { outcome } request { id } } }",
            json!({ "i": w.id("orphan") }),
        )
        .await;
    assert_eq!(d["updateNhi"]["decision"]["outcome"], "APPLIED", "{d}");
    assert_eq!(d["updateNhi"]["nhi"]["status"], "REVOKED");
    let d = s
        .ok(
            &sam,
            "mutation($i: ID!) { updateNhi(id: $i, input: { status: ACTIVE }) { nhi { status } decision { outcome } request { id status } } }",
            json!({ "i": w.id("orphan") }),
        )
        .await;
    waits(&d, "updateNhi");
    assert_eq!(d["updateNhi"]["nhi"]["status"], "REVOKED");

    // 7. A person who left, brought back by one admin: waits.
    s.ok(
        &sam,
        "mutation($p: ID!) { updatePerson(id: $p, input: { active: false }) { person { active } } }",
        json!({ "p": w.id("ines") }),
    )
    .await;
    let d = s
        .ok(
            &sam,
            "mutation($p: ID!) { updatePerson(id: $p, input: { active: true }) { person { active } decision { outcome } request { id status } } }",
            json!({ "p": w.id("ines") }),
        )
        .await;
    waits(&d, "updatePerson");
    assert_eq!(d["updatePerson"]["person"]["active"], false);

    // 8. One NHI acting as another: waits for an approver.
    let d = s
        .ok(
            &sam,
            "mutation($a: ID!, $b: ID!) { relate(input: { kind: ASSUMES, from: $a, to: $b }) { relation { id } decision { outcome } request { id status kind } } }",
            json!({ "a": w.id("orphan"), "b": w.id("bot") }),
        )
        .await;
    waits(&d, "relate");
    assert_eq!(d["relate"]["request"]["kind"], "CHANGE");

    // Every attempt is on record: 11 decisions above (the refused self-approval among
    // them), and the auditor's trail of the NHI shows the grant nobody approved yet.
    assert_eq!(chain_length(&s).await, start + 11);
    let trail = s
        .ok(
            &s.as_("ada"),
            "query($i: ID!) { decisionTrail(subjectId: $i) { kind outcome subject } }",
            json!({ "i": w.id("bot") }),
        )
        .await;
    assert!(
        trail["decisionTrail"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["subject"] == grant.as_str() && d["outcome"] == "REQUESTED"),
        "{trail}"
    );

    // A second admin's approval is what makes a waiting change happen.
    let d = s.ok(&s.as_("ana"), DECIDE, json!({ "i": lowering, "o": "APPROVE" })).await;
    assert_eq!(d["decideRequest"]["request"]["status"], "APPROVED", "{d}");
    assert_eq!(node(&s, w.id("vault"), "System", "criticality").await["criticality"], "TIER3");
    // ...and an approver, not an admin, decides access: Ana holds no approver role.
    let (_, body) = s.gql(&s.as_("ana"), DECIDE, json!({ "i": grant, "o": "APPROVE" })).await;
    assert_eq!(body["errors"][0]["extensions"]["rule"], "approver_role_required", "{body}");
    s.stop().await;
}

#[tokio::test]
async fn a_leaked_ingest_token_changes_no_governed_fact() {
    let s = TestServer::start().await;
    let w = s.world().await;
    // The scanner's real API token (ingest scope), as it would leak from a CI config.
    let scanner = s.ingest_token(&w, "ci").await;
    let start = chain_length(&s).await;

    // Mallory, holding ADMIN and APPROVER, through an inventory document.
    let doc = json!({ "nodes": [{ "type": "person", "ref": "m", "name": "Mallory", "email": "mallory@corvid.example",
        "roles": ["admin", "approver"] }] });
    let (_, body) =
        s.gql(&scanner, "mutation($d: JSON!) { importInventory(document: $d) { nodes } }", json!({ "d": doc })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let items = &body["errors"][0]["extensions"]["items"];
    assert_eq!((items[0]["item"].as_str(), items[0]["field"].as_str()), (Some("nodes[0]"), Some("roles")), "{body}");
    let people =
        s.ok(&s.as_("sam"), "{ people(filter: { nameContains: \"Mallory\" }) { totalCount } }", json!({})).await;
    assert_eq!(people["people"]["totalCount"], 0);

    // Each governed mutation the ingest role can reach: refused before anything is asked.
    let attempts = [
        (
            "relate",
            "mutation($a: ID!, $b: ID!) { relate(input: { kind: CAN_ACCESS, from: $a, to: $b, privilege: READ }) { decision { id } } }",
            json!({ "a": w.id("bot"), "b": w.id("vault") }),
        ),
        (
            "updateNhi",
            "mutation($a: ID!) { updateNhi(id: $a, input: { status: ACTIVE }) { decision { id } } }",
            json!({ "a": w.id("orphan") }),
        ),
        (
            "updateSystem",
            "mutation($a: ID!) { updateSystem(id: $a, input: { criticality: TIER3 }) { decision { id } } }",
            json!({ "a": w.id("vault") }),
        ),
        (
            "updatePerson",
            "mutation($a: ID!) { updatePerson(id: $a, input: { roles: [ADMIN] }) { decision { id } } }",
            json!({ "a": w.id("ci") }),
        ),
        (
            "createApiToken",
            "mutation($a: ID!) { createApiToken(principalId: $a, name: \"x\", scopes: [INGEST]) { token } }",
            json!({ "a": w.id("ci") }),
        ),
        (
            "publishPolicy",
            "mutation { publishPolicy(input: { name: \"x\", rules: [] }, rationale: \"x\") { decision { id } } }",
            json!({}),
        ),
    ];
    for (what, q, vars) in attempts {
        let (_, body) = s.gql(&scanner, q, vars).await;
        assert_eq!(code(&body), "FORBIDDEN", "{what}: {body}");
    }

    // A feed's refresh describes a system; it does not lower it.
    let lower = json!({ "nodes": [{ "type": "system", "ref": "v", "kind": "vault", "name": "prod-vault",
        "environment": "production", "criticality": "tier3" }] });
    s.ok(&scanner, "mutation($d: JSON!) { importInventory(document: $d) { nodesUpdated } }", json!({ "d": lower }))
        .await;
    assert_eq!(node(&s, w.id("vault"), "System", "criticality").await["criticality"], "TIER0");
    // Guard refusals are not decisions; the import run is two: started, completed.
    assert_eq!(chain_length(&s).await, start + 2);
    let d = s
        .ok(
            &s.as_("ada"),
            "{ decisions(filter: { kind: IMPORT_RUN }) { edges { node { outcome actor { email } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        d["decisions"]["edges"],
        json!([{ "node": { "outcome": "STARTED", "actor": { "email": "ci-scanner@corp.example" } } },
               { "node": { "outcome": "COMPLETED", "actor": { "email": "ci-scanner@corp.example" } } }])
    );
    s.stop().await;
}

#[tokio::test]
async fn a_waiting_change_is_decided_by_an_admin_who_neither_asked_nor_is_its_subject() {
    let s = TestServer::start().await;
    let w = s.world().await;
    // Sam asks that Ana become an approver; Ana cannot approve her own promotion, and
    // Jules (an approver, no admin) cannot decide a role at all.
    let d = s
        .ok(
            &s.as_("sam"),
            "mutation($p: ID!) { updatePerson(id: $p, input: { roles: [ADMIN, APPROVER] }) { decision { outcome } request { id status } } }",
            json!({ "p": w.id("ana") }),
        )
        .await;
    let request = waits(&d, "updatePerson");
    let (_, body) = s.gql(&s.as_("ana"), DECIDE, json!({ "i": request, "o": "APPROVE" })).await;
    assert_eq!(body["errors"][0]["extensions"]["rule"], "subject_cannot_approve", "{body}");
    let (_, body) = s.gql(&s.as_("jules"), DECIDE, json!({ "i": request, "o": "APPROVE" })).await;
    assert_eq!(body["errors"][0]["extensions"]["rule"], "decider_role_required", "{body}");
    let roles = node(&s, w.id("ana"), "Person", "roles").await;
    assert_eq!(roles["roles"], json!(["ADMIN"]), "nothing changed");
    s.stop().await;
}

/// A feed reports access nobody approved: the edge is ungoverned wherever it shows
/// (the NHI's access, the blast radius and its paths, the ungoverned list), the NHI
/// gets one alert that later runs count again, and two admins can adopt exactly that
/// access as the source's governed baseline.
#[tokio::test]
async fn access_a_feed_reports_that_nobody_approved_is_ungoverned_until_a_baseline_adopts_it() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let (scanner, ada) = (s.as_("scanner"), s.as_("ada"));
    let access = "query($n: ID!) { node(id: $n) { ... on Nhi { access { system { name } privilege governed } } } }";
    let d = s.ok(&ada, access, json!({ "n": w.id("bot") })).await;
    assert_eq!(
        d["node"]["access"],
        json!([{ "system": { "name": "ledger-db" }, "privilege": "WRITE", "governed": true }]),
        "the world's own access was adopted by its genesis"
    );

    let doc = json!({ "source": "aws-collector", "nodes": [],
        "edges": [{ "type": "can_access", "from": w.id("bot"), "to": w.id("vault"), "privilege": "admin" }] });
    let import = "mutation($d: JSON!) { importInventory(document: $d) { edges edgesKept ungovernedNhis } }";
    let d = s.ok(&scanner, import, json!({ "d": doc })).await;
    assert_eq!(d["importInventory"], json!({ "edges": 1, "edgesKept": 0, "ungovernedNhis": 1 }));

    let d = s.ok(&ada, access, json!({ "n": w.id("bot") })).await;
    let vault = d["node"]["access"].as_array().unwrap().iter().find(|a| a["system"]["name"] == "prod-vault").cloned();
    assert_eq!(vault.unwrap()["governed"], false);
    let radius =
        "query($n: ID!) { blastRadius(from: $n, maxHops: 1) { reached { id governed path { kind governed } } } }";
    let d = s.ok(&ada, radius, json!({ "n": w.id("bot") })).await;
    let reached = d["blastRadius"]["reached"].as_array().unwrap();
    let to_vault = reached.iter().find(|r| r["id"] == w.id("vault")).expect("the vault is reached");
    assert_eq!(to_vault["governed"], false);
    assert_eq!(to_vault["path"], json!([{ "kind": "CAN_ACCESS", "governed": false }]));
    let to_db = reached.iter().find(|r| r["id"] == w.id("db")).expect("the db is reached");
    assert_eq!(to_db["governed"], true);

    let alerts = "{ alerts(filter: { source: \"nhigov\" }) { edges { node { rule count subject { id } } } } }";
    let d = s.ok(&ada, alerts, json!({})).await;
    let flagged: Vec<&Value> =
        d["alerts"]["edges"].as_array().unwrap().iter().filter(|e| e["node"]["rule"] == "ungoverned_access").collect();
    assert_eq!(flagged.len(), 1, "{d}");
    assert_eq!(flagged[0]["node"]["subject"]["id"], w.id("bot"));
    // The next run reports it again: counted, not raised twice.
    s.ok(&scanner, import, json!({ "d": doc })).await;
    let d = s.ok(&ada, alerts, json!({})).await;
    let counts: Vec<&Value> = d["alerts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["rule"] == "ungoverned_access")
        .map(|e| &e["node"]["count"])
        .collect();
    assert_eq!(counts, [&json!(2)]);

    // The source's ungoverned access, named by its digest, adopted by two admins.
    let list = "{ ungovernedAccess(source: \"aws-collector\") { total digest edges { kind governed source } } }";
    let d = s.ok(&ada, list, json!({})).await;
    assert_eq!(d["ungovernedAccess"]["total"], 1);
    assert_eq!(
        d["ungovernedAccess"]["edges"],
        json!([{ "kind": "CAN_ACCESS", "governed": false, "source": "aws-collector" }])
    );
    let digest = d["ungovernedAccess"]["digest"].clone();
    let adopt = "mutation($g: String!) { adoptBaseline(source: \"aws-collector\", digest: $g, rationale: \"the collector's first inventory, reviewed\") {
        decision { outcome } request { id status kind summary } } }";
    let (_, body) = s.gql(&s.as_("sam"), adopt, json!({ "g": "0".repeat(64) })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "a baseline adopts only what was read: {body}");
    let d = s.ok(&s.as_("sam"), adopt, json!({ "g": digest })).await;
    let request = waits(&d, "adoptBaseline");
    let d = s.ok(&s.as_("ana"), DECIDE, json!({ "i": request, "o": "APPROVE" })).await;
    assert_eq!(d["decideRequest"]["request"]["status"], "APPROVED", "{d}");
    let d = s.ok(&ada, list, json!({})).await;
    assert_eq!(d["ungovernedAccess"]["total"], 0);
    let d = s.ok(&ada, radius, json!({ "n": w.id("bot") })).await;
    let reached = d["blastRadius"]["reached"].as_array().unwrap();
    assert!(reached.iter().all(|r| r["governed"] == true), "{d}");
    s.stop().await;
}

/// A revoked identity acts for no one: a walk shows it, flagged, and goes no further.
#[tokio::test]
async fn a_walk_does_not_pass_through_a_revoked_identity() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let sam = s.as_("sam");
    // orphan -> bot (assumes) is approved by an approver, then bot is revoked.
    let d = s
        .ok(
            &sam,
            "mutation($a: ID!, $b: ID!) { relate(input: { kind: ASSUMES, from: $a, to: $b }) { request { id } } }",
            json!({ "a": w.id("orphan"), "b": w.id("bot") }),
        )
        .await;
    let r = d["relate"]["request"]["id"].clone();
    s.ok(&s.as_("jules"), DECIDE, json!({ "i": r, "o": "APPROVE" })).await;
    let radius = "query($n: ID!) { blastRadius(from: $n, maxHops: 3) { reached { id inactive } } }";
    let d = s.ok(&s.as_("ada"), radius, json!({ "n": w.id("orphan") })).await;
    let ids: Vec<&str> =
        d["blastRadius"]["reached"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&w.id("db")), "through the assumed bot to its database: {d}");
    s.ok(
        &sam,
        "mutation($i: ID!) { updateNhi(id: $i, input: { status: DISABLED }) { nhi { status } } }",
        json!({ "i": w.id("bot") }),
    )
    .await;
    let d = s.ok(&s.as_("ada"), radius, json!({ "n": w.id("orphan") })).await;
    let reached = d["blastRadius"]["reached"].as_array().unwrap();
    assert_eq!(reached.len(), 1, "{d}");
    assert_eq!((reached[0]["id"].as_str(), &reached[0]["inactive"]), (Some(w.id("bot")), &json!(true)));
    s.stop().await;
}

/// The auditor's trail of a subject holds every decision touching it: for a person, the
/// genesis of their roles, changes to them and the tokens acting for them; for an NHI,
/// the decisions behind its access and ownership and those on the secrets it holds.
#[tokio::test]
async fn the_trail_of_a_subject_holds_every_decision_touching_it() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let sam = s.as_("sam");
    let trail = |id: &str| {
        let (s, id) = (&s, id.to_owned());
        async move {
            let d = s
                .ok(
                    &s.as_("ada"),
                    "query($i: ID!) { decisionTrail(subjectId: $i) { kind outcome } }",
                    json!({ "i": id }),
                )
                .await;
            d["decisionTrail"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| format!("{} {}", d["kind"].as_str().unwrap(), d["outcome"].as_str().unwrap()))
                .collect::<Vec<String>>()
        }
    };
    // Kim: her first roles, then the approver role taken away.
    s.ok(
        &sam,
        "mutation($p: ID!) { updatePerson(id: $p, input: { roles: [] }) { person { id } } }",
        json!({ "p": w.id("kim") }),
    )
    .await;
    assert_eq!(trail(w.id("kim")).await, ["GENESIS GRANTED", "CHANGE APPLIED"]);
    // The CI scanner (a machine principal): a token asked for and approved.
    s.ingest_token(&w, "ci").await;
    assert_eq!(trail(w.id("ci")).await, ["GENESIS GRANTED", "CHANGE REQUESTED", "DECIDE_REQUEST APPROVED"]);
    // The bot: its access adopted by the genesis, a new owner, its key's rotation.
    let owns =
        "mutation($a: ID!, $b: ID!) { relate(input: { kind: OWNS, from: $a, to: $b }) { decision { outcome } } }";
    s.ok(&sam, owns, json!({ "a": w.id("ines"), "b": w.id("bot") })).await;
    let rotate = "mutation($k: ID!) { createRequest(input: { kind: ROTATE_SECRET, subjectId: $k, justification: \"yearly\" }) { id } }";
    let r = s.ok(&s.as_("priya"), rotate, json!({ "k": w.id("key") })).await["createRequest"]["id"].clone();
    s.ok(&s.as_("jules"), DECIDE, json!({ "i": r, "o": "APPROVE" })).await;
    assert_eq!(trail(w.id("bot")).await, ["GENESIS GRANTED", "CHANGE APPLIED", "DECIDE_REQUEST APPROVED"]);
    s.stop().await;
}

/// Rolling back a grant is a governed revocation of that one grant, and its record
/// names the decision that granted it.
#[tokio::test]
async fn a_rollback_closes_one_grant_and_names_the_decision_that_granted_it() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let create = "mutation($n: ID!, $t: ID!) { createRequest(input: { kind: GRANT_ACCESS, subjectId: $n, targetId: $t,
        privilege: READ, justification: \"reads the vault's audit log\" }) { id } }";
    let r = s.ok(&s.as_("priya"), create, json!({ "n": w.id("bot"), "t": w.id("vault") })).await["createRequest"]["id"]
        .clone();
    let d = s
        .ok(
            &s.as_("jules"),
            "mutation($i: ID!) { decideRequest(id: $i, outcome: APPROVE, rationale: \"ok\") { decision { id } request { grantedEdge } } }",
            json!({ "i": r }),
        )
        .await;
    let (granting, edge) =
        (d["decideRequest"]["decision"]["id"].clone(), d["decideRequest"]["request"]["grantedEdge"].clone());
    let d = s
        .ok(
            &s.as_("sam"),
            "mutation($e: ID!) { closeRelation(id: $e, rationale: \"no longer needed\") { relation { validTo grantedBy } decision { id outcome } } }",
            json!({ "e": edge }),
        )
        .await;
    assert_eq!(d["closeRelation"]["relation"]["grantedBy"], granting, "{d}");
    assert!(d["closeRelation"]["relation"]["validTo"].is_string());
    let rollback = d["closeRelation"]["decision"]["id"].clone();
    let d = s
        .ok(&s.as_("ada"), "query($i: ID!) { decision(id: $i) { explain { inputs } } }", json!({ "i": rollback }))
        .await;
    let inputs = d["decision"]["explain"]["inputs"].to_string();
    assert!(inputs.contains("rolls_back") && inputs.contains(granting.as_str().unwrap()), "{inputs}");
    let d = s
        .ok(&s.as_("ada"), "query($n: ID!) { decisionTrail(subjectId: $n) { id } }", json!({ "n": w.id("bot") }))
        .await;
    let ids: Vec<&Value> = d["decisionTrail"].as_array().unwrap().iter().map(|d| &d["id"]).collect();
    assert!(ids.contains(&&granting) && ids.contains(&&rollback), "both in the NHI's trail: {d}");
    s.stop().await;
}

/// Anyone may ask for a token for their own use; an ingest-only one works at once, and
/// one carrying more waits for a second admin. A token for someone else is the admin's.
#[tokio::test]
async fn a_person_asks_for_their_own_token_and_only_an_admin_for_someone_elses() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let make = "mutation($p: ID!, $s: [Role!]!) { createApiToken(principalId: $p, name: \"mine\", scopes: $s) {
        token apiToken { id } decision { outcome } request { id status } } }";
    let scanner = s.as_("scanner");
    let d = s.ok(&scanner, make, json!({ "p": w.id("scanner"), "s": ["INGEST"] })).await;
    assert_eq!(d["createApiToken"]["decision"]["outcome"], "APPLIED", "{d}");
    let token = d["createApiToken"]["token"].as_str().unwrap();
    let (status, _) = s.gql(token, "{ me { email } }", json!({})).await;
    assert_eq!(status, 200, "an ingest token for oneself works at once");
    let (_, body) = s.gql(token, make, json!({ "p": w.id("scanner"), "s": ["INGEST"] })).await;
    assert_eq!(code(&body), "FORBIDDEN", "a token makes no tokens: {body}");
    let d = s.ok(&s.as_("priya"), make, json!({ "p": w.id("priya"), "s": ["APPROVER"] })).await;
    waits(&d, "createApiToken");
    let (_, body) = s.gql(&s.as_("priya"), make, json!({ "p": w.id("jules"), "s": ["APPROVER"] })).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    s.stop().await;
}

/// A feed whose data is late pauses what its data drives (seed 003: reconcile before
/// automating): while `hr` is past its freshness window, a run of it is written but closes
/// none of the edges it no longer reports and raises no ungoverned-access alert; the run
/// repairs it, and the next one acts. `/readyz` and the `feeds` query say which sources
/// are stale.
#[tokio::test]
async fn a_stale_feed_pauses_the_automation_its_data_drives_until_a_run_repairs_it() {
    let mut cfg = nhigov::config::Config::default();
    cfg.feeds.insert("hr".into(), nhigov::config::FeedConfig { freshness_hours: 24 });
    let s = TestServer::start_with(cfg).await;
    let w = s.world().await;
    let (sam, ada) = (s.as_("sam"), s.as_("ada"));
    let feeds = "{ feeds { source runs stale paused lastRunComplete freshnessHours } }";
    let ready = || async { s.http.get(s.url("/readyz")).send().await.unwrap().json::<Value>().await.unwrap() };

    // Never run: stale from the start, and said so.
    let d = s.ok(&ada, feeds, json!({})).await;
    assert_eq!(
        d["feeds"],
        json!([{ "source": "hr", "runs": 0, "stale": true, "lastRunComplete": false, "freshnessHours": 24,
                 "paused": ["closing absent edges", "ungoverned-access alerts"] }])
    );
    let r = ready().await;
    assert_eq!(r["status"], "ready", "a stale feed does not stop the server: {r}");
    assert_eq!(r["feeds"]["stale"][0]["source"], "hr", "{r}");

    // Its first run reports access nobody approved: written, and no alert from it yet.
    let with_access = json!({ "source": "hr", "complete": true, "nodes": [],
        "edges": [{ "type": "can_access", "from": w.id("bot"), "to": w.id("vault"), "privilege": "read" }] });
    let import = "mutation($d: JSON!) { importInventory(document: $d) {
        edges edgesClosed edgesAbsentPaused ungovernedNhis sourceStale } }";
    let d = s.ok(&sam, import, json!({ "d": with_access })).await;
    assert_eq!(
        d["importInventory"],
        json!({ "edges": 1, "edgesClosed": 0, "edgesAbsentPaused": 0, "ungovernedNhis": 0, "sourceStale": true })
    );
    let d = s.ok(&ada, feeds, json!({})).await;
    assert_eq!((d["feeds"][0]["stale"].clone(), d["feeds"][0]["runs"].clone()), (json!(false), json!(1)), "{d}");
    assert_eq!(ready().await["feeds"]["stale"], json!([]));

    // The next run, from a source now fresh, raises the alert.
    let d = s.ok(&sam, import, json!({ "d": with_access })).await;
    assert_eq!(d["importInventory"]["ungovernedNhis"], 1, "{d}");
    assert_eq!(d["importInventory"]["sourceStale"], false, "{d}");

    // A day and more without a run (its last run recorded 30 hours ago): a complete run
    // that no longer holds the edge leaves it open, and says so.
    s.store
        .execute_raw("UPDATE feed:hr SET last_run_at = time::now() - 30h RETURN NONE")
        .await
        .expect("the last run moved back");
    let d = s.ok(&ada, feeds, json!({})).await;
    assert_eq!(d["feeds"][0]["stale"], true, "{d}");
    let without = json!({ "source": "hr", "complete": true, "nodes": [], "edges": [] });
    let d = s.ok(&sam, import, json!({ "d": without })).await;
    assert_eq!(
        d["importInventory"],
        json!({ "edges": 0, "edgesClosed": 0, "edgesAbsentPaused": 1, "ungovernedNhis": 0, "sourceStale": true })
    );
    let access = "query($n: ID!) { node(id: $n) { ... on Nhi { access { system { name } } } } }";
    let open = s.ok(&ada, access, json!({ "n": w.id("bot") })).await;
    assert!(open.to_string().contains("prod-vault"), "the edge stays open: {open}");

    // Repaired by that run, the source's next complete run closes it.
    let d = s.ok(&sam, import, json!({ "d": without })).await;
    assert_eq!(d["importInventory"]["edgesClosed"], 1, "{d}");
    assert_eq!(d["importInventory"]["edgesAbsentPaused"], 0, "{d}");
    let open = s.ok(&ada, access, json!({ "n": w.id("bot") })).await;
    assert!(!open.to_string().contains("prod-vault"), "closed: {open}");
    s.stop().await;
}

/// A machine principal acts through its API tokens only: it cannot sign in, and no
/// admin can make it one who decides.
#[tokio::test]
async fn a_machine_principal_cannot_sign_in_or_decide() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let (status, _) = s.gql(&s.token("ci-scanner@corp.example"), "{ me { email } }", json!({})).await;
    assert_eq!(status, 401, "a machine principal has no sign-in");
    let token = s.ingest_token(&w, "ci").await;
    let d = s.ok(&token, "{ me { email machine roles } }", json!({})).await;
    assert_eq!(d["me"], json!({ "email": "ci-scanner@corp.example", "machine": true, "roles": ["INGEST"] }));

    let start = chain_length(&s).await;
    for role in ["ADMIN", "APPROVER"] {
        let (_, body) = s
            .gql(
                &s.as_("sam"),
                "mutation($p: ID!, $r: [Role!]!) { updatePerson(id: $p, input: { roles: $r }) { decision { id } } }",
                json!({ "p": w.id("ci"), "r": ["INGEST", role] }),
            )
            .await;
        assert_eq!(code(&body), "SOD_VIOLATION", "{role}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["rule"], "machine_cannot_decide", "{body}");
    }
    assert_eq!(chain_length(&s).await, start + 2, "both refusals are on record");
    s.stop().await;
}

/// The leaver path: a feed may report a person gone, which deactivates them as a
/// decision of the feed's principal (and flags what they owned), but a feed never
/// brings anyone back, nor removes an admin, approver or auditor.
#[tokio::test]
async fn a_feed_may_report_a_leaver_but_never_bring_one_back() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let feed = s.ingest_token(&w, "ci").await;
    let olga = |active: bool| json!({ "source": "hr", "nodes": [{ "type": "person", "ref": "o", "name": "olga", "email": "olga@corp.example", "active": active }] });
    let import = "mutation($d: JSON!) { importInventory(document: $d) { nodesUpdated } }";
    // Olga no longer approves (a feed does not remove people who govern; see below).
    let revoke = "mutation($p: ID!) { updatePerson(id: $p, input: { roles: [] }) { decision { outcome } } }";
    s.ok(&s.as_("sam"), revoke, json!({ "p": w.id("olga") })).await;
    let d = s.ok(&feed, import, json!({ "d": olga(false) })).await;
    assert_eq!(d["importInventory"]["nodesUpdated"], 1);
    assert_eq!(node(&s, w.id("olga"), "Person", "active").await["active"], false);
    let trail = s
        .ok(
            &s.as_("ada"),
            "query($i: ID!) { decisionTrail(subjectId: $i) { kind outcome actor { email } } }",
            json!({ "i": w.id("olga") }),
        )
        .await;
    let last = trail["decisionTrail"].as_array().unwrap().last().cloned().unwrap();
    assert_eq!(
        last,
        json!({ "kind": "CHANGE", "outcome": "APPLIED", "actor": { "email": "ci-scanner@corp.example" } })
    );
    // Olga was the only member of the team owning deploy-bot: it has no active owner now.
    let alerts =
        s.ok(&s.as_("ada"), "{ alerts(filter: { source: \"nhigov\" }) { edges { node { rule } } } }", json!({})).await;
    assert!(alerts.to_string().contains("ownership_stale"), "{alerts}");

    // Reported active again: described, not governed; she stays gone.
    s.ok(&feed, import, json!({ "d": olga(true) })).await;
    assert_eq!(node(&s, w.id("olga"), "Person", "active").await["active"], false);

    // A feed (or a leaked feed token) does not remove the people who govern: the admin
    // reported gone stays, and the answer names him for an admin to look at.
    let sam = json!({ "source": "hr", "nodes": [{ "type": "person", "ref": "s", "name": "sam", "email": "sam@corp.example", "active": false }] });
    let held = "mutation($d: JSON!) { importInventory(document: $d) { leaversHeld } }";
    let d = s.ok(&feed, held, json!({ "d": sam })).await;
    assert_eq!(d["importInventory"]["leaversHeld"], json!(["sam@corp.example"]));
    assert_eq!(node(&s, w.id("sam"), "Person", "active").await["active"], true);
    s.stop().await;
}
