//! `mailconnect account import`: mixed valid, invalid and duplicate rows; Excel's German CSV (`;`,
//! BOM, CRLF, quotes); existing accounts skipped when identical, skipped or updated when they differ;
//! Windows-1252 files; a misspelt column refusing the whole file.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn cli(store: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mailconnect"));
    c.env("MAILCONNECT_STORE", store)
        .env("MAILCONNECT_LANG", "en")
        .env_remove("MAILCONNECT_CA_FILE");
    c
}

fn run(c: &mut Command) -> (bool, String, String) {
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("import.db");
    let (ok, out, err) = run(cli(&store).args([
        "registration",
        "add",
        "--id",
        "contoso",
        "--tenant",
        "contoso.onmicrosoft.com",
        "--client-id",
        "d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90",
    ]));
    assert!(ok, "{out}{err}");
    (dir, store)
}

fn import_json(store: &Path, file: &Path, extra: &[&str]) -> (bool, Value, String) {
    let (ok, out, err) = run(cli(store)
        .args(["account", "import"])
        .arg(file)
        .args(["--registration", "contoso", "--json"])
        .args(extra));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (ok, v, err)
}

fn results(v: &Value) -> Vec<(u64, String)> {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn mixed_rows_are_reported_per_line_and_the_valid_ones_stored() {
    let (dir, store) = setup();
    let file = dir.path().join("mixed.csv");
    std::fs::write(
        &file,
        "id,mailbox,login,flow\n\
         sales,sales@contoso.com,alice@contoso.com,device_code\n\
         bob,bob@contoso.com,,\n\
         broken,not-an-address,,\n\
         \n\
         carol,carol@contoso.com,,telepathy\n\
         sales,other@contoso.com,,\n\
         dave,dave@contoso.com,,browser,surplus\n\
         ,erin@contoso.com,,\n",
    )
    .unwrap();
    let (ok, v, err) = import_json(&store, &file, &[]);
    assert!(!ok, "an invalid row makes the exit code non-zero");
    assert!(err.contains("4 row(s)") && err.contains("invalid"), "{err}");
    assert_eq!(
        results(&v),
        vec![
            (2, "created".into()),
            (3, "created".into()),
            (4, "invalid".into()),
            (6, "invalid".into()),
            (7, "invalid".into()),
            (8, "invalid".into()),
            (9, "created".into()),
        ],
        "{v}"
    );
    let rows = v["rows"].as_array().unwrap();
    assert!(
        rows[2]["detail"]
            .as_str()
            .unwrap()
            .contains("mailbox: 'mailbox' is not a valid mailbox address: 'not-an-address'"),
        "{v}"
    );
    assert!(rows[3]["detail"].as_str().unwrap().contains("telepathy"));
    assert!(rows[4]["detail"]
        .as_str()
        .unwrap()
        .contains("used again (first on line 2)"));
    assert!(rows[5]["detail"].as_str().unwrap().contains("5 fields"));
    assert_eq!(rows[6]["id"], "erin@contoso.com", "empty id: the mailbox");
    assert_eq!(
        v["summary"],
        serde_json::json!({"created": 3, "updated": 0, "skipped": 0, "invalid": 4})
    );

    // What was stored: the shared mailbox with its delegate and flow.
    let (ok, out, err) = run(cli(&store).args(["account", "show", "sales"]));
    assert!(ok, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["account"]["login"], "alice@contoso.com");
    assert_eq!(shown["account"]["flow"], "device_code");
    assert_eq!(shown["account"]["registration"], "contoso");
    let (ok, out, _) = run(cli(&store).args(["account", "list", "--json"]));
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // The table for people names line, result and reason.
    let (ok, out, _) = run(cli(&store)
        .args(["account", "import"])
        .arg(&file)
        .args(["--registration", "contoso"]));
    assert!(!ok);
    assert!(out.contains("line") && out.contains("result"), "{out}");
    assert!(
        out.contains("already stored, identical") && out.contains("telepathy"),
        "{out}"
    );
    assert!(
        out.contains("0 created, 0 updated, 3 skipped, 4 invalid"),
        "{out}"
    );
}

#[test]
fn excel_german_csv_with_bom_then_skipped_updated_and_windows_1252() {
    let (dir, store) = setup();
    let file = dir.path().join("postfaecher.csv");
    let text = "\u{feff}Konto;E-Mail;Login;Flow;Name\r\n\
                vertrieb;vertrieb@contoso.com;anna@contoso.com;device;\"Vertrieb; Innendienst\"\r\n\
                \r\n\
                buchhaltung;buchhaltung@contoso.com;;;\"Buchhaltung\r\n(zweite Zeile)\"\r\n";
    // `Konto` is not a column name mailconnect knows: the whole file is refused, nothing stored.
    std::fs::write(&file, text).unwrap();
    let (ok, _, err) = run(cli(&store)
        .args(["account", "import"])
        .arg(&file)
        .args(["--registration", "contoso"]));
    assert!(!ok);
    assert!(err.contains("unknown column 'Konto'"), "{err}");
    let (_, out, _) = run(cli(&store).args(["account", "list", "--json"]));
    assert_eq!(out.trim(), "[]");

    std::fs::write(&file, text.replace("Konto", "ID")).unwrap();
    let (ok, v, err) = import_json(&store, &file, &[]);
    assert!(ok, "{v}\n{err}");
    assert_eq!(v["delimiter"], ";");
    assert_eq!(
        results(&v),
        vec![(2, "created".into()), (4, "created".into())]
    );

    // Same file again: identical, skipped. A changed login: skipped without --update.
    let (ok, v, _) = import_json(&store, &file, &[]);
    assert!(ok);
    assert_eq!(
        results(&v),
        vec![(2, "skipped".into()), (4, "skipped".into())]
    );
    std::fs::write(
        &file,
        text.replace("Konto", "ID")
            .replace("anna@contoso.com", "ben@contoso.com"),
    )
    .unwrap();
    let (ok, v, _) = import_json(&store, &file, &[]);
    assert!(ok);
    assert_eq!(
        results(&v),
        vec![(2, "skipped".into()), (4, "skipped".into())]
    );
    assert!(
        v["rows"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("other settings (login); --update changes it"),
        "{v}"
    );
    let (ok, v, _) = import_json(&store, &file, &["--update"]);
    assert!(ok);
    assert_eq!(
        results(&v),
        vec![(2, "updated".into()), (4, "skipped".into())]
    );
    let (_, out, _) = run(cli(&store).args(["account", "show", "vertrieb"]));
    assert!(out.contains("ben@contoso.com"), "{out}");

    // "CSV (Trennzeichen-getrennt)" from a German Excel is Windows-1252, not UTF-8.
    let latin = dir.path().join("ansi.csv");
    let mut bytes = b"mailbox;name\r\nmueller@contoso.com;M".to_vec();
    bytes.push(0xfc); // ü
    bytes.extend_from_slice(b"ller \x80\r\n"); // €
    std::fs::write(&latin, bytes).unwrap();
    let (ok, v, _) = import_json(&store, &latin, &["--flow", "device_code"]);
    assert!(ok, "{v}");
    assert_eq!(v["encoding"], "windows-1252");
    assert_eq!(results(&v), vec![(2, "created".into())]);
    let (_, out, _) = run(cli(&store).args(["account", "show", "mueller@contoso.com"]));
    assert!(out.contains("\"flow\": \"device_code\""), "{out}");
}

#[test]
fn a_missing_registration_or_file_is_one_clear_error() {
    let (dir, store) = setup();
    let file = dir.path().join("a.csv");
    std::fs::write(&file, "mailbox\na@contoso.com\n").unwrap();
    let (ok, _, err) = run(cli(&store)
        .args(["account", "import"])
        .arg(&file)
        .args(["--registration", "nope"]));
    assert!(!ok);
    assert!(err.contains("nope"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let (ok, _, err) = run(cli(&store)
        .args(["account", "import"])
        .arg(dir.path().join("missing.csv"))
        .args(["--registration", "contoso"]));
    assert!(!ok);
    assert!(
        err.contains("cannot read") && err.contains("missing.csv"),
        "{err}"
    );
    // --dry-run reports and stores nothing.
    let (ok, out, _) = run(cli(&store)
        .args(["account", "import", "--dry-run"])
        .arg(&file)
        .args(["--registration", "contoso"]));
    assert!(ok);
    assert!(
        out.contains("dry run") && out.contains("1 created"),
        "{out}"
    );
    let (_, out, _) = run(cli(&store).args(["account", "list", "--json"]));
    assert_eq!(out.trim(), "[]");
}
