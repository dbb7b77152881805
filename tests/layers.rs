//! The module map of DESIGN.md, kept true: every `crate::` path in `src/` points to a module of
//! a lower layer (or to one its own layer explicitly allows), so there is no cycle and no
//! upward import. The ties that predate this test are listed as debts; the test fails on any
//! new one and on a listed one that is gone, so the list only ever shrinks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules by layer, lowest first. `cli` is the binary's own module tree.
const LAYERS: &[&[&str]] = &[
    &["secret", "clock", "dev", "percent", "notify", "seal", "wire"],
    &["domain", "protocol"],
    &["wecom", "config", "metrics", "render"],
    &["serve", "upstream", "store"],
    &["simulator", "client"],
    &["api", "dispatch", "retention"],
    &["daemon"],
    &["cli"],
];

/// Imports within one layer that are part of the design (importer, imported).
const SAME_LAYER: &[(&str, &str)] = &[("config", "wecom"), ("upstream", "serve")];

/// Upward ties tolerated for a while, each with the reason, and removed as soon as it is paid.
/// Issue 11 paid the last of those this test found when it was written; keep it empty.
const DEBTS: &[(&str, &str)] = &[];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a source file belongs to (`src/store/writer.rs` → `store`).
fn module_of(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).expect("under src");
    let first = rel.components().next().expect("a path").as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// Every top-level module a source text names through `crate::` (or `campaignd::` in the
/// binary), including each item of a `use crate::{a::X, b::Y}` group.
fn imported_modules(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices(prefix) {
        let rest = &text[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_ascii_lowercase() || c == '_') => {
                        let name: String =
                            group[i..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                        out.insert(name);
                        item_start = false;
                    }
                    c if !c.is_whitespace() => item_start = false,
                    _ => {}
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source folder") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (importer, imported) → the files where it happens.
fn ties() -> BTreeMap<(String, String), Vec<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut ties: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for file in files {
        let module = module_of(&root, &file);
        if matches!(module.as_str(), "lib" | "main") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable source file");
        let prefix = if module == "cli" { "campaignd::" } else { "crate::" };
        for imported in imported_modules(&text, prefix) {
            if imported != module {
                let shown = file.strip_prefix(&root).unwrap_or(&file).display().to_string();
                ties.entry((module.clone(), imported)).or_default().push(shown);
            }
        }
    }
    ties
}

#[test]
fn every_module_is_in_a_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    for file in files {
        let module = module_of(&root, &file);
        if !matches!(module.as_str(), "lib" | "main") {
            assert!(layer_of(&module).is_some(), "{module} ({}) is in no layer of tests/layers.rs", file.display());
        }
    }
}

#[test]
fn imports_point_down_and_old_debts_only_shrink() {
    let mut upward = Vec::new();
    let mut debts_seen = BTreeSet::new();
    for ((from, to), files) in ties() {
        let (Some(lf), Some(lt)) = (layer_of(&from), layer_of(&to)) else {
            continue; // not a module of this crate (e.g. a crate-relative macro path)
        };
        let allowed = lt < lf || SAME_LAYER.contains(&(from.as_str(), to.as_str()));
        if allowed {
            continue;
        }
        if DEBTS.contains(&(from.as_str(), to.as_str())) {
            debts_seen.insert((from, to));
        } else {
            upward.push(format!("{from} → {to} in {}", files.join(", ")));
        }
    }
    assert!(upward.is_empty(), "imports that point up or sideways:\n{}", upward.join("\n"));
    let paid: Vec<_> = DEBTS.iter().filter(|(f, t)| !debts_seen.contains(&(f.to_string(), t.to_string()))).collect();
    assert!(paid.is_empty(), "these debts are gone; remove them from DEBTS: {paid:?}");
}

#[test]
fn grouped_imports_are_read_item_by_item() {
    let found = imported_modules("use crate::{domain::{A, B}, store::Store};\nuse crate::metrics::M;", "crate::");
    assert_eq!(found.into_iter().collect::<Vec<_>>(), ["domain", "metrics", "store"]);
}

/// Sibling files of one module folder (say `dispatch/send.rs` and `dispatch/wecom.rs`) may
/// lean on each other one way only: a cycle among them is a cycle in the design.
#[test]
fn sibling_files_do_not_import_each_other_in_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut folders: BTreeMap<std::path::PathBuf, Vec<std::path::PathBuf>> = BTreeMap::new();
    for f in files {
        if f.file_name().is_some_and(|n| n != "mod.rs") {
            folders.entry(f.parent().expect("a folder").to_path_buf()).or_default().push(f);
        }
    }
    for (folder, files) in folders {
        let stem = |f: &Path| f.file_stem().expect("a name").to_string_lossy().into_owned();
        let names: BTreeSet<String> = files.iter().map(|f| stem(f)).collect();
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in &files {
            let text = std::fs::read_to_string(f).expect("readable source file");
            let uses = imported_modules(&text, "super::");
            edges.insert(stem(f), uses.into_iter().filter(|u| names.contains(u) && *u != stem(f)).collect());
        }
        for start in &names {
            // Depth-first from `start`: reaching it again is a cycle.
            let mut stack: Vec<String> = edges[start].iter().cloned().collect();
            let mut seen = BTreeSet::new();
            while let Some(n) = stack.pop() {
                assert_ne!(&n, start, "files of {} import each other in a circle through {start}.rs", folder.display());
                if seen.insert(n.clone()) {
                    stack.extend(edges.get(&n).into_iter().flatten().cloned());
                }
            }
        }
    }
}
