//! Bad input gets a clear error and loses nothing: NULLs, invalid UTF-8, empty and huge strings,
//! malformed JSON, unknown ids, and the calls that must be harmless (free NULL, double disconnect).

use std::ffi::{c_char, CStr, CString};
use std::ptr::{null, null_mut};

use mailconnect::*;

fn last_message() -> String {
    unsafe { CStr::from_ptr(mc_error_message_get()) }
        .to_string_lossy()
        .into_owned()
}

fn last_diagnostic() -> serde_json::Value {
    serde_json::from_str(&unsafe { CStr::from_ptr(mc_error_diagnostic_get()) }.to_string_lossy())
        .expect("diagnostic is JSON")
}

fn open(dir: &std::path::Path) -> *mut mc_client {
    let opts = CString::new(serde_json::json!({"store": dir.join("s.db")}).to_string()).unwrap();
    let mut c = null_mut();
    assert_eq!(
        unsafe { mc_client_open(opts.as_ptr(), &mut c) },
        MC_OK,
        "{}",
        last_message()
    );
    assert!(!c.is_null());
    c
}

fn take(s: *mut c_char) -> String {
    let out = unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned();
    unsafe { mc_string_free(s) };
    out
}

const REG: &str =
    r#"{"id":"r","provider":"microsoft","client_id":"c","authority_host":"http://127.0.0.1:9"}"#;
const ACC: &str = r#"{"id":"a","mailbox":"alice@example.test","registration":"r"}"#;

#[test]
fn versions_and_status_names() {
    assert_eq!(mc_abi_version_get(), MC_ABI_VERSION);
    assert_eq!(
        unsafe { CStr::from_ptr(mc_version_get()) }
            .to_str()
            .unwrap(),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        unsafe { CStr::from_ptr(mc_result_name_get(MC_E_TIMEOUT)) }
            .to_str()
            .unwrap(),
        "MC_E_TIMEOUT"
    );
    assert_eq!(
        unsafe { CStr::from_ptr(mc_result_name_get(12345)) }
            .to_str()
            .unwrap(),
        "MC_E_INTERNAL"
    );
}

#[test]
fn null_pointers_are_refused_for_every_argument() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let id = CString::new("a").unwrap();
    let mut out: *mut c_char = null_mut();
    unsafe {
        assert_eq!(mc_client_open(null(), &mut null_mut()), MC_E_NULL_POINTER);
        assert!(
            last_message().contains("options_json"),
            "{}",
            last_message()
        );
        let opts = CString::new("{}").unwrap();
        assert_eq!(mc_client_open(opts.as_ptr(), null_mut()), MC_E_NULL_POINTER);
        assert_eq!(mc_account_put(null_mut(), id.as_ptr()), MC_E_NULL_POINTER);
        assert_eq!(mc_account_put(c, null()), MC_E_NULL_POINTER);
        assert_eq!(mc_account_get(c, null(), &mut out), MC_E_NULL_POINTER);
        assert_eq!(
            mc_account_get(c, id.as_ptr(), null_mut()),
            MC_E_NULL_POINTER
        );
        assert_eq!(mc_account_list(c, null_mut()), MC_E_NULL_POINTER);
        assert_eq!(mc_account_remove(c, null()), MC_E_NULL_POINTER);
        assert_eq!(
            mc_account_status_get(c, id.as_ptr(), null_mut()),
            MC_E_NULL_POINTER
        );
        assert_eq!(
            mc_account_connect(c, null(), null(), null_mut()),
            MC_E_NULL_POINTER
        );
        assert_eq!(
            mc_account_disconnect(null_mut(), id.as_ptr(), std::ptr::null_mut()),
            MC_E_NULL_POINTER
        );
        assert_eq!(
            mc_account_test(c, id.as_ptr(), 0, null_mut(), null_mut()),
            MC_E_NULL_POINTER
        );
        assert_eq!(
            mc_token_get(c, id.as_ptr(), std::ptr::null_mut(), null_mut()),
            MC_E_NULL_POINTER
        );
        assert_eq!(
            mc_sasl_xoauth2_get(c, null(), std::ptr::null_mut(), &mut out),
            MC_E_NULL_POINTER
        );
        assert_eq!(
            mc_mail_send(c, id.as_ptr(), null(), 10, null_mut()),
            MC_E_NULL_POINTER
        );
        assert_eq!(
            mc_folder_list(c, id.as_ptr(), null_mut(), null_mut()),
            MC_E_NULL_POINTER
        );
        assert_eq!(
            mc_mail_fetch(c, id.as_ptr(), null(), null_mut(), null_mut()),
            MC_E_NULL_POINTER
        );
        assert_eq!(mc_cancel_new(null_mut()), MC_E_NULL_POINTER);
        assert_eq!(mc_error_code_get(), MC_E_NULL_POINTER);
        assert_eq!(last_diagnostic()["status"], "MC_E_NULL_POINTER");
        // Harmless on NULL.
        mc_string_free(null_mut());
        mc_cancel_free(null_mut());
        mc_cancel_trigger(null_mut());
        mc_client_free(null_mut());
        mc_client_free(c);
    }
}

#[test]
fn invalid_utf8_empty_and_huge_strings() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let bad = CString::new(vec![b'a', 0xff, 0xfe, b'b']).unwrap();
    let empty = CString::new("").unwrap();
    let huge = CString::new("x".repeat(1 << 20)).unwrap();
    let mut out: *mut c_char = null_mut();
    unsafe {
        assert_eq!(mc_account_put(c, bad.as_ptr()), MC_E_INVALID_UTF8);
        assert!(last_message().contains("UTF-8"));
        assert_eq!(
            mc_account_status_get(c, bad.as_ptr(), &mut out),
            MC_E_INVALID_UTF8
        );
        assert_eq!(
            mc_account_status_get(c, empty.as_ptr(), &mut out),
            MC_E_INVALID_ARGUMENT
        );
        assert_eq!(mc_account_put(c, empty.as_ptr()), MC_E_INVALID_ARGUMENT);
        assert_eq!(mc_account_put(c, huge.as_ptr()), MC_E_INVALID_ARGUMENT);
        assert_eq!(
            mc_account_status_get(c, huge.as_ptr(), &mut out),
            MC_E_NOT_FOUND
        );
        assert!(out.is_null(), "nothing is handed out on failure");
        mc_client_free(c);
    }
}

#[test]
fn malformed_and_wrong_typed_json_names_the_field_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let cases = [
        ("{not json", None),
        ("[]", None),
        (
            r#"{"id":"a","mailbox":42,"registration":"r"}"#,
            Some("mailbox"),
        ),
        (
            r#"{"id":"a","mailbox":"alice@example.test","registration":"r","flow":"telepathy"}"#,
            Some("flow"),
        ),
        (
            r#"{"id":"a","mailbox":"alice@example.test","registration":"missing"}"#,
            Some("registration"),
        ),
    ];
    unsafe {
        let reg = CString::new(REG).unwrap();
        assert_eq!(
            mc_registration_put(c, reg.as_ptr()),
            MC_OK,
            "{}",
            last_message()
        );
        for (json, field) in cases {
            let j = CString::new(json).unwrap();
            assert_eq!(
                mc_account_put(c, j.as_ptr()),
                MC_E_INVALID_ARGUMENT,
                "{json}"
            );
            if let Some(f) = field {
                assert_eq!(
                    last_diagnostic()["evidence"]["field"],
                    f,
                    "{json}: {}",
                    last_message()
                );
            }
        }
        let mut out = null_mut();
        assert_eq!(mc_account_list(c, &mut out), MC_OK);
        assert_eq!(take(out), "[]");
        let bad_opts = CString::new(r#"{"store":"x.db","language":"fr"}"#).unwrap();
        let mut c2 = null_mut();
        assert_eq!(
            mc_client_open(bad_opts.as_ptr(), &mut c2),
            MC_E_INVALID_ARGUMENT
        );
        assert_eq!(last_diagnostic()["evidence"]["field"], "language");
        assert!(c2.is_null());
        mc_client_free(c);
    }
}

#[test]
fn unknown_accounts_double_disconnect_and_not_connected_calls() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let (reg, acc) = (CString::new(REG).unwrap(), CString::new(ACC).unwrap());
    let (a, nobody) = (CString::new("a").unwrap(), CString::new("nobody").unwrap());
    let mut out: *mut c_char = null_mut();
    unsafe {
        assert_eq!(
            mc_registration_put(c, reg.as_ptr()),
            MC_OK,
            "{}",
            last_message()
        );
        assert_eq!(mc_account_put(c, acc.as_ptr()), MC_OK, "{}", last_message());
        assert_eq!(mc_error_code_get(), MC_OK, "success clears the last error");
        assert_eq!(
            mc_account_disconnect(c, nobody.as_ptr(), std::ptr::null_mut()),
            MC_E_NOT_FOUND
        );
        assert!(last_message().contains("nobody"));
        assert_eq!(
            mc_account_disconnect(c, a.as_ptr(), std::ptr::null_mut()),
            MC_OK
        );
        assert_eq!(
            mc_account_disconnect(c, a.as_ptr(), std::ptr::null_mut()),
            MC_OK,
            "double disconnect"
        );
        assert_eq!(
            mc_token_get(c, a.as_ptr(), std::ptr::null_mut(), &mut out),
            MC_E_STATE
        );
        assert!(last_message().contains("not connected"));
        // A cancel triggered before the call: Disconnect and the sign-in's first step end with
        // MC_E_CANCELLED and change nothing.
        let mut cancel = null_mut();
        assert_eq!(mc_cancel_new(&mut cancel), MC_OK);
        mc_cancel_trigger(cancel);
        assert_eq!(mc_account_disconnect(c, a.as_ptr(), cancel), MC_E_CANCELLED);
        assert_eq!(
            mc_authorization_begin(c, a.as_ptr(), std::ptr::null(), cancel, &mut out),
            MC_E_CANCELLED
        );
        assert!(out.is_null());
        mc_cancel_free(cancel);
        assert_eq!(mc_account_status_get(c, a.as_ptr(), &mut out), MC_OK);
        let status: serde_json::Value = serde_json::from_str(&take(out)).unwrap();
        assert_eq!(status["state"], "not_connected");
        // Test without tokens reports not_connected and touches no server.
        let mut report = null_mut();
        assert_eq!(
            mc_account_test(c, a.as_ptr(), 0, null_mut(), &mut report),
            MC_OK
        );
        let report: serde_json::Value = serde_json::from_str(&take(report)).unwrap();
        assert_eq!(report["ok"], false);
        assert_eq!(report["token"]["status"], "not_connected");
        assert!(report["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["phases_ms"]["connect"].is_null()));
        // The registration is in use.
        let r = CString::new("r").unwrap();
        assert_eq!(mc_registration_remove(c, r.as_ptr()), MC_E_STATE);
        mc_client_free(c);
    }
}

#[test]
fn a_cancel_triggered_before_the_call_ends_it_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let (reg, acc, a) = (
        CString::new(REG).unwrap(),
        CString::new(ACC).unwrap(),
        CString::new("a").unwrap(),
    );
    unsafe {
        assert_eq!(
            mc_registration_put(c, reg.as_ptr()),
            MC_OK,
            "{}",
            last_message()
        );
        assert_eq!(mc_account_put(c, acc.as_ptr()), MC_OK, "{}", last_message());
        let mut cancel = null_mut();
        assert_eq!(mc_cancel_new(&mut cancel), MC_OK);
        mc_cancel_trigger(cancel);
        mc_cancel_trigger(cancel);
        let started = std::time::Instant::now();
        assert_eq!(
            mc_account_connect(c, a.as_ptr(), null(), cancel),
            MC_E_CANCELLED,
            "{}",
            last_message()
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let mut report = null_mut();
        assert_eq!(
            mc_account_test(c, a.as_ptr(), 0, cancel, &mut report),
            MC_E_CANCELLED
        );
        mc_cancel_free(cancel);
        mc_client_free(c);
    }
}

#[test]
fn a_wrong_callbacks_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let (reg, acc, a) = (
        CString::new(REG).unwrap(),
        CString::new(ACC).unwrap(),
        CString::new("a").unwrap(),
    );
    let cb = mc_connect_callbacks {
        version: 99,
        user_data: null_mut(),
        on_open_url: None,
        on_device_code: None,
        on_progress: None,
    };
    unsafe {
        assert_eq!(
            mc_registration_put(c, reg.as_ptr()),
            MC_OK,
            "{}",
            last_message()
        );
        assert_eq!(mc_account_put(c, acc.as_ptr()), MC_OK, "{}", last_message());
        assert_eq!(
            mc_account_connect(c, a.as_ptr(), &cb, null_mut()),
            MC_E_INVALID_ARGUMENT
        );
        assert!(last_message().contains("version"));
        mc_client_free(c);
    }
}

#[test]
fn host_integration_exports_refuse_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let acc = CString::new("a").unwrap();
    let bad = [0xffu8, 0xfe, 0].as_ptr() as *const c_char;
    let mut out: *mut c_char = null_mut();
    unsafe {
        // Sign-in.
        assert_eq!(
            mc_authorization_begin(
                null_mut(),
                acc.as_ptr(),
                null(),
                std::ptr::null_mut(),
                &mut out
            ),
            MC_E_NULL_POINTER
        );
        assert_eq!(
            mc_authorization_begin(c, null(), null(), std::ptr::null_mut(), &mut out),
            MC_E_NULL_POINTER
        );
        assert_eq!(
            mc_authorization_begin(c, acc.as_ptr(), null(), std::ptr::null_mut(), null_mut()),
            MC_E_NULL_POINTER
        );
        assert_eq!(
            mc_authorization_begin(c, bad, null(), std::ptr::null_mut(), &mut out),
            MC_E_INVALID_UTF8
        );
        assert_eq!(
            mc_authorization_begin(c, acc.as_ptr(), null(), std::ptr::null_mut(), &mut out),
            MC_E_NOT_FOUND
        );
        let opts = CString::new(r#"{"flow":"browser","redirect":"x"}"#).unwrap();
        assert_eq!(
            mc_authorization_begin(
                c,
                acc.as_ptr(),
                opts.as_ptr(),
                std::ptr::null_mut(),
                &mut out
            ),
            MC_E_INVALID_ARGUMENT
        );
        assert!(last_message().contains("redirect"), "{}", last_message());
        let h = CString::new("auth-nothing").unwrap();
        let url = CString::new("https://x/?code=1&state=2").unwrap();
        assert_eq!(
            mc_authorization_complete(c, h.as_ptr(), null(), null_mut(), null_mut()),
            MC_E_NULL_POINTER
        );
        assert_eq!(
            mc_authorization_complete(c, h.as_ptr(), bad, null_mut(), null_mut()),
            MC_E_INVALID_UTF8
        );
        assert_eq!(
            mc_authorization_complete(c, h.as_ptr(), url.as_ptr(), null_mut(), null_mut()),
            MC_E_STATE
        );
        assert_eq!(last_diagnostic()["code"], "MC-SIGN-IN-NOT-PENDING");
        assert_eq!(
            mc_authorization_poll(c, h.as_ptr(), null_mut(), null_mut()),
            MC_E_NULL_POINTER
        );
        assert_eq!(
            mc_authorization_poll(c, h.as_ptr(), null_mut(), &mut out),
            MC_E_STATE
        );
        assert_eq!(
            mc_authorization_wait(c, h.as_ptr(), null_mut(), null_mut()),
            MC_E_STATE
        );
        assert_eq!(mc_authorization_abort(c, h.as_ptr()), MC_E_STATE);
        let empty = CString::new("").unwrap();
        assert_eq!(
            mc_authorization_abort(c, empty.as_ptr()),
            MC_E_INVALID_ARGUMENT
        );
        // Events.
        assert_eq!(mc_events_next(null_mut(), 0, &mut out), MC_E_NULL_POINTER);
        assert_eq!(mc_events_next(c, 0, null_mut()), MC_E_NULL_POINTER);
        assert_eq!(mc_events_next(c, 0, &mut out), MC_OK);
        assert!(out.is_null(), "no event yet");
        for bad_opts in [
            r#"{"capacity": 1}"#,
            r#"{"capacity": 1000000}"#,
            r#"{"log_level": "loud"}"#,
            r#"{"size": 3}"#,
            "[]",
        ] {
            let o = CString::new(bad_opts).unwrap();
            assert_eq!(
                mc_events_configure(c, o.as_ptr()),
                MC_E_INVALID_ARGUMENT,
                "{bad_opts}"
            );
        }
        assert_eq!(mc_events_configure(c, null()), MC_E_NULL_POINTER);
        // Refresher.
        for bad_opts in [
            r#"{"interval_secs": 0}"#,
            r#"{"concurrency": 999}"#,
            r#"{"ahead": 1}"#,
        ] {
            let o = CString::new(bad_opts).unwrap();
            assert_eq!(
                mc_refresher_start(c, o.as_ptr()),
                MC_E_INVALID_ARGUMENT,
                "{bad_opts}"
            );
        }
        assert_eq!(mc_refresher_stop(null_mut()), MC_E_NULL_POINTER);
        assert_eq!(mc_refresher_stop(c), MC_OK, "stopping a stopped refresher");
        assert_eq!(
            mc_refresher_run(c, null(), null_mut(), null_mut()),
            MC_E_NULL_POINTER
        );
        assert_eq!(mc_refresher_run(c, null(), null_mut(), &mut out), MC_OK);
        let report: serde_json::Value = serde_json::from_str(&take(out)).unwrap();
        assert_eq!(report["accounts"], 0);
        // Host store.
        let key =
            CString::new(r#"{"key":{"base64":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}}"#)
                .unwrap();
        let mut c2 = null_mut();
        assert_eq!(
            mc_client_open_with_store(key.as_ptr(), null(), &mut c2),
            MC_E_NULL_POINTER
        );
        let cb = mc_store_callbacks {
            version: 99,
            user_data: null_mut(),
            load: None,
            compare_and_swap: None,
            remove: None,
            list: None,
        };
        assert_eq!(
            mc_client_open_with_store(key.as_ptr(), &cb, &mut c2),
            MC_E_INVALID_ARGUMENT
        );
        assert!(last_message().contains("version"));
        let cb = mc_store_callbacks {
            version: MC_STORE_CALLBACKS_VERSION,
            ..cb
        };
        assert_eq!(
            mc_client_open_with_store(key.as_ptr(), &cb, &mut c2),
            MC_E_NULL_POINTER
        );
        assert!(last_message().contains("load"), "{}", last_message());
        assert!(c2.is_null(), "nothing handed out on failure");
        assert_eq!(
            mc_store_record_set(null_mut(), null(), 0, 1),
            MC_E_NULL_POINTER
        );
        assert_eq!(
            mc_store_list_add(null_mut(), acc.as_ptr(), null(), 0, 1),
            MC_E_NULL_POINTER
        );
        mc_client_free(c);
    }
}

/// A megabyte argument is not echoed back: every message stays within 4 KiB and a quoted input is
/// cut (and says so) after a few hundred bytes.
#[test]
fn huge_arguments_give_short_errors() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let reg = CString::new(REG).unwrap();
    assert_eq!(unsafe { mc_registration_put(c, reg.as_ptr()) }, MC_OK);
    let mb = "x".repeat(1 << 20);
    let cases = [
        (
            "mailbox",
            serde_json::json!({"id":"a","mailbox": format!("{mb}@example.test"),"registration":"r"}),
        ),
        (
            "host",
            serde_json::json!({"id":"a","mailbox":"alice@example.test","registration":"r",
                "servers":{"imap":{"host": mb,"port":993,"security":"tls"}}}),
        ),
    ];
    for (what, json) in cases {
        let j = CString::new(json.to_string()).unwrap();
        assert_eq!(
            unsafe { mc_account_put(c, j.as_ptr()) },
            MC_E_INVALID_ARGUMENT,
            "{what}"
        );
        let m = last_message();
        assert!(m.len() <= 4096, "{what}: {} bytes", m.len());
        let d = unsafe { CStr::from_ptr(mc_error_diagnostic_get()) }
            .to_bytes()
            .len();
        assert!(d < 16 * 1024, "{what}: the diagnostic is {d} bytes");
    }
    let id = CString::new(mb.clone()).unwrap();
    let mut out = null_mut();
    assert_eq!(
        unsafe { mc_account_status_get(c, id.as_ptr(), &mut out) },
        MC_E_NOT_FOUND
    );
    let m = last_message();
    assert!(
        m.len() <= 4096 && m.contains("[cut: 1048576 bytes in all]"),
        "{m}"
    );
    // Registration fields have limits, named with the field.
    for (field, json) in [
        (
            "issuer",
            serde_json::json!({"id":"g","provider":"generic","client_id":"c","issuer": format!("https://{mb}")}),
        ),
        (
            "client_secret",
            serde_json::json!({"id":"g","provider":"microsoft","client_id":"c","client_secret": mb}),
        ),
        (
            "scopes",
            serde_json::json!({"id":"g","provider":"microsoft","client_id":"c","scopes": [mb]}),
        ),
    ] {
        let j = CString::new(json.to_string()).unwrap();
        assert_eq!(
            unsafe { mc_registration_put(c, j.as_ptr()) },
            MC_E_INVALID_ARGUMENT,
            "{field}"
        );
        let m = last_message();
        assert!(
            m.contains(&format!("'{field}'")) && m.contains("at most") && m.len() < 300,
            "{field}: {m}"
        );
        assert_eq!(last_diagnostic()["evidence"]["field"], field);
    }
    unsafe { mc_client_free(c) };
}

/// Every out-parameter is set to NULL when a call starts: a host that checks the pointer instead
/// of the status never finds its own stale value there.
#[test]
fn out_parameters_are_cleared_at_entry() {
    let stale = std::ptr::dangling_mut::<mc_client>();
    let mut c = stale;
    let bad = CString::new("{not json").unwrap();
    assert_eq!(
        unsafe { mc_client_open(bad.as_ptr(), &mut c) },
        MC_E_INVALID_ARGUMENT
    );
    assert!(c.is_null(), "mc_client_open left the host's value");
    let mut c = stale;
    assert_eq!(unsafe { mc_client_open(null(), &mut c) }, MC_E_NULL_POINTER);
    assert!(
        c.is_null(),
        "a NULL argument checked after the out-parameter"
    );
    let dir = tempfile::tempdir().unwrap();
    let client = open(dir.path());
    let stale_str = std::ptr::dangling_mut::<c_char>();
    let unknown = CString::new("nobody").unwrap();
    let mut s = stale_str;
    assert_eq!(
        unsafe { mc_account_status_get(client, unknown.as_ptr(), &mut s) },
        MC_E_NOT_FOUND
    );
    assert!(s.is_null());
    let mut s = stale_str;
    assert_eq!(
        unsafe { mc_token_get(client, unknown.as_ptr(), std::ptr::null_mut(), &mut s) },
        MC_E_NOT_FOUND
    );
    assert!(s.is_null());
    let mut s = stale_str;
    assert_eq!(
        unsafe { mc_account_get(null_mut(), unknown.as_ptr(), &mut s) },
        MC_E_NULL_POINTER
    );
    assert!(s.is_null(), "cleared even when the client is NULL");
    unsafe { mc_client_free(client) };
}

#[test]
fn message_send_refuses_bad_messages_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let stale = std::ptr::dangling_mut::<c_char>();
    // Put a registration or account from JSON; the status.
    let put = |f: unsafe extern "C" fn(*mut mc_client, *const c_char) -> i32, json: &str| {
        let j = CString::new(json).unwrap();
        unsafe { f(c, j.as_ptr()) }
    };
    unsafe {
        assert_eq!(put(mc_registration_put, REG), MC_OK, "{}", last_message());
        let acct =
            r#"{"id":"a","mailbox":"alice@example.test","registration":"r","transport":"graph"}"#;
        assert_eq!(put(mc_account_put, acct), MC_OK, "{}", last_message());
        let a = CString::new("a").unwrap();
        let mut out = stale;
        assert_eq!(
            mc_message_send(c, a.as_ptr(), null(), null_mut(), &mut out),
            MC_E_NULL_POINTER
        );
        assert!(
            out.is_null(),
            "the optional out-parameter is cleared at entry"
        );
        let cases = [
            (r#"{"subject":"x","text":"y"}"#, "to"),
            (r#"{"to":["not an address"]}"#, "to"),
            (
                r#"{"to":["b@example.test"],"attachments":[{"path":"/nonexistent/r.pdf"}]}"#,
                "attachments[0].path",
            ),
            (
                r#"{"to":["b@example.test"],"attachments":[{"content_base64":"***"}]}"#,
                "attachments[0].content_base64",
            ),
            (
                r#"{"to":["b@example.test"],"importance":"urgent"}"#,
                "importance",
            ),
            (r#"{"to":["b@example.test"],"colour":"red"}"#, "colour"),
        ];
        for (json, field) in cases {
            let j = CString::new(json).unwrap();
            let mut out = stale;
            assert_eq!(
                mc_message_send(c, a.as_ptr(), j.as_ptr(), null_mut(), &mut out),
                MC_E_INVALID_ARGUMENT,
                "{json}: {}",
                last_message()
            );
            assert!(out.is_null());
            assert_eq!(
                last_diagnostic()["evidence"]["field"],
                field,
                "{json}: {}",
                last_message()
            );
        }
        // A good message for an account that is not connected: nothing to send with.
        let j = CString::new(r#"{"to":["b@example.test"],"subject":"Grüße","text":"x"}"#).unwrap();
        assert_eq!(
            mc_message_send(c, a.as_ptr(), j.as_ptr(), null_mut(), null_mut()),
            MC_E_STATE,
            "{}",
            last_message()
        );
        let mut t = stale;
        assert_eq!(
            mc_graph_token_get(c, a.as_ptr(), null_mut(), &mut t),
            MC_E_STATE
        );
        assert!(t.is_null());
        // Graph is Microsoft's: an account of another provider cannot be given that transport.
        let google = r#"{"id":"g","provider":"google","client_id":"x.apps.googleusercontent.com"}"#;
        assert_eq!(
            put(mc_registration_put, google),
            MC_OK,
            "{}",
            last_message()
        );
        let acct = r#"{"id":"b","mailbox":"b@gmail.com","registration":"g","transport":"auto"}"#;
        assert_eq!(put(mc_account_put, acct), MC_E_INVALID_ARGUMENT);
        assert_eq!(last_diagnostic()["evidence"]["field"], "transport");
        mc_client_free(c);
    }
}
