//! Identity-provider faults end to end, at each token request the library makes: refreshing,
//! redeeming an authorization code, polling for a device code. For every fault: what the caller
//! gets (kind and diagnostic catalog code), how many requests reached the emulator (retries are
//! bounded, single-use requests are never repeated once the server may have acted on them,
//! `invalid_grant` is never retried), and that the stored tokens survive: once the fault clears,
//! the kept refresh token still works.
//!
//! `tests/refresh_and_faults.rs` covers the refresh happy path, the re-authorization answers and a
//! first pass over the transport faults; this file goes through every fault at every request.

use std::time::{Duration, Instant};

use mailconnect_core::{
    AccountState, CancellationToken, Client, ClientOptions, ConnectOptions, Error, ErrorKind, Flow,
};
use mailconnect_sandbox::{Endpoint, Fault, FaultRule};
use mailconnect_tests::*;

fn nc() -> CancellationToken {
    CancellationToken::new()
}

fn on(fault: Fault, grant: &str, times: Option<u32>) -> FaultRule {
    FaultRule {
        fault,
        app: None,
        user: None,
        endpoint: Some(Endpoint::Token),
        grant_type: Some(grant.into()),
        times,
    }
}

/// A second client on the same store whose HTTP requests time out after one second.
fn impatient_client(env: &Env) -> Client {
    let mut o = ClientOptions::new(env.store_path());
    o.http.timeout = Duration::from_secs(1);
    o.http.no_proxy = true;
    Client::open(o).expect("client opens")
}

/// Alice connected by device code; access tokens live `lifetime` s, refresh margin 1 s.
async fn alice_connected(lifetime: u64) -> Env {
    let env = env_with(|c| c.tokens.access_token_lifetime_secs = lifetime).await;
    env.connected("alice", "alice@example.test")
        .flow("device_code")
        .with(serde_json::json!({"options": {"refresh_margin_secs": 1, "interactive_timeout_secs": 20}}))
        .await;
    env
}

async fn wait_for_expiry(env: &Env) {
    let left = env.client.status("alice").unwrap().expires_in_secs.unwrap();
    tokio::time::sleep(Duration::from_millis(left.max(0) as u64 * 1000 + 300)).await;
}

fn code(e: &Error) -> String {
    e.diagnostic_json()["code"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The stored tokens survived: the state is unchanged and, with the fault cleared, the kept refresh
/// token refreshes (the access token has expired by then, so a refresh must happen).
async fn assert_tokens_kept(env: &Env, what: &str) {
    env.emulator.clear_faults();
    let s = env.client.status("alice").unwrap();
    assert_eq!(s.state, AccountState::Connected, "{what}: {s:?}");
    assert!(s.has_refresh_token, "{what}");
    wait_for_expiry(env).await;
    let before = env.emulator.stats().refreshes_total();
    env.client
        .access_token("alice", &nc())
        .await
        .unwrap_or_else(|e| panic!("{what}: the kept refresh token no longer works: {e}"));
    assert_eq!(
        env.emulator.stats().refreshes_total(),
        before + 1,
        "{what}: a refresh with the kept token"
    );
}

struct Case {
    fault: Fault,
    kind: ErrorKind,
    code: &'static str,
    /// Token requests that reach the emulator.
    requests: u64,
    /// Text the message must contain.
    says: &'static str,
}

fn case(
    fault: Fault,
    kind: ErrorKind,
    code: &'static str,
    requests: u64,
    says: &'static str,
) -> Case {
    Case {
        fault,
        kind,
        code,
        requests,
        says,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_faults_are_retried_a_bounded_number_of_times_and_keep_the_tokens() {
    use ErrorKind::*;
    let env = alice_connected(2).await;
    let cases = [
        case(
            Fault::ServerError,
            ProviderUnavailable,
            "MC-IDP-UNAVAILABLE",
            3,
            "server_error",
        ),
        case(
            Fault::ServiceUnavailable,
            ProviderUnavailable,
            "MC-IDP-UNAVAILABLE",
            3,
            "503 Service Unavailable",
        ),
        case(
            Fault::ProxyBadGateway,
            ProviderUnavailable,
            "MC-IDP-UNAVAILABLE",
            3,
            "502 Bad Gateway - Corporate Web Gateway",
        ),
        // A proxy refusing the request does not change in a second: reported at once.
        case(
            Fault::ProxyHtmlPage,
            ProviderUnavailable,
            "MC-PROXY-BLOCKED",
            1,
            "Access Denied - Corporate Web Gateway",
        ),
        case(
            Fault::Throttled {
                retry_after_secs: 1,
            },
            ProviderUnavailable,
            "MC-IDP-THROTTLED",
            3,
            "90055",
        ),
        // Longer than the library waits (30 s): reported at once, with the server's wish kept.
        case(
            Fault::Throttled {
                retry_after_secs: 120,
            },
            ProviderUnavailable,
            "MC-IDP-THROTTLED",
            1,
            "90055",
        ),
        case(
            Fault::TruncatedJson,
            ProviderUnavailable,
            "MC-IDP-RESPONSE-UNREADABLE",
            3,
            "truncated",
        ),
        case(
            Fault::DropConnection,
            Network,
            "MC-CONNECTION-CLOSED",
            3,
            "closed the connection before answering",
        ),
        case(
            Fault::DropMidBody,
            Network,
            "MC-CONNECTION-CLOSED",
            3,
            "broke while reading the response",
        ),
    ];
    for c in cases {
        let what = format!("{:?}", c.fault);
        wait_for_expiry(&env).await;
        env.emulator.reset_stats();
        env.emulator
            .add_fault(on(c.fault.clone(), "refresh_token", None));
        let started = Instant::now();
        let e = env
            .client
            .access_token("alice", &nc())
            .await
            .expect_err(&what);
        let took = started.elapsed();
        assert_eq!(e.kind(), c.kind, "{what}: {e}");
        assert_eq!(code(&e), c.code, "{what}: {e}");
        assert!(e.message().contains(c.says), "{what}: {}", e.message());
        assert!(
            e.message().contains("refreshing the token"),
            "{what}: {}",
            e.message()
        );
        assert_eq!(
            env.emulator.stats().token_requests_for("refresh_token"),
            c.requests,
            "{what}: bounded retries"
        );
        if let Fault::Throttled { retry_after_secs } = c.fault {
            assert_eq!(
                e.evidence().retry_after_secs,
                Some(retry_after_secs),
                "{what}"
            );
            if retry_after_secs == 1 {
                assert!(
                    took >= Duration::from_millis(1900),
                    "{what}: Retry-After honoured ({took:?})"
                );
            }
        }
        // Bounded (no endless retrying), with room for a loaded machine.
        assert!(took < Duration::from_secs(30), "{what}: took {took:?}");
        // The failure is recorded for support without changing the state.
        let s = env.client.status("alice").unwrap();
        assert!(
            s.last_error.as_deref().is_some_and(|l| l.contains(c.says)),
            "{what}: {s:?}"
        );
        assert_tokens_kept(&env, &what).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_slower_than_the_http_timeout_times_out_three_times_then_the_token_still_works() {
    let env = alice_connected(2).await;
    let client = impatient_client(&env);
    wait_for_expiry(&env).await;
    env.emulator.reset_stats();
    env.emulator
        .add_fault(on(Fault::Slow { millis: 2500 }, "refresh_token", None));
    let started = Instant::now();
    let e = client.access_token("alice", &nc()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(code(&e), "MC-TIMEOUT");
    assert!(
        e.message().contains("did not answer in time"),
        "{}",
        e.message()
    );
    assert_eq!(env.emulator.stats().token_requests_for("refresh_token"), 3);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "three bounded attempts: {:?}",
        started.elapsed()
    );
    // The slow answers still arrive at the emulator and rotate the refresh token there; the old one
    // keeps working (as at Microsoft), so nothing is lost.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_tokens_kept(&env, "slow").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_transient_refresh_fault_is_absorbed_by_a_retry() {
    let env = alice_connected(2).await;
    for fault in [
        Fault::ServerError,
        Fault::ServiceUnavailable,
        Fault::ProxyBadGateway,
        Fault::DropConnection,
        Fault::DropMidBody,
        Fault::TruncatedJson,
    ] {
        let what = format!("{fault:?}");
        wait_for_expiry(&env).await;
        env.emulator.reset_stats();
        env.emulator.add_fault(on(fault, "refresh_token", Some(1)));
        env.client
            .access_token("alice", &nc())
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            env.emulator.stats().token_requests_for("refresh_token"),
            2,
            "{what}"
        );
        let s = env.client.status("alice").unwrap();
        assert_eq!(s.state, AccountState::Connected, "{what}");
        assert!(s.last_error.is_none(), "{what}: {s:?}");
    }
}

/// Connect alice again by browser (a fault is set on code redemption).
async fn reconnect_with_browser(client: &Client) -> Result<(), Error> {
    let user = ScriptedUser::new(sign_in_as("alice@example.test"));
    let opts = ConnectOptions {
        flow: Some(Flow::Browser),
    };
    client
        .connect("alice", opts, &user, &nc())
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_redemption_faults_never_repeat_a_code_the_server_may_have_used() {
    use ErrorKind::*;
    let env = alice_connected(2).await;
    let impatient = impatient_client(&env);
    let grant = "authorization_code";
    // (fault, expected outcome, requests): a code is single-use, so it is sent again only when the
    // server said it did not process it (429, 503) or it never got it.
    let ok =
        |fault: Fault, requests: u64| (fault, None::<(ErrorKind, &str, &str)>, requests, Some(1));
    let fails = |fault: Fault, kind, code, says, requests: u64| {
        (fault, Some((kind, code, says)), requests, None)
    };
    let cases = [
        ok(
            Fault::Throttled {
                retry_after_secs: 1,
            },
            2,
        ),
        ok(Fault::ServiceUnavailable, 2),
        ok(Fault::ServerError, 2),
        fails(
            Fault::Throttled {
                retry_after_secs: 1,
            },
            ProviderUnavailable,
            "MC-IDP-THROTTLED",
            "90055",
            3,
        ),
        fails(
            Fault::DropConnection,
            Network,
            "MC-CONNECTION-CLOSED",
            "closed the connection before answering",
            1,
        ),
        fails(
            Fault::DropMidBody,
            Network,
            "MC-CONNECTION-CLOSED",
            "broke while reading the response",
            1,
        ),
        fails(
            Fault::TruncatedJson,
            ProviderUnavailable,
            "MC-IDP-RESPONSE-UNREADABLE",
            "truncated",
            1,
        ),
        fails(
            Fault::ProxyBadGateway,
            ProviderUnavailable,
            "MC-IDP-UNAVAILABLE",
            "502 Bad Gateway",
            1,
        ),
        fails(
            Fault::ProxyHtmlPage,
            ProviderUnavailable,
            "MC-PROXY-BLOCKED",
            "HTML page",
            1,
        ),
        fails(
            Fault::CodeRedeemed,
            ProviderConfiguration,
            "MC-REQUEST-REJECTED",
            "54005",
            1,
        ),
    ];
    for (fault, expect, requests, times) in cases {
        let what = format!("{fault:?} x{times:?}");
        env.emulator.reset_stats();
        env.emulator.add_fault(on(fault, grant, times));
        let r = reconnect_with_browser(&env.client).await;
        match (&r, expect) {
            (Ok(()), None) => {}
            (Err(e), Some((kind, code_, says))) => {
                assert_eq!(code(e), code_, "{what}: {e}");
                assert!(e.message().contains(says), "{what}: {}", e.message());
                assert!(
                    e.message().contains("redeeming the authorization code"),
                    "{what}: {}",
                    e.message()
                );
                if kind != ProviderConfiguration {
                    assert_eq!(e.kind(), kind, "{what}: {e}");
                } else {
                    // invalid_grant at redemption: a request the server rejected, never repeated.
                    assert!(
                        e.evidence()
                            .oauth
                            .as_ref()
                            .is_some_and(|o| o.error == "invalid_grant"),
                        "{what}: {e}"
                    );
                }
            }
            (r, expect) => panic!("{what}: got {r:?}, expected {expect:?}"),
        }
        assert_eq!(
            env.emulator.stats().token_requests_for(grant),
            requests,
            "{what}"
        );
        assert_eq!(
            env.emulator.stats().authorize_requests,
            1,
            "{what}: one sign-in"
        );
        assert_tokens_kept(&env, &what).await;
    }

    // Slower than the HTTP timeout: the server may redeem the code after we gave up; not repeated.
    env.emulator.reset_stats();
    env.emulator
        .add_fault(on(Fault::Slow { millis: 2500 }, grant, Some(1)));
    let e = reconnect_with_browser(&impatient).await.unwrap_err();
    assert_eq!(e.kind(), Timeout, "{e}");
    assert_eq!(code(&e), "MC-TIMEOUT");
    assert_eq!(env.emulator.stats().token_requests_for(grant), 1);
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_tokens_kept(&env, "slow code redemption").await;
}

/// Start a device-code connect of alice (already connected) with `fault` on the polls.
async fn reconnect_by_device_code(env: &Env) -> Result<(), Error> {
    let user = ScriptedUser::new(sign_in_as("alice@example.test"));
    let opts = ConnectOptions {
        flow: Some(Flow::DeviceCode),
    };
    env.client
        .connect("alice", opts, &user, &nc())
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_polling_rides_out_transient_faults() {
    let env = alice_connected(2).await;
    for fault in [
        Fault::ServiceUnavailable,
        Fault::ProxyBadGateway,
        Fault::DropConnection,
        Fault::Throttled {
            retry_after_secs: 1,
        },
    ] {
        let what = format!("{fault:?}");
        env.emulator.reset_stats();
        env.emulator.add_fault(on(fault, "device_code", Some(2)));
        reconnect_by_device_code(&env)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let polls = env.emulator.stats().device_polls;
        assert!((3..=12).contains(&polls), "{what}: {polls} polls");
        assert_eq!(
            env.emulator.stats().tokens_issued.get("device_code"),
            Some(&1),
            "{what}"
        );
        assert_tokens_kept(&env, &what).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_device_code_answer_ends_with_one_clear_invalid_grant_not_a_loop() {
    let env = alice_connected(2).await;
    for (fault, says) in [
        (Fault::TruncatedJson, "54005"),
        (Fault::DropMidBody, "54005"),
    ] {
        let what = format!("{fault:?}");
        env.emulator.reset_stats();
        // Applies to the first successful poll: the tokens are issued and the code is spent.
        env.emulator.add_fault(on(fault, "device_code", Some(1)));
        let e = reconnect_by_device_code(&env).await.expect_err(&what);
        assert!(e.message().contains(says), "{what}: {}", e.message());
        assert!(
            e.evidence()
                .oauth
                .as_ref()
                .is_some_and(|o| o.error == "invalid_grant"),
            "{what}: {e}"
        );
        assert_eq!(code(&e), "MC-REQUEST-REJECTED", "{what}: {e}");
        let polls = env.emulator.stats().device_polls;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(
            env.emulator.stats().device_polls,
            polls,
            "{what}: polling stopped"
        );
        assert_eq!(
            env.emulator.stats().tokens_issued.get("device_code"),
            Some(&1),
            "{what}"
        );
        assert_tokens_kept(&env, &what).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_polling_against_a_provider_that_stays_down_ends_at_the_timeout() {
    let env = alice_connected(2).await;
    let acc = serde_json::json!({"id": "alice", "mailbox": "alice@example.test", "registration": "desktop",
        "flow": "device_code", "options": {"refresh_margin_secs": 1, "interactive_timeout_secs": 6}});
    env.client.put_account_json(&acc.to_string()).unwrap();
    env.emulator.reset_stats();
    env.emulator
        .add_fault(on(Fault::ServiceUnavailable, "device_code", None));
    let started = Instant::now();
    let e = reconnect_by_device_code(&env).await.unwrap_err();
    // The provider kept failing: its error is reported (not a bare timeout of the user's).
    assert_eq!(e.kind(), ErrorKind::ProviderUnavailable, "{e}");
    assert_eq!(code(&e), "MC-IDP-UNAVAILABLE");
    assert!(
        e.message().contains("did not finish within 6 s"),
        "{}",
        e.message()
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "ends at the 6 s timeout, not later: {:?}",
        started.elapsed()
    );
    let polls = env.emulator.stats().device_polls;
    assert!(
        (2..=6).contains(&polls),
        "{polls} polls in 6 s at a 1 s interval"
    );
    assert_tokens_kept(&env, "device polling vs 503").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_device_code_start_is_reported_without_polling() {
    let env = alice_connected(2).await;
    env.emulator.reset_stats();
    let mut r = FaultRule::always(Fault::Throttled {
        retry_after_secs: 5,
    });
    r.endpoint = Some(Endpoint::Devicecode);
    env.emulator.add_fault(r);
    let e = reconnect_by_device_code(&env).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ProviderUnavailable, "{e}");
    assert_eq!(code(&e), "MC-IDP-THROTTLED", "{e}");
    assert_eq!(env.emulator.stats().device_code_requests, 1);
    assert_eq!(env.emulator.stats().device_polls, 0);
    assert_tokens_kept(&env, "devicecode 429").await;
}
