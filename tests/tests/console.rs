//! The investigation console in a real headless Chromium, driven by
//! `node-clients/console.mjs` against a server holding the demo data: sign in, search
//! `gh-actions-deploy`, open its blast radius and a path and check that what is drawn is
//! what the API answers, open a case and grow its timeline from the page (evidence, a
//! snapshot, a containment request), see a viewer's attempt
//! refused in the API's words, be sent back to sign-in by a refused token, and be signed
//! in by the token a browser sign-in hands over in the fragment. Every
//! page is checked at 1280x800 for sideways scrolling and for keyboard focus, and its
//! screenshot kept under `<target>/console-screenshots/`.
//!
//! Chromium is Debian's `chromium` (`.ci/run` installs it); `CHROMIUM` names another.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use nhigov_tests::TestServer;
use serde_json::{Value, json};

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("console-screenshots")
}

#[tokio::test]
async fn console_pages_are_served_with_a_policy_that_admits_only_this_origin() {
    let s = TestServer::start().await;
    for (path, kind) in
        [("/console", "text/html"), ("/console/console.js", "text/javascript"), ("/console/console.css", "text/css")]
    {
        let resp = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let header = |name: &str| resp.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        assert!(header("content-type").starts_with(kind), "{path}: {}", header("content-type"));
        assert!(header("content-security-policy").starts_with("default-src 'self'"), "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        // The SVG namespace is a name, not a fetch.
        let body = resp.text().await.unwrap().replace("http://www.w3.org/2000/svg", "");
        for outside in ["http://", "https://", "//fonts.", "<script>", " style=\""] {
            assert!(!body.contains(outside), "{path} holds `{outside}`: nothing may come from elsewhere or inline");
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn an_investigator_works_a_case_in_the_console() {
    let dir = crate::node_clients::node_clients();
    let s = TestServer::start().await;
    nhigov::demo::load(&s.store).await.unwrap().expect("the demo loads into an empty store");
    let ines = s.token(nhigov::demo::DEMO_INVESTIGATOR);
    let marco = s.token("marco.bianchi@corvid.example");
    let d = s
        .ok(&ines, "{ search(prefix: \"gh-actions-deploy-token\", kinds: [NHI]) { ... on Nhi { id } } }", json!({}))
        .await;
    let nhi = d["search"][0]["id"].as_str().unwrap().to_owned();
    let d = s
        .ok(
            &ines,
            "mutation($n: ID!) { openCase(input: { title: \"Deploy token in a public gist\", severity: HIGH, subjectIds: [$n] }) { id } }",
            json!({ "n": nhi }),
        )
        .await;
    let case = d["openCase"]["id"].as_str().unwrap().to_owned();

    let out = screenshots();
    let url = s.url("");
    let case_id = case.clone();
    let script_out = out.clone();
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("console.mjs")
            .arg(url)
            .arg(&script_out)
            .arg(&case)
            .env("INVESTIGATOR_TOKEN", ines.clone())
            .env("VIEWER_TOKEN", marco)
            .current_dir(dir)
            .output()
    })
    .await
    .unwrap()
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "console.mjs failed:\n{stdout}\n{stderr}");
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("console.mjs printed no summary ({e}):\n{stdout}\n{stderr}"));
    let problems = seen["problems"].as_array().unwrap();
    assert!(problems.is_empty(), "the console walk found problems (screenshots in {}):\n{seen:#}", out.display());

    assert!(seen["csp"].as_str().unwrap().starts_with("default-src 'self'"));
    let search: Vec<&str> = seen["search"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(search.contains(&"gh-actions-deploy-token") && search.contains(&"gh-actions-deploy PAT"), "{search:?}");
    assert_eq!(seen["node"]["id"], nhi.as_str());

    // What is drawn is what the API answers: every node reached, every witness edge.
    let ines = s.token(nhigov::demo::DEMO_INVESTIGATOR);
    let d = s
        .ok(&ines, "query($n: ID!) { blastRadius(from: $n) { totals { nodes } reached(first: 1000) { id path { edge from to governed } } } }", json!({ "n": nhi }))
        .await;
    let reached = d["blastRadius"]["reached"].as_array().unwrap();
    let api_nodes: BTreeSet<String> =
        reached.iter().map(|r| r["id"].as_str().unwrap().to_owned()).chain([nhi.clone()]).collect();
    let api_edges: BTreeSet<(String, String, String)> = reached
        .iter()
        .flat_map(|r| r["path"].as_array().unwrap())
        .map(|p| {
            (p["edge"].as_str().unwrap().into(), p["from"].as_str().unwrap().into(), p["to"].as_str().unwrap().into())
        })
        .collect();
    let ungoverned = reached
        .iter()
        .flat_map(|r| r["path"].as_array().unwrap())
        .filter(|p| p["governed"] == false)
        .map(|p| p["edge"].as_str().unwrap())
        .collect::<BTreeSet<_>>()
        .len();
    let drawn_nodes: BTreeSet<String> =
        seen["blast"]["nodes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect();
    let drawn_edges: BTreeSet<(String, String, String)> = seen["blast"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (e["id"].as_str().unwrap().into(), e["from"].as_str().unwrap().into(), e["to"].as_str().unwrap().into())
        })
        .collect();
    assert!(api_nodes.len() > 3, "the demo token reaches something: {api_nodes:?}");
    assert_eq!(drawn_nodes, api_nodes, "the drawn nodes are the API's");
    assert_eq!(drawn_edges, api_edges, "the drawn edges are the API's witness paths");
    assert_eq!(seen["blast"]["ungovernedDrawn"].as_u64().unwrap() as usize, ungoverned, "ungoverned edges are marked");
    assert_eq!(seen["blast"]["totals"], format!("{} reached", d["blastRadius"]["totals"]["nodes"]));
    assert!(api_nodes.contains(seen["clicked"].as_str().unwrap()), "a drawn node opens its own page");
    assert!(seen["reach"].as_array().unwrap().iter().any(|n| n == nhi.as_str()), "the token can reach what it reaches");

    // The path drawn is the API's path.
    let to = seen["path"]["to"].as_str().unwrap();
    let d = s
        .ok(&ines, "query($a: ID!, $b: ID!) { path(from: $a, to: $b) { edge to } }", json!({ "a": nhi, "b": to }))
        .await;
    let steps = d["path"].as_array().expect("a path to what the blast radius reached");
    let api_path_nodes: BTreeSet<&str> =
        steps.iter().map(|p| p["to"].as_str().unwrap()).chain([nhi.as_str()]).collect();
    let api_path_edges: BTreeSet<&str> = steps.iter().map(|p| p["edge"].as_str().unwrap()).collect();
    let drawn: BTreeSet<&str> = seen["path"]["nodes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    let drawn_edges: BTreeSet<&str> =
        seen["path"]["edges"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert_eq!((drawn, drawn_edges), (api_path_nodes, api_path_edges), "the drawn path is the API's");

    let timeline = &seen["timeline"];
    assert!(timeline["afterSnapshot"].as_u64() > timeline["after"].as_u64(), "the snapshot joined the timeline");
    assert!(timeline["after"].as_u64() > timeline["before"].as_u64(), "the evidence joined the timeline: {timeline}");
    let d = s
        .ok(&ines, "query($c: ID!) { case(id: $c) { evidence { source } requests { kind } } }", json!({ "c": case_id }))
        .await;
    assert_eq!(d["case"]["evidence"][0]["source"], "console");
    assert_eq!(d["case"]["requests"][0]["kind"], "REVOKE_NHI", "containment is a revoke request on the case");
    assert!(seen["refused"].as_str().unwrap().starts_with("FORBIDDEN:"), "the API's words: {}", seen["refused"]);
    assert!(seen["afterRefusedToken"].as_str().unwrap().contains("sign in again"));
    let fragment = &seen["fragmentSignIn"];
    assert!(fragment["who"].as_str().unwrap().contains("Ines Ortega"), "{fragment}");
    assert_eq!(fragment["kept"], "a token", "{fragment}");
    assert!(!fragment["url"].as_str().unwrap().contains("token="), "the token left the address bar: {fragment}");
    s.stop().await;
}
