//! One set of checks for every [`TokenStore`] backend: what the trait (core/src/store/mod.rs)
//! promises, written once and run against each backend by tests/store_conformance.rs.
//!
//! The promises: token records round-trip whole (every metadata field, both secrets, long access
//! tokens) and are saved by compare-and-swap (`0` = no record; a second create, a stale version
//! and, after a delete, any old version are refused: versions are unique across the store's life,
//! so there is no ABA); deleting tokens drops the refresh lease; a lease excludes other holders
//! until its holder releases it or its ttl passes, and only the holder releases it; registrations
//! keep their secret when put again without one and list without it; accounts are put, replaced,
//! listed and removed with their tokens; a registration in use cannot be removed; everything
//! listed comes sorted by id; two handles on the same data (two processes, two machines) see each
//! other's writes, versions and leases; concurrent compare-and-swap loses no update; of many
//! callers asking for a free lease at once exactly one gets it; no secret is kept in clear; and a
//! [`Client`] over the store behaves the same.
//!
//! Where the backends knowingly differ, [`Backend`] says so (and the check asserts each one's way).

use std::sync::{Arc, Barrier};
use std::time::Duration;

use mailconnect_core::store::{StoredState, TokenMeta, TokenRecord, TokenSecrets, TokenStore};
use mailconnect_core::{Account, Client, ClientOptions, ErrorKind, Registration};
use secrecy::ExposeSecret;

/// A new, empty store as a check gets it.
pub struct Opened {
    /// The store.
    pub store: Arc<dyn TokenStore>,
    /// A second handle on the same data, opened separately (as another process or machine has).
    pub other: Arc<dyn TokenStore>,
    /// Every byte the backend keeps for this store (files, a database dump, the host's blobs).
    pub raw: Box<dyn Fn() -> Vec<u8>>,
}

/// A backend under test.
pub struct Backend<'a> {
    /// Its name in failure messages.
    pub name: &'static str,
    /// Opens a new, empty store (each check gets its own).
    pub open: &'a dyn Fn() -> Opened,
    /// Versions grow with every write (the SQL stores count); otherwise they are only unique (the
    /// host store draws them at random).
    pub versions_increase: bool,
}

type Check = fn(&Backend, &Opened);

/// Every check, by name.
pub const CHECKS: &[(&str, Check)] = &[
    ("tokens round-trip whole", tokens_round_trip),
    (
        "save is compare-and-swap without ABA",
        save_is_compare_and_swap,
    ),
    (
        "versions are unique across accounts",
        versions_are_store_wide,
    ),
    ("leases", leases),
    ("registrations", registrations),
    ("accounts", accounts),
    ("a registration in use is not removed", registration_in_use),
    (
        "two handles share records, versions and leases",
        two_handles,
    ),
    ("concurrent compare-and-swap", concurrent_cas),
    ("lease race", lease_race),
    ("settings", settings),
    ("no secret in clear", no_secret_in_clear),
    ("through a client", through_a_client),
];

/// Run every check on a new store of `backend`; panics naming each failed check.
pub fn run(backend: &Backend) {
    let mut failed = vec![];
    for (name, check) in CHECKS {
        eprintln!("{}: {name}", backend.name);
        let opened = (backend.open)();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(backend, &opened)));
        if let Err(p) = r {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{}: {name}: {msg}", backend.name));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} checks failed:\n{}",
        failed.len(),
        CHECKS.len(),
        failed.join("\n")
    );
    println!("{}: all {} checks passed", backend.name, CHECKS.len());
}

/// A connected token record of `id` with refresh token `rt`.
pub fn rec(id: &str, rt: &str) -> TokenRecord {
    TokenRecord {
        account_id: id.into(),
        version: 0,
        meta: meta(serde_json::json!({
            "state": "connected", "access_expires_at": 1, "flow": "browser",
            "connected_at": 1, "has_refresh_token": true
        })),
        secrets: TokenSecrets {
            refresh_token: Some(rt.into()),
            access_token: Some("at".into()),
            graph_access_token: None,
        },
    }
}

fn meta(json: serde_json::Value) -> TokenMeta {
    serde_json::from_value(json).expect("token metadata")
}

/// The stored refresh token of `id`.
pub fn rt_of(s: &dyn TokenStore, id: &str) -> Option<String> {
    s.load_tokens(id)
        .unwrap()
        .and_then(|r| r.secrets.refresh_token.clone())
}

/// A value as JSON (to compare records field by field).
macro_rules! as_json {
    ($v:expr) => {
        serde_json::to_value($v).expect("JSON")
    };
}

fn registration(json: serde_json::Value) -> Registration {
    serde_json::from_value(json).expect("registration")
}

fn account(json: serde_json::Value) -> Account {
    serde_json::from_value(json).expect("account")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ----- tokens ------------------------------------------------------------------------------------

fn tokens_round_trip(_: &Backend, o: &Opened) {
    let s = o.store.as_ref();
    assert!(s.load_tokens("a").unwrap().is_none(), "nothing stored yet");
    // Every metadata field set, and an access token of a realistic JWT's size.
    let full = TokenRecord {
        account_id: "a".into(),
        version: 0,
        meta: meta(serde_json::json!({
            "state": "needs_reauthorization", "reauth_reason": "refresh_token_revoked",
            "access_expires_at": 1_900_000_000, "access_issued_at": 1_899_996_400,
            "scopes": ["https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"],
            "identity": {"username": "alice@example.test", "name": "Alice", "tid": "t-1",
                         "oid": "o-1", "names": ["alice@example.test"], "sub": "s-1"},
            "tenant": "t-1", "flow": "device_code", "connected_at": 1_899_990_000,
            "refreshed_at": 1_899_996_400, "last_error": "a refresh failed: ä ✓ \"quoted\"",
            "has_refresh_token": true, "graph_expires_at": 1_900_000_100,
            "graph_issued_at": 1_899_996_500, "smtp_auth_disabled_at": 1_899_996_000
        })),
        secrets: TokenSecrets {
            refresh_token: Some("0.AUoA-refresh-ä".into()),
            access_token: Some("eyJ-access".repeat(400)),
            graph_access_token: Some("eyJ-graph".repeat(300)),
        },
    };
    let v = s.save_tokens(&full, 0).unwrap().expect("the first save");
    assert!(v > 0, "a stored record has a version above 0: {v}");
    let back = s.load_tokens("a").unwrap().expect("the record");
    assert_eq!(back.account_id, "a");
    assert_eq!(back.version, v, "load gives the version save returned");
    assert_eq!(as_json!(&back.meta), as_json!(&full.meta), "metadata");
    assert_eq!(back.secrets.refresh_token, full.secrets.refresh_token);
    assert_eq!(back.secrets.access_token, full.secrets.access_token);
    assert_eq!(
        back.secrets.graph_access_token,
        full.secrets.graph_access_token
    );

    // A record without secrets (app-only, or not yet connected) comes back without them.
    let mut bare = rec("b", "x");
    bare.secrets = TokenSecrets::default();
    bare.meta.has_refresh_token = false;
    bare.meta.state = StoredState::Error;
    s.save_tokens(&bare, 0).unwrap().expect("saved");
    let back = s.load_tokens("b").unwrap().expect("the record");
    assert!(back.secrets.refresh_token.is_none() && back.secrets.access_token.is_none());
    assert_eq!(as_json!(&back.meta), as_json!(&bare.meta));
    assert_eq!(
        rt_of(s, "a").as_deref(),
        Some("0.AUoA-refresh-ä"),
        "records are per account"
    );
}

fn save_is_compare_and_swap(b: &Backend, o: &Opened) {
    let s = o.store.as_ref();
    let v1 = s.save_tokens(&rec("a", "rt1"), 0).unwrap().unwrap();
    assert_eq!(
        s.save_tokens(&rec("a", "rt-stale"), 0).unwrap(),
        None,
        "a second create loses"
    );
    let v2 = s.save_tokens(&rec("a", "rt2"), v1).unwrap().unwrap();
    assert_ne!(v2, v1);
    if b.versions_increase {
        assert!(v2 > v1);
    }
    assert_eq!(
        s.save_tokens(&rec("a", "rt-old"), v1).unwrap(),
        None,
        "a stale version loses"
    );
    assert_eq!(
        s.save_tokens(&rec("a", "rt-x"), v2 + 1).unwrap(),
        None,
        "a version never handed out loses"
    );
    assert_eq!(
        rt_of(s, "a").as_deref(),
        Some("rt2"),
        "the losers wrote nothing"
    );
    assert_eq!(s.load_tokens("a").unwrap().unwrap().version, v2);
    assert!(s.delete_tokens("a").unwrap());
    assert!(!s.delete_tokens("a").unwrap());
    assert!(s.load_tokens("a").unwrap().is_none());
    assert_eq!(
        s.save_tokens(&rec("a", "rt-old"), v2).unwrap(),
        None,
        "a deleted record's version does not create it"
    );
    let v3 = s.save_tokens(&rec("a", "rt3"), 0).unwrap().unwrap();
    assert!(v3 != v1 && v3 != v2, "versions are never reused");
    if b.versions_increase {
        assert!(v3 > v2, "versions are never reused");
    }
    assert_eq!(
        s.save_tokens(&rec("a", "rt-old"), v1).unwrap(),
        None,
        "no ABA"
    );
    assert_eq!(
        s.save_tokens(&rec("a", "rt-old"), v2).unwrap(),
        None,
        "no ABA"
    );
    assert_eq!(rt_of(s, "a").as_deref(), Some("rt3"));
}

/// Another account never gets a version that "a" had.
fn versions_are_store_wide(b: &Backend, o: &Opened) {
    let s = o.store.as_ref();
    let v1 = s.save_tokens(&rec("a", "1"), 0).unwrap().unwrap();
    let v2 = s.save_tokens(&rec("a", "2"), v1).unwrap().unwrap();
    assert!(s.delete_tokens("a").unwrap());
    let v3 = s.save_tokens(&rec("a", "3"), 0).unwrap().unwrap();
    let vb = s.save_tokens(&rec("b", "x"), 0).unwrap().unwrap();
    assert!(![v1, v2, v3].contains(&vb), "{vb} in {:?}", [v1, v2, v3]);
    if b.versions_increase {
        assert!(vb > v3);
    }
    assert_eq!(
        s.save_tokens(&rec("b", "y"), v3).unwrap(),
        None,
        "another account's version does not match"
    );
}

fn leases(_: &Backend, o: &Opened) {
    let s = o.store.as_ref();
    assert!(s.try_lease("a", "p1", secs(30)).unwrap());
    assert!(
        s.try_lease("a", "p1", secs(30)).unwrap(),
        "the holder may renew"
    );
    assert!(
        !s.try_lease("a", "p2", secs(30)).unwrap(),
        "a second holder is refused while the lease is held"
    );
    assert!(
        s.try_lease("b", "p2", secs(30)).unwrap(),
        "leases are per account"
    );
    s.release_lease("a", "p2").unwrap();
    assert!(
        !s.try_lease("a", "p2", secs(30)).unwrap(),
        "only the holder releases"
    );
    s.release_lease("a", "p1").unwrap();
    assert!(
        s.try_lease("a", "p2", Duration::from_millis(50)).unwrap(),
        "a released lease is free"
    );
    // Sleeping longer than the ttl: the lease has expired however slow the machine is.
    std::thread::sleep(Duration::from_millis(120));
    assert!(
        s.try_lease("a", "p3", secs(30)).unwrap(),
        "an expired lease is taken over"
    );
    s.release_lease("nobody-holds", "p1")
        .expect("releasing a lease nobody holds is no error");
    s.save_tokens(&rec("a", "rt"), 0).unwrap().unwrap();
    assert!(s.delete_tokens("a").unwrap());
    assert!(
        s.try_lease("a", "p4", secs(30)).unwrap(),
        "deleting the tokens drops the lease"
    );
    assert!(
        !s.try_lease("b", "p4", secs(30)).unwrap(),
        "b's lease is still held"
    );
}

// ----- registrations and accounts ----------------------------------------------------------------

fn registrations(_: &Backend, o: &Opened) {
    let s = o.store.as_ref();
    assert!(s.list_registrations().unwrap().is_empty());
    assert!(s.get_registration("r").unwrap().is_none());
    let full = serde_json::json!({"id": "r", "provider": "microsoft", "tenant": "organizations",
        "authority_host": "http://127.0.0.1:9", "client_id": "c", "client_secret": "s3cret-value",
        "scopes": ["https://outlook.office.com/SMTP.Send", "offline_access"]});
    s.put_registration(&registration(full.clone())).unwrap();
    let back = s.get_registration("r").unwrap().unwrap();
    assert!(back.has_client_secret);
    assert_eq!(
        back.client_secret.as_ref().map(|x| x.expose_secret()),
        Some("s3cret-value")
    );
    let mut want = full.clone();
    want.as_object_mut().unwrap().remove("client_secret");
    want["has_client_secret"] = true.into();
    assert_eq!(as_json!(&back), want, "every field comes back");

    let update = serde_json::json!({"id": "r", "provider": "microsoft", "client_id": "c2"});
    s.put_registration(&registration(update)).unwrap();
    let back = s.get_registration("r").unwrap().unwrap();
    assert_eq!(back.client_id, "c2", "a put replaces the registration");
    assert!(back.tenant.is_none(), "a put replaces every field");
    assert_eq!(
        back.client_secret.as_ref().map(|x| x.expose_secret()),
        Some("s3cret-value"),
        "a put without a secret keeps the stored one"
    );
    let new_secret = serde_json::json!({"id": "r", "provider": "microsoft", "client_id": "c2", "client_secret": "second"});
    s.put_registration(&registration(new_secret)).unwrap();
    let back = s.get_registration("r").unwrap().unwrap();
    assert_eq!(
        back.client_secret.as_ref().map(|x| x.expose_secret()),
        Some("second"),
        "a put with a secret replaces it"
    );

    s.put_registration(&registration(
        serde_json::json!({"id": "a-public", "provider": "microsoft", "client_id": "p"}),
    ))
    .unwrap();
    let public = s.get_registration("a-public").unwrap().unwrap();
    assert!(!public.has_client_secret && public.client_secret.is_none());
    let listed = s.list_registrations().unwrap();
    let ids: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["a-public", "r"], "listed sorted by id");
    assert!(
        listed[1].has_client_secret && listed[1].client_secret.is_none(),
        "listed without the secret, saying there is one"
    );
    assert!(!listed[0].has_client_secret);
    assert!(s.get_registration("nope").unwrap().is_none());

    assert!(s.remove_registration("r").unwrap());
    assert!(!s.remove_registration("r").unwrap());
    assert!(s.get_registration("r").unwrap().is_none());
    assert_eq!(s.list_registrations().unwrap().len(), 1);
}

fn accounts(_: &Backend, o: &Opened) {
    let s = o.store.as_ref();
    s.put_registration(&registration(
        serde_json::json!({"id": "r", "provider": "microsoft", "client_id": "c"}),
    ))
    .unwrap();
    assert!(s.list_accounts().unwrap().is_empty());
    assert!(s.get_account("x").unwrap().is_none());
    let full = serde_json::json!({"id": "x", "mailbox": "sales@example.test",
        "login": "alice@example.test", "login_aliases": ["alice.smith@example.test"],
        "registration": "r", "flow": "device_code",
        "servers": {"imap": {"host": "imap.example.test", "port": 993, "security": "tls"}},
        "options": {"refresh_margin_secs": 7, "pop3": {"leave_on_server": false}}});
    let acc = account(full);
    s.put_account(&acc).unwrap();
    assert_eq!(
        as_json!(&s.get_account("x").unwrap().unwrap()),
        as_json!(&acc),
        "every field comes back"
    );
    s.put_account(&acc).unwrap();
    assert_eq!(s.list_accounts().unwrap().len(), 1, "a second put replaces");
    let moved =
        account(serde_json::json!({"id": "x", "mailbox": "x@example.test", "registration": "r"}));
    s.put_account(&moved).unwrap();
    assert_eq!(
        as_json!(&s.get_account("x").unwrap().unwrap()),
        as_json!(&moved)
    );
    s.put_account(&account(
        serde_json::json!({"id": "b", "mailbox": "b@example.test", "registration": "r"}),
    ))
    .unwrap();
    let ids: Vec<String> = s
        .list_accounts()
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, ["b", "x"], "listed sorted by id");

    s.save_tokens(&rec("x", "rt"), 0).unwrap().unwrap();
    s.save_tokens(&rec("b", "rt-b"), 0).unwrap().unwrap();
    assert!(s.remove_account("x").unwrap());
    assert!(!s.remove_account("x").unwrap());
    assert!(s.get_account("x").unwrap().is_none());
    assert!(
        s.load_tokens("x").unwrap().is_none(),
        "removing an account removes its tokens"
    );
    assert_eq!(
        rt_of(s, "b").as_deref(),
        Some("rt-b"),
        "another account's tokens stay"
    );
    assert_eq!(s.list_accounts().unwrap().len(), 1);
}

fn registration_in_use(_: &Backend, o: &Opened) {
    let s = o.store.as_ref();
    s.put_registration(&registration(
        serde_json::json!({"id": "r", "provider": "microsoft", "client_id": "c"}),
    ))
    .unwrap();
    s.put_account(&account(
        serde_json::json!({"id": "x", "mailbox": "x@example.test", "registration": "r"}),
    ))
    .unwrap();
    let e = s.remove_registration("r").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::State, "{e}");
    assert!(
        e.message().contains("registration 'r'")
            && e.message().contains("still used by 1 account(s)"),
        "{}",
        e.message()
    );
    assert!(
        s.get_registration("r").unwrap().is_some() && s.get_account("x").unwrap().is_some(),
        "nothing was removed"
    );
    assert!(s.remove_account("x").unwrap());
    assert!(s.remove_registration("r").unwrap(), "unused now");
    assert!(s.list_registrations().unwrap().is_empty());
}

// ----- two handles, concurrency ------------------------------------------------------------------

/// Two handles on the same data (two pools on one database, two processes on one file, two hosts
/// on one backend) share records, versions and leases.
fn two_handles(_: &Backend, o: &Opened) {
    let (a, b) = (o.store.as_ref(), o.other.as_ref());
    let v = a.save_tokens(&rec("shared", "one"), 0).unwrap().unwrap();
    assert_eq!(b.save_tokens(&rec("shared", "two"), 0).unwrap(), None);
    assert!(b.save_tokens(&rec("shared", "two"), v).unwrap().is_some());
    assert_eq!(a.save_tokens(&rec("shared", "three"), v).unwrap(), None);
    assert_eq!(rt_of(a, "shared").as_deref(), Some("two"));
    assert!(a.try_lease("shared", "machine-a", secs(30)).unwrap());
    assert!(!b.try_lease("shared", "machine-b", secs(30)).unwrap());
    a.put_registration(&registration(
        serde_json::json!({"id": "r", "provider": "microsoft", "client_id": "c", "client_secret": "s"}),
    ))
    .unwrap();
    let r = b.get_registration("r").unwrap().expect("seen by the other");
    assert_eq!(
        r.client_secret.as_ref().map(|x| x.expose_secret()),
        Some("s")
    );
    assert!(b.delete_tokens("shared").unwrap());
    assert!(a.load_tokens("shared").unwrap().is_none());
}

/// 8 threads each add 1 to a counter kept in the refresh token, 25 times, with load + CAS and a
/// retry on conflict: no update may be lost, and every version handed out is unique.
fn concurrent_cas(_: &Backend, o: &Opened) {
    let s = o.store.clone();
    s.save_tokens(&rec("c", "0"), 0).unwrap().unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (s, barrier) = (s.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut won = vec![];
                let mut conflicts = 0;
                while won.len() < 25 {
                    let cur = s.load_tokens("c").unwrap().unwrap();
                    let n: u64 = cur
                        .secrets
                        .refresh_token
                        .as_deref()
                        .unwrap()
                        .parse()
                        .unwrap();
                    match s
                        .save_tokens(&rec("c", &(n + 1).to_string()), cur.version)
                        .unwrap()
                    {
                        Some(v) => won.push(v),
                        None => conflicts += 1,
                    }
                }
                (won, conflicts)
            })
        })
        .collect();
    let mut versions = vec![];
    let mut conflicts = 0;
    for h in handles {
        let (w, c) = h.join().unwrap();
        versions.extend(w);
        conflicts += c;
    }
    assert_eq!(
        rt_of(s.as_ref(), "c").as_deref(),
        Some("200"),
        "no lost update"
    );
    let n = versions.len();
    versions.sort();
    versions.dedup();
    assert_eq!(versions.len(), n, "every version is unique");
    println!("concurrent CAS: 200 updates by 8 threads, {conflicts} conflicts retried");
}

/// 16 threads ask for one lease at the same moment, 20 times: exactly one gets it each time.
fn lease_race(_: &Backend, o: &Opened) {
    for round in 0..20 {
        let barrier = Arc::new(Barrier::new(16));
        let account = format!("race{round}");
        let winners: usize = (0..16)
            .map(|i| {
                let (s, barrier, account) = (o.store.clone(), barrier.clone(), account.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    s.try_lease(&account, &format!("holder{i}"), secs(30))
                        .unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap() as usize)
            .sum();
        assert_eq!(winners, 1, "round {round}: exactly one holder");
    }
}

/// Client-wide settings: absent, written, replaced, seen by a second handle, removed; a removal
/// of what is not there is no error.
fn settings(_: &Backend, o: &Opened) {
    let s = o.store.as_ref();
    assert!(s.get_setting("proxy").unwrap().is_none(), "none at first");
    s.put_setting("proxy", Some(b"http://p1:3128")).unwrap();
    assert_eq!(
        s.get_setting("proxy").unwrap().as_deref().map(|v| &v[..]),
        Some(&b"http://p1:3128"[..])
    );
    s.put_setting("proxy", Some(b"socks5h://p2:1080")).unwrap();
    assert_eq!(
        o.other
            .get_setting("proxy")
            .unwrap()
            .as_deref()
            .map(|v| &v[..]),
        Some(&b"socks5h://p2:1080"[..]),
        "the second handle sees the replacement"
    );
    assert!(
        s.get_setting("other").unwrap().is_none(),
        "settings are by name"
    );
    s.put_setting("proxy", None).unwrap();
    assert!(o.other.get_setting("proxy").unwrap().is_none(), "removed");
    s.put_setting("proxy", None).unwrap();
}

// ----- secrets, the client ------------------------------------------------------------------------

/// Refresh and access tokens and client secrets are not in what the backend keeps, neither as
/// text nor hex-encoded (as a database dump shows binary columns).
fn no_secret_in_clear(_: &Backend, o: &Opened) {
    let s = o.store.as_ref();
    let mut r = rec("a", "0.AUoA-refresh-token-that-must-not-leak-9f8e7d");
    r.secrets.access_token = Some("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.access-token-body".into());
    s.save_tokens(&r, 0).unwrap().unwrap();
    s.put_registration(&registration(
        serde_json::json!({"id": "r", "provider": "microsoft",
        "client_id": "c", "client_secret": "client-secret-that-must-not-leak"}),
    ))
    .unwrap();
    s.try_lease("a", "p1", secs(30)).unwrap();
    s.put_setting(
        "proxy",
        Some(br#"{"url":"http://proxy.corp:3128","username":"svc","password":"proxy-password-that-must-not-leak"}"#),
    )
    .unwrap();
    let raw = (o.raw)();
    assert!(!raw.is_empty(), "the backend keeps something");
    let raw_text = String::from_utf8_lossy(&raw).to_lowercase();
    for secret in [
        "0.AUoA-refresh-token-that-must-not-leak",
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9",
        "access-token-body",
        "client-secret-that-must-not-leak",
        "proxy-password-that-must-not-leak",
        "proxy.corp:3128",
    ] {
        assert!(
            !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} in clear"
        );
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(!raw_text.contains(&hex), "{secret} in clear (hex)");
    }
}

/// A [`Client`] over the store: settings through its JSON calls, the status of an account that
/// was never connected, removal in the right order.
fn through_a_client(_: &Backend, o: &Opened) {
    let mut options = ClientOptions::new("unused-by-a-given-store.db");
    options.http.no_proxy = true;
    let c = Client::with_store(o.store.clone(), options).expect("a client over the store");
    let reg = c
        .put_registration_json(
            r#"{"id":"svc","provider":"microsoft","tenant":"organizations","client_id":"c","client_secret":"client-secret-value"}"#,
        )
        .expect("registration");
    assert_eq!(reg.id, "svc");
    let listed = c.registrations().unwrap();
    assert!(listed.iter().any(|r| r.id == "svc" && r.has_client_secret));
    assert!(!serde_json::to_string(&listed)
        .unwrap()
        .contains("client-secret-value"));
    let e = c
        .put_account_json(r#"{"id":"x","mailbox":"x@example.test","registration":"missing"}"#)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    c.put_account_json(r#"{"id":"x","mailbox":"x@example.test","registration":"svc"}"#)
        .expect("account");
    assert_eq!(c.accounts().unwrap().len(), 1);
    assert!(
        o.other.get_account("x").unwrap().is_some(),
        "written to the store"
    );
    assert_eq!(
        c.status("x").unwrap().state,
        mailconnect_core::AccountState::NotConnected
    );
    assert_eq!(
        c.remove_registration("svc").unwrap_err().kind(),
        ErrorKind::State
    );
    c.remove_account("x").unwrap();
    assert_eq!(
        c.remove_account("x").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    c.remove_registration("svc").unwrap();
    assert!(c.registrations().unwrap().is_empty());
}
