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
async fn connected(lifetime: u64) -> Env {
    let env = env_with(|c| c.tokens.access_token_lifetime_secs = lifetime).await;
    add_account(
        &env,
        "alice",
        "alice@example.test",
        "device_code",
        serde_json::json!({"options": {"refresh_margin_secs": 1}}),
    );
    let user = ScriptedUser::new(sign_in_as("alice@example.test"));
    env.client
        .connect("alice", ConnectOptions::default(), &user, &no_cancel())
        .await
        .expect("connect");
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
    let env = connected(3).await;
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

async fn expect_reauth(fault: Fault, reason: ReauthReason, aadsts: &str) {
    let env = connected(2).await;
    env.emulator.add_fault(rule(fault));
    wait_for_expiry(&env).await;
    let e = env
        .client
        .access_token("alice", &no_cancel())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ReauthorizationRequired, "{e}");
    assert_eq!(e.reauth_reason(), Some(reason));
    assert!(e.message().contains(aadsts), "{}", e.message());
    let oauth = e.evidence().oauth.clone().expect("provider error kept");
    assert!(oauth.trace_id.is_some() && oauth.correlation_id.is_some());
    let s = env.client.status("alice").unwrap();
    assert_eq!(s.state, AccountState::NeedsReauthorization);
    assert_eq!(s.reason, Some(reason));

    // invalid_grant is never retried: further calls fail without asking the provider.
    let before = env.emulator.stats().refreshes_total();
    for _ in 0..3 {
        let e = env
            .client
            .access_token("alice", &no_cancel())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ReauthorizationRequired);
    }
    assert_eq!(env.emulator.stats().refreshes_total(), before);

    // Connecting again clears it.
    env.emulator.clear_faults();
    let user = ScriptedUser::new(sign_in_as("alice@example.test"));
    env.client
        .connect("alice", ConnectOptions::default(), &user, &no_cancel())
        .await
        .unwrap();
    assert_eq!(
        env.client.status("alice").unwrap().state,
        AccountState::Connected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_refresh_token_needs_reauthorization() {
    expect_reauth(
        Fault::RefreshTokenExpired,
        ReauthReason::RefreshTokenExpired,
        "700082",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_refresh_token_needs_reauthorization() {
    expect_reauth(
        Fault::RefreshTokenRevoked,
        ReauthReason::RefreshTokenRevoked,
        "50173",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawn_consent_needs_reauthorization() {
    expect_reauth(
        Fault::ConsentRequired,
        ReauthReason::ConsentRequired,
        "65001",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_required_at_refresh_needs_reauthorization() {
    expect_reauth(
        Fault::MfaRequired,
        ReauthReason::InteractionRequired,
        "50076",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_access_needs_reauthorization() {
    expect_reauth(
        Fault::ConditionalAccessBlocked,
        ReauthReason::ConditionalAccess,
        "53003",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_revokes_the_refresh_token() {
    let env = connected(2).await;
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
    let env = connected(2).await;
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
    let env = connected(2).await;
    wait_for_expiry(&env).await;
    // One 429 with Retry-After: 1, then success.
    let mut r = rule(Fault::Throttled {
        retry_after_secs: 1,
    });
    r.times = Some(1);
    env.emulator.add_fault(r);
    let started = std::time::Instant::now();
    env.client
        .access_token("alice", &no_cancel())
        .await
        .expect("retried after Retry-After");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After honoured"
    );

    // A 500 then success.
    wait_for_expiry(&env).await;
    let mut r = rule(Fault::ServerError);
    r.times = Some(1);
    env.emulator.add_fault(r);
    env.client
        .access_token("alice", &no_cancel())
        .await
        .expect("retried after 500");

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
    let env = connected(2).await;
    wait_for_expiry(&env).await;
    env.emulator.add_fault(rule(Fault::ProxyHtmlPage));
    let e = env
        .client
        .access_token("alice", &no_cancel())
        .await
        .unwrap_err();
    assert!(e.message().contains("HTML page"), "{}", e.message());
    assert!(e.evidence().server_reply.is_some());
    env.emulator.clear_faults();

    env.emulator.add_fault(rule(Fault::TruncatedJson));
    let e = env
        .client
        .access_token("alice", &no_cancel())
        .await
        .unwrap_err();
    assert!(e.message().contains("truncated"), "{}", e.message());
    env.emulator.clear_faults();

    env.emulator.add_fault(rule(Fault::DropConnection));
    let e = env
        .client
        .access_token("alice", &no_cancel())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Network | ErrorKind::ProviderUnavailable
        ),
        "{e}"
    );
    env.emulator.clear_faults();

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
    let env = connected(2).await;
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
    let env = connected(3600).await;
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
