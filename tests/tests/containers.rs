//! The container files, checked as far as text can be (no engine runs here): the
//! build context leaves out build output and local stores, the image runs as its own
//! user with a health check on /readyz, SurrealDB is pinned at the SDK's version, every
//! service restarts, has a memory limit and starts after what it needs is healthy, and
//! the replicas sign in as their database's user, not root.

use std::collections::BTreeMap;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The services of a compose file: name to its block of lines (two-space indented).
fn services(compose: &str) -> BTreeMap<String, String> {
    let body = compose.split("\nservices:\n").nth(1).expect("a services section");
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in body.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            break;
        }
        if let Some(name) = line.strip_prefix("  ").filter(|l| !l.starts_with(' ')).and_then(|l| l.strip_suffix(':')) {
            current = Some(name.to_owned());
            out.insert(name.to_owned(), String::new());
        } else if let Some(c) = &current {
            let block = out.get_mut(c).unwrap();
            block.push_str(line);
            block.push('\n');
        }
    }
    out
}

/// The SurrealDB SDK's version in Cargo.lock.
fn sdk_version() -> String {
    let lock = read("Cargo.lock");
    let at = lock.find("name = \"surrealdb\"\n").expect("surrealdb in Cargo.lock");
    let rest = &lock[at..];
    let line = rest.lines().nth(1).unwrap();
    line.trim_start_matches("version = \"").trim_end_matches('"').to_owned()
}

#[test]
fn the_build_context_leaves_out_build_output_and_local_stores() {
    let ignore = read(".dockerignore");
    let lines: Vec<&str> = ignore.lines().map(str::trim).filter(|l| !l.starts_with('#')).collect();
    for must in [".git", "target", "data", "**/node_modules"] {
        assert!(lines.contains(&must), ".dockerignore leaves out {must}");
    }
}

#[test]
fn the_image_runs_as_its_own_user_and_says_when_it_is_ready() {
    let file = read("docker/Dockerfile");
    assert!(
        file.contains("--mount=type=cache,target=/usr/local/cargo/registry"),
        "a dependency cache that survives edits"
    );
    assert!(file.contains("--mount=type=cache,target=/src/target"));
    let user = file.lines().rev().find(|l| l.starts_with("USER ")).expect("a USER");
    assert_eq!(user, "USER nhigov", "the runtime is not root");
    assert!(file.contains("useradd --system --uid 10001"));
    let port = file.lines().find_map(|l| l.strip_prefix("EXPOSE ")).expect("EXPOSE");
    assert!(file.contains(&format!("NHIGOV_BIND=0.0.0.0:{port}")), "the server listens where the image says");
    assert!(file.contains(&format!("http://127.0.0.1:{port}/readyz")), "the health check asks /readyz");
}

#[test]
fn every_service_restarts_has_a_memory_limit_and_waits_for_what_it_needs() {
    for path in ["docker/compose.yml", "docker/compose.cluster.yml"] {
        let compose = read(path);
        let services = services(&compose);
        assert!(!services.is_empty(), "{path}: no services found");
        for (name, block) in &services {
            assert!(
                block.contains("\n    restart: ") || block.starts_with("    restart: "),
                "{path}: {name} has no restart policy"
            );
            assert!(block.contains("mem_limit: "), "{path}: {name} has no memory limit");
            if block.contains("depends_on:") {
                assert!(block.contains("condition: service_"), "{path}: {name} starts without waiting on a condition");
            }
        }
        let nhigov = &services["nhigov"];
        assert!(nhigov.contains("healthcheck:") && nhigov.contains("/readyz"), "{path}: nhigov's health check");
    }
    let cluster = read("docker/compose.cluster.yml");
    let services = services(&cluster);
    let image = services["surrealdb"].lines().find_map(|l| l.trim().strip_prefix("image: ")).unwrap();
    assert_eq!(image, format!("surrealdb/surrealdb:v{}", sdk_version()), "the server is the SDK's version");
    let nhigov = &services["nhigov"];
    assert!(nhigov.contains("NHIGOV_DB__USERNAME: nhigov") && nhigov.contains("NHIGOV_DB__USER_LEVEL: database"));
    assert!(!nhigov.contains("SURREAL_PASS"), "the replicas never hold root's password");
    assert!(services["db-user"].contains("[\"db-user\", \"--apply\"]"));
    assert!(nhigov.contains("condition: service_completed_successfully"), "the replicas start once their user exists");
    assert!(services["proxy"].contains("condition: service_healthy"), "the proxy waits for healthy replicas");
}

#[test]
fn the_db_user_command_prints_what_root_runs() {
    use clap::Parser;
    let cli = nhigov::cli::Cli::try_parse_from(["nhigov", "db-user", "--user", "nhigov_svc"]).unwrap();
    assert!(matches!(cli.command, nhigov::cli::Command::DbUser { apply: false, .. }));
    let sql = graph_model::store::database_user_sql("nhigov", "main", "nhigov_svc", "0123456789abcdef0123").unwrap();
    assert!(sql.contains("DEFINE USER OVERWRITE nhigov_svc ON DATABASE PASSWORD '0123456789abcdef0123' ROLES EDITOR;"));
    assert!(graph_model::store::database_user_sql("nhigov", "main", "x", "short").is_err());
    assert!(graph_model::store::database_user_sql("nhigov", "main", "x", "quote'in-a-long-password").is_err());
    assert!(graph_model::store::database_user_sql("nhigov", "main", "x; DROP", "0123456789abcdef0123").is_err());
}
