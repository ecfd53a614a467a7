//! Refresh with rotation, and every emulator failure switch mapped to the right state and error.

use std::time::Duration;

use mailconnect_core::oauth::errors::ReauthReason;
use mailconnect_core::{AccountState, CancellationToken, ConnectOptions, ErrorKind};
use mailconnect_sandbox::{Fault, FaultRule};
use mailconnect_tests::*;
use secrecy::ExposeSecret;

fn no_cancel() -> CancellationToken {
    CancellationToken::new()
}

/// Connect alice by device code with access tokens living `lifetime` seconds and a 1 s margin.
async fn alice_connected(lifetime: u64) -> Env {
    let env = env_with(|c| c.tokens.access_token_lifetime_secs = lifetime).await;
    env.connected("alice", "alice@example.test")
        .flow("device_code")
        .with(serde_json::json!({"options": {"refresh_margin_secs": 1}}))
        .await;
    env
}

fn rule(fault: Fault) -> FaultRule {
    FaultRule {
        fault,
        app: None,
        user: None,
        endpoint: None,
        grant_type: Some("refresh_token".into()),
        times: None,
    }
}

async fn wait_for_expiry(env: &Env) {
    let s = env.client.status("alice").unwrap();
    let left = s.expires_in_secs.unwrap();
    tokio::time::sleep(Duration::from_millis((left.max(0) as u64) * 1000 + 200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refreshed_ahead_of_expiry_with_rotation() {
    let env = alice_connected(3).await;
    let first = env
        .client
        .access_token("alice", &no_cancel())
        .await
        .unwrap();
    let again = env
        .client
        .access_token("alice", &no_cancel())
        .await
        .unwrap();
    assert_eq!(
        first.token.expose_secret(),
        again.token.expose_secret(),
        "a fresh token is reused"
    );
    assert_eq!(env.emulator.stats().refreshes_total(), 0);

    tokio::time::sleep(Duration::from_millis(2100)).await; // inside the margin
    let second = env
        .client
        .access_token("alice", &no_cancel())
        .await
        .unwrap();
    assert_ne!(first.token.expose_secret(), second.token.expose_secret());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let third = env
        .client
        .access_token("alice", &no_cancel())
        .await
        .unwrap();
    assert_ne!(second.token.expose_secret(), third.token.expose_secret());
    assert_eq!(
        env.emulator.stats().refreshes_total(),
        2,
        "each refresh used the rotated refresh token"
    );
    let s = env.client.status("alice").unwrap();
    assert_eq!(s.state, AccountState::Connected);
    assert!(s.refreshed_at.is_some());
}

/// The provider's answers to a refresh that only a new sign-in can fix: (fault, the reason the
/// library reports, the AADSTS code its message must name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_answers_that_need_reauthorization() {
    let cases = [
        (
            Fault::RefreshTokenExpired,
            ReauthReason::RefreshTokenExpired,
            "700082",
        ),
        (
            Fault::RefreshTokenRevoked,
            ReauthReason::RefreshTokenRevoked,
            "50173",
        ),
        // Withdrawn consent.
        (
            Fault::ConsentRequired,
            ReauthReason::ConsentRequired,
            "65001",
        ),
        // MFA required at refresh.
        (
            Fault::MfaRequired,
            ReauthReason::InteractionRequired,
            "50076",
        ),
        (
            Fault::ConditionalAccessBlocked,
            ReauthReason::ConditionalAccess,
            "53003",
        ),
    ];
    for (fault, reason, aadsts) in cases {
        let what = format!("{fault:?}");
        let env = alice_connected(2).await;
        env.emulator.add_fault(rule(fault));
        wait_for_expiry(&env).await;
        let e = env
            .client
            .access_token("alice", &no_cancel())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ReauthorizationRequired, "{what}: {e}");
        assert_eq!(e.reauth_reason(), Some(reason), "{what}");
        assert!(e.message().contains(aadsts), "{what}: {}", e.message());
        let oauth = e
            .evidence()
            .oauth
            .clone()
            .unwrap_or_else(|| panic!("{what}: provider error kept"));
        assert!(
            oauth.trace_id.is_some() && oauth.correlation_id.is_some(),
            "{what}"
        );
        let s = env.client.status("alice").unwrap();
        assert_eq!(s.state, AccountState::NeedsReauthorization, "{what}");
        assert_eq!(s.reason, Some(reason), "{what}");

        // invalid_grant is never retried: further calls fail without asking the provider.
        let before = env.emulator.stats().refreshes_total();
        for _ in 0..3 {
            let e = env
                .client
                .access_token("alice", &no_cancel())
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ReauthorizationRequired, "{what}");
        }
        assert_eq!(env.emulator.stats().refreshes_total(), before, "{what}");

        // Connecting again clears it.
        env.emulator.clear_faults();
        let user = ScriptedUser::new(sign_in_as("alice@example.test"));
        env.client
            .connect("alice", ConnectOptions::default(), &user, &no_cancel())
            .await
            .unwrap_or_else(|e| panic!("{what}: connecting again: {e}"));
        assert_eq!(
            env.client.status("alice").unwrap().state,
            AccountState::Connected,
            "{what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_revokes_the_refresh_token() {
    let env = alice_connected(2).await;
    env.emulator
        .revoke_user_refresh_tokens("alice@example.test");
    wait_for_expiry(&env).await;
    let e = env
        .client
        .access_token("alice", &no_cancel())
        .await
        .unwrap_err();
    assert_eq!(
        e.reauth_reason(),
        Some(ReauthReason::RefreshTokenRevoked),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_removed_from_the_tenant_is_a_configuration_error() {
    let env = alice_connected(2).await;
    env.emulator.add_fault(rule(Fault::AppNotFound));
    wait_for_expiry(&env).await;
    let e = env
        .client
        .access_token("alice", &no_cancel())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ProviderConfiguration, "{e}");
    assert!(e.message().contains("700016"));
    let s = env.client.status("alice").unwrap();
    assert_eq!(s.state, AccountState::Error);
    assert!(s.last_error.unwrap().contains("700016"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_are_retried_with_bounds_and_keep_the_tokens() {
    let env = alice_connected(2).await;
    // One fault, then success: (fault, how long the retry waits at least: the Retry-After).
    let once = [
        // A 429 with Retry-After: 1.
        (
            Fault::Throttled {
                retry_after_secs: 1,
            },
            Some(Duration::from_millis(900)),
        ),
        // A 500.
        (Fault::ServerError, None),
    ];
    for (fault, waits) in once {
        let what = format!("{fault:?} once");
        wait_for_expiry(&env).await;
        let mut r = rule(fault);
        r.times = Some(1);
        env.emulator.add_fault(r);
        let started = std::time::Instant::now();
        env.client
            .access_token("alice", &no_cancel())
            .await
            .unwrap_or_else(|e| panic!("{what}: not retried: {e}"));
        if let Some(waits) = waits {
            assert!(
                started.elapsed() >= waits,
                "{what}: Retry-After honoured ({:?})",
                started.elapsed()
            );
        }
    }

    // 503 for good: bounded attempts, transient error, tokens kept (state stays connected).
    wait_for_expiry(&env).await;
    env.emulator.reset_stats();
    env.emulator.add_fault(rule(Fault::ServiceUnavailable));
    let e = env
        .client
        .access_token("alice", &no_cancel())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ProviderUnavailable, "{e}");
    assert_eq!(e.evidence().http_status, Some(503));
    assert!(
        env.emulator.stats().refresh_requests_total() <= 3,
        "bounded retries"
    );
    env.emulator.clear_faults();
    let s = env.client.status("alice").unwrap();
    assert_eq!(s.state, AccountState::Connected);
    assert!(s.has_refresh_token);
    env.client
        .access_token("alice", &no_cancel())
        .await
        .expect("the kept refresh token still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_pages_truncated_json_and_dropped_connections_get_clear_errors() {
    let env = alice_connected(2).await;
    wait_for_expiry(&env).await;
    use ErrorKind::{Network, ProviderUnavailable};
    // (fault, what the message says, the kinds it may have (any when empty), whether the
    // server's reply is kept as evidence)
    let cases: [(Fault, Option<&str>, &[ErrorKind], bool); 3] = [
        (Fault::ProxyHtmlPage, Some("HTML page"), &[], true),
        (Fault::TruncatedJson, Some("truncated"), &[], false),
        (
            Fault::DropConnection,
            None,
            &[Network, ProviderUnavailable],
            false,
        ),
    ];
    for (fault, says, kinds, reply_kept) in cases {
        let what = format!("{fault:?}");
        env.emulator.add_fault(rule(fault));
        let e = env
            .client
            .access_token("alice", &no_cancel())
            .await
            .expect_err(&what);
        if let Some(says) = says {
            assert!(e.message().contains(says), "{what}: {}", e.message());
        }
        if !kinds.is_empty() {
            assert!(kinds.contains(&e.kind()), "{what}: {e}");
        }
        if reply_kept {
            assert!(e.evidence().server_reply.is_some(), "{what}: {e}");
        }
        env.emulator.clear_faults();
    }

    assert_eq!(
        env.client.status("alice").unwrap().state,
        AccountState::Connected
    );
    env.client
        .access_token("alice", &no_cancel())
        .await
        .expect("tokens survived every fault");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_token_endpoint_times_out() {
    let env = alice_connected(2).await;
    wait_for_expiry(&env).await;
    env.emulator.add_fault(rule(Fault::Slow { millis: 8000 }));
    let e = env
        .client
        .access_token("alice", &no_cancel())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_file_holds_no_token_or_secret_in_clear() {
    let env = alice_connected(3600).await;
    let reg = serde_json::json!({"id":"svc","provider":"microsoft","tenant":TENANT,"authority_host":env.emulator.base_url(),
        "client_id":SERVICE_APP,"client_secret":SERVICE_SECRET});
    env.client.put_registration_json(&reg.to_string()).unwrap();
    let at = env
        .client
        .access_token("alice", &no_cancel())
        .await
        .unwrap();
    let mut bytes = std::fs::read(env.store_path()).unwrap();
    if let Ok(wal) = std::fs::read(env.store_path().with_extension("db-wal")) {
        bytes.extend(wal);
    }
    let hay = String::from_utf8_lossy(&bytes);
    assert!(
        !hay.contains(at.token.expose_secret()),
        "access token in clear"
    );
    assert!(
        !hay.contains(&at.token.expose_secret()[..40]),
        "access token prefix in clear"
    );
    assert!(!hay.contains("eyJ"), "no JWT fragment in clear");
    assert!(!hay.contains(SERVICE_SECRET), "client secret in clear");
    // Refresh tokens are long opaque strings: no run of 60+ token characters may appear.
    let mut run = 0;
    for b in &bytes {
        if b.is_ascii_alphanumeric() || b"-_.~+/=".contains(b) {
            run += 1;
            assert!(run < 60, "a long token-like string is stored in clear");
        } else {
            run = 0;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.store_path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}

/// An account the provider gave no refresh token (no `offline_access`): the background refresher
/// leaves its still-valid token alone and tells the host ahead of time, once per token, that the
/// account must sign in again when it expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresher_announces_a_coming_reauthorization_once() {
    use mailconnect_core::{EventKind, Refresher, RefresherOptions};
    let env = env().await;
    let mut reg = desktop(&env.emulator);
    reg["scopes"] = serde_json::json!([
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "openid",
        "profile",
        "email"
    ]);
    let (s, _) = connected(&env.client, reg, "short", "alice@example.test")
        .flow("device_code")
        .await;
    assert!(!s.has_refresh_token, "{s:?}");
    while env.client.events().try_next().is_some() {}
    // The emulator's tokens live an hour: "ahead" covers the whole of it.
    let refresher = Refresher::new(
        env.client.clone(),
        RefresherOptions {
            ahead_secs: 2 * 3600,
            jitter_secs: 0,
            ..Default::default()
        },
    );
    for round in 0..2 {
        let report = refresher.round(&no_cancel()).await.unwrap();
        assert_eq!((report.fresh, report.refreshed), (1, 0), "round {round}");
    }
    let due: Vec<_> = std::iter::from_fn(|| env.client.events().try_next())
        .filter_map(|e| match e.kind {
            EventKind::ReauthorizationDue {
                account_id,
                at,
                code,
            } => Some((account_id, at, code)),
            _ => None,
        })
        .collect();
    assert_eq!(due.len(), 1, "once per token: {due:?}");
    let (account, at, code) = &due[0];
    assert_eq!((account.as_str(), *code), ("short", "MC-NO-REFRESH-TOKEN"));
    assert_eq!(Some(at), s.expires_at.as_ref());
    assert_eq!(env.emulator.stats().refreshes_total(), 0);
}
