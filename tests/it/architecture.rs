//! The architecture's one hard boundary: the core crate (`core/`: the
//! decision, the tier table, the class catalog, records, notices) does no
//! I/O. Its `Cargo.toml` may not name an I/O crate, so the compiler keeps
//! the rest out; the standard library's I/O modules are checked here. If
//! this fails, move the I/O into an adapter of the binary crate.

use crate::support::root;

/// Crates the core may depend on: data and time, nothing that talks.
const ALLOWED_DEPENDENCIES: [&str; 5] = ["serde", "serde_json", "jiff", "thiserror", "croner"];

/// What the core's sources may not name even through std.
const STD_IO: [&str; 5] = [
    "std::fs",
    "std::net",
    "std::process",
    "std::env",
    "std::io::stdin",
];

fn core_dependencies() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("core/Cargo.toml")).unwrap();
    let mut deps = vec![];
    let mut in_deps = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps
            && let Some((name, _)) = line.split_once('=')
            && !line.starts_with('#')
        {
            deps.push(name.trim().to_string());
        }
    }
    deps
}

#[test]
fn the_core_crate_depends_on_no_io_crate() {
    let deps = core_dependencies();
    assert!(
        deps.iter().any(|d| d == "serde"),
        "the manifest parse found nothing: {deps:?}"
    );
    let foreign: Vec<&String> = deps
        .iter()
        .filter(|d| !ALLOWED_DEPENDENCIES.contains(&d.as_str()))
        .collect();
    assert!(
        foreign.is_empty(),
        "core/Cargo.toml names {foreign:?}; the core must not do I/O (allowed: {ALLOWED_DEPENDENCIES:?})"
    );
}

#[test]
fn the_core_sources_use_no_std_io() {
    let mut offences = vec![];
    let dir = root().join("core/src");
    let mut files: Vec<_> = walk(&dir);
    files.sort();
    assert!(files.len() >= 5, "found only {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for m in STD_IO {
                if code.contains(m) {
                    offences.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "the core must not do I/O:\n{}",
        offences.join("\n")
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out
}
