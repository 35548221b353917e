//! The shape of the library, checked: no import cycle between the modules
//! of `shared/src`, and the domain never reaches for an adapter. A module is
//! a top-level file or folder of `shared/src`; an import is any
//! `crate::<module>` path in its non-test code (comments are left out, and so
//! are test modules, which may use anything: `tests.rs` files and everything
//! from a `#[cfg(test)]` line on).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that talk to the outside world or wire the domain to it.
const EDGE: &[&str] = &[
    "aws",
    "run",
    "testing",
    "webhook",
    "audit",
    "telemetry",
    "stripe",
    "pay_page",
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// module -> the modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in all {
        let rel = path.strip_prefix(&src).unwrap();
        let name = rel.file_name().unwrap().to_string_lossy();
        if name == "tests.rs" || name.ends_with("_tests.rs") || rel == Path::new("lib.rs") {
            continue;
        }
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        // Doc links name modules without importing them.
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let imports = graph.entry(module.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let ident: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !ident.is_empty() && ident != module {
                imports.insert(ident);
            }
        }
    }
    graph
}

/// A cycle through `start`, if there is one.
fn cycle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    let node = path.last().unwrap().clone();
    for next in graph.get(&node).into_iter().flatten() {
        if next == start {
            let mut c = path.clone();
            c.push(start.to_owned());
            return Some(c);
        }
        if !path.contains(next) {
            path.push(next.clone());
            if let Some(c) = cycle_from(graph, start, path) {
                return Some(c);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn no_module_of_the_library_imports_itself_back() {
    let graph = graph();
    assert!(
        graph.len() > 20,
        "the check must see the modules: {graph:?}"
    );
    assert!(graph["run"].contains("decide"), "and their imports");
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_from(&graph, m, &mut vec![m.clone()]))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_domain_never_imports_an_adapter_or_the_run() {
    let graph = graph();
    let reaching: Vec<String> = graph
        .iter()
        .filter(|(m, _)| !EDGE.contains(&m.as_str()))
        .flat_map(|(m, imports)| {
            imports
                .iter()
                .filter(|i| EDGE.contains(&i.as_str()))
                .map(move |i| format!("{m} -> {i}"))
        })
        .collect();
    assert!(reaching.is_empty(), "{reaching:?}");
}

#[test]
fn docs_architecture_names_only_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let mut named = 0;
    let mut missing = Vec::new();
    // Paths in backticks: a full path from the repository's root, or a file
    // of `shared/src` named in the module tables.
    for quoted in text.split('`').skip(1).step_by(2) {
        let path = quoted.trim_end_matches('/');
        let looks_like_path = path.ends_with(".rs") || quoted.ends_with('/');
        if !looks_like_path || path.contains(' ') || path.contains("foo") {
            continue;
        }
        let candidates = [
            root.join(path),
            root.join("shared/src").join(path),
            root.join("shared/src/aws").join(path),
            root.join("shared/src/run").join(path),
            root.join("shared/src/testing").join(path),
            root.join("shared/src/config").join(path),
            root.join("shared/src/pay_page").join(path),
            root.join("shared/src/stripe").join(path),
            root.join("cli/src").join(path),
            root.join("functions/dunning-run").join(path),
        ];
        named += 1;
        if !candidates.iter().any(|c| c.exists()) {
            missing.push(path.to_owned());
        }
    }
    assert!(named > 30, "the page names files: {named}");
    assert!(missing.is_empty(), "named but missing: {missing:?}");
}
