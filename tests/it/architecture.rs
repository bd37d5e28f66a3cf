//! The house rules on how modules depend on each other, checked on the
//! source: no import cycles among the modules of any module (the crate's
//! parts, the detectors and their registry, the workbench's modules, …),
//! and no panel reaching for the workbench that owns the state (panels read
//! `ui::state` and send actions).
//!
//! A module depends on another when its code (comments aside) names a path
//! into it (`crate::a::b`, `super::b`, `use super::{a, b}`); a module's own
//! ancestors and descendants do not count (a parent declares its children,
//! a child may use its parent's helpers).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

/// Every module of the crate (path segments) and its file's code, comments
/// and `#[cfg(test)]` sections left out.
fn modules() -> BTreeMap<Module, String> {
    let mut out = BTreeMap::new();
    walk(Path::new("src"), &mut out);
    out
}

fn walk(dir: &Path, out: &mut BTreeMap<Module, String>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let p = entry.expect("entry").path();
        if p.is_dir() {
            walk(&p, out);
            continue;
        }
        if p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = p.strip_prefix("src").expect("under src").with_extension("");
        let mut parts: Module = rel
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
            parts.pop();
        }
        if parts == ["main"] {
            continue;
        }
        let text = std::fs::read_to_string(&p).expect("readable source");
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        out.insert(parts, code);
    }
}

/// Paths a module's code names: `crate::…`, `super::…`, `self::…`, and
/// each item of a `{…}` group after one.
fn named_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts = ["crate::", "super::", "self::"]
            .iter()
            .any(|s| code_at(&bytes, i, s))
            && (i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_'));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < bytes.len() && (bytes[j].is_alphanumeric() || bytes[j] == '_' || bytes[j] == ':')
        {
            j += 1;
        }
        let path: String = bytes[i..j].iter().collect();
        let segs: Vec<String> = path
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if j < bytes.len() && bytes[j] == '{' {
            for item in top_level_items(&bytes[j + 1..]) {
                let first = item.trim().split("::").next().unwrap_or("").trim();
                if !first.is_empty() {
                    let mut p = segs.clone();
                    p.push(first.to_string());
                    paths.push(p);
                }
            }
        }
        paths.push(segs);
        i = j.max(i + 1);
    }
    paths
}

/// The comma-separated items of a `{…}` group (its opening brace already
/// read), nested groups kept inside their item.
fn top_level_items(chars: &[char]) -> Vec<String> {
    let (mut items, mut cur, mut depth) = (Vec::new(), String::new(), 0usize);
    for &c in chars {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    items.push(cur);
    items
}

fn code_at(chars: &[char], i: usize, s: &str) -> bool {
    s.chars()
        .enumerate()
        .all(|(k, c)| chars.get(i + k) == Some(&c))
}

/// The module a path from `from` leads into (the longest existing prefix).
fn resolve(from: &Module, path: &[String], mods: &BTreeMap<Module, String>) -> Option<Module> {
    let mut base: Module = from.clone();
    let mut segs = path;
    if segs.first().is_some_and(|s| s == "crate") {
        base.clear();
        segs = &segs[1..];
    } else {
        while let Some(s) = segs.first() {
            match s.as_str() {
                "super" => {
                    base.pop();
                }
                "self" => {}
                _ => break,
            }
            segs = &segs[1..];
        }
    }
    let mut best = mods.contains_key(&base).then(|| base.clone());
    for s in segs {
        base.push(s.clone());
        if mods.contains_key(&base) {
            best = Some(base.clone());
        } else {
            break;
        }
    }
    best
}

/// Dependencies between the children of `parent` (each child standing for
/// its whole subtree).
fn sibling_graph(
    parent: &[&str],
    mods: &BTreeMap<Module, String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let parent: Module = parent.iter().map(|s| s.to_string()).collect();
    let child_of = |m: &Module| -> Option<String> {
        (m.len() > parent.len() && m[..parent.len()] == parent[..]).then(|| m[parent.len()].clone())
    };
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, code) in mods {
        let Some(a) = child_of(m) else { continue };
        g.entry(a.clone()).or_default();
        for p in named_paths(code) {
            let Some(t) = resolve(m, &p, mods) else {
                continue;
            };
            let related = t.len() <= m.len() && m[..t.len()] == t[..]
                || m.len() <= t.len() && t[..m.len()] == m[..];
            if related {
                continue;
            }
            if let Some(b) = child_of(&t)
                && b != a
            {
                g.entry(a.clone()).or_default().insert(b);
            }
        }
    }
    g
}

/// A cycle through `g`, if there is one.
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        v: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(k) = path.iter().position(|p| p == v) {
            let mut c = path[k..].to_vec();
            c.push(v.to_string());
            return Some(c);
        }
        if done.contains(v) {
            return None;
        }
        path.push(v.to_string());
        for w in g.get(v).into_iter().flatten() {
            if let Some(c) = visit(w, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(v.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|v| visit(v, g, &mut Vec::new(), &mut done))
}

#[test]
fn no_modules_import_each_other_in_a_cycle() {
    let mods = modules();
    // Every module with children: the crate, detect, ui, dataset, …
    let parents: BTreeSet<Module> = mods
        .keys()
        .filter(|m| !m.is_empty())
        .map(|m| m[..m.len() - 1].to_vec())
        .collect();
    assert!(parents.len() >= 5, "{parents:?}");
    for parent in &parents {
        let parent: Vec<&str> = parent.iter().map(String::as_str).collect();
        let g = sibling_graph(&parent, &mods);
        assert_eq!(
            find_cycle(&g),
            None,
            "an import cycle among the modules of {}",
            if parent.is_empty() {
                "the crate".to_string()
            } else {
                parent.join("::")
            }
        );
    }
}

#[test]
fn the_graph_sees_the_dependencies_that_are_there() {
    let mods = modules();
    let top = sibling_graph(&[], &mods);
    assert!(top["detect"].contains("dataset"), "{top:?}");
    let ui = sibling_graph(&["ui"], &mods);
    assert!(
        ui["app"].contains("panels") && ui["panels"].contains("state"),
        "{ui:?}"
    );
    let detect = sibling_graph(&["detect"], &mods);
    assert!(detect["registry"].contains("label_flip"), "{detect:?}");
    assert!(detect["label_flip"].contains("detector"), "{detect:?}");
}

#[test]
fn panels_read_the_state_and_never_the_workbench() {
    let mods = modules();
    let panels: Vec<&Module> = mods
        .keys()
        .filter(|m| m.len() >= 2 && m[..2] == ["ui", "panels"])
        .collect();
    assert!(panels.len() >= 10, "every panel is seen: {panels:?}");
    for m in panels {
        for p in named_paths(&mods[m]) {
            let t = resolve(m, &p, &mods);
            assert_ne!(
                t.as_deref(),
                Some(&["ui".to_string(), "app".to_string()][..]),
                "{} names the workbench ({})",
                m.join("::"),
                p.join("::")
            );
        }
    }
}

#[test]
fn a_cycle_is_found_when_there_is_one() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(find_cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&g).map(|c| c.len()), Some(4));
    let code = "use super::{app::{Action}, state};\nlet x = crate::detect::scan(1);";
    let paths = named_paths(code);
    assert!(
        paths.contains(&vec!["super".into(), "app".into()]),
        "{paths:?}"
    );
    assert!(
        paths.contains(&vec!["super".into(), "state".into()]),
        "{paths:?}"
    );
    assert!(
        paths.contains(&vec!["crate".into(), "detect".into(), "scan".into()]),
        "{paths:?}"
    );
}
