//! Layers the compiler does not keep: no two modules of a crate import each other. The
//! `use crate::...` and `super::...` paths of `graph-model`, `schema` and `api` are read
//! (tests excluded), each resolved to the module file it names, and every pair of
//! modules that import each other is listed. A full import-graph tool would also find
//! longer cycles; this reads plain text, and is quick enough for every run.
//!
//! The pairs still open are named below with why; the test fails on any other pair, and
//! on a listed pair that is gone (so the list shrinks as they are fixed).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Pairs not yet taken apart.
const KNOWN: &[(&str, &str)] = &[];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file is: `a/b.rs` and `a/b/mod.rs` are `a::b`; `lib.rs` is the root.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The longest prefix of `path` that is a module file of `src`.
fn existing_module(src: &Path, path: &[String]) -> Vec<String> {
    let mut t = path.to_vec();
    while !t.is_empty() {
        let base = t.iter().fold(src.to_path_buf(), |p, s| p.join(s));
        if base.with_extension("rs").exists() || base.join("mod.rs").exists() {
            break;
        }
        t.pop();
    }
    t
}

fn imports(root: &Path) -> BTreeSet<(String, String)> {
    let mut edges = BTreeSet::new();
    for krate in ["graph-model", "schema", "api"] {
        let src = root.join(krate).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for file in files {
            let me = module_of(&src, &file);
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (i, _) in code.match_indices("::") {
                // A path starting at `crate::` or `super::`, read up to the first
                // segment that is not a lower-case module name.
                let head = &code[..i];
                let start = head.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |p| p + 1);
                let first = &head[start..];
                if first != "crate" && first != "super" {
                    continue;
                }
                if code[..start].ends_with("::") {
                    continue;
                }
                let rest = &code[i + 2..];
                let segments: Vec<String> = rest
                    .split("::")
                    .map_while(|s| {
                        let name: String = s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                        (!name.is_empty() && name.len() == s.len() && name.chars().all(|c| !c.is_ascii_uppercase()))
                            .then_some(name)
                    })
                    .collect();
                let mut target = if first == "crate" { vec![] } else { me[..me.len().saturating_sub(1)].to_vec() };
                target.extend(segments);
                let target = existing_module(&src, &target);
                let (a, b) = (format!("{krate}:{}", me.join("::")), format!("{krate}:{}", target.join("::")));
                let ancestry = a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"));
                if a != b && !ancestry && !target.is_empty() {
                    edges.insert((a, b));
                }
            }
        }
    }
    edges
}

#[test]
fn no_two_modules_import_each_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let edges = imports(root);
    assert!(edges.len() > 50, "the import paths were not read: {} found", edges.len());
    let pairs: BTreeSet<(String, String)> =
        edges.iter().filter(|(a, b)| a < b && edges.contains(&(b.clone(), a.clone()))).cloned().collect();
    let known: BTreeSet<(String, String)> = KNOWN.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
    let new: Vec<_> = pairs.difference(&known).collect();
    assert!(new.is_empty(), "modules that import each other: {new:?}");
    let gone: Vec<_> = known.difference(&pairs).collect();
    assert!(gone.is_empty(), "no longer import each other (take them off KNOWN): {gone:?}");
}
