//! The C ABI under concurrency and after failures, against the sandbox: 16 threads calling
//! mc_token_get and mc_account_test on one client at once; calls after a failed connect.

use std::ffi::{c_char, CStr, CString};
use std::ptr::null_mut;

use mailconnect::*;
use mailconnect_tests::*;

struct Shared(*mut mc_client);
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

fn take(p: *mut c_char) -> String {
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    unsafe { mc_string_free(p) };
    s
}

fn open(store: &std::path::Path, emulator: &str) -> *mut mc_client {
    let opts = CString::new(serde_json::json!({"store": store}).to_string()).unwrap();
    let mut c = null_mut();
    assert_eq!(unsafe { mc_client_open(opts.as_ptr(), &mut c) }, MC_OK);
    let reg = CString::new(
        serde_json::json!({"id":"desktop","provider":"microsoft","tenant":"organizations","authority_host":emulator,"client_id":DESKTOP_APP}).to_string(),
    )
    .unwrap();
    assert_eq!(unsafe { mc_registration_put(c, reg.as_ptr()) }, MC_OK);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_threads_share_one_client_for_tokens_and_tests() {
    let env = env().await;
    // Connect through core on the same store; the C ABI client then uses it.
    env.connected("alice", "alice@example.test")
        .flow("device_code")
        .await;
    let c = Shared(open(&env.store_path(), env.emulator.base_url()));
    let c = std::sync::Arc::new(c);
    let results = tokio::task::spawn_blocking(move || {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let c = c.clone();
                std::thread::spawn(move || {
                    let id = CString::new("alice").unwrap();
                    let mut out = null_mut();
                    if i % 2 == 0 {
                        let rc = unsafe {
                            mc_token_get(c.0, id.as_ptr(), std::ptr::null_mut(), &mut out)
                        };
                        (rc, if rc == MC_OK { take(out).len() } else { 0 })
                    } else {
                        // No servers configured for the mail protocols here: the report says so, the call succeeds.
                        let rc =
                            unsafe { mc_account_test(c.0, id.as_ptr(), 0, null_mut(), &mut out) };
                        (rc, if rc == MC_OK { take(out).len() } else { 0 })
                    }
                })
            })
            .collect();
        let r: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        unsafe { mc_client_free(c.0) };
        r
    })
    .await
    .unwrap();
    for (rc, len) in results {
        assert_eq!(rc, MC_OK);
        assert!(len > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_after_a_failed_connect_report_not_connected_and_nothing_is_stored() {
    let env = env().await;
    let url = env.emulator.base_url().to_string();
    let store = env.store_path();
    // A plain OS thread, as in a C host (tokio's blocking threads are inside a runtime context,
    // where blocking mailconnect calls are refused with MC_E_STATE).
    let host = std::thread::spawn(move || {
        let c = open(&store, &url);
        let acc = CString::new(r#"{"id":"a","mailbox":"alice@example.test","registration":"desktop","flow":"device_code","options":{"interactive_timeout_secs":1}}"#).unwrap();
        let id = CString::new("a").unwrap();
        unsafe {
            assert_eq!(mc_account_put(c, acc.as_ptr()), MC_OK);
            // Nobody enters the device code: the connect times out.
            assert_eq!(
                mc_account_connect(c, id.as_ptr(), std::ptr::null(), null_mut()),
                MC_E_TIMEOUT
            );
            let diag: serde_json::Value =
                serde_json::from_str(&CStr::from_ptr(mc_error_diagnostic_get()).to_string_lossy())
                    .unwrap();
            assert!(
                diag["code"].as_str().is_some_and(|c| c.starts_with("MC-")),
                "{diag}"
            );
            assert!(
                diag["de"]["fix"].as_str().is_some_and(|f| !f.is_empty()),
                "{diag}"
            );
            let mut out = null_mut();
            assert_eq!(
                mc_token_get(c, id.as_ptr(), std::ptr::null_mut(), &mut out),
                MC_E_STATE
            );
            assert!(out.is_null());
            assert_eq!(mc_account_status_get(c, id.as_ptr(), &mut out), MC_OK);
            assert!(take(out).contains("not_connected"));
            assert_eq!(
                mc_account_disconnect(c, id.as_ptr(), std::ptr::null_mut()),
                MC_OK
            );
            mc_client_free(c);
        }
    });
    tokio::task::spawn_blocking(move || host.join())
        .await
        .unwrap()
        .unwrap();
}
