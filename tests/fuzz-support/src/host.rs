//! JSON and CSV from the host: accounts, registrations, client options, account imports.

use mailconnect_core::model::csv::{parse_accounts_csv, CsvDefaults};
use mailconnect_core::model::{self, Account, Registration};
use mailconnect_core::{ClientOptions, ErrorKind, Flow};

use crate::checks::{assert_no_leak, distinct_secrets, shown};

/// The string values of `key` anywhere in `v` (to look for in error messages).
fn strings_at(v: &serde_json::Value, key: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                if k == key {
                    if let Some(s) = x.as_str() {
                        out.push(s.to_string());
                    }
                }
                strings_at(x, key, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings_at(x, key, out)),
        _ => {}
    }
}

/// Account JSON as `Client::put_account_json` reads it (with an inline registration or its id),
/// and registration JSON as `Client::put_registration_json` reads it, short of storing.
pub fn account_json(json: &str) {
    let mut secrets = Vec::new();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(json) {
        strings_at(&v, "client_secret", &mut secrets);
    }
    let secrets = distinct_secrets(json, secrets);
    let text = account_errors(json, &secrets);
    let again = |b: &[u8]| account_errors(&String::from_utf8_lossy(b), &[]);
    assert_no_leak(json.as_bytes(), &secrets, &text, again, "account JSON");
}

/// The error texts of reading `json` as an account and as a registration.
fn account_errors(json: &str, secrets: &[String]) -> String {
    let text = |r: mailconnect_core::Result<()>| match r {
        Ok(()) => String::new(),
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{}", err.message());
            shown(&err)
        }
    };
    let account = text(put_account_json(json));
    let registration = text(
        model::parse_json::<Registration>("registration", json).and_then(|reg| {
            model::validate_registration(&reg)?;
            let debug = format!("{reg:?}");
            for s in secrets {
                assert!(!debug.contains(s), "a client secret in the Debug output");
            }
            Ok(())
        }),
    );
    account + &registration
}

/// The parsing and validation steps of `Client::put_account_json`, in its order.
fn put_account_json(json: &str) -> mailconnect_core::Result<()> {
    let mut v: serde_json::Value = model::parse_json("account", json)?;
    let inline = match v.get("registration") {
        Some(r @ serde_json::Value::Object(_)) => Some(r.clone()),
        _ => None,
    };
    if let Some(r) = inline {
        let reg: Registration = model::parse_json("account.registration", &r.to_string())?;
        model::validate_registration(&reg)?;
        v["registration"] = serde_json::Value::String(reg.id.clone());
        let _ = mailconnect_core::provider::default_servers(&reg, None);
    }
    let account: Account = model::parse_json("account", &v.to_string())?;
    model::validate_account(&account)?;
    let _ = account.expected_login();
    // A valid account survives its own JSON (it is stored and returned as JSON).
    let again = serde_json::to_string(&account).unwrap_or_else(|e| panic!("serialize: {e}"));
    let back: Account = model::parse_json("account", &again)
        .unwrap_or_else(|e| panic!("a valid account does not read back: {}", e.message()));
    model::validate_account(&back).unwrap_or_else(|e| {
        panic!(
            "a valid account fails validation after a round trip: {}",
            e.message()
        )
    });
    Ok(())
}

/// The client options JSON (`mc_client_open`).
pub fn client_options_json(json: &str) {
    let mut secrets = Vec::new();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(json) {
        // `extra_ca_file` is read from disk: only let the fuzzer name regular files (a device such
        // as /dev/zero or /dev/stdin would never end; the options come from the host, not a peer).
        if let Some(p) = v.get("extra_ca_file").and_then(|p| p.as_str()) {
            if !std::path::Path::new(p).is_file() {
                return;
            }
        }
        strings_at(&v, "base64", &mut secrets);
    }
    let secrets = distinct_secrets(json, secrets);
    let text = options_error(json);
    let again = |b: &[u8]| options_error(&String::from_utf8_lossy(b));
    assert_no_leak(
        json.as_bytes(),
        &secrets,
        &text,
        again,
        "client options JSON",
    );
}

/// The error text of reading `json` as client options.
fn options_error(json: &str) -> String {
    match ClientOptions::from_json(json) {
        Ok(_) => String::new(),
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{}", err.message());
            shown(&err)
        }
    }
}

/// A CSV file of accounts (`model::csv::parse_accounts_csv`), and applying each row to itself as
/// an update would.
pub fn accounts_csv(text: &str, flow: Option<Flow>) {
    let defaults = CsvDefaults {
        registration: "contoso".into(),
        flow,
    };
    match parse_accounts_csv(text, &defaults) {
        Ok(imp) => {
            let mut ids = std::collections::HashSet::new();
            let mut last_line = 0;
            for row in &imp.rows {
                assert!(
                    row.line > last_line,
                    "row lines out of order: {:?}",
                    imp.rows
                );
                last_line = row.line;
                let Ok(a) = &row.outcome else { continue };
                model::validate_account(a)
                    .unwrap_or_else(|e| panic!("an imported account is invalid: {}", e.message()));
                assert_eq!(a.registration, "contoso");
                assert!(ids.insert(a.id.clone()), "duplicate id imported: {}", a.id);
                if let Some(f) = flow {
                    if !imp.sets("flow") {
                        assert_eq!(a.flow, f);
                    }
                }
                let updated = imp.apply(a, a, &defaults);
                model::validate_account(&updated)
                    .unwrap_or_else(|e| panic!("an applied account is invalid: {}", e.message()));
            }
        }
        Err(e) => assert!(e.line >= 1 && !e.reason.is_empty()),
    }
}
