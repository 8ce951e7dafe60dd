//! The documentation against the code it describes, so the two cannot drift apart: every
//! GraphQL block in README.md and docs/ validates against the schema, every `nhigov`
//! command in a `sh` block parses as the binary parses it, and every relative link names
//! a file that exists and, with `#anchor`, a heading in it.
//!
//! Conventions the docs follow for this to hold: runnable commands go in ```` ```sh ````
//! blocks (a synopsis with `[optional]` parts goes in ```` ```text ````); placeholders
//! are written `<like this>`.

use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::json;

use nhigov_tests::TestServer;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// README.md and every Markdown file under docs/, with their text.
fn documents() -> Vec<(PathBuf, String)> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap())).collect()
}

/// The fenced blocks of `lang` in `text`, with the line each opens on.
fn blocks(text: &str, lang: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut current, fence) {
            (None, Some(info)) if info.trim() == lang => current = Some((i + 1, String::new())),
            (Some(_), Some(_)) => out.push(current.take().unwrap()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, Some(_)) | (None, None) => {}
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            out.push(slug(line.trim_start_matches('#')));
        }
    }
    out
}

#[test]
fn every_relative_link_names_a_file_and_a_heading_that_exist() {
    let mut broken = Vec::new();
    for (path, text) in documents() {
        let dir = path.parent().unwrap();
        for (n, line) in text.lines().enumerate() {
            for part in line.split("](").skip(1) {
                let Some(target) = part.split(')').next() else { continue };
                if target.contains("://") || target.starts_with("mailto:") || target.is_empty() {
                    continue;
                }
                let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
                let file = if file.is_empty() { path.clone() } else { dir.join(file) };
                let at = format!("{}:{}: {target}", path.strip_prefix(root()).unwrap_or(&path).display(), n + 1);
                if !file.exists() {
                    broken.push(format!("{at}: no such file"));
                    continue;
                }
                if !anchor.is_empty() {
                    let text = std::fs::read_to_string(&file).unwrap_or_default();
                    if !anchors(&text).iter().any(|a| a == anchor) {
                        broken.push(format!("{at}: no heading with this anchor"));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// A command line as the shell would split it, placeholders filled in: `<...>` becomes
/// a value, environment assignments before the command are dropped.
fn words(line: &str) -> Vec<String> {
    let line = line.split(" #").next().unwrap_or(line);
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut placeholder = false;
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '<') => placeholder = true,
            (None, '>') if placeholder => {
                placeholder = false;
                word.push('x');
            }
            (None, ' ' | '\t') if !placeholder => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            _ if placeholder => {}
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[test]
fn every_nhigov_command_in_the_docs_parses() {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (path, text) in documents() {
        for (at, block) in blocks(&text, "sh") {
            // In a block that shows a session, commands are the lines after a prompt.
            let session = block.lines().any(|l| l.starts_with("$ "));
            for (i, line) in block.lines().enumerate() {
                let line = match (session, line.strip_prefix("$ ")) {
                    (true, None) => continue,
                    (true, Some(command)) => command,
                    (false, _) => line,
                };
                let line = line.replace("$(", " ");
                let mut w = words(&line);
                // `cargo run --release --bin nhigov -- serve` runs the same parser.
                if let Some(dashes) = w.iter().position(|x| x == "--")
                    && w.first().is_some_and(|x| x == "cargo")
                {
                    w.splice(..dashes + 1, ["nhigov".to_owned()]);
                }
                let Some(start) = w.iter().position(|x| x == "nhigov") else { continue };
                if w[..start].iter().any(|x| !x.contains('=')) {
                    continue;
                }
                checked += 1;
                if let Err(e) = nhigov::cli::Cli::try_parse_from(&w[start..]) {
                    let first = e.to_string().lines().next().unwrap_or("").to_owned();
                    wrong.push(format!("{}:{}: {line}\n    {first}", path.display(), at + i + 1));
                }
            }
        }
    }
    assert!(checked >= 10, "only {checked} command lines found");
    assert!(wrong.is_empty(), "commands the binary refuses:\n{}", wrong.join("\n"));
}

/// The operations of a block, each with the line it starts on: a block may show several,
/// each opening at the start of a line (`{`, `query`, `mutation`, `subscription`).
fn operations(at: usize, block: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, line) in block.lines().enumerate() {
        let opens = ["{", "query", "mutation", "subscription"].iter().any(|k| line.starts_with(k));
        if opens || out.is_empty() {
            out.push((at + i + 1, String::new()));
        }
        let last = out.last_mut().unwrap();
        last.1.push_str(line);
        last.1.push('\n');
    }
    out.retain(|(_, o)| o.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')));
    out
}

/// Values for the variables a block declares, by type, for ids that do not exist.
fn variables(block: &str) -> serde_json::Value {
    let mut vars = serde_json::Map::new();
    for part in block.split('$').skip(1) {
        let name: String = part.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let Some(ty) = part[name.len()..].trim_start().strip_prefix(':') else { continue };
        let ty = ty.trim_start();
        let list = ty.starts_with('[');
        let base: String = ty.trim_start_matches('[').chars().take_while(|c| c.is_alphanumeric()).collect();
        let value = match base.as_str() {
            "ID" => json!("nhi:doesnotexist"),
            "String" => json!("x"),
            "Int" => json!(1),
            "Float" => json!(1.0),
            "Boolean" => json!(true),
            "DateTime" => json!("2026-01-01T00:00:00Z"),
            _ => continue,
        };
        vars.insert(name, if list { json!([value]) } else { value });
    }
    serde_json::Value::Object(vars)
}

/// Executed on the demo as its admin: a block that does not parse or validate answers a
/// `GRAPHQL_` code; what a block asks of ids that do not exist answers others.
#[tokio::test]
async fn every_graphql_block_in_the_docs_validates_against_the_schema() {
    let s = TestServer::start().await;
    nhigov::demo::load(&s.store).await.unwrap();
    let admin = s.token(nhigov::demo::DEMO_ADMIN);
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (path, text) in documents() {
        for (at, operation) in blocks(&text, "graphql").iter().flat_map(|(at, b)| operations(*at, b)) {
            checked += 1;
            let vars = variables(&operation);
            let body = s.gql(&admin, &operation, vars).await.1;
            let codes: Vec<String> = body["errors"]
                .as_array()
                .map(|errors| {
                    errors.iter().filter_map(|e| e["extensions"]["code"].as_str().map(str::to_owned)).collect()
                })
                .unwrap_or_default();
            if let Some(c) = codes.iter().find(|c| c.starts_with("GRAPHQL_")) {
                wrong.push(format!("{}:{at}: {c}: {}", path.display(), body["errors"][0]["message"]));
            }
        }
    }
    assert!(checked >= 20, "only {checked} GraphQL blocks found");
    assert!(wrong.is_empty(), "GraphQL blocks the schema refuses:\n{}", wrong.join("\n"));
}
