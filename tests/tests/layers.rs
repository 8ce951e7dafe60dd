//! Layers the compiler does not keep: no two modules of a crate import each other. The
//! `use crate::...` and `super::...` paths of `graph-model`, `schema` and `api` are read
//! (tests excluded), each resolved to the module file it names, and every pair of
//! modules that import each other is listed. A full import-graph tool would also find
//! longer cycles; this reads plain text, and is quick enough for every run.
//!
//! The pairs still open are named below with why; the test fails on any other pair, and
//! on a listed pair that is gone (so the list shrinks as they are fixed).
//!
//! The same plain reading keeps functions short: none outside the tests (in `src`, before
//! a file's `#[cfg(test)]`) passes [`MAX_FN_LINES`], counted from its `fn` line to its
//! closing brace with strings and comments set aside.

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

/// The longest a function outside the tests may be; past it, a function is split by
/// what it does.
const MAX_FN_LINES: usize = 80;

/// The code of `text` with comments removed and every string and character literal
/// emptied (so the braces counted are the code's own), lines kept.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                if chars[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 2;
        } else if c == 'r' && (next == Some('"') || (next == Some('#') && !prev_is_ident(&chars, i))) {
            // A raw string: r"...", r#"..."#, and so on.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                match chars.get(j) {
                    None => break,
                    Some('"') if (1..=hashes).all(|h| chars.get(j + h) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    Some('\n') => out.push('\n'),
                    _ => {}
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if chars.get(i) == Some(&'\n') {
                    out.push('\n');
                }
                i += 1;
            }
            out.push_str("\"\"");
            i += 1;
        } else if c == '\'' && (chars.get(i + 2) == Some(&'\'') || next == Some('\\')) {
            // A character literal (a lifetime has no closing quote two characters on).
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            out.push_str("' '");
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn prev_is_ident(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// Each function of `code` (as `code_only` leaves it) with a body: its name, first line
/// and length in lines, from its `fn` line to its closing brace.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(at) = line.find("fn ") else { continue };
        if at > 0 && !line[..at].ends_with([' ', '(']) {
            continue;
        }
        let name: String = line[at + 3..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if name.is_empty() {
            continue;
        }
        let mut depth = 0i32;
        let mut opened = false;
        for (end, l) in lines.iter().enumerate().skip(start) {
            let l = if end == start { &l[at..] } else { l };
            for c in l.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    ';' if !opened && depth == 0 => break,
                    _ => {}
                }
            }
            if (opened && depth <= 0) || (!opened && l.trim_end().ends_with(';')) {
                if opened {
                    found.push((name.clone(), start + 1, end - start + 1));
                }
                break;
            }
        }
    }
    found
}

#[test]
fn the_line_counter_sees_code_not_strings_or_comments() {
    let src = "fn short() {\n    let s = \"{ { {\";\n    let r = r#\"}\"#;\n    // }\n    let c = '{';\n}\nfn long<'a>(x: &'a str) -> &'a str {\n    x\n}\n";
    let found = functions(&code_only(src));
    assert_eq!(found, vec![("short".to_owned(), 1, 6), ("long".to_owned(), 7, 3)]);
}

#[test]
fn no_function_outside_the_tests_passes_80_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut long = Vec::new();
    let mut counted = 0;
    for dir in ["graph-model/src", "schema/src", "api/src", "tests/src"] {
        let mut files = Vec::new();
        rust_files(&root.join(dir), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let code = code_only(text.split("#[cfg(test)]").next().unwrap_or_default());
            for (name, line, length) in functions(&code) {
                counted += 1;
                if length > MAX_FN_LINES {
                    long.push(format!("{}:{line} {name}: {length} lines", file.strip_prefix(root).unwrap().display()));
                }
            }
        }
    }
    assert!(counted > 500, "the functions were not read: {counted} found");
    assert!(long.is_empty(), "functions past {MAX_FN_LINES} lines (split them by what they do):\n{}", long.join("\n"));
}
