//! Every function the C headers export is wrapped by every binding, or named in
//! `bindings/coverage.json` as not expressed there, with the reason. The check reads the committed
//! headers and each binding's source, so a new export fails here until each binding takes it up
//! or says why not.
//!
//! "Wrapped" means the binding calls it, not merely declares it: the name occurs at least as
//! often as a declaration plus a call (Python: in the signature table and as `lib.<name>`; .NET
//! and Pascal: the import and a call; C++: a call in the cxx bridge, which imports the C functions
//! from Rust and declares none).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mailconnect_tests::header::{all_exports, count_identifier};
use serde_json::Value;

struct Binding {
    name: &'static str,
    files: &'static [&'static str],
    /// Occurrences of a name that show a call: declaration + call, or a call alone.
    uses: usize,
    /// A spelling that only a call has (checked in addition to `uses`), `{}` = the name.
    call: &'static str,
}

const BINDINGS: [Binding; 4] = [
    Binding {
        name: "python",
        files: &["bindings/python/mailconnect/__init__.py"],
        uses: 2,
        call: "lib.{}",
    },
    Binding {
        name: "dotnet",
        files: &["bindings/dotnet/Mailconnect.cs"],
        uses: 2,
        call: "{}(",
    },
    Binding {
        name: "pascal",
        files: &["bindings/pascal/Mailconnect.pas"],
        uses: 2,
        call: "{}",
    },
    Binding {
        name: "cpp",
        files: &["ffi/src/cxx_bridge.rs"],
        uses: 1,
        call: "{}(",
    },
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    let p = repo().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// `bindings/coverage.json`: binding → export → why it is not expressed.
fn not_expressed() -> BTreeMap<String, BTreeMap<String, String>> {
    let v: Value = serde_json::from_str(&read("bindings/coverage.json")).expect("coverage.json");
    let mut out = BTreeMap::new();
    let table = v["not_expressed"]
        .as_object()
        .expect("coverage.json: an object \"not_expressed\"");
    for (binding, list) in table {
        let mut m = BTreeMap::new();
        for (export, why) in list.as_object().expect("binding → {export: reason}") {
            let why = why.as_str().unwrap_or_default().trim().to_string();
            m.insert(export.clone(), why);
        }
        out.insert(binding.clone(), m);
    }
    out
}

/// Problems with one binding's coverage: exports neither wrapped nor listed, listed exports
/// that are wrapped after all or no longer exist, and entries without a reason.
fn problems(
    b: &Binding,
    source: &str,
    exports: &[String],
    listed: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for e in exports {
        let wrapped =
            count_identifier(source, e) >= b.uses && source.contains(&b.call.replace("{}", e));
        match (wrapped, listed.get(e)) {
            (false, None) => out.push(format!(
                "{}: {e} is neither wrapped nor listed in bindings/coverage.json",
                b.name
            )),
            (true, Some(_)) => out.push(format!(
                "{}: {e} is wrapped; remove it from bindings/coverage.json",
                b.name
            )),
            (false, Some(why)) if why.is_empty() => {
                out.push(format!("{}: {e} is listed without a reason", b.name))
            }
            _ => {}
        }
    }
    for e in listed.keys() {
        if !exports.contains(e) {
            out.push(format!(
                "{}: bindings/coverage.json lists {e}, which the headers do not export",
                b.name
            ));
        }
    }
    out
}

#[test]
fn every_export_is_wrapped_by_every_binding_or_listed_as_not_expressed() {
    let exports = all_exports();
    let lists = not_expressed();
    for name in lists.keys() {
        assert!(
            BINDINGS.iter().any(|b| b.name == name),
            "bindings/coverage.json names an unknown binding {name}"
        );
    }
    let empty = BTreeMap::new();
    let mut all = Vec::new();
    for b in &BINDINGS {
        let source: String = b
            .files
            .iter()
            .map(|f| read(f))
            .collect::<Vec<_>>()
            .join("\n");
        all.extend(problems(
            b,
            &source,
            &exports,
            lists.get(b.name).unwrap_or(&empty),
        ));
    }
    assert!(all.is_empty(), "binding coverage:\n  {}", all.join("\n  "));
}

#[test]
fn the_coverage_check_tells_a_declaration_from_a_call() {
    let b = &BINDINGS[1];
    let exports = vec![
        "mc_a_get".to_string(),
        "mc_b_get".to_string(),
        "mc_c_get".to_string(),
    ];
    let source = "static extern int mc_a_get(); static extern int mc_b_get; int x = Native.mc_a_get(); // mc_c_get_ex mc_b_get";
    let mut listed = BTreeMap::new();
    listed.insert("mc_c_get".to_string(), "not yet".to_string());
    listed.insert("mc_gone".to_string(), "old".to_string());
    let p = problems(b, source, &exports, &listed);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].contains("mc_b_get is neither wrapped nor listed"));
    assert!(p[1].contains("mc_gone, which the headers do not export"));
}
