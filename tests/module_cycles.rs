//! Import cycles between the top-level modules of src/ (issue 22). Every
//! reference `crate::X` made from module M's files (src/M.rs, src/M/**) is an
//! edge M -> X; an edge lies on a cycle when X also reaches M. The edges on
//! cycles must be exactly `STILL_CYCLIC`: a new cycle fails, and so does a
//! broken one until it is taken off the list, so the list only shrinks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Issue 22: still to break. Each entry is an edge `from -> to` that lies on
/// a cycle today.
const STILL_CYCLIC: &[(&str, &str)] = &[];

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn no_new_import_cycles_between_top_level_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    let cyclic = cyclic_edges(&graph);
    let expected: BTreeSet<(String, String)> = STILL_CYCLIC
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let listed = |edges: &BTreeSet<(String, String)>| {
        edges
            .iter()
            .map(|(a, b)| format!("    (\"{a}\", \"{b}\"),\n"))
            .collect::<String>()
    };
    assert!(
        cyclic == expected,
        "edges on a cycle now:\n{}new (break them):\n{}no longer cyclic (drop them from STILL_CYCLIC):\n{}",
        listed(&cyclic),
        listed(&cyclic.difference(&expected).cloned().collect()),
        listed(&expected.difference(&cyclic).cloned().collect()),
    );
}

/// The same inside send/ (issue 22: the reply reader and the driver imported
/// each other): its modules, mod.rs aside, name each other as `super::X`
/// (`super::super::X` one level down) or `crate::send::X`.
#[test]
fn no_import_cycles_between_the_sending_modules() {
    let send = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/send");
    let modules: BTreeSet<String> = std::fs::read_dir(&send)
        .unwrap()
        .filter_map(|e| e.unwrap().path().file_stem()?.to_str().map(String::from))
        .filter(|name| name != "mod")
        .collect();
    // only what names a sibling counts: `crate::serve` is another module
    // than `crate::send::serve`
    let as_siblings = |text: String, up: &str| {
        let text = text
            .replace("crate::send::", "\0")
            .replace("crate::", "top::");
        text.replace(up, "\0")
            .replace("super::", "up::")
            .replace('\0', "crate::")
    };
    let mut graph = Graph::new();
    for module in &modules {
        let file = send.join(format!("{module}.rs"));
        let mut text = match file.exists() {
            true => as_siblings(std::fs::read_to_string(file).unwrap(), "super::"),
            false => String::new(),
        };
        let mut below = String::new();
        if send.join(module).is_dir() {
            read_tree(&send.join(module), &mut below);
        }
        text += &as_siblings(below, "super::super::");
        let targets = references(&text)
            .into_iter()
            .filter(|target| target != module && modules.contains(target))
            .collect();
        graph.insert(module.clone(), targets);
    }
    let cyclic = cyclic_edges(&graph);
    assert!(cyclic.is_empty(), "edges on a cycle in send/: {cyclic:?}");
}

/// The top-level modules are the ones lib.rs declares; each maps to the
/// modules its source text names after `crate::`.
fn graph(src: &Path) -> Graph {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let modules: BTreeSet<String> = lib
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub mod "))
        .map(|rest| rest.trim_end_matches(';').trim().to_string())
        .collect();
    assert!(
        modules.len() > 10,
        "lib.rs lists too few modules: {modules:?}"
    );
    let mut graph = Graph::new();
    for module in &modules {
        let mut text = String::new();
        let file = src.join(format!("{module}.rs"));
        if file.exists() {
            text += &std::fs::read_to_string(file).unwrap();
        }
        let dir = src.join(module);
        if dir.is_dir() {
            read_tree(&dir, &mut text);
        }
        assert!(!text.is_empty(), "no source for module {module}");
        let targets = references(&text)
            .into_iter()
            .filter(|target| target != module && modules.contains(target))
            .collect();
        graph.insert(module.clone(), targets);
    }
    graph
}

fn read_tree(dir: &Path, text: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read_tree(&path, text);
        } else if path.extension().is_some_and(|e| e == "rs") {
            *text += &std::fs::read_to_string(path).unwrap();
            text.push('\n');
        }
    }
}

/// The first path segment after every `crate::` outside comment lines,
/// including each item of a `crate::{a, b::c}` group.
fn references(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Only the group's first level: `a::{x, y}` inside it names `a`.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphabetic() || c == '_') => {
                        found.insert(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found
}

fn ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Edges `a -> b` where b reaches a again.
fn cyclic_edges(graph: &Graph) -> BTreeSet<(String, String)> {
    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(next) = todo.pop() {
            if next == to {
                return true;
            }
            if seen.insert(next.clone()) {
                todo.extend(graph[&next].iter().cloned());
            }
        }
        false
    };
    let mut cyclic = BTreeSet::new();
    for (from, targets) in graph {
        for to in targets {
            if reaches(to, from) {
                cyclic.insert((from.clone(), to.clone()));
            }
        }
    }
    cyclic
}
