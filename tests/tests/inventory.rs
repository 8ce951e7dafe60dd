//! Keeping the inventory through the API: nodes, edges, lists, imports.

use nhigov_tests::{TestServer, code};
use serde_json::{Value, json};

const CREATE_NHI: &str = "mutation($i: CreateNhiInput!) { createNhi(input: $i) { id name kind environment status } }";
const CREATE_SYSTEM: &str = "mutation($i: CreateSystemInput!) { createSystem(input: $i) { id } }";
const RELATE: &str = "mutation($i: RelateInput!) { relate(input: $i) { relation { id kind validTo from { id } to { id } } decision { outcome } } }";

async fn nhi(s: &TestServer, t: &str, name: &str, env: &str) -> String {
    let d = s.ok(t, CREATE_NHI, json!({ "i": { "kind": "TOKEN", "name": name, "environment": env } })).await;
    d["createNhi"]["id"].as_str().unwrap().to_owned()
}

async fn system(s: &TestServer, t: &str, name: &str, kind: &str) -> String {
    let d = s
        .ok(
            t,
            CREATE_SYSTEM,
            json!({ "i": { "kind": kind, "name": name, "environment": "PRODUCTION", "criticality": "TIER0" } }),
        )
        .await;
    d["createSystem"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_nhi_is_created_read_back_and_updated() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let d = s
        .ok(&t, CREATE_NHI, json!({ "i": { "kind": "SERVICE_ACCOUNT", "name": " ci-bot ", "environment": "STAGING" } }))
        .await;
    let id = d["createNhi"]["id"].as_str().unwrap();
    assert!(id.starts_with("nhi:"));
    assert_eq!(d["createNhi"]["name"], "ci-bot", "names are trimmed");
    assert_eq!(d["createNhi"]["status"], "ACTIVE");
    let d = s
        .ok(
            &t,
            "mutation($id: ID!) { updateNhi(id: $id, input: { status: DISABLED }) { nhi { status name } decision { outcome kind } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        d["updateNhi"],
        json!({ "nhi": { "status": "DISABLED", "name": "ci-bot" }, "decision": { "outcome": "APPLIED", "kind": "CHANGE" } }),
        "a status change is a recorded decision"
    );
    let d = s.ok(&t, "query($id: ID!) { node(id: $id) { id ... on Nhi { status } } }", json!({ "id": id })).await;
    assert_eq!(d["node"]["status"], "DISABLED");
}

#[tokio::test]
async fn invalid_input_names_its_field() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let (_, body) =
        s.gql(&t, CREATE_NHI, json!({ "i": { "kind": "TOKEN", "name": "   ", "environment": "TEST" } })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "name");
    let (_, body) =
        s.gql(&t, "mutation { createPerson(input: { name: \"X\", email: \"not-an-email\" }) { id } }", json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "email");
}

#[tokio::test]
async fn updating_a_missing_node_is_not_found() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let (_, body) = s
        .gql(&t, "mutation { updateNhi(id: \"nhi:doesnotexist\", input: { name: \"x\" }) { nhi { id } } }", json!({}))
        .await;
    assert_eq!(code(&body), "NOT_FOUND");
    let (_, body) =
        s.gql(&t, "mutation { updateNhi(id: \"team:abc\", input: { name: \"x\" }) { nhi { id } } }", json!({})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn an_edge_is_opened_once_and_closed_into_history() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let api = system(&s, &t, "payments-api", "APPLICATION").await;
    let db = system(&s, &t, "db", "DATABASE").await;
    // A dependency carries no governed fact: opened at once, no decision.
    let link = json!({ "i": { "kind": "DEPENDS_ON", "from": api, "to": db } });
    let d = s.ok(&t, RELATE, link.clone()).await;
    let edge = d["relate"]["relation"]["id"].as_str().unwrap().to_owned();
    assert!(edge.starts_with("depends_on:"));
    assert_eq!(d["relate"]["relation"]["from"]["id"], api.as_str());
    assert!(d["relate"]["decision"].is_null());

    let (_, body) = s.gql(&t, RELATE, link.clone()).await;
    assert_eq!(code(&body), "CONFLICT", "a second open edge between the same nodes: {body}");

    let q = "query($id: ID!) { node(id: $id) { ... on System { dependents { name } } } }";
    let d = s.ok(&t, q, json!({ "id": db })).await;
    assert_eq!(d["node"]["dependents"], json!([{ "name": "payments-api" }]));

    let close = "mutation($id: ID!) { closeRelation(id: $id) { relation { validTo } } }";
    let d = s.ok(&t, close, json!({ "id": edge })).await;
    assert!(d["closeRelation"]["relation"]["validTo"].is_string());
    let d = s.ok(&t, q, json!({ "id": db })).await;
    assert_eq!(d["node"]["dependents"], json!([]));

    let (_, body) = s.gql(&t, close, json!({ "id": edge })).await;
    assert_eq!(code(&body), "CONFLICT", "closing twice");
    // once closed, the relation can be opened again
    s.ok(&t, RELATE, link).await;
}

#[tokio::test]
async fn opening_and_closing_access_are_decisions() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let n = nhi(&s, &t, "deploy", "STAGING").await;
    let app = s
        .ok(
            &t,
            CREATE_SYSTEM,
            json!({ "i": { "kind": "APPLICATION", "name": "wiki", "environment": "STAGING", "criticality": "TIER3" } }),
        )
        .await["createSystem"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let grant = json!({ "i": { "kind": "CAN_ACCESS", "from": n, "to": app, "privilege": "READ" } });
    // Access to an NHI nobody owns is refused, and the refusal is on record.
    let (_, body) = s.gql(&t, RELATE, grant.clone()).await;
    assert_eq!(code(&body), "SOD_VIOLATION", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["rule"], "grant_needs_active_owner");
    let d = s.ok(&t, "{ me { id } }", json!({})).await;
    let owns = json!({ "i": { "kind": "OWNS", "from": d["me"]["id"], "to": n } });
    let d = s.ok(&t, RELATE, owns).await;
    assert_eq!(d["relate"]["decision"]["outcome"], "APPLIED", "ownership is governed: {d}");
    // Read access to a tier3 staging system is not privileged: it applies, recorded.
    let d = s.ok(&t, RELATE, grant).await;
    assert_eq!(d["relate"]["decision"]["outcome"], "APPLIED", "{d}");
    let edge = d["relate"]["relation"]["id"].as_str().unwrap().to_owned();
    let d = s
        .ok(
            &t,
            "mutation($id: ID!) { closeRelation(id: $id) { relation { validTo } decision { outcome kind } } }",
            json!({ "id": edge }),
        )
        .await;
    assert_eq!(d["closeRelation"]["decision"], json!({ "outcome": "APPLIED", "kind": "CHANGE" }));
    assert!(d["closeRelation"]["relation"]["validTo"].is_string());
}

#[tokio::test]
async fn edges_are_checked_for_their_endpoints() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let n = nhi(&s, &t, "deploy", "PRODUCTION").await;
    let db = system(&s, &t, "db", "DATABASE").await;
    let (_, body) = s.gql(&t, RELATE, json!({ "i": { "kind": "HOLDS", "from": db, "to": n } })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    let (_, body) = s.gql(&t, RELATE, json!({ "i": { "kind": "CAN_ACCESS", "from": n, "to": db } })).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "privilege");
    let (_, body) = s
        .gql(
            &t,
            RELATE,
            json!({ "i": { "kind": "CAN_ACCESS", "from": n, "to": "system:missing", "privilege": "READ" } }),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND");
    let d = s
        .ok(
            &t,
            CREATE_SYSTEM,
            json!({ "i": { "kind": "DATABASE", "name": "not-a-vault", "environment": "PRODUCTION" } }),
        )
        .await;
    let not_vault = d["createSystem"]["id"].as_str().unwrap();
    let sec = s
        .ok(&t, "mutation { createSecret(input: { kind: PASSWORD, name: \"pw\", fingerprint: \"0123456789abcdef\" }) { id } }", json!({}))
        .await;
    let (_, body) = s
        .gql(&t, RELATE, json!({ "i": { "kind": "STORED_IN", "from": sec["createSecret"]["id"], "to": not_vault } }))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "to");
}

#[tokio::test]
async fn duplicate_emails_and_fingerprints_conflict() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let q = "mutation { createPerson(input: { name: \"A\", email: \"a@test.example\" }) { id } }";
    s.ok(&t, q, json!({})).await;
    let (_, body) = s.gql(&t, &q.replace("\"A\"", "\"B\"").replace("a@", "A@"), json!({})).await;
    assert_eq!(code(&body), "CONFLICT");
    let q = "mutation { createSecret(input: { kind: TOKEN, name: \"t\", fingerprint: \"ABCDEF0123456789\" }) { id } }";
    s.ok(&t, q, json!({})).await;
    let (_, body) = s.gql(&t, &q.replace("ABCDEF", "abcdef"), json!({})).await;
    assert_eq!(code(&body), "CONFLICT");
}

#[tokio::test]
async fn lists_page_forward_with_totals_and_filters() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    for i in 0..7 {
        nhi(&s, &t, &format!("tok-{i}"), if i % 2 == 0 { "PRODUCTION" } else { "STAGING" }).await;
    }
    let q = "query($after: String, $f: NhiFilter) { nhis(first: 3, after: $after, filter: $f) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { name } } } }";
    let mut names = Vec::new();
    let mut after = Value::Null;
    loop {
        let d = s.ok(&t, q, json!({ "after": after })).await;
        assert_eq!(d["nhis"]["totalCount"], 7);
        for e in d["nhis"]["edges"].as_array().unwrap() {
            names.push(e["node"]["name"].as_str().unwrap().to_owned());
        }
        if !d["nhis"]["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = d["nhis"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(names, (0..7).map(|i| format!("tok-{i}")).collect::<Vec<_>>(), "creation order, no repeats");

    let d = s.ok(&t, q, json!({ "f": { "environment": "STAGING" } })).await;
    assert_eq!(d["nhis"]["totalCount"], 3);
    let d = s.ok(&t, q, json!({ "f": { "nameContains": "TOK-6" } })).await;
    assert_eq!(d["nhis"]["totalCount"], 1);
    // The count is made only when selected, however it is selected.
    let d = s
        .ok(
            &t,
            "{ nhis(filter: { environment: STAGING }) { ...Count } } fragment Count on NhiConnection { totalCount }",
            json!({}),
        )
        .await;
    assert_eq!(d["nhis"]["totalCount"], 3, "through a fragment");
    let d = s
        .ok(&t, "{ nhis(filter: { environment: STAGING }) { ... on NhiConnection { n: totalCount } } }", json!({}))
        .await;
    assert_eq!(d["nhis"]["n"], 3, "through an inline fragment and an alias");
    let (_, body) = s.gql(&t, q, json!({ "after": "garbage" })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn the_owner_filter_follows_team_membership() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let doc = json!({
        "nodes": [
            { "type": "person", "ref": "p", "name": "Priya", "email": "priya@test.example" },
            { "type": "team", "ref": "platform", "name": "Platform" },
            { "type": "nhi", "ref": "direct", "kind": "token", "name": "direct", "environment": "production" },
            { "type": "nhi", "ref": "via-team", "kind": "token", "name": "via-team", "environment": "production" },
            { "type": "nhi", "ref": "other", "kind": "token", "name": "other", "environment": "production" },
            { "type": "nhi", "ref": "was-mine", "kind": "token", "name": "was-mine", "environment": "production" }
        ],
        "edges": [
            { "type": "member_of", "from": "p", "to": "platform" },
            { "type": "owns", "from": "p", "to": "direct" },
            { "type": "owns", "from": "platform", "to": "via-team" },
            { "type": "owns", "from": "p", "to": "was-mine", "valid_from": "now-10d", "valid_to": "now-1d" }
        ]
    });
    let d =
        s.ok(&t, "mutation($d: JSON!) { importInventory(document: $d) { ids { ref id } } }", json!({ "d": doc })).await;
    let id_of =
        |r: &str| d["importInventory"]["ids"].as_array().unwrap().iter().find(|i| i["ref"] == r).unwrap()["id"].clone();
    let q = "query($o: ID!) { nhis(filter: { owner: $o }) { totalCount edges { node { name } } } }";
    let mine = s.ok(&t, q, json!({ "o": id_of("p") })).await;
    let mut names: Vec<&str> =
        mine["nhis"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["direct", "via-team"]);
    assert_eq!(mine["nhis"]["totalCount"], 2);
    let team = s.ok(&t, q, json!({ "o": id_of("platform") })).await;
    assert_eq!(team["nhis"]["totalCount"], 1);
}

#[tokio::test]
async fn an_import_is_all_or_nothing_with_every_fault_named() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let doc = json!({
        "nodes": [
            { "type": "team", "ref": "ok", "name": "Fine" },
            { "type": "nhi", "ref": "bad", "kind": "robot", "name": "x", "environment": "production" },
            { "type": "system", "ref": "sys", "kind": "database", "name": "db", "environment": "moon" }
        ],
        "edges": [ { "type": "owns", "from": "ok", "to": "nowhere" } ]
    });
    let (status, body) =
        s.gql(&t, "mutation($d: JSON!) { importInventory(document: $d) { nodes } }", json!({ "d": doc })).await;
    assert_eq!(status, 200);
    assert_eq!(code(&body), "BAD_USER_INPUT");
    let items = body["errors"][0]["extensions"]["items"].as_array().unwrap();
    let at = |item: &str, field: &str| items.iter().any(|i| i["item"] == item && i["field"] == field);
    assert!(at("nodes[1]", "kind") && at("nodes[2]", "environment") && at("edges[0]", "to"), "{items:?}");
    assert_eq!(items.iter().find(|i| i["item"] == "nodes[1]").unwrap()["ref"], "bad");
    let d = s.ok(&t, "{ teams { totalCount } }", json!({})).await;
    assert_eq!(d["teams"]["totalCount"], 0, "nothing of a refused document is written");
}

#[tokio::test]
async fn an_import_matches_stored_nodes_by_natural_key_instead_of_duplicating_them() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let doc = json!({ "source": "hr-feed", "nodes": [
        { "type": "team", "ref": "t", "name": "New team" },
        { "type": "person", "ref": "me", "name": "Admin Renamed", "email": "admin@test.example" }
    ], "edges": [ { "type": "member_of", "from": "me", "to": "t" } ] });
    let m = "mutation($d: JSON!) { importInventory(document: $d) { nodes nodesUpdated edges edgesKept edgesClosed } }";
    let d = s.ok(&t, m, json!({ "d": doc.clone() })).await;
    assert_eq!(
        d["importInventory"],
        json!({ "nodes": 1, "nodesUpdated": 1, "edges": 1, "edgesKept": 0, "edgesClosed": 0 })
    );
    let d = s.ok(&t, m, json!({ "d": doc })).await;
    assert_eq!(
        d["importInventory"],
        json!({ "nodes": 0, "nodesUpdated": 2, "edges": 0, "edgesKept": 1, "edgesClosed": 0 })
    );
    let d = s.ok(&t, "{ me { name roles } people { totalCount } teams { totalCount } }", json!({})).await;
    assert_eq!(d["me"]["name"], "Admin Renamed");
    assert_eq!(d["me"]["roles"], json!(["ADMIN"]), "a feed refreshes a person's name, never their roles");
    assert_eq!((d["people"]["totalCount"].as_u64(), d["teams"]["totalCount"].as_u64()), (Some(1), Some(1)));
}

#[tokio::test]
async fn an_import_can_attach_to_stored_nodes() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let db = system(&s, &t, "db", "DATABASE").await;
    let doc = json!({
        "nodes": [ { "type": "nhi", "ref": "n", "kind": "api_key", "name": "k", "environment": "production" } ],
        "edges": [ { "type": "can_access", "from": "n", "to": db, "privilege": "read" },
                   { "type": "can_access", "from": "n", "to": "system:0000missing", "privilege": "read" } ]
    });
    let (_, body) =
        s.gql(&t, "mutation($d: JSON!) { importInventory(document: $d) { nodes } }", json!({ "d": doc.clone() })).await;
    assert_eq!(body["errors"][0]["extensions"]["items"][0]["item"], "edges[1]", "{body}");
    let mut doc = doc;
    doc["edges"].as_array_mut().unwrap().pop();
    let d =
        s.ok(&t, "mutation($d: JSON!) { importInventory(document: $d) { nodes edges } }", json!({ "d": doc })).await;
    assert_eq!(d["importInventory"], json!({ "nodes": 1, "edges": 1 }));
    let q = "query($id: ID!) { node(id: $id) { ... on System { accessors { totalCount edges { node { nhi { name } } } } } } }";
    let d = s.ok(&t, q, json!({ "id": db })).await;
    assert_eq!(d["node"]["accessors"]["totalCount"], 1);
    assert_eq!(d["node"]["accessors"]["edges"][0]["node"]["nhi"]["name"], "k");
}

#[tokio::test]
async fn an_investigator_finds_a_node_by_the_key_in_hand() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    // The value a scanner found; the inventory knows only its SHA-256.
    let sha256 = graph_model::Fingerprint::of_value("ghp_leaked_example_value").to_string();
    let d = s
        .ok(
            &t,
            "mutation($fp: String!) { createSecret(input: { kind: TOKEN, name: \"Deploy token\", fingerprint: $fp }) { id } }",
            json!({ "fp": sha256.to_uppercase() }),
        )
        .await;
    let secret = d["createSecret"]["id"].as_str().unwrap().to_owned();
    let by_fp = "query($fp: String!) { secretByFingerprint(fingerprint: $fp) { id name } }";
    use base64::Engine;
    let openssh =
        format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(hex::decode(&sha256).unwrap()));
    for asked in [sha256.clone(), sha256.to_uppercase(), format!("sha256:{sha256}"), openssh] {
        let d = s.ok(&t, by_fp, json!({ "fp": asked })).await;
        assert_eq!(d["secretByFingerprint"]["id"], secret.as_str(), "looked up as {asked}");
    }
    let d = s.ok(&t, by_fp, json!({ "fp": "0".repeat(64) })).await;
    assert_eq!(d["secretByFingerprint"], Value::Null, "an unknown digest is null, not an error");
    let (_, body) = s.gql(&t, by_fp, json!({ "fp": "short" })).await;
    assert_eq!(
        (code(&body), body["errors"][0]["extensions"]["field"].as_str()),
        ("BAD_USER_INPUT", Some("fingerprint"))
    );

    let d = s
        .ok(
            &t,
            CREATE_NHI,
            json!({ "i": { "kind": "SERVICE_ACCOUNT", "name": "Billing-Exporter", "environment": "PRODUCTION",
                           "provider": "gcp", "externalId": "billing-exporter@corp.iam.gserviceaccount.com" } }),
        )
        .await;
    let exporter = d["createNhi"]["id"].as_str().unwrap().to_owned();
    let by_ext = "query($p: String!, $x: String!) { nhiByExternalId(provider: $p, externalId: $x) { id } }";
    let d = s.ok(&t, by_ext, json!({ "p": "gcp", "x": "billing-exporter@corp.iam.gserviceaccount.com" })).await;
    assert_eq!(d["nhiByExternalId"]["id"], exporter.as_str());
    let d = s.ok(&t, by_ext, json!({ "p": "aws", "x": "billing-exporter@corp.iam.gserviceaccount.com" })).await;
    assert_eq!(d["nhiByExternalId"], Value::Null, "the id is the provider's: another provider's is another NHI");

    let d = s
        .ok(
            &t,
            "mutation { createPerson(input: { name: \"Bea Owner\", email: \"bea@corp.example\" }) { id } }",
            json!({}),
        )
        .await;
    let bea = d["createPerson"]["id"].as_str().unwrap().to_owned();
    let d = s.ok(&t, "{ personByEmail(email: \" Bea@Corp.Example \") { id name } }", json!({})).await;
    assert_eq!(d["personByEmail"]["id"], bea.as_str());
    let (_, body) = s.gql(&t, "{ personByEmail(email: \"bea\") { id } }", json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "email");

    // The search box: a name prefix in any case, across kinds, by name.
    nhi(&s, &t, "billing-cron", "PRODUCTION").await;
    nhi(&s, &t, "payroll-bot", "PRODUCTION").await;
    system(&s, &t, "Billing DB", "DATABASE").await;
    let names = |d: &Value| -> Vec<String> {
        d["search"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| format!("{}:{}", n["__typename"].as_str().unwrap(), n["name"].as_str().unwrap()))
            .collect()
    };
    let q = "query($p: String!, $k: [SearchKind!], $n: Int) { search(prefix: $p, kinds: $k, first: $n) { __typename ... on Nhi { name } ... on System { name } ... on Secret { name } ... on Person { name } ... on Team { name } } }";
    let d = s.ok(&t, q, json!({ "p": "BILL" })).await;
    assert_eq!(names(&d), ["System:Billing DB", "Nhi:billing-cron", "Nhi:Billing-Exporter"]);
    let d = s.ok(&t, q, json!({ "p": "bill", "k": ["SYSTEM"] })).await;
    assert_eq!(names(&d), ["System:Billing DB"]);
    let d = s.ok(&t, q, json!({ "p": "bill", "n": 1 })).await;
    assert_eq!(names(&d), ["System:Billing DB"], "at most `first`, the first by name");
    let d = s.ok(&t, q, json!({ "p": "b" })).await;
    assert!(names(&d).contains(&"Person:Bea Owner".to_owned()), "people are searched too: {d}");
    let (_, body) = s.gql(&t, q, json!({ "p": "  " })).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "prefix");
    let (_, body) = s.gql(&t, q, json!({ "p": "b", "n": 101 })).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "first");
    // A rename is found under its new name at once.
    s.ok(
        &t,
        "mutation($id: ID!) { updateNhi(id: $id, input: { name: \"zeta-exporter\" }) { nhi { id } } }",
        json!({ "id": exporter }),
    )
    .await;
    let d = s.ok(&t, q, json!({ "p": "ZETA" })).await;
    assert_eq!(names(&d), ["Nhi:zeta-exporter"]);
    s.stop().await;
}
