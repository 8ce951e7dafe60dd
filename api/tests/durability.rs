//! An answered write survives SIGKILL: the real binary on an embedded store is killed
//! right after a mutation answered, restarted on the same directory, and the write is
//! there. (This test lives with the binary because it runs the binary itself.)

use std::time::{Duration, Instant};

use crate::running::Server;

use nhigov::auth::Authenticator;
use serde_json::{Value, json};

const SECRET: &str = "durability-secret-durability-secret!!";

fn start(dir: &std::path::Path) -> Server {
    crate::running::start(dir, SECRET)
}

fn post(client: &reqwest::blocking::Client, addr: &str, token: &str, query: &str, vars: Value) -> Value {
    let resp = client
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": vars }))
        .send()
        .expect("the server answers");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

#[test]
fn a_write_answered_before_sigkill_is_there_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("data");
    let token = Authenticator::with_secret(SECRET)
        .mint(&graph_model::Email::parse(nhigov::demo::DEMO_ADMIN).unwrap(), chrono::Duration::hours(1))
        .unwrap();
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();

    let mut names = Vec::new();
    for round in 0..3 {
        let mut server = start(&store_dir);
        for i in 0..5 {
            let name = format!("team-{round}-{i}");
            let d = post(
                &client,
                &server.addr,
                &token,
                "mutation($n: String!) { createTeam(input: { name: $n }) { id } }",
                json!({ "n": name }),
            );
            assert!(d["createTeam"]["id"].is_string());
            names.push(name);
        }
        // The last mutation has answered: kill at once, no chance to flush anything.
        server.child.kill().expect("SIGKILL");
        server.child.wait().unwrap();
    }

    let started = Instant::now();
    let mut server = start(&store_dir);
    let d = post(&client, &server.addr, &token, "{ teams(first: 100) { edges { node { name } } } }", json!({}));
    let found: Vec<String> = d["teams"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap().to_owned())
        .collect();
    for name in &names {
        assert!(found.contains(name), "{name} was answered but lost; found {found:?}");
    }
    println!("restarted and verified {} writes in {:?}", names.len(), started.elapsed());
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
