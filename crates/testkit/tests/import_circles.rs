//! No two source files of a crate import each other, directly or through others.
//!
//! A circle between files means neither can be read, tested or moved on its own, and it is
//! how "one job per file" quietly erodes. This test reads every `crates/*/src` tree, finds
//! which file each `crate::…`, `super::…` and `self::…` path points at, and fails on any
//! strongly connected group of two or more files, naming the files and the lines.
//!
//! What counts as an import:
//!
//! ```text
//!   a.rs: use crate::b::Thing;      a ──▶ b
//!   a.rs: crate::b::c::run()        a ──▶ b/c (the deepest file the path reaches)
//!   a.rs: use super::sibling;       a ──▶ sibling
//! ```
//!
//! What does not: `mod b;` (a parent declares its child), `pub use` in a module root (a
//! facade re-exporting its children), doc comments (intra-doc links), visibility such as
//! `pub(super)`, and `#[cfg(test)]` code at the end of a file (tests may reach anywhere).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// One crate's files by module path (`["foo", "bar"]` for `src/foo/bar.rs`).
struct CrateFiles {
    modules: BTreeMap<Vec<String>, PathBuf>,
    reexports: BTreeMap<(Vec<String>, String), Vec<String>>,
}

fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).expect("a file under src");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    let is_root = parts.is_empty() && (stem == "lib" || stem == "main");
    if !(is_root || stem == "mod") {
        parts.push(stem.to_string());
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            // A binary target's folder (src/bin) is a crate of its own.
            if path.file_name().is_some_and(|name| name != "bin") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

fn crate_files(src: &Path) -> CrateFiles {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules = files
        .into_iter()
        .map(|file| (module_path(src, &file), file))
        .collect();
    let reexports = reexports(&modules);
    CrateFiles { modules, reexports }
}

/// The code of a file that counts: no comments, no trailing `#[cfg(test)]` module.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        let code = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        lines.push((index + 1, code.to_string()));
    }
    lines
}

/// The paths a line names, as segments after their anchor, with the anchor resolved
/// against `here` (the module of the file). `use a::{b, c::d}` yields both paths.
fn paths_in(line: &str, here: &[String]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for anchor in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(offset) = line[from..].find(anchor) {
            let start = from + offset;
            from = start + anchor.len();
            let before = line[..start].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut base: Vec<String> = match anchor {
                "crate::" => Vec::new(),
                "super::" => here[..here.len().saturating_sub(1)].to_vec(),
                _ => here.to_vec(),
            };
            let mut rest = &line[from..];
            // `super::super::x`
            while let Some(next) = rest.strip_prefix("super::") {
                base.pop();
                rest = next;
            }
            expand(rest, &base, &mut found);
        }
    }
    found
}

/// Expands one path (possibly with a `{…}` group) into full segment lists.
fn expand(rest: &str, base: &[String], found: &mut Vec<Vec<String>>) {
    let mut segments = base.to_vec();
    let mut rest = rest;
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let end = matching_brace(group);
            for member in split_top_level(&group[..end]) {
                expand(member.trim(), &segments, found);
            }
            return;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        segments.push(rest[..end].to_string());
        match rest[end..].strip_prefix("::") {
            Some(next) => rest = next,
            None => break,
        }
    }
    found.push(segments);
}

fn matching_brace(text: &str) -> usize {
    let mut depth = 0;
    for (at, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return at,
            '}' => depth -= 1,
            _ => {}
        }
    }
    text.len()
}

fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (at, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// The deepest file module a path reaches, seen through the re-exports of module roots
/// (`crate::Error` is `crate::error::Error` when the root says `pub use error::Error`).
fn target_of(path: &[String], files: &CrateFiles) -> Option<Vec<String>> {
    let module = (0..=path.len())
        .rev()
        .map(|len| path[..len].to_vec())
        .find(|prefix| files.modules.contains_key(prefix))?;
    if let Some(name) = path.get(module.len())
        && let Some(exported) = files.reexports.get(&(module.clone(), name.clone()))
        && exported != path
    {
        return target_of(exported, files).or(Some(module));
    }
    Some(module)
}

/// What each module root re-exports: `(root, name)` → the full path it stands for.
fn reexports(
    modules: &BTreeMap<Vec<String>, PathBuf>,
) -> BTreeMap<(Vec<String>, String), Vec<String>> {
    let mut found = BTreeMap::new();
    for (module, file) in modules {
        let text = fs::read_to_string(file).expect("a readable source file");
        for (_, line) in code_lines(&text) {
            let trimmed = line.trim();
            let Some(rest) = trimmed
                .strip_prefix("pub use ")
                .or_else(|| trimmed.strip_prefix("pub(crate) use "))
            else {
                continue;
            };
            let rest = rest.trim_end_matches(';');
            let mut paths = paths_in(rest, module);
            if paths.is_empty() {
                // A 2018-edition path relative to this module: `pub use error::Error;`.
                expand(rest, module, &mut paths);
            }
            for path in paths {
                if let Some(name) = path.last() {
                    found.insert((module.clone(), name.clone()), path.clone());
                }
            }
        }
    }
    found
}

type Edges = BTreeMap<Vec<String>, BTreeMap<Vec<String>, usize>>;

fn import_edges(files: &CrateFiles) -> Edges {
    let mut edges = Edges::new();
    for (module, file) in &files.modules {
        let text = fs::read_to_string(file).expect("a readable source file");
        let is_module_root = file.ends_with("lib.rs")
            || file.ends_with("main.rs")
            || file.ends_with("mod.rs")
            || file.with_extension("").is_dir();
        for (number, line) in code_lines(&text) {
            let trimmed = line.trim_start();
            let reexport = trimmed.starts_with("pub use") || trimmed.starts_with("pub(crate) use");
            if is_module_root && reexport {
                continue;
            }
            for path in paths_in(&line, module) {
                if let Some(target) = target_of(&path, files)
                    && &target != module
                {
                    edges
                        .entry(module.clone())
                        .or_default()
                        .entry(target)
                        .or_insert(number);
                }
            }
        }
    }
    edges
}

/// Tarjan's strongly connected components with two or more members.
fn circles(edges: &Edges) -> Vec<Vec<Vec<String>>> {
    struct Walk<'a> {
        edges: &'a Edges,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        found: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(walk: &mut Walk<'a>, node: &'a Vec<String>) {
        let next = walk.index.len();
        walk.index.insert(node, next);
        walk.low.insert(node, next);
        walk.stack.push(node);
        walk.on_stack.insert(node);
        if let Some(targets) = walk.edges.get(node) {
            for target in targets.keys() {
                if !walk.index.contains_key(target) {
                    visit(walk, target);
                    let low = walk.low[node].min(walk.low[target]);
                    walk.low.insert(node, low);
                } else if walk.on_stack.contains(target) {
                    let low = walk.low[node].min(walk.index[target]);
                    walk.low.insert(node, low);
                }
            }
        }
        if walk.low[node] == walk.index[node] {
            let mut group = Vec::new();
            while let Some(member) = walk.stack.pop() {
                walk.on_stack.remove(member);
                group.push(member.clone());
                if member == node {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                walk.found.push(group);
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in edges.keys() {
        if !walk.index.contains_key(node) {
            visit(&mut walk, node);
        }
    }
    walk.found
}

fn name(module: &[String]) -> String {
    if module.is_empty() {
        "crate root".to_string()
    } else {
        module.join("::")
    }
}

fn describe(crate_name: &str, group: &[Vec<String>], edges: &Edges, files: &CrateFiles) -> String {
    let mut lines = vec![format!(
        "{crate_name}: {} import each other:",
        group.iter().map(|m| name(m)).collect::<Vec<_>>().join(", ")
    )];
    for from in group {
        for (to, line) in edges.get(from).into_iter().flatten() {
            if group.contains(to) {
                lines.push(format!(
                    "  {}:{line} uses {}",
                    files.modules[from].display(),
                    name(to)
                ));
            }
        }
    }
    lines.join("\n")
}

fn workspace_crates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates/")
        .to_path_buf()
}

#[test]
fn no_two_files_of_a_crate_import_each_other() {
    let mut problems = Vec::new();
    let mut crates: Vec<_> = fs::read_dir(workspace_crates())
        .expect("crates/")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.join("src").is_dir())
        .collect();
    crates.sort();
    assert!(crates.len() > 5, "found only {} crates", crates.len());
    for dir in crates {
        let files = crate_files(&dir.join("src"));
        let edges = import_edges(&files);
        let crate_name = dir.file_name().unwrap().to_string_lossy().into_owned();
        for group in circles(&edges) {
            problems.push(describe(&crate_name, &group, &edges, &files));
        }
    }
    assert!(
        problems.is_empty(),
        "files that import each other (move what both need into a file of its own):\n{}",
        problems.join("\n")
    );
}

/// The checker itself must see a circle where there is one, and none where there is none.
#[test]
fn the_checker_finds_a_circle_through_a_group_and_super() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    fs::create_dir_all(src.join("outer")).unwrap();
    fs::write(src.join("lib.rs"), "mod a;\nmod outer;\npub use a::A;\n").unwrap();
    fs::write(
        src.join("a.rs"),
        "use crate::{outer::{b::B}, x};\npub struct A;\n",
    )
    .unwrap();
    fs::write(src.join("outer.rs"), "mod b;\n").unwrap();
    fs::write(
        src.join("outer/b.rs"),
        "/// [`crate::a::A`] is only a doc link.\npub(super) struct B;\nfn f() { super::super::a::A; }\n",
    )
    .unwrap();
    let files = crate_files(src);
    let edges = import_edges(&files);
    let found = circles(&edges);
    let a = vec!["a".to_string()];
    let b = vec!["outer".to_string(), "b".to_string()];
    assert_eq!(found, vec![vec![a.clone(), b.clone()]]);

    // Without the call in b, the doc link and the visibility are no imports.
    fs::write(
        src.join("outer/b.rs"),
        "/// [`crate::a::A`] is only a doc link.\npub(super) struct B;\n",
    )
    .unwrap();
    let edges = import_edges(&crate_files(src));
    assert!(circles(&edges).is_empty(), "{edges:?}");
    assert!(edges[&a].contains_key(&b));
}
