//! The background refresher through the C ABI against the sandbox: two service instances on one
//! store keep eight accounts fresh with one refresh per expiry, report a needed re-authorization as
//! events, and back off a throttling tenant.

use std::collections::HashMap;
use std::ptr::null_mut;
use std::sync::Arc;
use std::time::Duration;

use mailconnect::*;
use mailconnect_sandbox::{Endpoint, Fault, FaultRule};
use mailconnect_tests::cabi::*;
use mailconnect_tests::*;
use serde_json::Value;

fn open(store: &std::path::Path) -> C {
    let opts = cs(
        &serde_json::json!({"store": store, "http_timeout_secs": 5, "no_proxy": true}).to_string(),
    );
    let mut c = null_mut();
    assert_eq!(unsafe { mc_client_open(opts.as_ptr(), &mut c) }, MC_OK);
    C(c)
}

fn drain(c: &C, wait_ms: i32) -> Vec<Value> {
    let mut out = vec![];
    loop {
        let mut e = null_mut();
        assert_eq!(unsafe { mc_events_next(c.0, wait_ms, &mut e) }, MC_OK);
        match take(e) {
            Some(s) => out.push(serde_json::from_str(&s).unwrap()),
            None => return out,
        }
    }
}

/// Eight accounts (all signed in as alice), connected with 6-second tokens.
async fn eight_connected(env: &Env) -> Vec<String> {
    token_lifetime(&env.emulator, 6);
    let ids: Vec<String> = (0..8).map(|i| format!("acct{i}")).collect();
    let mut connects = tokio::task::JoinSet::new();
    for id in ids.clone() {
        let (client, registration) = (env.client.clone(), desktop(&env.emulator));
        connects.spawn(async move {
            connected(&client, registration, &id, "alice@example.test")
                .flow("device_code")
                .await;
        });
    }
    while let Some(r) = connects.join_next().await {
        r.unwrap();
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_keep_accounts_fresh_once_per_expiry_and_report_reauthorization() {
    let env = env().await;
    let ids = eight_connected(&env).await;
    env.emulator.reset_stats();
    let store = env.store_path();
    let (a, b) = (Arc::new(open(&store)), Arc::new(open(&store)));
    let opts = r#"{"interval_secs": 1, "ahead_secs": 3, "jitter_secs": 1, "concurrency": 4}"#;
    for c in [&a, &b] {
        assert_eq!(
            unsafe { mc_events_configure(c.0, cs(r#"{"capacity": 4096}"#).as_ptr()) },
            MC_OK
        );
        assert_eq!(unsafe { mc_refresher_start(c.0, cs(opts).as_ptr()) }, MC_OK);
    }
    assert_eq!(
        unsafe { mc_refresher_start(a.0, std::ptr::null()) },
        MC_E_STATE,
        "already running"
    );
    // Two token lifetimes: each account's token is replaced about every 3 seconds.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let (a2, b2) = (a.clone(), b.clone());
    let events = on_host_thread(move || {
        let mut e = drain(&a2, 0);
        e.extend(drain(&b2, 0));
        e
    })
    .await;
    let mut per_account: HashMap<String, Vec<time::OffsetDateTime>> = HashMap::new();
    for e in events.iter().filter(|e| e["type"] == "token_refreshed") {
        let t = time::OffsetDateTime::parse(
            e["time"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        per_account
            .entry(e["account_id"].as_str().unwrap().to_string())
            .or_default()
            .push(t);
    }
    let total: usize = per_account.values().map(Vec::len).sum();
    assert_eq!(
        env.emulator.stats().refreshes_total() as usize,
        total,
        "every refresh the provider saw is one event of one instance"
    );
    for id in &ids {
        let mut times = per_account.get(id).cloned().unwrap_or_default();
        assert!(times.len() >= 2, "{id} refreshed {} times", times.len());
        times.sort();
        for w in times.windows(2) {
            let gap = (w[1] - w[0]).as_seconds_f64();
            assert!(
                gap >= 1.5,
                "{id} refreshed twice for one expiry ({gap:.2} s apart)"
            );
        }
    }

    // The user's refresh tokens are revoked: each account is reported once as needing re-authorization.
    env.emulator
        .revoke_user_refresh_tokens("alice@example.test");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (a2, b2) = (a.clone(), b.clone());
    let events = on_host_thread(move || {
        let mut e = drain(&a2, 0);
        e.extend(drain(&b2, 0));
        assert_eq!(unsafe { mc_refresher_stop(a2.0) }, MC_OK);
        assert_eq!(unsafe { mc_refresher_stop(a2.0) }, MC_OK, "idempotent");
        e
    })
    .await;
    let reauth: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "needs_reauthorization")
        .collect();
    let mut accounts: Vec<&str> = reauth
        .iter()
        .map(|e| e["account_id"].as_str().unwrap())
        .collect();
    accounts.sort();
    assert_eq!(
        accounts,
        ids.iter().map(String::as_str).collect::<Vec<_>>(),
        "once per account"
    );
    assert!(reauth
        .iter()
        .all(|e| e["diagnostic"]["code"] == "MC-REFRESH-TOKEN-REVOKED"));
    for id in &ids {
        assert_eq!(
            env.client.status(id).unwrap().state,
            mailconnect_core::AccountState::NeedsReauthorization
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_tenant_is_backed_off_and_tokens_are_kept() {
    let env = env().await;
    let ids = eight_connected(&env).await;
    // Let every token become due (lifetime 6 s, ahead 3 s).
    tokio::time::sleep(Duration::from_millis(3200)).await;
    env.emulator.add_fault(FaultRule {
        fault: Fault::Throttled {
            retry_after_secs: 60,
        },
        app: None,
        user: None,
        endpoint: Some(Endpoint::Token),
        grant_type: Some("refresh_token".into()),
        times: None,
    });
    env.emulator.reset_stats();
    let c = Arc::new(open(&env.store_path()));
    let c2 = c.clone();
    let (first, second) = on_host_thread(move || {
        let round = |c: &C| -> Value {
            let mut out = null_mut();
            let rc = unsafe {
                mc_refresher_run(
                    c.0,
                    cs(r#"{"ahead_secs": 3, "jitter_secs": 0, "concurrency": 2}"#).as_ptr(),
                    null_mut(),
                    &mut out,
                )
            };
            assert_eq!(rc, MC_OK);
            serde_json::from_str(&take(out).unwrap()).unwrap()
        };
        (round(&c2), round(&c2))
    })
    .await;
    let requests = env.emulator.stats().refresh_requests_total();
    assert!(
        (1..=2).contains(&requests),
        "at most one request per concurrent slot before the back-off: {requests}; {first}; {:?}",
        env.emulator.stats()
    );
    assert_eq!(first["accounts"], 8);
    assert_eq!(
        first["failed"].as_u64().unwrap() + first["backing_off"].as_u64().unwrap(),
        8,
        "{first}"
    );
    assert_eq!(second["backing_off"], 8, "{second}");
    assert_eq!(
        env.emulator.stats().refresh_requests_total(),
        requests,
        "no request while backing off"
    );
    // The tokens were kept: still connected, still usable until they expire.
    for id in &ids {
        assert_eq!(
            env.client.status(id).unwrap().state,
            mailconnect_core::AccountState::Connected
        );
    }
    // Bad options are refused with the field named.
    let mut out = null_mut();
    assert_eq!(
        unsafe {
            mc_refresher_run(
                c.0,
                cs(r#"{"concurrency": 0}"#).as_ptr(),
                null_mut(),
                &mut out,
            )
        },
        MC_E_INVALID_ARGUMENT
    );
}
