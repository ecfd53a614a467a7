//! The access token kept in a client's memory (issue 18) against writes by other processes: a
//! token another process wrote (a refresh) is what the very next call returns, a disconnect in
//! another process makes the very next call fail with "not connected", a re-authorization flag
//! written elsewhere is seen at once; through the C ABI (whose `mc_token_get` answers from memory
//! without the runtime) and through core's `Client::access_token`.
//!
//! The other process is this test binary run again with `MC_CACHE_CHILD` set (see `child`): it
//! opens the store itself, as a second program or the Windows service would, and changes it.

use std::ffi::{c_char, CStr, CString};
use std::process::Command;
use std::ptr::null_mut;

use mailconnect::*;
use mailconnect_core::store::{KeySource, SqliteStore, StoredState, TokenStore};
use mailconnect_core::CancellationToken;
use mailconnect_tests::*;
use secrecy::ExposeSecret;

/// In a child: change the store at `MC_CACHE_STORE` as `MC_CACHE_CHILD` says, print `DONE`.
#[test]
#[ignore = "run by the tests below as a child process"]
fn child() {
    let Ok(what) = std::env::var("MC_CACHE_CHILD") else {
        return;
    };
    let path = std::path::PathBuf::from(std::env::var("MC_CACHE_STORE").unwrap());
    match what.as_str() {
        "disconnect" => {
            let rt = tokio::runtime::Runtime::new().unwrap();
            let client = open_client(&path);
            rt.block_on(client.disconnect("alice", &CancellationToken::new()))
                .expect("disconnect");
        }
        "needs-reauth" | "rewrite" => {
            let store = SqliteStore::open(&path, &KeySource::default_for(&path)).unwrap();
            let mut rec = store.load_tokens("alice").unwrap().expect("tokens");
            let version = rec.version;
            if what == "rewrite" {
                let value = std::env::var("MC_CACHE_VALUE").unwrap();
                rec.secrets.access_token = Some(value);
            } else {
                rec.meta.state = StoredState::NeedsReauthorization;
            }
            assert!(store.save_tokens(&rec, version).unwrap().is_some(), "saved");
        }
        other => panic!("unknown child job {other}"),
    }
    println!("DONE");
}

/// Run the child job `what` on `store` to its end.
fn other_process(store: &std::path::Path, what: &str, value: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MC_CACHE_CHILD", what)
        .env("MC_CACHE_STORE", store)
        .env("MC_CACHE_VALUE", value)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("DONE"),
        "child {what} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `mc_token_get` of alice: the token, or the status. Called from a thread of its own, as a
/// host calls (a blocking export refuses a thread inside a Tokio runtime, such as this test's).
fn token(c: *mut mc_client) -> Result<String, i32> {
    let c = c as usize;
    std::thread::spawn(move || {
        let id = CString::new("alice").unwrap();
        let mut out: *mut c_char = null_mut();
        let rc = unsafe { mc_token_get(c as *mut mc_client, id.as_ptr(), null_mut(), &mut out) };
        if rc != MC_OK {
            assert!(out.is_null());
            return Err(rc);
        }
        let s = unsafe { CStr::from_ptr(out) }
            .to_string_lossy()
            .into_owned();
        unsafe { mc_string_free(out) };
        Ok(s)
    })
    .join()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_processs_writes_are_seen_by_the_very_next_call() {
    let env = env().await;
    env.connected("alice", "alice@example.test")
        .flow("device_code")
        .await;
    let store = env.store_path();
    let opts =
        CString::new(serde_json::json!({"store": store, "no_proxy": true}).to_string()).unwrap();
    let mut c = null_mut();
    assert_eq!(unsafe { mc_client_open(opts.as_ptr(), &mut c) }, MC_OK);
    let core = open_client(&store);
    let nc = CancellationToken::new();

    let first = token(c).expect("a token");
    for _ in 0..100 {
        assert_eq!(
            token(c).unwrap(),
            first,
            "the same token while nothing changes"
        );
    }
    // Another process writes a new token (a refresh), again and again: each is seen at once.
    for round in 0..10 {
        let value = format!("eyJ.rewritten-by-another-process-{round}");
        other_process(&store, "rewrite", &value);
        // (Compared without printing: a token does not belong in a test log.)
        assert!(token(c).unwrap() == value, "round {round}: the C ABI");
        let t = core.access_token("alice", &nc).await.unwrap();
        assert!(t.token.expose_secret() == value, "round {round}: core");
        assert!(
            token(c).unwrap() == value,
            "round {round}: again from memory"
        );
    }

    // A re-authorization flag written by another process: the next call says so.
    other_process(&store, "needs-reauth", "");
    assert!(matches!(token(c), Err(MC_E_REAUTHORIZATION_REQUIRED)));
    let e = core.access_token("alice", &nc).await.unwrap_err();
    assert_eq!(
        e.kind(),
        mailconnect_core::ErrorKind::ReauthorizationRequired
    );

    // Connected again, cached again, then disconnected by another process.
    env.connected("alice", "alice@example.test")
        .flow("device_code")
        .await;
    let again = token(c).expect("a token after the new sign-in");
    assert!(token(c).unwrap() == again);
    assert!(
        core.access_token("alice", &nc)
            .await
            .unwrap()
            .token
            .expose_secret()
            == again
    );
    other_process(&store, "disconnect", "");
    assert!(
        matches!(token(c), Err(MC_E_STATE)),
        "not connected, at once"
    );
    let e = core.access_token("alice", &nc).await.unwrap_err();
    assert_eq!(e.kind(), mailconnect_core::ErrorKind::State, "{e}");
    unsafe { mc_client_free(c) };
}
