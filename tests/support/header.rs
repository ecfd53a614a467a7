//! Reading the committed C headers: which functions they export, and whether a text names one.

use std::path::{Path, PathBuf};

/// The two committed headers, consumer API first.
pub const HEADERS: [&str; 2] = ["include/mailconnect.h", "include/mailconnect_store.h"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The functions one header's text declares (`MC_API <type> MC_CALL mc_name(`), in order.
pub fn exported_functions(header: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in header.lines() {
        let line = line.trim_start();
        if !line.starts_with("MC_API ") {
            continue;
        }
        let Some(paren) = line.find('(') else {
            continue;
        };
        let before = line[..paren].trim_end();
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let name = &before[start..];
        if name.starts_with("mc_") {
            names.push(name.to_string());
        }
    }
    names
}

/// Every function both committed headers export. Panics when the headers cannot be read or
/// yield implausibly few names (a parser that finds nothing would let every check pass).
pub fn all_exports() -> Vec<String> {
    let mut all = Vec::new();
    for h in HEADERS {
        let p = repo().join(h);
        let text = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
        all.extend(exported_functions(&text));
    }
    assert!(
        all.len() >= 40 && all.iter().any(|f| f == "mc_client_open_with_store"),
        "could not read the exported functions from {HEADERS:?}: {all:?}"
    );
    all
}

/// Whether `text` names `ident` as a whole identifier (not as part of a longer one).
pub fn names_identifier(text: &str, ident: &str) -> bool {
    count_identifier(text, ident) > 0
}

/// How often `text` names `ident` as a whole identifier.
pub fn count_identifier(text: &str, ident: &str) -> usize {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(ident)
        .filter(|(at, _)| {
            let before = text[..*at].chars().next_back();
            let after = text[at + ident.len()..].chars().next();
            !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
        })
        .count()
}
