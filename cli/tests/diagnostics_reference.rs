//! The diagnostics reference (`docs/diagnostics.md`, `docs/diagnostics.de.md`) is what
//! `mailconnect diagnostics reference` generates from the catalog and the recognition rules: both
//! are regenerated in memory and compared with the committed files, which fail this test while
//! they are stale. The guides link the reference.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ lives inside the repository")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    let p = repo().join(rel);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
        .replace("\r\n", "\n")
}

/// `mailconnect diagnostics reference --lang LANG [extra]`, its standard output.
fn generate(lang: &str, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mailconnect"))
        .args(["diagnostics", "reference", "--lang", lang])
        .args(extra)
        .env_remove("MAILCONNECT_LANG")
        .output()
        .expect("mailconnect runs");
    assert!(
        out.status.success(),
        "mailconnect diagnostics reference --lang {lang} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Where `committed` and `generated` first differ, for the failure message.
fn first_difference(committed: &str, generated: &str) -> String {
    let (c, g): (Vec<&str>, Vec<&str>) = (committed.lines().collect(), generated.lines().collect());
    for i in 0..c.len().max(g.len()) {
        let (a, b) = (c.get(i), g.get(i));
        if a != b {
            return format!(
                "line {}:\n  committed: {}\n  generated: {}",
                i + 1,
                a.unwrap_or(&"(end of file)"),
                b.unwrap_or(&"(end of file)")
            );
        }
    }
    "only in line endings or the final newline".into()
}

#[test]
fn the_committed_references_are_what_the_command_generates() {
    let mut stale = Vec::new();
    for (lang, file) in [
        ("en", "docs/diagnostics.md"),
        ("de", "docs/diagnostics.de.md"),
    ] {
        let generated = generate(lang, &[]);
        let committed = read(file);
        if committed != generated {
            stale.push(format!(
                "{file} is stale (the catalog or the recognition rules in core/src/diagnose changed); \
                 regenerate it with\n  cargo run -p mailconnect-cli -- diagnostics reference --lang {lang} --out {file}\n\
                 first difference at {}",
                first_difference(&committed, &generated)
            ));
        }
    }
    assert!(stale.is_empty(), "{}", stale.join("\n\n"));
}

#[test]
fn the_reference_is_complete_and_out_writes_the_same_text() {
    let catalog: serde_json::Value =
        serde_json::from_str(&read("core/src/diagnose/catalog.json")).expect("catalog JSON");
    let entries = catalog.as_array().expect("the catalog is an array");
    let dir = tempfile::tempdir().unwrap();
    for lang in ["en", "de"] {
        let text = generate(lang, &[]);
        for e in entries {
            let code = e["code"].as_str().unwrap();
            let title = e[lang]["title"].as_str().unwrap();
            assert!(text.contains(&format!("\n## {code}\n")), "{lang}: {code}");
            assert!(text.contains(title), "{lang}: {code}: {title}");
        }
        for needle in [
            "`AADSTS50173`",
            "`5.7.139`",
            "`AccessTokenExpired`",
            "User is authenticated but not connected",
            "`ErrorSendAsDenied`",
        ] {
            assert!(text.contains(needle), "{lang}: {needle}");
        }
        let out = dir.path().join(format!("diagnostics.{lang}.md"));
        let printed = generate(lang, &["--out", out.to_str().unwrap()]);
        assert!(printed.is_empty(), "--out also printed: {printed}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), text, "{lang}");
    }
}

#[test]
fn the_guides_link_the_reference() {
    for (guide, target) in [
        ("README.md", "docs/diagnostics.md"),
        ("docs/admin-guide.md", "diagnostics.md"),
        ("docs/admin-guide.de.md", "diagnostics.de.md"),
    ] {
        assert!(
            read(guide).contains(&format!("]({target}")),
            "{guide} does not link {target}"
        );
    }
}
