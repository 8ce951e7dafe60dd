//! Test support: the real server on port 0 over its own in-memory store, and a client
//! that talks to it as any GraphQL client does.

use std::net::SocketAddr;

use graph_model::inventory::NodeSpec;
use graph_model::store::{Store, StoreConfig};
use graph_model::{Email, InventoryNode, Name, NewPerson, NodeId, Role};
use nhigov::auth::Authenticator;
use nhigov::config::Config;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The HS256 secret the test servers sign with.
pub const SECRET: &str = "test-secret-test-secret-test-secret!";

/// A running server and what a test needs to talk to it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Store,
    pub auth: Authenticator,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Start with default configuration.
    pub async fn start() -> TestServer {
        TestServer::start_with(Config::default()).await
    }

    /// Start with the given configuration (its `db` and `bind` are replaced: the store
    /// is the test store, with the rest of the configuration's store settings).
    pub async fn start_with(cfg: Config) -> TestServer {
        let store_cfg = StoreConfig { feed_freshness: cfg.store_config().feed_freshness, ..StoreConfig::for_tests() };
        let store = Store::open(&store_cfg).await.expect("the test store opens");
        TestServer::start_on(cfg, store).await
    }

    /// Start over an open store: a second server over `first.store.as_replica()` is a
    /// second API replica sharing the first one's database.
    pub async fn start_on(mut cfg: Config, store: Store) -> TestServer {
        // NHIGOV_TEST_LOG=warn (any filter) shows the servers' logs in a test's output.
        if let Ok(filter) = std::env::var("NHIGOV_TEST_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
        cfg.auth.jwt_secret = Some(SECRET.into());
        // From the configuration, as `serve` builds it: an identity provider a test
        // configures is used beside the HS256 secret the test mints with.
        let auth = Authenticator::from_config(&cfg.auth, cfg.mode, None).expect("the test's auth configuration");
        // The service as `nhigov serve` composes it: index warm-up, sweep, webhooks.
        let app = nhigov::app::App::start(&cfg, store.clone(), auth.clone()).expect("the app starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("bound address");
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.serve(listener, async {
            let _ = rx.await;
        }));
        let server =
            TestServer { addr, store, auth, http: reqwest::Client::new(), stop: Some(tx), handle: Some(handle) };
        // As a deployment waits on /readyz before sending traffic: the graph index loads
        // at start (in the background, as `serve` loads it).
        for _ in 0..1500 {
            match server.http.get(server.url("/readyz")).send().await {
                Ok(r) if r.status() == 200 => return server,
                _ => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
        panic!("the test server was not ready within 30 seconds");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Add a person to the store and give them `roles` by the genesis decision, as a
    /// deployment's first people get theirs: before any other decision.
    pub async fn person(&self, name: &str, email: &str, roles: &[Role]) -> NodeId {
        self.people(&[(name, email, roles)]).await.remove(0)
    }

    /// Add people, with one genesis decision for all their roles (before any other
    /// decision: the chain must be empty).
    pub async fn people(&self, people: &[(&str, &str, &[Role])]) -> Vec<NodeId> {
        let mut ids = Vec::new();
        let mut grants = Vec::new();
        for (name, email, roles) in people {
            let spec = NodeSpec::Person(NewPerson {
                name: Name::parse(name).unwrap(),
                email: Email::parse(email).unwrap(),
                active: true,
                machine: false,
            });
            let id = match self.store.create_node(&spec).await.expect("person created") {
                InventoryNode::Person(p) => p.id,
                other => panic!("expected a person, got {other:?}"),
            };
            if !roles.is_empty() {
                grants.push((id.clone(), roles.to_vec()));
            }
            ids.push(id);
        }
        if !grants.is_empty() {
            let why = graph_model::Text::parse("the test's first roles").unwrap();
            self.store.genesis(&grants, &why, false).await.expect("roles are given before any other decision");
        }
        ids
    }

    /// A token for `email`, valid for an hour.
    pub fn token(&self, email: &str) -> String {
        self.auth.mint(&Email::parse(email).unwrap(), chrono::Duration::hours(1)).unwrap()
    }

    /// An admin, created once per server, and their token.
    pub async fn admin(&self) -> String {
        let email = "admin@test.example";
        if self.store.person_by_email(&Email::parse(email).unwrap()).await.unwrap().is_none() {
            self.person("Admin", email, &[Role::Admin]).await;
        }
        self.token(email)
    }

    /// POST a GraphQL request; the status and the JSON body.
    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url("/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// POST a GraphQL request that must succeed without errors; its `data`.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let (status, body) = self.gql(token, query, variables).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Is the server still answering?
    pub async fn healthy(&self) -> bool {
        matches!(self.http.get(self.url("/healthz")).send().await, Ok(r) if r.status().is_success())
    }

    /// Stop the server and wait for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("server task").expect("server ran");
        }
    }
}

/// The first error's code in a GraphQL response body.
pub fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

/// A small governed world: people with each role, an NHI owned through a team, an
/// orphaned NHI, a secret, a tier1 database and a tier0 vault.
pub struct World {
    ids: std::collections::HashMap<String, String>,
}

impl World {
    /// The id of a node of the world by its ref (`bot`, `vault`, `olga`...).
    pub fn id(&self, r: &str) -> &str {
        self.ids.get(r).unwrap_or_else(|| panic!("no {r} in the world"))
    }
}

/// The people of [`World`]: ref, e-mail and roles.
pub const PEOPLE: &[(&str, &str, &[&str])] = &[
    ("ines", "ines@corp.example", &["investigator"]),
    ("priya", "priya@corp.example", &["investigator", "approver"]),
    ("jules", "jules@corp.example", &["approver"]),
    ("kim", "kim@corp.example", &["approver"]),
    ("olga", "olga@corp.example", &["approver"]),
    ("ada", "ada@corp.example", &["auditor"]),
    ("vic", "vic@corp.example", &["viewer"]),
    ("scanner", "scanner@corp.example", &["ingest"]),
    ("sam", "sam@corp.example", &["admin"]),
    ("ana", "ana@corp.example", &["admin"]),
];

/// The machine principals of [`World`] (they act through API tokens only): ref,
/// e-mail and roles.
pub const MACHINES: &[(&str, &str, &[&str])] = &[("ci", "ci-scanner@corp.example", &["ingest"])];

/// The fingerprint of the world's leaked key.
pub const LEAKED_FINGERPRINT: &str = "fp-leaked-key-0001";

impl TestServer {
    /// Load [`World`] straight into the store.
    pub async fn world(&self) -> World {
        let mut nodes: Vec<Value> = PEOPLE
            .iter()
            .map(|(r, email, roles)| json!({ "type": "person", "ref": r, "name": r, "email": email, "roles": roles }))
            .collect();
        nodes.extend(MACHINES.iter().map(|(r, email, roles)| {
            json!({ "type": "person", "ref": r, "name": r, "email": email, "roles": roles, "machine": true })
        }));
        nodes.extend([
            json!({"type": "team", "ref": "payments", "name": "Payments"}),
            json!({"type": "nhi", "ref": "bot", "kind": "service_account", "name": "deploy-bot", "environment": "production", "external_id": "bot-1", "last_used_at": "now-1d"}),
            json!({"type": "nhi", "ref": "orphan", "kind": "token", "name": "orphan-token", "environment": "production"}),
            json!({"type": "secret", "ref": "key", "kind": "api_key", "name": "deploy key", "fingerprint": LEAKED_FINGERPRINT}),
            json!({"type": "system", "ref": "db", "kind": "database", "name": "ledger-db", "environment": "production", "criticality": "tier1"}),
            json!({"type": "system", "ref": "vault", "kind": "vault", "name": "prod-vault", "environment": "production", "criticality": "tier0"}),
        ]);
        let doc = json!({
            "nodes": nodes,
            "edges": [
                {"type": "member_of", "from": "olga", "to": "payments"},
                {"type": "owns", "from": "payments", "to": "bot"},
                {"type": "owns", "from": "olga", "to": "vault"},
                {"type": "owns", "from": "olga", "to": "db"},
                {"type": "holds", "from": "bot", "to": "key"},
                {"type": "authenticates_to", "from": "key", "to": "db"},
                {"type": "can_access", "from": "bot", "to": "db", "privilege": "write"},
            ]
        });
        let why = graph_model::Text::parse("the test world's first roles").unwrap();
        let (summary, _) = self.store.bootstrap(&doc, chrono::Utc::now(), &why).await.expect("world loads");
        World { ids: summary.ids.into_iter().map(|(r, id)| (r, id.to_string())).collect() }
    }

    /// The world's scanner reports a new finding about the leaked key; the alert's id.
    pub async fn raise_alert(&self, rule: &str, severity: &str) -> String {
        let input = json!({ "source": "scanner", "rule": rule, "severity": severity, "title": rule, "fingerprint": LEAKED_FINGERPRINT });
        let d = self
            .ok(
                &self.as_("scanner"),
                "mutation($i: AlertInput!) { ingestAlert(input: $i) { alert { id } } }",
                json!({ "i": input }),
            )
            .await;
        d["ingestAlert"]["alert"]["id"].as_str().expect("an alert id").to_owned()
    }

    /// An ingest-scoped API token for the world's machine `principal` (by ref): Sam asks
    /// for it and Ana, the second admin, approves it, as a token for a machine needs.
    pub async fn ingest_token(&self, w: &World, principal: &str) -> String {
        let d = self
            .ok(
                &self.as_("sam"),
                "mutation($p: ID!) { createApiToken(principalId: $p, name: \"scanner\", scopes: [INGEST]) { token request { id } } }",
                json!({ "p": w.id(principal) }),
            )
            .await;
        let approve = "mutation($r: ID!) { decideRequest(id: $r, outcome: APPROVE, rationale: \"a scanner\") { request { status } } }";
        let a = self.ok(&self.as_("ana"), approve, json!({ "r": d["createApiToken"]["request"]["id"] })).await;
        assert_eq!(a["decideRequest"]["request"]["status"], "APPROVED", "{a}");
        d["createApiToken"]["token"].as_str().expect("a token").to_owned()
    }

    /// A token for one of the world's people by ref.
    pub fn as_(&self, who: &str) -> String {
        let email = PEOPLE.iter().find(|(r, _, _)| *r == who).unwrap_or_else(|| panic!("no person {who}")).1;
        self.token(email)
    }
}
