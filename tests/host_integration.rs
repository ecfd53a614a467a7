//! Host integration points through the C ABI against the sandbox: the host's own sign-in window
//! (embedded view with the `nativeclient` redirect, loopback driven by the host, device code
//! driven by the host), and the event queue reporting a refresh and a needs-re-authorization in
//! order. The host-callback store is exercised by the C host in `tests/c/host_store.c`
//! (`tests/c_program.rs`) and in `host_store_*` below.

use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr};
use std::ptr::null_mut;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailconnect::*;
use mailconnect_sandbox::{Fault, FaultRule, ScriptedBrowser};
use mailconnect_tests::cabi::*;
use mailconnect_tests::*;
use serde_json::{json, Value};

const NATIVECLIENT: &str = "https://login.microsoftonline.com/common/oauth2/nativeclient";

/// A client on a fresh SQLite store with the desktop registration and one account for `user`.
fn client(dir: &std::path::Path, env: &Env, user: &str, extra: Value) -> C {
    let opts = cs(
        &json!({"store": dir.join("s.db"), "http_timeout_secs": 5, "no_proxy": true}).to_string(),
    );
    let mut c = null_mut();
    assert_eq!(unsafe { mc_client_open(opts.as_ptr(), &mut c) }, MC_OK);
    let c = C(c);
    put_account(&c, env, user, extra);
    c
}

fn put_account(c: &C, env: &Env, user: &str, extra: Value) {
    let reg = json!({"id":"desktop","provider":"microsoft","tenant":"organizations",
        "authority_host": env.emulator.base_url(),"client_id":DESKTOP_APP});
    assert_eq!(
        unsafe { mc_registration_put(c.0, cs(&reg.to_string()).as_ptr()) },
        MC_OK
    );
    let mut acc = json!({"id": user.split('@').next().unwrap(), "mailbox": user, "registration": "desktop", "flow": "browser"});
    for (k, v) in extra.as_object().unwrap() {
        acc[k] = v.clone();
    }
    assert_eq!(
        unsafe { mc_account_put(c.0, cs(&acc.to_string()).as_ptr()) },
        MC_OK,
        "{:?}",
        last_error()
    );
}

async fn begin(c: &Arc<C>, account: &str, opts: Option<Value>) -> Value {
    let (c, account) = (c.clone(), account.to_string());
    on_host_thread(move || {
        let o = opts.map(|v| cs(&v.to_string()));
        let mut out = null_mut();
        let rc = unsafe {
            mc_authorization_begin(
                c.0,
                cs(&account).as_ptr(),
                o.as_ref().map_or(std::ptr::null(), |o| o.as_ptr()),
                null_mut(),
                &mut out,
            )
        };
        assert_eq!(rc, MC_OK, "{:?}", last_error());
        serde_json::from_str(&take(out).unwrap()).unwrap()
    })
    .await
}

fn complete(c: &C, handle: &str, redirect: &str) -> Result<Value, (i32, String, Value)> {
    let mut out = null_mut();
    let rc = unsafe {
        mc_authorization_complete(
            c.0,
            cs(handle).as_ptr(),
            cs(redirect).as_ptr(),
            null_mut(),
            &mut out,
        )
    };
    if rc == MC_OK {
        Ok(serde_json::from_str(&take(out).unwrap()).unwrap())
    } else {
        Err(last_error())
    }
}

fn status(c: &C, account: &str) -> Value {
    let mut out = null_mut();
    assert_eq!(
        unsafe { mc_account_status_get(c.0, cs(account).as_ptr(), &mut out) },
        MC_OK
    );
    serde_json::from_str(&take(out).unwrap()).unwrap()
}

/// The embedded web view: the sign-in ends at the `nativeclient` URL, which the host captures
/// (the scripted browser stops there instead of loading it) and passes to complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_view_with_the_nativeclient_redirect() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(client(dir.path(), &env, "alice@example.test", json!({})));
    let a = begin(&c, "alice", Some(json!({"redirect_uri": NATIVECLIENT}))).await;
    assert_eq!(a["flow"], "browser");
    assert_eq!(a["loopback"], false);
    assert_eq!(a["redirect_uri"], NATIVECLIENT);
    let url = a["url"].as_str().unwrap().to_string();
    assert!(
        url.contains("code_challenge_method=S256")
            && url.contains("login_hint=alice%40example.test")
    );
    let handle = a["handle"].as_str().unwrap().to_string();

    // Waiting is refused: nobody can listen on the nativeclient URI.
    let h = handle.clone();
    let c2 = c.clone();
    let rc = on_host_thread(move || unsafe {
        mc_authorization_wait(c2.0, cs(&h).as_ptr(), null_mut(), null_mut())
    })
    .await;
    assert_eq!(rc, MC_E_STATE);
    assert_eq!(
        last_error_on_blocking_thread(&c, &handle).await,
        "MC-SIGN-IN-WRONG-RESPONSE"
    );

    let mut script = sign_in_as("alice@example.test");
    script.deliver_redirect = false;
    let outcome = ScriptedBrowser::new().sign_in(&url, &script).await.unwrap();
    let captured = outcome
        .redirect_url
        .expect("the flow ends at the redirect URI")
        .to_string();
    assert!(captured.starts_with(NATIVECLIENT), "{captured}");

    // A URL for another redirect URI and one from an older sign-in are refused; the sign-in stays pending.
    let other = captured.replacen(NATIVECLIENT, "https://evil.example/cb", 1);
    let c2 = c.clone();
    let h = handle.clone();
    let (wrong, stale) = on_host_thread(move || {
        let stale_url = {
            let mut u = url::Url::parse(&captured).unwrap();
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k == "state" {
                        "older".to_string()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            u.query_pairs_mut().clear().extend_pairs(pairs);
            u.to_string()
        };
        let wrong = complete(&c2, &h, &other).unwrap_err();
        let stale = complete(&c2, &h, &stale_url).unwrap_err();
        let ok = complete(&c2, &h, &captured).unwrap();
        assert_eq!(ok["state"], "connected");
        assert_eq!(ok["identity"]["username"], "alice@example.test");
        // Used once: a second complete is refused with the reason.
        let again = complete(&c2, &h, &captured).unwrap_err();
        assert_eq!(again.0, MC_E_STATE);
        assert!(again.1.contains("already completed"), "{}", again.1);
        assert_eq!(again.2["code"], "MC-SIGN-IN-NOT-PENDING");
        (wrong, stale)
    })
    .await;
    assert_eq!(wrong.0, MC_E_STATE);
    assert_eq!(wrong.2["code"], "MC-SIGN-IN-WRONG-RESPONSE", "{}", wrong.1);
    assert!(
        !wrong.1.contains("code="),
        "no code in the message: {}",
        wrong.1
    );
    assert_eq!(stale.2["code"], "MC-SIGN-IN-STATE-MISMATCH", "{}", stale.1);
    assert_eq!(status(&c, "alice")["state"], "connected");
}

/// The diagnostic code of the last error, read on a blocking thread (last errors are per thread).
async fn last_error_on_blocking_thread(c: &Arc<C>, handle: &str) -> String {
    let (c, h) = (c.clone(), handle.to_string());
    on_host_thread(move || {
        let rc = unsafe { mc_authorization_wait(c.0, cs(&h).as_ptr(), null_mut(), null_mut()) };
        assert_ne!(rc, MC_OK);
        last_error().2["code"].as_str().unwrap().to_string()
    })
    .await
}

/// Error redirects end the sign-in with the provider's diagnostic; a device handle refuses a URL;
/// an expired handle says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_redirects_other_flows_and_expiry_are_refused_clearly() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(client(
        dir.path(),
        &env,
        "alice@example.test",
        json!({"options": {"interactive_timeout_secs": 2}}),
    ));
    // The user cancels in the embedded view (AADSTS65004 at authorize).
    env.emulator.add_fault(FaultRule {
        fault: Fault::UserDeclined,
        app: None,
        user: None,
        endpoint: None,
        grant_type: None,
        times: Some(1),
    });
    let a = begin(&c, "alice", Some(json!({"redirect_uri": NATIVECLIENT}))).await;
    let mut script = sign_in_as("alice@example.test");
    script.deliver_redirect = false;
    let outcome = ScriptedBrowser::new()
        .sign_in(a["url"].as_str().unwrap(), &script)
        .await
        .unwrap();
    let captured = outcome.redirect_url.unwrap().to_string();
    assert!(captured.contains("error="), "{captured}");
    let (c2, h) = (c.clone(), a["handle"].as_str().unwrap().to_string());
    let declined = on_host_thread(move || complete(&c2, &h, &captured).unwrap_err()).await;
    assert_eq!(declined.0, MC_E_AUTHORIZATION_DENIED, "{}", declined.1);
    assert_eq!(declined.2["code"], "MC-CONSENT-DECLINED");
    assert!(!declined.2["de"]["title"].as_str().unwrap().is_empty());

    // A browser redirect handed to a device-code sign-in.
    let d = begin(&c, "alice", Some(json!({"flow": "device"}))).await;
    assert!(d["user_code"].is_string() && d["verification_uri"].is_string());
    let (c2, h) = (c.clone(), d["handle"].as_str().unwrap().to_string());
    let wrong = on_host_thread(move || {
        complete(&c2, &h, &format!("{NATIVECLIENT}?code=abc&state=x")).unwrap_err()
    })
    .await;
    assert_eq!(wrong.2["code"], "MC-SIGN-IN-WRONG-RESPONSE", "{}", wrong.1);

    // Expired (the account's interactive timeout is 2 s).
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let (c2, h) = (c.clone(), d["handle"].as_str().unwrap().to_string());
    let (rc, msg) = on_host_thread(move || {
        let mut out = null_mut();
        let rc = unsafe { mc_authorization_poll(c2.0, cs(&h).as_ptr(), null_mut(), &mut out) };
        (rc, last_error())
    })
    .await;
    assert_eq!(rc, MC_E_TIMEOUT, "{}", msg.1);
    assert_eq!(msg.2["code"], "MC-SIGN-IN-NOT-PENDING");
    // Unknown handles and NULLs.
    assert_eq!(
        unsafe { mc_authorization_abort(c.0, cs("auth-unknown").as_ptr()) },
        MC_E_STATE
    );
    assert_eq!(
        unsafe { mc_authorization_abort(c.0, std::ptr::null()) },
        MC_E_NULL_POINTER
    );
    let c2 = c.clone();
    on_host_thread(move || {
        let mut out = null_mut();
        let rc = unsafe {
            mc_authorization_begin(
                c2.0,
                cs("nobody").as_ptr(),
                std::ptr::null(),
                std::ptr::null_mut(),
                &mut out,
            )
        };
        assert_eq!(rc, MC_E_NOT_FOUND);
        let rc = unsafe {
            mc_authorization_begin(
                c2.0,
                cs("alice").as_ptr(),
                cs("{\"flow\": 3}").as_ptr(),
                null_mut(),
                &mut out,
            )
        };
        assert_eq!(rc, MC_E_INVALID_ARGUMENT);
    })
    .await;
    assert_eq!(status(&c, "alice")["state"], "not_connected");
}

/// The host shows the URL and mailconnect listens on loopback; the host waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_flow_driven_by_the_host() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(client(dir.path(), &env, "bob@example.test", json!({})));
    let a = begin(&c, "bob", None).await;
    assert_eq!(a["loopback"], true);
    assert!(a["redirect_uri"]
        .as_str()
        .unwrap()
        .starts_with("http://localhost:"));
    let url = a["url"].as_str().unwrap().to_string();
    let user = tokio::spawn(async move {
        ScriptedBrowser::new()
            .sign_in(&url, &sign_in_as("bob@example.test"))
            .await
            .unwrap()
    });
    let (c2, h) = (c.clone(), a["handle"].as_str().unwrap().to_string());
    let st = on_host_thread(move || {
        let mut out = null_mut();
        let rc = unsafe { mc_authorization_wait(c2.0, cs(&h).as_ptr(), null_mut(), &mut out) };
        assert_eq!(rc, MC_OK, "{:?}", last_error());
        serde_json::from_str::<Value>(&take(out).unwrap()).unwrap()
    })
    .await;
    assert_eq!(st["state"], "connected");
    assert_eq!(st["flow"], "browser");
    let outcome = user.await.unwrap();
    let (code, body) = outcome.delivered.expect("the browser reached the listener");
    assert_eq!(code, 200);
    assert!(body.contains("Sign-in complete"));
}

/// The host shows the device code itself and polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_flow_driven_by_the_host() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(client(
        dir.path(),
        &env,
        "carol@example.test",
        json!({"flow": "device_code"}),
    ));
    let a = begin(&c, "carol", None).await;
    assert_eq!(a["flow"], "device_code");
    assert!(a["message"]
        .as_str()
        .unwrap()
        .contains(a["user_code"].as_str().unwrap()));
    assert!(a["expires_in_secs"].as_u64().unwrap() > 60);
    let (c2, h) = (c.clone(), a["handle"].as_str().unwrap().to_string());
    // Before the user acts: pending, and a poll inside the interval makes no request.
    let before = env.emulator.stats();
    let first = on_host_thread(move || {
        let mut out = null_mut();
        assert_eq!(
            unsafe { mc_authorization_poll(c2.0, cs(&h).as_ptr(), null_mut(), &mut out) },
            MC_OK
        );
        serde_json::from_str::<Value>(&take(out).unwrap()).unwrap()
    })
    .await;
    assert_eq!(first["state"], "pending");
    assert!(first["retry_after_ms"].as_u64().unwrap() > 0);
    const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
    assert_eq!(
        env.emulator.stats().token_requests_for(DEVICE_GRANT),
        before.token_requests_for(DEVICE_GRANT),
        "no token request before the interval"
    );
    let (uri, code) = (
        a["verification_uri"].as_str().unwrap().to_string(),
        a["user_code"].as_str().unwrap().to_string(),
    );
    ScriptedBrowser::new()
        .complete_device_code(&uri, &code, &sign_in_as("carol@example.test"))
        .await
        .unwrap();
    let (c2, h) = (c.clone(), a["handle"].as_str().unwrap().to_string());
    let done = on_host_thread(move || {
        for _ in 0..30 {
            let mut out = null_mut();
            let rc = unsafe { mc_authorization_poll(c2.0, cs(&h).as_ptr(), null_mut(), &mut out) };
            assert_eq!(rc, MC_OK, "{:?}", last_error());
            let v: Value = serde_json::from_str(&take(out).unwrap()).unwrap();
            if v["state"] == "connected" {
                return v;
            }
            std::thread::sleep(Duration::from_millis(v["retry_after_ms"].as_u64().unwrap()));
        }
        panic!("never connected");
    })
    .await;
    assert_eq!(done["status"]["state"], "connected");
    assert_eq!(done["status"]["identity"]["username"], "carol@example.test");
}

fn next_events(c: &C, until_type: &str, limit: Duration) -> Vec<Value> {
    let deadline = std::time::Instant::now() + limit;
    let mut got = vec![];
    while std::time::Instant::now() < deadline {
        let mut out = null_mut();
        assert_eq!(unsafe { mc_events_next(c.0, 200, &mut out) }, MC_OK);
        if let Some(s) = take(out) {
            let v: Value = serde_json::from_str(&s).unwrap();
            let done = v["type"] == until_type;
            got.push(v);
            if done {
                break;
            }
        }
    }
    got
}

/// Events: connect progress and the state change, a refresh, then a needs-re-authorization after
/// the user's refresh tokens are revoked, in that order; log records when asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_report_a_refresh_and_a_needed_reauthorization_in_order() {
    let env = env().await;
    token_lifetime(&env.emulator, 4);
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(client(
        dir.path(),
        &env,
        "alice@example.test",
        json!({"flow": "device_code"}),
    ));
    assert_eq!(
        unsafe {
            mc_events_configure(
                c.0,
                cs(r#"{"capacity": 256, "log_level": "info"}"#).as_ptr(),
            )
        },
        MC_OK
    );
    assert_eq!(
        unsafe { mc_events_configure(c.0, cs(r#"{"log_level": "loud"}"#).as_ptr()) },
        MC_E_INVALID_ARGUMENT
    );
    // Connect by device code through the host-driven calls, then refresh and fail to refresh.
    let a = begin(&c, "alice", None).await;
    ScriptedBrowser::new()
        .complete_device_code(
            a["verification_uri"].as_str().unwrap(),
            a["user_code"].as_str().unwrap(),
            &sign_in_as("alice@example.test"),
        )
        .await
        .unwrap();
    let (c2, h) = (c.clone(), a["handle"].as_str().unwrap().to_string());
    let events = on_host_thread(move || {
        let rc = unsafe { mc_authorization_wait(c2.0, cs(&h).as_ptr(), null_mut(), null_mut()) };
        assert_eq!(rc, MC_OK, "{:?}", last_error());
        std::thread::sleep(Duration::from_millis(2600));
        let mut tok = null_mut();
        assert_eq!(
            unsafe { mc_token_get(c2.0, cs("alice").as_ptr(), std::ptr::null_mut(), &mut tok) },
            MC_OK
        );
        take(tok);
        next_events(&c2, "token_refreshed", Duration::from_secs(5))
    })
    .await;
    env.emulator
        .revoke_user_refresh_tokens("alice@example.test");
    let c2 = c.clone();
    let mut events = events;
    let (rc, err, more) = on_host_thread(move || {
        std::thread::sleep(Duration::from_millis(2600));
        let mut tok = null_mut();
        let rc =
            unsafe { mc_token_get(c2.0, cs("alice").as_ptr(), std::ptr::null_mut(), &mut tok) };
        let err = last_error();
        (
            rc,
            err,
            next_events(&c2, "state_changed", Duration::from_secs(5)),
        )
    })
    .await;
    assert_eq!(rc, MC_E_REAUTHORIZATION_REQUIRED, "{}", err.1);
    events.extend(more);
    let kinds: Vec<String> = events
        .iter()
        .filter(|e| e["type"] != "log")
        .map(|e| match e["type"].as_str().unwrap() {
            "connect_progress" => format!("progress:{}", e["stage"].as_str().unwrap()),
            "state_changed" => format!(
                "state:{}->{}",
                e["from"].as_str().unwrap(),
                e["to"].as_str().unwrap()
            ),
            t => t.to_string(),
        })
        .collect();
    let pos = |k: &str| {
        kinds
            .iter()
            .position(|x| x == k)
            .unwrap_or_else(|| panic!("{k} missing in {kinds:?}"))
    };
    assert!(pos("progress:waiting_for_device_code") < pos("progress:connected"));
    assert!(pos("progress:connected") < pos("state:not_connected->connected"));
    assert!(pos("state:not_connected->connected") < pos("token_refreshed"));
    assert!(pos("token_refreshed") < pos("needs_reauthorization"));
    assert!(pos("needs_reauthorization") < pos("state:connected->needs_reauthorization"));
    let reauth = events
        .iter()
        .find(|e| e["type"] == "needs_reauthorization")
        .unwrap();
    assert_eq!(reauth["account_id"], "alice");
    assert_eq!(reauth["diagnostic"]["code"], "MC-REFRESH-TOKEN-REVOKED");
    assert!(!reauth["diagnostic"]["de"]["fix"]
        .as_str()
        .unwrap()
        .is_empty());
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "log" && e["message"].as_str().unwrap().contains("connected")),
        "an info log record arrives as an event"
    );
    let all = serde_json::to_string(&events).unwrap();
    assert!(!all.contains("eyJ"), "no token in any event");
    // Waiting with nothing to come returns NULL after the timeout. Log records are process-wide
    // (tests running beside this one log too), so they are switched off first.
    on_host_thread(move || {
        let off = cs(r#"{"log_level": "off"}"#);
        assert_eq!(unsafe { mc_events_configure(c.0, off.as_ptr()) }, MC_OK);
        while take({
            let mut o = null_mut();
            unsafe { mc_events_next(c.0, 0, &mut o) };
            o
        })
        .is_some()
        {}
        let mut out = null_mut();
        assert_eq!(unsafe { mc_events_next(c.0, 50, &mut out) }, MC_OK);
        assert!(out.is_null());
    })
    .await;
}

/// The host-callback store from Rust's side of the C ABI: blobs in a host map, connect, refresh,
/// disconnect; a host that truncates blobs gets the "stored incompletely" diagnostic.
type Rows = HashMap<(String, String), (Vec<u8>, i64)>;

#[derive(Default)]
struct HostDb {
    rows: Mutex<Rows>,
    /// Cut token blobs to this many bytes (0 = keep them whole).
    truncate_tokens_to: std::sync::atomic::AtomicUsize,
}

unsafe fn s(p: *const c_char) -> String {
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

unsafe extern "C" fn db_load(
    ud: *mut c_void,
    kind: *const c_char,
    id: *const c_char,
    out: *mut mc_store_record,
) -> i32 {
    let db = unsafe { &*(ud as *const HostDb) };
    let rows = db.rows.lock().unwrap();
    match rows.get(&unsafe { (s(kind), s(id)) }) {
        Some((d, v)) => unsafe { mc_store_record_set(out, d.as_ptr(), d.len(), *v) },
        None => MC_STORE_NOT_FOUND,
    }
}

unsafe extern "C" fn db_cas(
    ud: *mut c_void,
    kind: *const c_char,
    id: *const c_char,
    data: *const u8,
    len: usize,
    expected: i64,
    new_version: i64,
) -> i32 {
    let db = unsafe { &*(ud as *const HostDb) };
    let key = unsafe { (s(kind), s(id)) };
    let mut rows = db.rows.lock().unwrap();
    if rows.get(&key).map_or(0, |r| r.1) != expected {
        return MC_STORE_CONFLICT;
    }
    let mut d = unsafe { std::slice::from_raw_parts(data, len) }.to_vec();
    let cut = db
        .truncate_tokens_to
        .load(std::sync::atomic::Ordering::SeqCst);
    if key.0 == "tokens" && cut > 0 {
        d.truncate(cut);
    }
    rows.insert(key, (d, new_version));
    MC_STORE_OK
}

unsafe extern "C" fn db_remove(ud: *mut c_void, kind: *const c_char, id: *const c_char) -> i32 {
    let db = unsafe { &*(ud as *const HostDb) };
    match db.rows.lock().unwrap().remove(&unsafe { (s(kind), s(id)) }) {
        Some(_) => MC_STORE_OK,
        None => MC_STORE_NOT_FOUND,
    }
}

unsafe extern "C" fn db_list(ud: *mut c_void, kind: *const c_char, out: *mut mc_store_list) -> i32 {
    let db = unsafe { &*(ud as *const HostDb) };
    let k = unsafe { s(kind) };
    for ((rk, id), (d, v)) in db.rows.lock().unwrap().iter() {
        if *rk == k {
            let id = cs(id);
            let rc = unsafe { mc_store_list_add(out, id.as_ptr(), d.as_ptr(), d.len(), *v) };
            if rc != MC_OK {
                return -1;
            }
        }
    }
    MC_STORE_OK
}

fn open_host(db: &HostDb) -> Result<C, (i32, String, Value)> {
    let cb = mc_store_callbacks {
        version: MC_STORE_CALLBACKS_VERSION,
        user_data: db as *const HostDb as *mut c_void,
        load: Some(db_load),
        compare_and_swap: Some(db_cas),
        remove: Some(db_remove),
        list: Some(db_list),
    };
    let opts = cs(
        r#"{"key": {"base64": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}, "http_timeout_secs": 5, "no_proxy": true}"#,
    );
    let mut c = null_mut();
    match unsafe { mc_client_open_with_store(opts.as_ptr(), &cb, &mut c) } {
        MC_OK => Ok(C(c)),
        _ => Err(last_error()),
    }
}

async fn connect_device(c: &Arc<C>, user: &str) -> Result<Value, (i32, String, Value)> {
    let id = user.split('@').next().unwrap();
    let a = begin(c, id, Some(json!({"flow": "device"}))).await;
    ScriptedBrowser::new()
        .complete_device_code(
            a["verification_uri"].as_str().unwrap(),
            a["user_code"].as_str().unwrap(),
            &sign_in_as(user),
        )
        .await
        .unwrap();
    let (c2, h) = (c.clone(), a["handle"].as_str().unwrap().to_string());
    on_host_thread(move || {
        let mut out = null_mut();
        match unsafe { mc_authorization_wait(c2.0, cs(&h).as_ptr(), null_mut(), &mut out) } {
            MC_OK => Ok(serde_json::from_str(&take(out).unwrap()).unwrap()),
            _ => Err(last_error()),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_store_keeps_only_opaque_blobs_and_reports_truncation() {
    let env = env().await;
    token_lifetime(&env.emulator, 4);
    let db: &'static HostDb = Box::leak(Box::default());
    let c = Arc::new(open_host(db).unwrap());
    put_account(&c, &env, "alice@example.test", json!({}));
    let st = connect_device(&c, "alice@example.test").await.unwrap();
    assert_eq!(st["state"], "connected");
    {
        let rows = db.rows.lock().unwrap();
        let kinds: Vec<&str> = rows.keys().map(|k| k.0.as_str()).collect();
        assert!(
            kinds.contains(&"tokens")
                && kinds.contains(&"account")
                && kinds.contains(&"registration")
        );
        for ((_, _), (d, v)) in rows.iter() {
            assert!(*v > 0);
            assert!(d.starts_with(b"MCB1"));
            assert!(!d.windows(3).any(|w| w == b"eyJ"), "no JWT in clear");
            assert!(
                !d.windows(5).any(|w| w == b"alice"),
                "not even the mailbox in clear"
            );
        }
    }
    // Refresh through the host store, then a second client (another process of the vendor) sees it.
    let c2 = c.clone();
    on_host_thread(move || {
        std::thread::sleep(Duration::from_millis(2600));
        let mut tok = null_mut();
        assert_eq!(
            unsafe { mc_token_get(c2.0, cs("alice").as_ptr(), std::ptr::null_mut(), &mut tok) },
            MC_OK,
            "{:?}",
            last_error()
        );
        take(tok);
    })
    .await;
    assert!(env.emulator.stats().refreshes_total() >= 1);
    let other = open_host(db).unwrap();
    assert_eq!(status(&other, "alice")["state"], "connected");
    assert!(status(&other, "alice")["refreshed_at"].is_string());
    drop(other);
    let c2 = c.clone();
    let rc = on_host_thread(move || unsafe {
        mc_account_disconnect(c2.0, cs("alice").as_ptr(), std::ptr::null_mut())
    })
    .await;
    assert_eq!(rc, MC_OK);
    assert!(!db.rows.lock().unwrap().keys().any(|k| k.0 == "tokens"));

    // A host whose column cuts blobs at 1,024 bytes.
    let short: &'static HostDb = Box::leak(Box::new(HostDb {
        truncate_tokens_to: 1024.into(),
        ..Default::default()
    }));
    let c = Arc::new(open_host(short).unwrap());
    put_account(&c, &env, "bob@example.test", json!({}));
    let err = connect_device(&c, "bob@example.test").await;
    // The write "succeeds" at the host; the next read finds the blob cut short.
    let e = match err {
        Ok(_) => {
            let c2 = c.clone();
            on_host_thread(move || {
                let mut tok = null_mut();
                let rc = unsafe {
                    mc_token_get(c2.0, cs("bob").as_ptr(), std::ptr::null_mut(), &mut tok)
                };
                assert_eq!(rc, MC_E_STORE);
                last_error()
            })
            .await
        }
        Err(e) => e,
    };
    assert_eq!(e.2["code"], "MC-TOKEN-TRUNCATED", "{}", e.1);
    assert!(e.1.contains("1024 of"), "{}", e.1);
    let mut out = null_mut();
    assert_eq!(
        unsafe { mc_account_status_get(c.0, cs("bob").as_ptr(), &mut out) },
        MC_E_STORE
    );
    // The vendor widens the column; connecting again repairs the account (the damaged record is
    // replaced, not an obstacle).
    short
        .truncate_tokens_to
        .store(0, std::sync::atomic::Ordering::SeqCst);
    let st = connect_device(&c, "bob@example.test").await.unwrap();
    assert_eq!(st["state"], "connected");
    let c2 = c.clone();
    let rc = on_host_thread(move || {
        let mut tok = null_mut();
        let rc = unsafe { mc_token_get(c2.0, cs("bob").as_ptr(), std::ptr::null_mut(), &mut tok) };
        take(tok);
        rc
    })
    .await;
    assert_eq!(rc, MC_OK);
    // No key: refused with a clear message.
    let cb = mc_store_callbacks {
        version: MC_STORE_CALLBACKS_VERSION,
        user_data: null_mut(),
        load: Some(db_load),
        compare_and_swap: Some(db_cas),
        remove: Some(db_remove),
        list: None,
    };
    let mut c3 = null_mut();
    assert_eq!(
        unsafe {
            mc_client_open_with_store(
                cs(r#"{"key": {"base64": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}}"#)
                    .as_ptr(),
                &cb,
                &mut c3,
            )
        },
        MC_E_NULL_POINTER
    );
    let cb = mc_store_callbacks {
        list: Some(db_list),
        ..cb
    };
    assert_eq!(
        unsafe { mc_client_open_with_store(cs("{}").as_ptr(), &cb, &mut c3) },
        MC_E_INVALID_ARGUMENT
    );
    assert!(last_error().1.contains("key"));
}
