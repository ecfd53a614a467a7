//! The emulator's Microsoft Graph directory endpoints (issue 20) over plain HTTP, as
//! `mailconnect admin register` / `admin check` call them: a tenant administrator signs in to the
//! setup app and consents for the organisation, creates an app registration, its service
//! principal and the admin consent through Graph, and the registration is usable at once by a
//! user's sign-in; registrations broken on purpose through Graph fail at sign-in the way Entra
//! fails them. This tests the emulator, not core; no mail stack needed.

use mailconnect_sandbox::testing::{access_token, claims, http, post_token, script};
use mailconnect_sandbox::{
    Consent, Emulator, EmulatorConfig, ScriptedBrowser, SignIn, SignInOutcome, EXAMPLE_TENANT_ID,
    GRAPH_APP_ID, SETUP_APP_ID,
};
use serde_json::{json, Value};

const EXCHANGE_APP_ID: &str = "00000002-0000-0ff1-ce00-000000000000";
const ADMIN_SCOPES: &str = "https://graph.microsoft.com/Application.ReadWrite.All https://graph.microsoft.com/DelegatedPermissionGrant.ReadWrite.All https://graph.microsoft.com/AppRoleAssignment.ReadWrite.All https://graph.microsoft.com/User.Read openid profile";
const MAIL_SCOPES: &str = "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access openid profile";

struct Answer {
    status: u16,
    body: Value,
}

async fn graph(
    emu: &Emulator,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let mut r = http()
        .request(
            method.parse().unwrap(),
            format!("{}{path}", emu.graph_base_url()),
        )
        .bearer_auth(token);
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

fn refused(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.body["error"]["code"], code, "{}", a.body);
    assert!(
        a.body["error"]["innerError"]["request-id"].is_string(),
        "{}",
        a.body
    );
}

fn sign_in_script(user: &str, consent: Consent) -> SignIn {
    SignIn {
        consent,
        ..script(user)
    }
}

/// A device-code sign-in of `user` to `client` at `tenant` for `scope`: the browser's outcome
/// and the token endpoint's answer to the first poll.
async fn device(
    emu: &Emulator,
    tenant: &str,
    client: &str,
    scope: &str,
    user: &str,
    consent: Consent,
) -> (SignInOutcome, u16, Value) {
    let r: Value = http()
        .post(format!(
            "{}/{tenant}/oauth2/v2.0/devicecode",
            emu.base_url()
        ))
        .form(&[("client_id", client), ("scope", scope)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = r["device_code"].as_str().unwrap_or_else(|| panic!("{r}"));
    let out = ScriptedBrowser::new()
        .complete_device_code(
            r["verification_uri"].as_str().unwrap(),
            r["user_code"].as_str().unwrap(),
            &sign_in_script(user, consent),
        )
        .await
        .unwrap();
    let (status, answer) = post_token(
        emu,
        tenant,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", client),
            ("device_code", code),
        ],
    )
    .await;
    (out, status, answer)
}

/// A browser sign-in of `user` to `client` at the example tenant for the mail scopes (no code
/// redemption): declining shows whether a consent page came.
async fn browser(emu: &Emulator, client: &str, user: &str, consent: Consent) -> SignInOutcome {
    let (_, challenge) = mailconnect_sandbox::testing::pkce();
    let url = mailconnect_sandbox::testing::authorize_url(
        emu,
        EXAMPLE_TENANT_ID,
        client,
        &[
            ("scope", MAIL_SCOPES),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    ScriptedBrowser::new()
        .sign_in(&url, &sign_in_script(user, consent))
        .await
        .unwrap()
}

/// The administrator's Graph token from the setup app, consenting for the organisation.
async fn admin_token(emu: &Emulator, user: &str) -> String {
    let (_, status, t) = device(
        emu,
        "organizations",
        SETUP_APP_ID,
        ADMIN_SCOPES,
        user,
        Consent::AcceptForOrganization,
    )
    .await;
    assert_eq!(status, 200, "{t}");
    access_token(&t).to_string()
}

fn id_of(sp: &Value, list: &str, value: &str) -> String {
    sp[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["value"] == value)
        .unwrap_or_else(|| panic!("{value} not in {list}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn service_principal(emu: &Emulator, token: &str, app_id: &str) -> Value {
    let a = graph(
        emu,
        token,
        "GET",
        &format!("/servicePrincipals?$filter=appId%20eq%20'{app_id}'"),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["value"][0].clone()
}

/// What `admin register` creates: the application, its service principal, admin consent.
/// Returns (application object id, client id, service principal id).
async fn register(emu: &Emulator, token: &str) -> (String, String, String) {
    let exo = service_principal(emu, token, EXCHANGE_APP_ID).await;
    let g = service_principal(emu, token, GRAPH_APP_ID).await;
    let scopes = |sp: &Value, names: &[&str]| -> Vec<Value> {
        names
            .iter()
            .map(|n| json!({"id": id_of(sp, "oauth2PermissionScopes", n), "type": "Scope"}))
            .collect()
    };
    let exo_names = ["IMAP.AccessAsUser.All", "POP.AccessAsUser.All", "SMTP.Send"];
    let graph_names = ["openid", "profile", "email", "offline_access"];
    let app = graph(
        emu,
        token,
        "POST",
        "/applications",
        Some(json!({
            "displayName": "mailconnect",
            "signInAudience": "AzureADMyOrg",
            "isFallbackPublicClient": true,
            "publicClient": {"redirectUris": ["http://localhost"]},
            "requiredResourceAccess": [
                {"resourceAppId": EXCHANGE_APP_ID, "resourceAccess": scopes(&exo, &exo_names)},
                {"resourceAppId": GRAPH_APP_ID, "resourceAccess": scopes(&g, &graph_names)},
            ],
            "notes": "created by the test",
        })),
    )
    .await;
    assert_eq!(app.status, 201, "{}", app.body);
    assert!(app.body["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("/v1.0/$metadata#applications/$entity"));
    assert_eq!(
        app.body["publicClient"]["redirectUris"],
        json!(["http://localhost"])
    );
    assert_eq!(app.body["isFallbackPublicClient"], true);
    assert_eq!(app.body["passwordCredentials"], json!([]));
    let object_id = app.body["id"].as_str().unwrap().to_string();
    let client_id = app.body["appId"].as_str().unwrap().to_string();
    // No service principal yet: Graph's POST /applications does not create one.
    let none = graph(
        emu,
        token,
        "GET",
        &format!("/servicePrincipals?$filter=appId%20eq%20'{client_id}'"),
        None,
    )
    .await;
    assert_eq!(none.body["value"], json!([]), "{}", none.body);
    let sp = graph(
        emu,
        token,
        "POST",
        "/servicePrincipals",
        Some(json!({"appId": client_id})),
    )
    .await;
    assert_eq!(sp.status, 201, "{}", sp.body);
    let sp_id = sp.body["id"].as_str().unwrap().to_string();
    let again = graph(
        emu,
        token,
        "POST",
        "/servicePrincipals",
        Some(json!({"appId": client_id})),
    )
    .await;
    refused(&again, 409, "Request_MultipleObjectsWithSameKeyValue");
    for (resource, names) in [(&exo, &exo_names[..]), (&g, &graph_names[..])] {
        let grant = graph(
            emu,
            token,
            "POST",
            "/oauth2PermissionGrants",
            Some(json!({
                "clientId": sp_id,
                "consentType": "AllPrincipals",
                "resourceId": resource["id"],
                "scope": names.join(" "),
            })),
        )
        .await;
        assert_eq!(grant.status, 201, "{}", grant.body);
        assert_eq!(grant.body["consentType"], "AllPrincipals");
        assert_eq!(grant.body["principalId"], Value::Null);
    }
    (object_id, client_id, sp_id)
}

async fn grants_of(emu: &Emulator, token: &str, sp_id: &str) -> Vec<Value> {
    let a = graph(
        emu,
        token,
        "GET",
        &format!("/oauth2PermissionGrants?$filter=clientId%20eq%20'{sp_id}'"),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["value"].as_array().unwrap().clone()
}

async fn start() -> Emulator {
    let mut config = EmulatorConfig::sandbox();
    config.tokens.device_poll_interval_secs = 1;
    Emulator::start(config).await.unwrap()
}

#[tokio::test]
async fn a_registration_created_through_graph_signs_users_in_without_consent() {
    let emu = start().await;
    let token = admin_token(&emu, "admin@example.test").await;
    let scp = claims(&token)["scp"].as_str().unwrap().to_string();
    assert!(scp.contains("Application.ReadWrite.All"), "{scp}");

    let org = graph(
        &emu,
        &token,
        "GET",
        "/organization?$select=id,displayName",
        None,
    )
    .await;
    assert_eq!(org.status, 200, "{}", org.body);
    assert_eq!(org.body["value"][0]["id"], EXAMPLE_TENANT_ID);
    assert_eq!(org.body["value"][0]["displayName"], "Example Corp");
    assert!(org.body["value"][0].get("verifiedDomains").is_none());
    let org = graph(&emu, &token, "GET", "/organization", None).await;
    assert_eq!(
        org.body["value"][0]["verifiedDomains"][0]["name"],
        "example.test"
    );

    // Microsoft's service principals list their permissions by value.
    let exo = service_principal(&emu, &token, EXCHANGE_APP_ID).await;
    assert_eq!(exo["displayName"], "Office 365 Exchange Online");
    for s in [
        "IMAP.AccessAsUser.All",
        "POP.AccessAsUser.All",
        "SMTP.Send",
        "EWS.AccessAsUser.All",
    ] {
        id_of(&exo, "oauth2PermissionScopes", s);
    }
    assert_eq!(
        id_of(&exo, "appRoles", "IMAP.AccessAsApp"),
        "5e5addcd-3e8d-4e90-baf5-964efab2b20a"
    );
    id_of(&exo, "appRoles", "POP.AccessAsApp");
    id_of(&exo, "appRoles", "SMTP.SendAsApp");
    let g = service_principal(&emu, &token, GRAPH_APP_ID).await;
    for s in [
        "openid",
        "profile",
        "email",
        "offline_access",
        "User.Read",
        "Mail.Send",
        "Mail.ReadWrite",
        "Mail.Read",
        "Application.ReadWrite.All",
        "DelegatedPermissionGrant.ReadWrite.All",
        "AppRoleAssignment.ReadWrite.All",
    ] {
        id_of(&g, "oauth2PermissionScopes", s);
    }
    for r in ["Mail.Send", "Mail.ReadWrite", "Mail.Read"] {
        id_of(&g, "appRoles", r);
    }
    let by_key = graph(
        &emu,
        &token,
        "GET",
        &format!("/servicePrincipals(appId='{GRAPH_APP_ID}')"),
        None,
    )
    .await;
    assert_eq!(by_key.body["id"], g["id"], "{}", by_key.body);

    let (object_id, client_id, sp_id) = register(&emu, &token).await;
    let app = graph(
        &emu,
        &token,
        "GET",
        &format!("/applications/{object_id}"),
        None,
    )
    .await;
    assert_eq!(app.body["appId"], client_id.as_str(), "{}", app.body);
    let by_filter = graph(
        &emu,
        &token,
        "GET",
        &format!("/applications?$filter=appId%20eq%20'{client_id}'"),
        None,
    )
    .await;
    assert_eq!(by_filter.body["value"][0]["id"], object_id.as_str());
    let by_key = graph(
        &emu,
        &token,
        "GET",
        &format!("/applications(appId='{client_id}')"),
        None,
    )
    .await;
    assert_eq!(by_key.body["id"], object_id.as_str());
    assert_eq!(grants_of(&emu, &token, &sp_id).await.len(), 2);

    // Alice signs in at once: no consent page (declining one would fail the sign-in).
    let out = browser(&emu, &client_id, "alice@example.test", Consent::Decline).await;
    assert!(out.redirect_param("code").is_some(), "{out:?}");
    let (out, status, t) = device(
        &emu,
        EXAMPLE_TENANT_ID,
        &client_id,
        MAIL_SCOPES,
        "alice@example.test",
        Consent::Accept,
    )
    .await;
    assert_eq!(status, 200, "{t} {out:?}");
    // No consent of her own was recorded: the admin consent covered everything.
    assert!(grants_of(&emu, &token, &sp_id)
        .await
        .iter()
        .all(|g| g["consentType"] == "AllPrincipals"));
    let c = claims(access_token(&t));
    assert_eq!(c["aud"], "https://outlook.office.com");
    assert_eq!(c["appid"], client_id.as_str());
    let scp = c["scp"].as_str().unwrap();
    assert!(
        scp.contains("IMAP.AccessAsUser.All") && scp.contains("SMTP.Send"),
        "{scp}"
    );
    assert!(t["refresh_token"].is_string());

    // The admin's own consent on the consent page is a grant too (the setup app's).
    let setup_sp = service_principal(&emu, &token, SETUP_APP_ID).await;
    let setup_grants = grants_of(&emu, &token, setup_sp["id"].as_str().unwrap()).await;
    assert!(
        setup_grants
            .iter()
            .any(|g| g["consentType"] == "AllPrincipals"
                && g["scope"]
                    .as_str()
                    .unwrap()
                    .contains("Application.ReadWrite.All")),
        "{setup_grants:?}"
    );

    // A user who is not an administrator: the setup app's token has the permission (the
    // administrator consented for everyone), Graph still refuses.
    let (_, status, bob) = device(
        &emu,
        "organizations",
        SETUP_APP_ID,
        ADMIN_SCOPES,
        "bob@example.test",
        Consent::Accept,
    )
    .await;
    assert_eq!(status, 200, "{bob}");
    let bob = access_token(&bob);
    for path in [
        "/applications",
        "/servicePrincipals",
        "/oauth2PermissionGrants",
    ] {
        refused(
            &graph(&emu, bob, "GET", path, None).await,
            403,
            "Authorization_RequestDenied",
        );
    }
    let create = graph(
        &emu,
        bob,
        "POST",
        "/applications",
        Some(json!({"displayName": "x"})),
    )
    .await;
    refused(&create, 403, "Authorization_RequestDenied");
    assert_eq!(
        create.body["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
    // Reading the organisation needs only User.Read.
    assert_eq!(
        graph(&emu, bob, "GET", "/organization", None).await.status,
        200
    );
    // No token, a bad token.
    refused(
        &graph(&emu, "", "GET", "/applications", None).await,
        401,
        "InvalidAuthenticationToken",
    );
    refused(
        &graph(&emu, "a.b.c", "GET", "/applications", None).await,
        401,
        "InvalidAuthenticationToken",
    );
}

#[tokio::test]
async fn a_user_cannot_consent_to_the_setup_apps_permissions() {
    let emu = start().await;
    let (out, status, t) = device(
        &emu,
        "organizations",
        SETUP_APP_ID,
        ADMIN_SCOPES,
        "bob@example.test",
        Consent::Accept,
    )
    .await;
    assert!(out.admin_approval.unwrap().contains("AADSTS90094"));
    assert_eq!(status, 400, "{t}");
    assert_eq!(t["error"], "authorization_declined");
}

#[tokio::test]
async fn registrations_broken_through_graph_fail_at_sign_in_as_entra_fails_them() {
    let emu = start().await;
    let token = admin_token(&emu, "admin@example.test").await;
    let (object_id, client_id, sp_id) = register(&emu, &token).await;
    let app_path = format!("/applications/{object_id}");

    // http://localhost moved to the Web platform: the code redemption wants a secret.
    let moved = graph(
        &emu,
        &token,
        "PATCH",
        &app_path,
        Some(json!({"publicClient": {"redirectUris": []}, "web": {"redirectUris": ["http://localhost"]}})),
    )
    .await;
    assert_eq!(moved.status, 204, "{}", moved.body);
    let app = graph(&emu, &token, "GET", &app_path, None).await;
    assert_eq!(app.body["web"]["redirectUris"], json!(["http://localhost"]));
    let (verifier, challenge) = mailconnect_sandbox::testing::pkce();
    let url = mailconnect_sandbox::testing::authorize_url(
        &emu,
        EXAMPLE_TENANT_ID,
        &client_id,
        &[
            ("scope", MAIL_SCOPES),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let out = ScriptedBrowser::new()
        .sign_in(
            &url,
            &sign_in_script("alice@example.test", Consent::Decline),
        )
        .await
        .unwrap();
    let code = out
        .redirect_param("code")
        .unwrap_or_else(|| panic!("{out:?}"));
    let (status, t) = post_token(
        &emu,
        EXAMPLE_TENANT_ID,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &code),
            ("redirect_uri", mailconnect_sandbox::testing::REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 401, "{t}");
    assert_eq!(t["error"], "invalid_client");
    assert_eq!(t["error_codes"], json!([7000218]), "{t}");

    // Back under Mobile and desktop, but public client flows off: the device code fails.
    let patch = json!({"publicClient": {"redirectUris": ["http://localhost"]}, "web": {"redirectUris": []}, "isFallbackPublicClient": false});
    assert_eq!(
        graph(&emu, &token, "PATCH", &app_path, Some(patch))
            .await
            .status,
        204
    );
    let (_, status, t) = device(
        &emu,
        EXAMPLE_TENANT_ID,
        &client_id,
        MAIL_SCOPES,
        "alice@example.test",
        Consent::Decline,
    )
    .await;
    assert_eq!(status, 401, "{t}");
    assert_eq!(t["error_codes"], json!([7000218]), "{t}");
    let patch = json!({"isFallbackPublicClient": true});
    assert_eq!(
        graph(&emu, &token, "PATCH", &app_path, Some(patch))
            .await
            .status,
        204
    );

    // The admin consent reduced to IMAP: SMTP now needs consent, which alice gives herself.
    let grants = grants_of(&emu, &token, &sp_id).await;
    let exo_sp = service_principal(&emu, &token, EXCHANGE_APP_ID).await;
    let exo_grant = grants
        .iter()
        .find(|g| g["resourceId"] == exo_sp["id"])
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reduce = graph(
        &emu,
        &token,
        "PATCH",
        &format!("/oauth2PermissionGrants/{exo_grant}"),
        Some(json!({"scope": "IMAP.AccessAsUser.All"})),
    )
    .await;
    assert_eq!(reduce.status, 204, "{}", reduce.body);
    let out = browser(&emu, &client_id, "alice@example.test", Consent::Decline).await;
    assert_eq!(
        out.redirect_param("error").as_deref(),
        Some("access_denied"),
        "{out:?}"
    );
    let (_, status, t) = device(
        &emu,
        EXAMPLE_TENANT_ID,
        &client_id,
        MAIL_SCOPES,
        "alice@example.test",
        Consent::Accept,
    )
    .await;
    assert_eq!(status, 200, "{t}");
    // Her consent is a Principal grant now.
    let alice_grant = grants_of(&emu, &token, &sp_id)
        .await
        .into_iter()
        .find(|g| g["consentType"] == "Principal")
        .expect("alice's consent is listed");
    assert!(
        alice_grant["scope"].as_str().unwrap().contains("SMTP.Send"),
        "{alice_grant}"
    );

    // The admin consent deleted in a tenant whose users may not consent: bob is blocked.
    let mut tenant = emu
        .config()
        .tenants
        .into_iter()
        .find(|t| t.id == EXAMPLE_TENANT_ID)
        .unwrap();
    tenant.users_can_consent = false;
    emu.put_tenant(tenant);
    let deleted = graph(
        &emu,
        &token,
        "DELETE",
        &format!("/oauth2PermissionGrants/{exo_grant}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    refused(
        &graph(
            &emu,
            &token,
            "GET",
            &format!("/oauth2PermissionGrants/{exo_grant}"),
            None,
        )
        .await,
        404,
        "Request_ResourceNotFound",
    );
    let (out, status, t) = device(
        &emu,
        EXAMPLE_TENANT_ID,
        &client_id,
        MAIL_SCOPES,
        "bob@example.test",
        Consent::Accept,
    )
    .await;
    let page = out.admin_approval.unwrap_or_default();
    assert!(page.contains("AADSTS90094"), "{page}");
    assert_eq!(status, 400, "{t}");
    assert_eq!(t["error"], "authorization_declined");

    // A permission removed from requiredResourceAccess: the read-back shows it (sign-in still
    // works while the grant covers it, as at Entra).
    let app = graph(&emu, &token, "GET", &app_path, None).await;
    let mut rra = app.body["requiredResourceAccess"].clone();
    rra[0]["resourceAccess"].as_array_mut().unwrap().remove(2);
    let patch = json!({"requiredResourceAccess": rra});
    assert_eq!(
        graph(&emu, &token, "PATCH", &app_path, Some(patch))
            .await
            .status,
        204
    );
    let app = graph(&emu, &token, "GET", &app_path, None).await;
    assert_eq!(
        app.body["requiredResourceAccess"][0]["resourceAccess"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Deleting the application: sign-ins end with AADSTS700016.
    assert_eq!(
        graph(&emu, &token, "DELETE", &app_path, None).await.status,
        204
    );
    refused(
        &graph(&emu, &token, "GET", &app_path, None).await,
        404,
        "Request_ResourceNotFound",
    );
    let r: Value = http()
        .post(format!(
            "{}/{EXAMPLE_TENANT_ID}/oauth2/v2.0/devicecode",
            emu.base_url()
        ))
        .form(&[("client_id", client_id.as_str()), ("scope", MAIL_SCOPES)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["error_codes"], json!([700016]), "{r}");
}

#[tokio::test]
async fn app_only_access_through_add_password_and_app_role_assignments() {
    let emu = start().await;
    let token = admin_token(&emu, "admin@example.test").await;
    let (object_id, client_id, sp_id) = register(&emu, &token).await;
    let exo = service_principal(&emu, &token, EXCHANGE_APP_ID).await;
    let exo_id = exo["id"].as_str().unwrap();

    let pw = graph(
        &emu,
        &token,
        "POST",
        &format!("/applications/{object_id}/addPassword"),
        Some(json!({"passwordCredential": {"displayName": "mailconnect", "endDateTime": "2099-01-31T12:00:00Z"}})),
    )
    .await;
    assert_eq!(pw.status, 200, "{}", pw.body);
    let secret = pw.body["secretText"].as_str().unwrap().to_string();
    assert_eq!(pw.body["endDateTime"], "2099-01-31T12:00:00Z");
    assert_eq!(pw.body["hint"], &secret[..3]);
    let app = graph(
        &emu,
        &token,
        "GET",
        &format!("/applications/{object_id}"),
        None,
    )
    .await;
    let creds = &app.body["passwordCredentials"];
    assert_eq!(creds[0]["keyId"], pw.body["keyId"]);
    assert_eq!(creds[0]["secretText"], Value::Null);
    assert!(!app.body.to_string().contains(&secret));

    let imap_role = id_of(&exo, "appRoles", "IMAP.AccessAsApp");
    let assigned = graph(
        &emu,
        &token,
        "POST",
        &format!("/servicePrincipals/{exo_id}/appRoleAssignedTo"),
        Some(json!({"principalId": sp_id, "resourceId": exo_id, "appRoleId": imap_role})),
    )
    .await;
    assert_eq!(assigned.status, 201, "{}", assigned.body);
    assert_eq!(assigned.body["appRoleId"], imap_role.as_str());
    assert_eq!(assigned.body["principalId"], sp_id.as_str());
    let listed = graph(
        &emu,
        &token,
        "GET",
        &format!("/servicePrincipals/{sp_id}/appRoleAssignments"),
        None,
    )
    .await;
    assert_eq!(
        listed.body["value"][0]["appRoleId"],
        imap_role.as_str(),
        "{}",
        listed.body
    );
    let listed = graph(
        &emu,
        &token,
        "GET",
        &format!("/servicePrincipals/{exo_id}/appRoleAssignedTo"),
        None,
    )
    .await;
    assert!(listed.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["principalId"] == sp_id.as_str()));

    let app_only = |secret: String| {
        let emu = &emu;
        let client_id = client_id.clone();
        async move {
            post_token(
                emu,
                EXAMPLE_TENANT_ID,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &client_id),
                    ("client_secret", &secret),
                    ("scope", "https://outlook.office365.com/.default"),
                ],
            )
            .await
        }
    };
    let (status, t) = app_only(secret.clone()).await;
    assert_eq!(status, 200, "{t}");
    let c = claims(access_token(&t));
    assert_eq!(c["roles"], json!(["IMAP.AccessAsApp"]));
    assert_eq!(c["oid"], sp_id.as_str());

    // A secret that has expired.
    let old = graph(
        &emu,
        &token,
        "POST",
        &format!("/applications/{object_id}/addPassword"),
        Some(json!({"passwordCredential": {"displayName": "old", "startDateTime": "2020-01-01T00:00:00Z", "endDateTime": "2021-01-01T00:00:00Z"}})),
    )
    .await;
    assert_eq!(old.status, 200, "{}", old.body);
    let (status, t) = app_only(old.body["secretText"].as_str().unwrap().to_string()).await;
    assert_eq!(status, 401, "{t}");
    assert_eq!(t["error_codes"], json!([7000222]), "{t}");

    // removePassword: the secret no longer works.
    let removed = graph(
        &emu,
        &token,
        "POST",
        &format!("/applications/{object_id}/removePassword"),
        Some(json!({"keyId": pw.body["keyId"]})),
    )
    .await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    let (status, t) = app_only(secret).await;
    assert_eq!(status, 401, "{t}");
    assert_eq!(t["error_codes"], json!([7000215]), "{t}");

    // The delegated sign-in still works with a secret on the app (public redirect, no secret).
    let (_, status, t) = device(
        &emu,
        EXAMPLE_TENANT_ID,
        &client_id,
        MAIL_SCOPES,
        "alice@example.test",
        Consent::Accept,
    )
    .await;
    assert_eq!(status, 200, "{t}");
}
