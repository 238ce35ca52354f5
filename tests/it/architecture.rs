//! The architecture's one hard boundary: the pure core (the decision, the
//! tier table, the class catalog, records, notices) imports nothing that does
//! I/O. If this fails, move the I/O into an adapter.

use crate::support::root;

const PURE: [&str; 8] = [
    "src/plan.rs",
    "src/tiers.rs",
    "src/record.rs",
    "src/hpa.rs",
    "src/prereq/mod.rs",
    "src/prereq/catalog.rs",
    "src/notify/mod.rs",
    "src/output.rs",
];

const IO_CRATES: [&str; 9] = [
    "kube",
    "k8s_openapi",
    "aws_",
    "mysql_async",
    "ureq",
    "tokio",
    "std::fs",
    "std::net",
    "std::process",
];

#[test]
fn pure_core_imports_no_io_crate() {
    let mut offences = vec![];
    for file in PURE {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for krate in IO_CRATES {
                let used = code.contains(&format!("use {krate}"))
                    || code.contains(&format!("{krate}::"))
                    || code.contains(&format!("pub mod {krate}"));
                if used {
                    offences.push(format!("{file}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "the pure core must not do I/O:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_boundary_check_catches_an_import() {
    // Guard against the check above silently matching nothing.
    let code = "use kube::Api;";
    assert!(IO_CRATES.iter().any(|k| code.contains(&format!("use {k}"))));
}
