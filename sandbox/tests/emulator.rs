//! The emulator over real HTTP: metadata, every grant, the sign-in pages through the scripted
//! browser, faults, introspection, the control API and the `mc-emulator` binary.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mailconnect_sandbox::testing::{claims, get_json, http, pkce, post_token, script, REDIRECT};
use mailconnect_sandbox::*;
use serde_json::Value;

const TENANT: &str = EXAMPLE_TENANT_ID;
const EXO: &str = "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/POP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access openid profile email";

async fn start() -> Emulator {
    start_with(|_| {}).await
}

async fn start_with(tweak: impl FnOnce(&mut EmulatorConfig)) -> Emulator {
    let mut c = EmulatorConfig::sandbox();
    c.tokens.device_poll_interval_secs = 1;
    tweak(&mut c);
    Emulator::start(c).await.expect("emulator starts")
}

/// The authorize URL for `client` asking for Exchange's scopes (state `st-123`, nonce `n-456`).
fn authorize_url(emu: &Emulator, tenant: &str, client: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![("scope", EXO), ("state", "st-123"), ("nonce", "n-456")];
    params.extend_from_slice(extra);
    testing::authorize_url(emu, tenant, client, &params)
}

fn assert_aad_error(body: &Value, error: &str, code: u64) {
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], serde_json::json!([code]), "{body}");
    let d = body["error_description"].as_str().unwrap();
    assert!(d.starts_with(&format!("AADSTS{code}: ")), "{d}");
    assert!(
        d.contains("Trace ID: ") && d.contains("Correlation ID: ") && d.contains("Timestamp: "),
        "{d}"
    );
    assert!(uuid::Uuid::parse_str(body["trace_id"].as_str().unwrap()).is_ok());
    assert!(uuid::Uuid::parse_str(body["correlation_id"].as_str().unwrap()).is_ok());
    let ts = body["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 20, "{ts}");
    assert!(ts.ends_with('Z') && &ts[10..11] == " ");
    assert!(body["error_uri"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/error?code={code}")));
}

/// Sign in (as `user`, in a fresh browser) and redeem the code with PKCE; returns the token response.
async fn tokens_for(emu: &Emulator, user: &str) -> Value {
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        emu,
        "organizations",
        DESKTOP_APP_ID,
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", user),
        ],
    );
    let out = ScriptedBrowser::new()
        .sign_in(&url, &script(user))
        .await
        .unwrap();
    let code = out
        .redirect_param("code")
        .unwrap_or_else(|| panic!("{out:?}"));
    let (s, body) = post_token(
        emu,
        "organizations",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", DESKTOP_APP_ID),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("scope", EXO),
        ],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    body
}

async fn introspect(emu: &Emulator, token: &str, user: Option<&str>) -> Value {
    let mut url = emu.introspection_url();
    if let Some(u) = user {
        url = format!("{url}?user={u}");
    }
    let r = http()
        .post(url)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn discovery_and_jwks_have_microsofts_shape() {
    let emu = start().await;
    let c = http();
    let doc = get_json(format!(
        "{}/{TENANT}/v2.0/.well-known/openid-configuration",
        emu.base_url()
    ))
    .await;
    assert_eq!(doc["issuer"], format!("{}/{TENANT}/v2.0", emu.base_url()));
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{}/{TENANT}/oauth2/v2.0/authorize", emu.base_url())
    );
    assert!(doc["device_authorization_endpoint"]
        .as_str()
        .unwrap()
        .ends_with("/oauth2/v2.0/devicecode"));
    assert!(doc["end_session_endpoint"]
        .as_str()
        .unwrap()
        .ends_with("/oauth2/v2.0/logout"));
    assert!(
        doc.get("revocation_endpoint").is_none(),
        "Microsoft has no revocation endpoint"
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    // Domain segments resolve to the tenant; common keeps the {tenantid} placeholder.
    let by_domain = get_json(format!(
        "{}/example.test/v2.0/.well-known/openid-configuration",
        emu.base_url()
    ))
    .await;
    assert_eq!(by_domain["issuer"], doc["issuer"]);
    let common = get_json(format!(
        "{}/common/v2.0/.well-known/openid-configuration",
        emu.base_url()
    ))
    .await;
    assert_eq!(
        common["issuer"],
        format!("{}/{{tenantid}}/v2.0", emu.base_url())
    );
    assert_eq!(
        common["token_endpoint"],
        format!("{}/common/oauth2/v2.0/token", emu.base_url())
    );
    let consumers = get_json(format!(
        "{}/consumers/v2.0/.well-known/openid-configuration",
        emu.base_url()
    ))
    .await;
    assert_eq!(
        consumers["issuer"],
        format!("{}/{CONSUMER_TENANT_ID}/v2.0", emu.base_url())
    );
    let rfc8414 = get_json(format!(
        "{}/{TENANT}/.well-known/oauth-authorization-server",
        emu.base_url()
    ))
    .await;
    assert_eq!(
        rfc8414["code_challenge_methods_supported"],
        serde_json::json!(["S256", "plain"])
    );
    // Unknown tenant: Microsoft's JSON error.
    let r = c
        .get(format!(
            "{}/nosuch.test/v2.0/.well-known/openid-configuration",
            emu.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_aad_error(&r.json().await.unwrap(), "invalid_tenant", 90002);

    let jwks = get_json(doc["jwks_uri"].as_str().unwrap()).await;
    let k = &jwks["keys"][0];
    assert_eq!(k["kty"], "RSA");
    assert_eq!(k["use"], "sig");
    assert_eq!(k["e"], "AQAB");
    assert_eq!(k["kid"], k["x5t"]);
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(k["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256,
        "2048-bit modulus"
    );
}

#[tokio::test]
async fn signed_tokens_verify_with_the_published_key_and_carry_microsofts_claims() {
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    let emu = start().await;
    let t = tokens_for(&emu, "alice@example.test").await;
    let jwks = get_json(format!("{}/{TENANT}/discovery/v2.0/keys", emu.base_url())).await;
    let k = &jwks["keys"][0];
    let n = rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(k["n"].as_str().unwrap()).unwrap());
    let e = rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(k["e"].as_str().unwrap()).unwrap());
    let key = VerifyingKey::<rsa::sha2::Sha256>::new(rsa::RsaPublicKey::new(n, e).unwrap());
    for name in ["access_token", "id_token"] {
        let jwt = t[name].as_str().unwrap();
        let (signed, sig) = jwt.rsplit_once('.').unwrap();
        let sig = Signature::try_from(URL_SAFE_NO_PAD.decode(sig).unwrap().as_slice()).unwrap();
        key.verify(signed.as_bytes(), &sig)
            .unwrap_or_else(|e| panic!("{name} does not verify: {e}"));
        let mut tampered = signed.to_string();
        tampered.push('A');
        assert!(key.verify(tampered.as_bytes(), &sig).is_err());
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(jwt.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], k["kid"]);
        assert_eq!(header["x5t"], k["x5t"]);
    }
    let at = claims(t["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], "https://outlook.office.com");
    assert_eq!(at["iss"], format!("https://sts.windows.net/{TENANT}/"));
    assert_eq!(at["ver"], "1.0");
    assert_eq!(
        at["scp"],
        "IMAP.AccessAsUser.All POP.AccessAsUser.All SMTP.Send"
    );
    assert_eq!(at["upn"], "alice@example.test");
    assert_eq!(at["unique_name"], "alice@example.test");
    assert_eq!(at["appid"], DESKTOP_APP_ID);
    assert_eq!(at["app_displayname"], "mailconnect desktop");
    assert_eq!(at["tid"], TENANT);
    let len = t["access_token"].as_str().unwrap().len();
    assert!((2150..=2300).contains(&len), "access token size {len}");
    let id = claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["ver"], "2.0");
    assert_eq!(id["aud"], DESKTOP_APP_ID);
    assert_eq!(id["iss"], format!("{}/{TENANT}/v2.0", emu.base_url()));
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["preferred_username"], "alice@example.test");
    assert_eq!(id["email"], "alice@example.test");
    assert_eq!(id["oid"], at["oid"]);
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 3900);
    assert_eq!(t["ext_expires_in"], 3900);
    assert!(t["scope"]
        .as_str()
        .unwrap()
        .contains("https://outlook.office.com/IMAP.AccessAsUser.All"));
    let rt = t["refresh_token"].as_str().unwrap();
    assert!(
        rt.starts_with("1.A") && (1000..1200).contains(&rt.len()),
        "{}",
        rt.len()
    );
}

#[tokio::test]
async fn picker_password_mfa_and_consent_pages_lead_to_a_code_redeemed_with_pkce() {
    let emu = start_with(|c| {
        for u in &mut c.users {
            u.consented.clear();
        }
    })
    .await;
    let browser = ScriptedBrowser::new();
    // First sign-in: username, password, consent.
    let out = browser
        .sign_in(
            &authorize_url(&emu, "common", DESKTOP_APP_ID, &[]),
            &script("alice@example.test"),
        )
        .await
        .unwrap();
    assert_eq!(out.signed_in_as.as_deref(), Some("alice@example.test"));
    assert_eq!(out.redirect_param("state").as_deref(), Some("st-123"));
    let views_before = emu.stats().page_views;
    // select_account shows the picker with alice and "Use another account"; carol needs MFA and consent.
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &emu,
        "common",
        DESKTOP_APP_ID,
        &[
            ("prompt", "select_account"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let first = browser.fetch(&url, None).await.unwrap();
    assert!(
        first.body.contains("Pick an account")
            && first.body.contains("alice@example.test")
            && first.body.contains("Use another account")
    );
    let out = browser
        .sign_in(&url, &script("carol@example.test"))
        .await
        .unwrap();
    assert_eq!(
        out.signed_in_as.as_deref(),
        Some("carol@example.test"),
        "{out:?}"
    );
    assert!(
        emu.stats().page_views >= views_before + 5,
        "picker, username, password, MFA, consent"
    );
    let code = out.redirect_param("code").unwrap();
    assert!(out
        .redirect_url
        .as_ref()
        .unwrap()
        .as_str()
        .starts_with(REDIRECT));
    let (s, body) = post_token(
        &emu,
        "common",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", DESKTOP_APP_ID),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!(at["upn"], "carol@example.test");
    assert_eq!(at["amr"], serde_json::json!(["pwd", "mfa"]));
    // A wrong MFA code stops on the MFA page with an inline error.
    let mut bad = script("carol@example.test");
    bad.mfa_code = Some("000000".into());
    let out = ScriptedBrowser::new()
        .sign_in(&authorize_url(&emu, "common", DESKTOP_APP_ID, &[]), &bad)
        .await
        .unwrap();
    assert!(out.error_page.unwrap().contains("verification code"));
    // A wrong password likewise.
    let mut bad = script("bob@example.test");
    bad.password = "nope".into();
    let out = ScriptedBrowser::new()
        .sign_in(&authorize_url(&emu, "common", DESKTOP_APP_ID, &[]), &bad)
        .await
        .unwrap();
    assert!(out.error_page.unwrap().contains("password is incorrect"));
}

#[tokio::test]
async fn pkce_mismatch_fails_and_a_code_is_single_use() {
    let emu = start().await;
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &emu,
        TENANT,
        DESKTOP_APP_ID,
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let out = ScriptedBrowser::new()
        .sign_in(&url, &script("bob@example.test"))
        .await
        .unwrap();
    let code = out.redirect_param("code").unwrap();
    let base = [
        ("grant_type", "authorization_code"),
        ("client_id", DESKTOP_APP_ID),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let mut wrong = base.to_vec();
    wrong.push((
        "code_verifier",
        "not-the-verifier-not-the-verifier-not-the-verifier",
    ));
    let (s, body) = post_token(&emu, TENANT, &wrong).await;
    assert_eq!(s, 400);
    assert_aad_error(&body, "invalid_grant", 501481);
    let mut other_redirect = base.to_vec();
    other_redirect[3] = ("redirect_uri", "http://localhost:9999/");
    other_redirect.push(("code_verifier", &verifier));
    let (_, body) = post_token(&emu, TENANT, &other_redirect).await;
    assert_aad_error(&body, "invalid_grant", 500112);
    let mut good = base.to_vec();
    good.push(("code_verifier", &verifier));
    let (s, body) = post_token(&emu, TENANT, &good).await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = post_token(&emu, TENANT, &good).await;
    assert_eq!(s, 400);
    assert_aad_error(&body, "invalid_grant", 54005);
}

#[tokio::test]
async fn refresh_rotates_and_old_tokens_stay_valid_unless_a_grace_is_set() {
    let emu = start().await;
    let t = tokens_for(&emu, "alice@example.test").await;
    let rt0 = t["refresh_token"].as_str().unwrap().to_string();
    let refresh = |rt: String, scope: Option<&'static str>| {
        let emu = &emu;
        async move {
            let mut f = vec![
                ("grant_type", "refresh_token".to_string()),
                ("client_id", DESKTOP_APP_ID.to_string()),
                ("refresh_token", rt),
            ];
            if let Some(s) = scope {
                f.push(("scope", s.to_string()));
            }
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_token(emu, "organizations", &f).await
        }
    };
    let (s, r1) = refresh(rt0.clone(), Some(EXO)).await;
    assert_eq!(s, 200, "{r1}");
    let rt1 = r1["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt0, "a new refresh token every time");
    // Missing scope is accepted (Microsoft marks it optional).
    let (s, r2) = refresh(rt0.clone(), None).await;
    assert_eq!(
        s, 200,
        "the old refresh token is not revoked by rotation: {r2}"
    );
    // The same refresh token can mint a Graph token; scopes of two resources give the first one's.
    let (s, g) = refresh(rt1.clone(), Some("User.Read offline_access")).await;
    assert_eq!(s, 200, "{g}");
    assert_eq!(
        claims(g["access_token"].as_str().unwrap())["aud"],
        "https://graph.microsoft.com"
    );
    assert_eq!(
        emu.stats()
            .refreshes_for(DESKTOP_APP_ID, "alice@example.test"),
        3
    );
    // With a reuse grace of 0 s the old token dies after its first use.
    let s2 = TokenSettings {
        refresh_token_reuse_grace_secs: Some(0),
        ..TokenSettings::default()
    };
    emu.set_token_settings(s2);
    let (s, r3) = refresh(rt1.clone(), None).await;
    assert_eq!(s, 200, "{r3}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, e) = refresh(rt1, None).await;
    assert_eq!(s, 400);
    assert_aad_error(&e, "invalid_grant", 70008);
    // Refusing superseded tokens: an old token works while its successor is unused (the answer
    // that carried the successor may have been lost), and is refused once the successor was used.
    emu.set_token_settings(TokenSettings {
        refuse_superseded_refresh_tokens: true,
        ..TokenSettings::default()
    });
    let old = r3["refresh_token"].as_str().unwrap().to_string();
    let (s, lost) = refresh(old.clone(), None).await;
    assert_eq!(s, 200, "{lost}");
    let (s, again) = refresh(old.clone(), None).await;
    assert_eq!(s, 200, "the successor was never used: {again}");
    let (s, used) = refresh(again["refresh_token"].as_str().unwrap().to_string(), None).await;
    assert_eq!(s, 200, "{used}");
    let (s, e) = refresh(old.clone(), None).await;
    assert_eq!(s, 400, "the successor was used: {e}");
    assert_aad_error(&e, "invalid_grant", 70008);
    emu.set_token_settings(TokenSettings::default());
    // A password change revokes every refresh token issued before it.
    emu.revoke_user_refresh_tokens("alice@example.test");
    let (_, e) = refresh(r3["refresh_token"].as_str().unwrap().to_string(), None).await;
    assert_aad_error(&e, "invalid_grant", 50173);
    assert_eq!(e["suberror"], "bad_token");
    // Mixing .default with named scopes is refused.
    let t = tokens_for(&emu, "bob@example.test").await;
    let (_, e) = refresh(
        t["refresh_token"].as_str().unwrap().to_string(),
        Some("https://outlook.office.com/.default https://outlook.office.com/SMTP.Send"),
    )
    .await;
    assert_aad_error(&e, "invalid_scope", 70011);
}

async fn device_start(emu: &Emulator, client: &str) -> Value {
    let tenant = if client == WEB_APP_ID {
        TENANT
    } else {
        "organizations"
    };
    let r = http()
        .post(format!(
            "{}/{tenant}/oauth2/v2.0/devicecode",
            emu.base_url()
        ))
        .form(&[("client_id", client), ("scope", EXO)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn device_poll(emu: &Emulator, client: &str, dc: &str) -> (u16, Value) {
    let tenant = if client == WEB_APP_ID {
        TENANT
    } else {
        "organizations"
    };
    post_token(
        emu,
        tenant,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", client),
            ("device_code", dc),
        ],
    )
    .await
}

#[tokio::test]
async fn device_code_pending_slow_down_then_approved_declined_and_expired() {
    let emu = start_with(|c| c.tokens.device_code_lifetime_secs = 3).await;
    let d = device_start(&emu, DESKTOP_APP_ID).await;
    let code = d["user_code"].as_str().unwrap();
    assert_eq!(code.len(), 9);
    assert!(code
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
    assert_eq!(
        d["verification_uri"],
        format!("{}/devicelogin", emu.base_url())
    );
    assert_eq!(d["expires_in"], 3);
    assert_eq!(d["interval"], 1);
    assert_eq!(d["message"], format!("To sign in, use a web browser to open the page {}/devicelogin and enter the code {code} to authenticate.", emu.base_url()));
    let dc = d["device_code"].as_str().unwrap();
    let (s, e) = device_poll(&emu, DESKTOP_APP_ID, dc).await;
    assert_eq!(s, 400);
    assert_aad_error(&e, "authorization_pending", 70016);
    let (_, e) = device_poll(&emu, DESKTOP_APP_ID, dc).await;
    assert_eq!(e["error"], "slow_down", "{e}");
    let out = ScriptedBrowser::new()
        .complete_device_code(
            d["verification_uri"].as_str().unwrap(),
            code,
            &script("bob@example.test"),
        )
        .await
        .unwrap();
    assert!(out
        .final_page
        .unwrap()
        .contains("You have signed in to the mailconnect desktop application on your device"));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (s, t) = device_poll(&emu, DESKTOP_APP_ID, dc).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(
        claims(t["access_token"].as_str().unwrap())["upn"],
        "bob@example.test"
    );
    assert!(emu.stats().device_polls >= 3);

    // Declined on "Are you trying to sign in?".
    let d = device_start(&emu, DESKTOP_APP_ID).await;
    let mut no = script("bob@example.test");
    no.consent = Consent::Decline;
    let out = ScriptedBrowser::new()
        .complete_device_code(
            d["verification_uri"].as_str().unwrap(),
            d["user_code"].as_str().unwrap(),
            &no,
        )
        .await
        .unwrap();
    assert!(out.final_page.unwrap().contains("declined"));
    let (_, e) = device_poll(&emu, DESKTOP_APP_ID, d["device_code"].as_str().unwrap()).await;
    assert_eq!(e["error"], "authorization_declined");

    // Expired; and a wrong code is refused on the page; an unknown device code is bad_verification_code.
    let d = device_start(&emu, DESKTOP_APP_ID).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (_, e) = device_poll(&emu, DESKTOP_APP_ID, d["device_code"].as_str().unwrap()).await;
    assert_aad_error(&e, "expired_token", 70019);
    let out = ScriptedBrowser::new()
        .complete_device_code(
            d["verification_uri"].as_str().unwrap(),
            d["user_code"].as_str().unwrap(),
            &script("bob@example.test"),
        )
        .await
        .unwrap();
    assert!(out.error_page.unwrap().contains("code didn't work"));
    let (_, e) = device_poll(&emu, DESKTOP_APP_ID, "nonsense").await;
    assert_aad_error(&e, "bad_verification_code", 70018);

    // The web-registered app has no "Allow public client flows".
    let d = device_start(&emu, WEB_APP_ID).await;
    let (s, e) = device_poll(&emu, WEB_APP_ID, d["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 401);
    assert_aad_error(&e, "invalid_client", 7000218);
}

#[tokio::test]
async fn client_credentials_with_good_bad_and_expired_secrets() {
    let emu = start().await;
    let emu_ref = &emu;
    let cc = move |secret: &'static str, scope: &'static str, tenant: &'static str| {
        testing::client_credentials(emu_ref, tenant, secret, scope)
    };
    let (s, t) = cc(
        SERVICE_APP_SECRET,
        "https://outlook.office365.com/.default",
        TENANT,
    )
    .await;
    assert_eq!(s, 200, "{t}");
    assert!(t.get("refresh_token").is_none() && t.get("id_token").is_none());
    let c = claims(t["access_token"].as_str().unwrap());
    assert_eq!(
        c["roles"],
        serde_json::json!(["IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp"])
    );
    assert_eq!(c["aud"], "https://outlook.office365.com");
    assert_eq!(c["idtyp"], "app");
    let (s, e) = cc(
        "the-secret-id",
        "https://outlook.office365.com/.default",
        TENANT,
    )
    .await;
    assert_eq!(s, 401);
    assert_aad_error(&e, "invalid_client", 7000215);
    let (_, e) = cc(
        SERVICE_APP_SECRET,
        "https://outlook.office365.com/IMAP.AccessAsApp",
        TENANT,
    )
    .await;
    assert_aad_error(&e, "invalid_scope", 1002012);
    let (_, e) = cc(
        SERVICE_APP_SECRET,
        "https://outlook.office365.com/.default",
        "common",
    )
    .await;
    assert_aad_error(&e, "unsupported_grant_type", 9001023);
    // HTTP Basic works too.
    let r = http()
        .post(format!("{}/{TENANT}/oauth2/v2.0/token", emu.base_url()))
        .basic_auth(SERVICE_APP_ID, Some(SERVICE_APP_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://outlook.office.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Missing secret, then an expired one.
    let (s, e) = post_token(
        &emu,
        TENANT,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SERVICE_APP_ID),
            ("scope", "https://outlook.office365.com/.default"),
        ],
    )
    .await;
    assert_eq!(s, 401);
    assert_aad_error(&e, "invalid_client", 7000218);
    let mut app = emu
        .config()
        .apps
        .into_iter()
        .find(|a| a.client_id == SERVICE_APP_ID)
        .unwrap();
    app.secrets[0].expires_at = Some(1_600_000_000);
    emu.put_app(app);
    let (_, e) = cc(
        SERVICE_APP_SECRET,
        "https://outlook.office365.com/.default",
        TENANT,
    )
    .await;
    assert_aad_error(&e, "invalid_client", 7000222);
}

#[tokio::test]
async fn public_and_web_registered_apps_follow_the_platform_rules() {
    let emu = start().await;
    // A public client that sends a secret.
    let t = tokens_for(&emu, "bob@example.test").await;
    let (s, e) = post_token(
        &emu,
        "organizations",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", DESKTOP_APP_ID),
            ("client_secret", "x"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(s, 401);
    assert_aad_error(&e, "invalid_client", 700025);
    // The web-registered app: the code redemption needs a secret (the classic misconfiguration).
    let url = authorize_url(&emu, TENANT, WEB_APP_ID, &[]);
    let out = ScriptedBrowser::new()
        .sign_in(&url, &script("bob@example.test"))
        .await
        .unwrap();
    let code = out
        .redirect_param("code")
        .unwrap_or_else(|| panic!("{out:?}"));
    let (s, e) = post_token(
        &emu,
        TENANT,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", WEB_APP_ID),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(s, 401);
    assert_aad_error(&e, "invalid_client", 7000218);
}

#[tokio::test]
async fn each_fault_has_microsofts_exact_shape() {
    let emu = start().await;
    let t = tokens_for(&emu, "alice@example.test").await;
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", DESKTOP_APP_ID),
        ("refresh_token", rt.as_str()),
    ];
    let once = |f: Fault| FaultRule {
        times: Some(1),
        endpoint: Some(Endpoint::Token),
        ..FaultRule::always(f)
    };
    for (fault, status, error, code, sub) in [
        (
            Fault::ConsentRequired,
            400,
            "invalid_grant",
            65001,
            Some("consent_required"),
        ),
        (
            Fault::MfaRequired,
            400,
            "invalid_grant",
            50076,
            Some("basic_action"),
        ),
        (
            Fault::ConditionalAccessBlocked,
            400,
            "invalid_grant",
            53003,
            Some("message_only"),
        ),
        (
            Fault::RefreshTokenExpired,
            400,
            "invalid_grant",
            700082,
            None,
        ),
        (
            Fault::RefreshTokenRevoked,
            400,
            "invalid_grant",
            50173,
            Some("bad_token"),
        ),
        (Fault::AppNotFound, 400, "unauthorized_client", 700016, None),
        (
            Fault::InvalidClientSecret,
            401,
            "invalid_client",
            7000215,
            None,
        ),
        (
            Fault::ClientSecretExpired,
            401,
            "invalid_client",
            7000222,
            None,
        ),
        (Fault::ServerError, 500, "server_error", 50000, None),
    ] {
        emu.add_fault(once(fault.clone()));
        let (s, e) = post_token(&emu, "organizations", &form).await;
        assert_eq!(s, status, "{fault:?}: {e}");
        assert_aad_error(&e, error, code);
        assert_eq!(e["suberror"].as_str(), sub, "{fault:?}");
    }
    assert!(emu.faults().is_empty(), "times=1 rules are used up");
    // Throttling: 429 + Retry-After.
    emu.add_fault(once(Fault::Throttled {
        retry_after_secs: 7,
    }));
    let r = http()
        .post(format!(
            "{}/organizations/oauth2/v2.0/token",
            emu.base_url()
        ))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_aad_error(&r.json().await.unwrap(), "temporarily_unavailable", 90055);
    // 503 from a load balancer and 403 from a proxy: HTML.
    for (f, status, text) in [
        (Fault::ServiceUnavailable, 503, "Service Unavailable"),
        (Fault::ProxyHtmlPage, 403, "web gateway"),
    ] {
        emu.add_fault(once(f));
        let r = http()
            .post(format!(
                "{}/organizations/oauth2/v2.0/token",
                emu.base_url()
            ))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(r.text().await.unwrap().contains(text));
    }
    // Truncated JSON: 200 with half a body.
    emu.add_fault(once(Fault::TruncatedJson));
    let (s, body) = post_token(&emu, "organizations", &form).await;
    assert_eq!(s, 200);
    let text = body.as_str().expect("not parseable JSON");
    assert!(text.starts_with('{') && serde_json::from_str::<Value>(text).is_err());
    // Dropped connection: no response at all.
    emu.add_fault(once(Fault::DropConnection));
    let e = http()
        .post(format!(
            "{}/organizations/oauth2/v2.0/token",
            emu.base_url()
        ))
        .form(&form)
        .send()
        .await
        .unwrap_err();
    assert!(!e.is_status(), "{e}");
    // Slow, then answered normally; the filters decide which requests are hit.
    emu.add_fault(FaultRule {
        grant_type: Some("refresh_token".into()),
        ..once(Fault::Slow { millis: 400 })
    });
    emu.add_fault(FaultRule {
        user: Some("bob@example.test".into()),
        ..FaultRule::always(Fault::ServerError)
    });
    let started = Instant::now();
    let (s, _) = post_token(&emu, "organizations", &form).await;
    assert_eq!(s, 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
    emu.clear_faults();
    assert!(emu.stats().faults_applied >= 14);
    // At authorize: consent_required shows "Need admin approval"; the user can only go back.
    emu.add_fault(FaultRule {
        endpoint: Some(Endpoint::Authorize),
        ..FaultRule::always(Fault::ConsentRequired)
    });
    let out = ScriptedBrowser::new()
        .sign_in(
            &authorize_url(&emu, TENANT, DESKTOP_APP_ID, &[]),
            &script("bob@example.test"),
        )
        .await
        .unwrap();
    assert_eq!(
        out.redirect_param("error").as_deref(),
        Some("access_denied")
    );
    assert!(out
        .redirect_param("error_description")
        .unwrap()
        .starts_with("AADSTS65004"));
    emu.clear_faults();
    // conditional_access_blocked at authorize.
    emu.add_fault(FaultRule {
        endpoint: Some(Endpoint::Authorize),
        ..FaultRule::always(Fault::ConditionalAccessBlocked)
    });
    let out = ScriptedBrowser::new()
        .sign_in(
            &authorize_url(&emu, TENANT, DESKTOP_APP_ID, &[]),
            &script("bob@example.test"),
        )
        .await
        .unwrap();
    assert_eq!(
        out.redirect_param("error").as_deref(),
        Some("access_denied")
    );
    assert!(out
        .redirect_param("error_description")
        .unwrap()
        .starts_with("AADSTS53003"));
    assert_eq!(out.redirect_param("state").as_deref(), Some("st-123"));
}

#[tokio::test]
async fn a_signed_in_browser_session_signs_the_same_account_in_silently() {
    let emu = start().await;
    let browser = ScriptedBrowser::new();
    let out = browser
        .sign_in(
            &authorize_url(&emu, "organizations", DESKTOP_APP_ID, &[]),
            &script("admin@example.test"),
        )
        .await
        .unwrap();
    assert_eq!(out.signed_in_as.as_deref(), Some("admin@example.test"));
    // The trap: no prompt, no login_hint -> the session's account, without any page.
    let views = emu.stats().page_views;
    let out = browser
        .sign_in(
            &authorize_url(&emu, "organizations", DESKTOP_APP_ID, &[]),
            &script("bob@example.test"),
        )
        .await
        .unwrap();
    assert_eq!(
        out.signed_in_as.as_deref(),
        Some("admin@example.test"),
        "silent SSO as the session's account"
    );
    assert!(out.redirect_param("code").is_some());
    assert_eq!(emu.stats().page_views, views, "no page was shown");
    // login_hint naming another user goes to that user's password page.
    let out = browser
        .sign_in(
            &authorize_url(
                &emu,
                "organizations",
                DESKTOP_APP_ID,
                &[("login_hint", "bob@example.test")],
            ),
            &script("bob@example.test"),
        )
        .await
        .unwrap();
    assert_eq!(out.signed_in_as.as_deref(), Some("bob@example.test"));
    // Two accounts in the session: no prompt -> picker; prompt=none without hint -> interaction_required.
    let page = browser
        .fetch(
            &authorize_url(&emu, "organizations", DESKTOP_APP_ID, &[]),
            None,
        )
        .await
        .unwrap();
    assert!(page.body.contains("pickerForm"));
    let out = browser
        .sign_in(
            &authorize_url(
                &emu,
                "organizations",
                DESKTOP_APP_ID,
                &[("prompt", "none"), ("login_hint", "bob@example.test")],
            ),
            &script("x"),
        )
        .await
        .unwrap();
    assert_eq!(out.signed_in_as.as_deref(), Some("bob@example.test"));
    // Logout ends the session: prompt=none now needs a login.
    let r = browser
        .fetch(
            &format!("{}/organizations/oauth2/v2.0/logout", emu.base_url()),
            None,
        )
        .await
        .unwrap();
    assert!(r.body.contains("signed out"));
    let out = browser
        .sign_in(
            &authorize_url(&emu, "organizations", DESKTOP_APP_ID, &[("prompt", "none")]),
            &script("x"),
        )
        .await
        .unwrap();
    assert_eq!(
        out.redirect_param("error").as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn request_errors_before_the_redirect_is_trusted_are_pages_and_after_it_redirects() {
    let emu = start().await;
    let b = ScriptedBrowser::new();
    let s = script("bob@example.test");
    // Redirect URI with another path: AADSTS50011 page, never a redirect.
    let url = authorize_url(&emu, TENANT, DESKTOP_APP_ID, &[])
        .replace("localhost%3A53123%2F", "localhost%3A53123%2Fcallback");
    let page = b.fetch(&url, None).await.unwrap();
    assert_eq!(page.status, 400);
    assert!(page.location.is_none());
    let out = b.sign_in(&url, &s).await.unwrap();
    assert!(
        out.error_page.as_deref().unwrap().contains("AADSTS50011"),
        "{out:?}"
    );
    // Any loopback port matches `http://localhost`; 127.0.0.1 is another host.
    let url = authorize_url(&emu, TENANT, DESKTOP_APP_ID, &[]).replace("localhost", "127.0.0.1");
    assert!(b
        .sign_in(&url, &s)
        .await
        .unwrap()
        .error_page
        .unwrap()
        .contains("AADSTS50011"));
    // Unknown app, single-tenant app via /common, work account via /consumers, personal via /organizations.
    let out = b
        .sign_in(
            &authorize_url(&emu, TENANT, "11111111-2222-3333-4444-555555555555", &[]),
            &s,
        )
        .await
        .unwrap();
    assert!(out.error_page.unwrap().contains("AADSTS700016"));
    let out = b
        .sign_in(&authorize_url(&emu, "common", WEB_APP_ID, &[]), &s)
        .await
        .unwrap();
    assert!(out.error_page.unwrap().contains("AADSTS50194"));
    let out = ScriptedBrowser::new()
        .sign_in(&authorize_url(&emu, "consumers", DESKTOP_APP_ID, &[]), &s)
        .await
        .unwrap();
    assert!(out.error_page.unwrap().contains("AADSTS50020"));
    let out = ScriptedBrowser::new()
        .sign_in(
            &authorize_url(&emu, "organizations", DESKTOP_APP_ID, &[]),
            &script("erin@outlook.test"),
        )
        .await
        .unwrap();
    assert!(out.error_page.unwrap().contains("AADSTS50020"));
    let out = ScriptedBrowser::new()
        .sign_in(
            &authorize_url(&emu, "consumers", DESKTOP_APP_ID, &[]),
            &script("erin@outlook.test"),
        )
        .await
        .unwrap();
    assert!(out.redirect_param("code").is_some(), "{out:?}");
    // The shared mailbox cannot sign in.
    let out = ScriptedBrowser::new()
        .sign_in(
            &authorize_url(&emu, TENANT, DESKTOP_APP_ID, &[]),
            &script("sales@example.test"),
        )
        .await
        .unwrap();
    assert!(out.error_page.unwrap().contains("AADSTS50057"));
    // After redirect validation: errors go back to the app with state.
    let url = authorize_url(&emu, TENANT, DESKTOP_APP_ID, &[])
        .replace("response_type=code", "response_type=token");
    let out = b.sign_in(&url, &s).await.unwrap();
    assert_eq!(
        out.redirect_param("error").as_deref(),
        Some("unsupported_response_type")
    );
    assert_eq!(out.redirect_param("state").as_deref(), Some("st-123"));
    assert!(out.redirect_param("error_uri").is_some());
    let url = authorize_url(&emu, TENANT, DESKTOP_APP_ID, &[]).replace("SMTP.Send", "SMTP.Sned");
    let out = b.sign_in(&url, &s).await.unwrap();
    assert!(out
        .redirect_param("error_description")
        .unwrap()
        .starts_with("AADSTS650053"));
}

#[tokio::test]
async fn declined_consent_redirects_access_denied_and_form_post_is_delivered() {
    let emu = start_with(|c| {
        for u in &mut c.users {
            u.consented.clear();
        }
    })
    .await;
    let mut no = script("bob@example.test");
    no.consent = Consent::Decline;
    let out = ScriptedBrowser::new()
        .sign_in(&authorize_url(&emu, TENANT, DESKTOP_APP_ID, &[]), &no)
        .await
        .unwrap();
    assert_eq!(
        out.redirect_param("error").as_deref(),
        Some("access_denied")
    );
    assert!(out
        .redirect_param("error_description")
        .unwrap()
        .starts_with("AADSTS65004: User declined to consent to access the app."));

    // A loopback listener receives the form_post.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 16384];
        let mut n = 0;
        loop {
            let r = s.read(&mut buf[n..]).await.unwrap();
            n += r;
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if let Some(h) = text.find("\r\n\r\n") {
                let len: usize = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if n >= h + 4 + len || r == 0 {
                    break;
                }
            }
        }
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 23\r\nconnection: close\r\n\r\nYou can close this tab.").await.unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    });
    let redirect = format!("http://localhost:{port}/");
    let url = authorize_url(
        &emu,
        TENANT,
        DESKTOP_APP_ID,
        &[("response_mode", "form_post")],
    )
    .replace("localhost%3A53123", &format!("localhost%3A{port}"));
    let mut yes = script("alice@example.test");
    yes.deliver_redirect = true;
    let out = ScriptedBrowser::new().sign_in(&url, &yes).await.unwrap();
    assert_eq!(out.delivered, Some((200, "You can close this tab.".into())));
    assert!(out.redirect_url.unwrap().as_str().starts_with(&redirect));
    let request = got.await.unwrap();
    assert!(request.starts_with("POST / HTTP/1.1"), "{request}");
    assert!(request.contains("code=") && request.contains("state=st-123"));
}

#[tokio::test]
async fn introspection_knows_mailboxes_delegation_and_app_grants() {
    let emu = start().await;
    let alice = tokens_for(&emu, "alice@example.test").await;
    let at = alice["access_token"].as_str().unwrap();
    let r = introspect(&emu, at, None).await;
    assert_eq!(r["active"], true, "{r}");
    assert_eq!(r["username"], "alice@example.test");
    assert_eq!(r["client_id"], DESKTOP_APP_ID);
    assert_eq!(r["token_type"], "Bearer");
    assert_eq!(r["aud"], "https://outlook.office.com");
    assert!(r["scope"]
        .as_str()
        .unwrap()
        .contains("IMAP.AccessAsUser.All"));
    assert!(r["exp"].as_i64().unwrap() > 0 && r["sub"].is_string());
    // Shared mailbox: alice has FullAccess on sales; bob has not.
    let r = introspect(&emu, at, Some("sales@example.test")).await;
    assert_eq!(
        (r["active"].clone(), r["username"].clone()),
        (Value::Bool(true), "sales@example.test".into())
    );
    let bob = tokens_for(&emu, "bob@example.test").await;
    assert_eq!(
        introspect(
            &emu,
            bob["access_token"].as_str().unwrap(),
            Some("sales@example.test")
        )
        .await,
        serde_json::json!({"active": false})
    );
    // A Graph token is not a mail token; garbage is inactive; Bearer header works too.
    let (_, g) = post_token(
        &emu,
        "organizations",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", DESKTOP_APP_ID),
            ("refresh_token", alice["refresh_token"].as_str().unwrap()),
            ("scope", "User.Read"),
        ],
    )
    .await;
    assert_eq!(
        introspect(&emu, g["access_token"].as_str().unwrap(), None).await["active"],
        false
    );
    assert_eq!(
        introspect(&emu, "eyJhbGciOi.garbage.x", None).await["active"],
        false
    );
    let r: Value = http()
        .get(format!(
            "{}?user=alice@example.test",
            emu.introspection_url()
        ))
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["active"], true);
    // App-only: active for granted mailboxes named by `user`, never without it.
    let (_, app) = post_token(
        &emu,
        TENANT,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SERVICE_APP_ID),
            ("client_secret", SERVICE_APP_SECRET),
            ("scope", "https://outlook.office365.com/.default"),
        ],
    )
    .await;
    let app_at = app["access_token"].as_str().unwrap();
    assert_eq!(
        introspect(&emu, app_at, Some("sales@example.test")).await["username"],
        "sales@example.test"
    );
    assert_eq!(
        introspect(&emu, app_at, Some("alice@example.test")).await["active"],
        true
    );
    assert_eq!(
        introspect(&emu, app_at, Some("bob@example.test")).await["active"],
        false
    );
    assert_eq!(introspect(&emu, app_at, None).await["active"], false);
    // Revoked access tokens; expired ones.
    emu.revoke_user_access_tokens("alice@example.test");
    assert_eq!(introspect(&emu, at, None).await["active"], false);
    assert_eq!(
        introspect(&emu, bob["access_token"].as_str().unwrap(), None).await["active"],
        true
    );
    let s = TokenSettings {
        access_token_lifetime_secs: 1,
        ..TokenSettings::default()
    };
    emu.set_token_settings(s);
    let short = tokens_for(&emu, "bob@example.test").await;
    assert_eq!(short["expires_in"], 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        introspect(&emu, short["access_token"].as_str().unwrap(), None).await["active"],
        false
    );
    assert!(emu.stats().introspections >= 12);
}

#[tokio::test]
async fn the_control_api_works_over_http() {
    let emu = start().await;
    let c = http();
    let base = format!("{}/_sandbox", emu.base_url());
    let cfg = get_json(format!("{base}/config")).await;
    assert_eq!(cfg["apps"].as_array().unwrap().len(), 4);
    let user = serde_json::json!({"upn": "frank@example.test", "password": "pw", "display_name": "Frank", "tenant": TENANT,
        "consented": [{"client_id": DESKTOP_APP_ID, "scopes": ["*"]}]});
    assert_eq!(
        c.post(format!("{base}/users"))
            .json(&user)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let bad = serde_json::json!({"upn": "x@y.test", "tenant": "nope"});
    assert_eq!(
        c.post(format!("{base}/users"))
            .json(&bad)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let mut s = script("frank@example.test");
    s.password = "pw".into();
    let out = ScriptedBrowser::new()
        .sign_in(&authorize_url(&emu, TENANT, DESKTOP_APP_ID, &[]), &s)
        .await
        .unwrap();
    assert_eq!(out.signed_in_as.as_deref(), Some("frank@example.test"));
    // A fault over HTTP, then cleared.
    let rule = serde_json::json!({"fault": "throttled", "retry_after_secs": 3, "endpoint": "token", "times": 2});
    assert_eq!(
        c.post(format!("{base}/faults"))
            .json(&rule)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let listed = get_json(format!("{base}/faults")).await;
    assert_eq!(listed[0]["fault"], "throttled");
    assert_eq!(listed[0]["retry_after_secs"], 3);
    let (s, _) = post_token(&emu, TENANT, &[("grant_type", "client_credentials")]).await;
    assert_eq!(s, 429);
    assert_eq!(
        c.delete(format!("{base}/faults"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (s, _) = post_token(&emu, TENANT, &[("grant_type", "client_credentials")]).await;
    assert_eq!(s, 400);
    let stats = get_json(format!("{base}/stats")).await;
    assert_eq!(stats["token_requests"]["client_credentials"], 2);
    assert_eq!(stats["tokens_issued"]["authorization_code"], Value::Null);
    assert_eq!(
        c.post(format!("{base}/reset-stats"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(emu.stats(), Stats::default());
    // Revocation over HTTP.
    let t = tokens_for(&emu, "bob@example.test").await;
    c.post(format!("{base}/users/bob@example.test/revoke"))
        .send()
        .await
        .unwrap();
    let (_, e) = post_token(
        &emu,
        "organizations",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", DESKTOP_APP_ID),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_aad_error(&e, "invalid_grant", 50173);
    c.post(format!(
        "{base}/users/bob@example.test/revoke-access-tokens"
    ))
    .send()
    .await
    .unwrap();
    assert_eq!(
        introspect(&emu, t["access_token"].as_str().unwrap(), None).await["active"],
        false
    );
    // An app over HTTP.
    let app = serde_json::json!({"client_id": "0a0b0c0d-0000-4000-8000-000000000001", "display_name": "vendor app", "home_tenant": TENANT,
        "sign_in_audience": "AzureADMultipleOrgs", "public_client": true, "allow_public_client_flows": true,
        "redirect_uris": [{"uri": "http://127.0.0.1/cb", "platform": "mobile_desktop"}]});
    assert_eq!(
        c.post(format!("{base}/apps"))
            .json(&app)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let d = device_start(&emu, "0a0b0c0d-0000-4000-8000-000000000001").await;
    assert!(d["user_code"].is_string());
}

#[tokio::test]
async fn the_binary_prints_its_url_serves_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("mc-emulator-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("config.json");
    let mut c = EmulatorConfig::sandbox();
    c.tokens.access_token_size = 3000;
    std::fs::write(&cfg, serde_json::to_string(&c).unwrap()).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mc-emulator"))
        .args(["--config", cfg.to_str().unwrap(), "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let info: Value = serde_json::from_str(&line).unwrap();
    let base = info["base_url"].as_str().unwrap();
    assert_eq!(info["introspection_url"], format!("{base}/introspect"));
    let cfg = get_json(format!("{base}/_sandbox/config")).await;
    assert_eq!(cfg["tokens"]["access_token_size"], 3000);
    let pid = child.id().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
