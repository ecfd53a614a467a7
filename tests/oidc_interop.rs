//! mailconnect's `generic` provider against an OpenID Connect server this project does not write:
//! panva's oidc-provider from npm (OpenID Certified; tests/oidc/server.mjs configures it, with the
//! defaults such servers ship: no `prompt_values_supported` in discovery, `select_account` refused,
//! refresh tokens only for `offline_access` with `prompt=consent` (OIDC Core §11), id_tokens with
//! `sub` only, refresh tokens rotated on every use). Discovery, a public native client, PKCE, the
//! browser and the device flow, userinfo, rotation, revocation.

use mailconnect_core::store::{KeySource, SqliteStore, TokenStore};
use mailconnect_core::{
    AccountState, CancellationToken, Client, ErrorKind, Refresher, RefresherOptions,
};
use mailconnect_tests::oidc::{OidcObserver, OidcServer, CLIENT_ID};
use mailconnect_tests::*;
use secrecy::ExposeSecret;

fn no_cancel() -> CancellationToken {
    CancellationToken::new()
}

struct Setup {
    server: OidcServer,
    client: Client,
    dir: tempfile::TempDir,
    /// The server's registration (with the test's scopes).
    registration: serde_json::Value,
    /// The account's flow.
    flow: &'static str,
}

impl Setup {
    fn store(&self) -> SqliteStore {
        let p = self.dir.path().join("mailconnect.db");
        let mut key = p.clone().into_os_string();
        key.push(".key");
        SqliteStore::open(&p, &KeySource::File(key.into())).expect("store")
    }

    /// Put the registration and alice's account (mailbox alice@example.test), to be connected
    /// with `login` playing the user at the server's pages.
    fn connecting(&self, login: &str) -> Connect<'_, OidcObserver> {
        connected(
            &self.client,
            self.registration.clone(),
            "alice",
            "alice@example.test",
        )
        .flow(self.flow)
        .user(OidcObserver::new(login))
    }

    /// Connect alice's account with `login` playing the user.
    async fn connect_as(&self, login: &str) -> mailconnect_core::Result<mailconnect_core::Status> {
        self.connecting(login).attempt().await.0
    }

    fn refresh_token(&self, account: &str) -> Option<String> {
        self.store()
            .load_tokens(account)
            .expect("load")
            .and_then(|r| r.secrets.refresh_token.clone())
    }
}

/// The server, a client on a fresh store, and the registration (`scopes` when given) and flow of
/// alice's account, put when it is connected ([`Setup::connecting`]).
fn setup(access_ttl: u64, flow: &'static str, scopes: Option<&[&str]>) -> Setup {
    let server = OidcServer::start(access_ttl);
    let dir = tempfile::tempdir().expect("dir");
    let client = open_client(&dir.path().join("mailconnect.db"));
    let mut registration = server.registration("oidc");
    if let Some(s) = scopes {
        registration["scopes"] = serde_json::json!(s);
    }
    Setup {
        server,
        client,
        dir,
        registration,
        flow,
    }
}

/// Ask the server's token endpoint for new tokens with `refresh_token` (as the public client).
async fn refresh_at_server(server: &OidcServer, refresh_token: &str) -> (u16, serde_json::Value) {
    let form: Vec<(String, String)> = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", CLIENT_ID),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let page = mailconnect_sandbox::ScriptedBrowser::new()
        .fetch(&format!("{}/token", server.issuer), Some(&form))
        .await
        .expect("token endpoint");
    (
        page.status,
        serde_json::from_str(&page.body).unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_flow_with_default_options_connects_with_a_refresh_token_and_the_right_identity(
) {
    let s = setup(3600, "browser", None);
    let (status, user) = s.connecting("alice").await;
    assert_eq!(status.state, AccountState::Connected);
    assert!(
        status.has_refresh_token,
        "offline_access with prompt=consent gives a refresh token: {status:?}"
    );
    let walk = user.last_walk().await.expect("the sign-in ran");
    let redirect = walk.redirect.expect("redirected to the app");
    assert_eq!(walk.delivered, Some(200), "{redirect}");
    let identity = serde_json::to_value(&status).expect("json")["identity"].clone();
    assert_eq!(
        identity["username"], "alice@example.test",
        "the id_token has only `sub`: the name comes from userinfo: {identity}"
    );
    let token = s
        .client
        .access_token("alice", &no_cancel())
        .await
        .expect("token");
    assert!(!token.token.expose_secret().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_flow_connects() {
    let s = setup(3600, "device_code", None);
    let (status, user) = s.connecting("alice").await;
    assert_eq!(status.state, AccountState::Connected);
    assert!(status.has_refresh_token, "{status:?}");
    assert!(
        user.last_walk().await.is_some(),
        "the user code was entered at the server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_refresh_tokens_are_kept_twice_and_the_old_ones_are_dead() {
    let s = setup(3600, "browser", None);
    s.connect_as("alice").await.expect("connect");
    let mut seen = vec![s.refresh_token("alice").expect("a refresh token")];
    for round in 1..=2 {
        assert!(
            mailconnect_tests::pg::expire_access_token(&s.store(), "alice"),
            "round {round}: the record was written meanwhile"
        );
        s.client
            .access_token("alice", &no_cancel())
            .await
            .unwrap_or_else(|e| panic!("round {round}: refresh: {e}"));
        let now = s.refresh_token("alice").expect("a refresh token");
        assert!(
            !seen.contains(&now),
            "round {round}: the rotated refresh token was stored"
        );
        seen.push(now);
    }
    // The server refuses the replaced ones (and, seeing one reused, the family: the last one too).
    let (status, body) = refresh_at_server(&s.server, &seen[0]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_as_someone_else_is_refused_when_the_id_token_names_only_sub() {
    let s = setup(3600, "browser", None);
    let e = s.connect_as("bob").await.expect_err("bob is not alice");
    assert_eq!(e.kind(), ErrorKind::AuthorizationDenied, "{e}");
    assert!(
        e.message().contains("bob@example.test") && e.message().contains("alice@example.test"),
        "{e}"
    );
    let d = mailconnect_core::diagnose::diagnose(&e, Default::default());
    assert_eq!(d.code, "MC-WRONG-ACCOUNT");
    assert_eq!(
        s.client.status("alice").expect("status").state,
        AccountState::NotConnected,
        "nothing was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_revokes_the_refresh_token_at_the_server() {
    let s = setup(3600, "browser", None);
    s.connect_as("alice").await.expect("connect");
    let rt = s.refresh_token("alice").expect("a refresh token");
    s.client
        .disconnect("alice", &CancellationToken::new())
        .await
        .expect("disconnect");
    let (status, body) = refresh_at_server(&s.server, &rt).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "revoked: {body}");
}

/// Without `offline_access` the server gives no refresh token: the access token is handed out
/// until it expires, the status says why the account will need signing in again, and only then
/// is re-authorization reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_refresh_token_the_access_token_is_used_until_it_expires() {
    let s = setup(3600, "browser", Some(&["openid", "email"]));
    let status = s.connect_as("alice").await.expect("connect");
    assert!(!status.has_refresh_token);
    let first = s
        .client
        .access_token("alice", &no_cancel())
        .await
        .expect("token");
    // Past the point where a refresh would be due (most of its life gone), not yet expired.
    let store = s.store();
    let mut rec = store.load_tokens("alice").expect("load").expect("record");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    rec.meta.access_issued_at = Some(now - 3500);
    rec.meta.access_expires_at = Some(now + 100);
    store
        .save_tokens(&rec, rec.version)
        .expect("save")
        .expect("cas");
    let again = s
        .client
        .access_token("alice", &no_cancel())
        .await
        .expect("a still valid token is handed out");
    assert_eq!(again.token.expose_secret(), first.token.expose_secret());
    let st = serde_json::to_value(s.client.status("alice").expect("status")).expect("json");
    assert_eq!(st["state"], "connected", "{st}");
    // The background refresher leaves it alone: nothing to refresh it with, nothing failed.
    let refresher = Refresher::new(s.client.clone(), RefresherOptions::default());
    let round = refresher.round(&no_cancel()).await.expect("round");
    assert_eq!(
        (round.fresh, round.refreshed, round.failed),
        (1, 0, 0),
        "{round:?}"
    );
    assert!(
        st["reauthorization_due"]["code"] == "MC-NO-REFRESH-TOKEN",
        "the status says sign-in will be needed, and why: {st}"
    );
    // Expired: now re-authorization is needed.
    let mut rec = store.load_tokens("alice").expect("load").expect("record");
    rec.meta.access_expires_at = Some(now - 1);
    store
        .save_tokens(&rec, rec.version)
        .expect("save")
        .expect("cas");
    let e = s
        .client
        .access_token("alice", &no_cancel())
        .await
        .expect_err("expired, no refresh token");
    assert_eq!(e.kind(), ErrorKind::ReauthorizationRequired, "{e}");
    assert_eq!(
        mailconnect_core::diagnose::diagnose(&e, Default::default()).code,
        "MC-NO-REFRESH-TOKEN"
    );
    assert_eq!(
        s.client.status("alice").expect("status").state,
        AccountState::NeedsReauthorization
    );
    let round = refresher.round(&no_cancel()).await.expect("round");
    assert_eq!(round.needs_reauthorization, 1, "{round:?}");
}
