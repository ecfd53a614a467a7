//! Tenant setup through Microsoft Graph (issue 20) against the sandbox: `admin register` creates a
//! registration with one administrator sign-in, with which alice then connects, tests, sends and
//! fetches against the real Dovecot and Postfix; `admin check` finds each misconfiguration an
//! administrator can make in the portal (made here through Graph, as the portal does), and the
//! sign-in then fails the way the finding said. The emulator serves Graph's applications,
//! servicePrincipals, oauth2PermissionGrants and appRoleAssignedTo on its real tenant state.

use std::time::Duration;

use mailconnect_core::setup::{CheckOptions, RegisterOptions, Severity};
use mailconnect_core::{diagnose::diagnose, CancellationToken, Client, ConnectOptions, Protocol};
use mailconnect_sandbox::{Consent, ScriptedBrowser, EXAMPLE_TENANT_ID, SETUP_APP_ID};
use mailconnect_tests::*;
use serde_json::{json, Value};

struct World {
    env: Env,
    stack: MailStack,
    client: Client,
}

async fn world() -> World {
    let env = env().await;
    let stack = MailStack::up(&env.emulator.introspection_url(), &[]);
    let client = open_client_with_ca(&env.dir.path().join("setup.db"), stack.ca_pem());
    let base = env.emulator.base_url().to_string();
    client
        .put_registration_json(
            &json!({"id": "setup", "provider": "microsoft", "tenant": "organizations",
                "authority_host": base, "graph_host": base, "client_id": SETUP_APP_ID})
            .to_string(),
        )
        .expect("setup registration");
    World { env, stack, client }
}

fn admin() -> ScriptedUser {
    ScriptedUser::new(sign_in_as("admin@example.test"))
}

fn register_options(id: &str) -> RegisterOptions {
    serde_json::from_value(json!({"setup_registration": "setup", "registration_id": id,
        "display_name": "Contoso mail", "flow": "device_code"}))
    .expect("options")
}

impl World {
    /// Put alice's account on `registration` with this stack's servers.
    fn alice(&self, registration: &str, flow: &str) {
        self.client
            .put_account_json(
                &json!({"id": "alice", "mailbox": "alice@example.test", "registration": registration,
                    "flow": flow, "servers": self.stack.servers()})
                .to_string(),
            )
            .expect("account");
    }

    /// Connect alice as a user who would decline any consent page: with admin consent she
    /// never sees one.
    async fn connect_alice(&self) -> mailconnect_core::Result<mailconnect_core::Status> {
        let mut script = sign_in_as("alice@example.test");
        script.consent = Consent::Decline;
        let user = ScriptedUser::new(script);
        self.client
            .connect(
                "alice",
                ConnectOptions::default(),
                &user,
                &CancellationToken::new(),
            )
            .await
    }

    /// A delegated Graph token of the administrator for the setup app, by device code (the
    /// test's own, as a portal session would be), to change the registration as an
    /// administrator would.
    async fn admin_graph_token(&self) -> String {
        let base = self
            .env
            .emulator
            .base_url()
            .trim_end_matches('/')
            .to_string();
        let http = mailconnect_sandbox::testing::http();
        let scope = "https://graph.microsoft.com/User.Read https://graph.microsoft.com/Application.ReadWrite.All https://graph.microsoft.com/DelegatedPermissionGrant.ReadWrite.All";
        let dc: Value = http
            .post(format!("{base}/organizations/oauth2/v2.0/devicecode"))
            .form(&[("client_id", SETUP_APP_ID), ("scope", scope)])
            .send()
            .await
            .expect("devicecode")
            .json()
            .await
            .expect("devicecode JSON");
        ScriptedBrowser::new()
            .complete_device_code(
                dc["verification_uri"].as_str().expect("uri"),
                dc["user_code"].as_str().expect("code"),
                &sign_in_as("admin@example.test"),
            )
            .await
            .expect("the administrator signs in");
        let t: Value = http
            .post(format!("{base}/organizations/oauth2/v2.0/token"))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", SETUP_APP_ID),
                (
                    "device_code",
                    dc["device_code"].as_str().expect("device_code"),
                ),
            ])
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("token JSON");
        t["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {t}"))
            .to_string()
    }

    /// A Graph call as the administrator; the JSON answered (`null` when empty).
    async fn graph(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let url = format!(
            "{}/v1.0/{path}",
            self.env.emulator.base_url().trim_end_matches('/')
        );
        let mut req = mailconnect_sandbox::testing::http()
            .request(method, &url)
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("Graph answers");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// `admin register` as the administrator (device code).
    async fn register(&self, opts: &RegisterOptions) -> mailconnect_core::setup::RegisterReport {
        self.client
            .admin_register(opts, &admin(), &CancellationToken::new())
            .await
            .expect("admin register")
    }

    async fn check(&self, id: &str) -> mailconnect_core::setup::CheckReport {
        let opts: CheckOptions =
            serde_json::from_value(json!({"setup_registration": "setup", "flow": "device_code"}))
                .expect("options");
        self.client
            .admin_check(id, &opts, &admin(), &CancellationToken::new())
            .await
            .expect("check runs")
    }
}

fn codes(r: &mailconnect_core::setup::CheckReport) -> Vec<&'static str> {
    r.findings.iter().map(|f| f.code).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_register_creates_a_registration_with_which_alice_connects_tests_sends_and_fetches() {
    let w = world().await;
    let report = w.register(&register_options("contoso")).await;
    let json = serde_json::to_string_pretty(&report).unwrap();
    assert_eq!(report.tenant_id, EXAMPLE_TENANT_ID, "{json}");
    assert!(
        report.findings.is_empty(),
        "read back with deviations: {json}"
    );
    let requests: Vec<&str> = report.steps.iter().map(|s| s.request.as_str()).collect();
    for r in [
        "POST /applications",
        "POST /servicePrincipals",
        "POST /oauth2PermissionGrants",
    ] {
        assert!(requests.contains(&r), "{r}: {json}");
    }
    assert!(
        report
            .steps
            .iter()
            .all(|s| !s.en.is_empty() && !s.de.is_empty()),
        "{json}"
    );
    let reg = w.client.registration("contoso").expect("stored");
    assert_eq!(reg.client_id, report.client_id);
    assert_eq!(reg.tenant.as_deref(), Some(EXAMPLE_TENANT_ID));
    assert!(!reg.has_client_secret);
    // The same id again is refused unless replaced.
    let again = w
        .client
        .admin_register(
            &register_options("contoso"),
            &admin(),
            &CancellationToken::new(),
        )
        .await
        .expect_err("the id is taken");
    assert!(again.message().contains("replace"), "{}", again.message());

    // Alice connects without a consent page (she would decline one), tests, sends, fetches.
    w.alice("contoso", "browser");
    let status = w
        .connect_alice()
        .await
        .expect("alice connects on the new registration");
    assert_eq!(
        status.identity.and_then(|i| i.username).as_deref(),
        Some("alice@example.test")
    );
    let t = w
        .client
        .test("alice", &[], Default::default(), &CancellationToken::new())
        .await
        .expect("test runs");
    assert!(t.ok, "{}", serde_json::to_string_pretty(&t).unwrap());
    let msg = b"From: alice@example.test\r\nTo: alice@example.test\r\nSubject: tenant-setup-1\r\nMessage-ID: <tenant-setup-1@test>\r\n\r\nSet up in one sign-in.\r\n";
    let accepted = w
        .client
        .send("alice", msg, None, &CancellationToken::new())
        .await
        .expect("send");
    assert!(accepted.starts_with("250"), "{accepted}");
    let req = mailconnect_core::mail::FetchRequest {
        protocol: Some(Protocol::Imap),
        ..Default::default()
    };
    let mut found = false;
    for _ in 0..40 {
        let msgs = w
            .client
            .fetch("alice", &req, &CancellationToken::new())
            .await
            .expect("fetch");
        if msgs
            .iter()
            .any(|m| String::from_utf8_lossy(&m.data).contains("tenant-setup-1"))
        {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(found, "the message sent over SMTP arrives over IMAP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_check_finds_each_misconfiguration_and_the_sign_in_fails_with_its_code() {
    let w = world().await;
    let report = w.register(&register_options("contoso")).await;
    let check = w.check("contoso").await;
    assert!(
        check.ok && check.findings.is_empty(),
        "{:?}",
        check.findings
    );
    let token = w.admin_graph_token().await;
    let oid = report.application_object_id.clone();
    let patch = reqwest::Method::PATCH;

    // 1. http://localhost moved from "Mobile and desktop applications" to "Web".
    w.graph(&token, patch.clone(), &format!("applications/{oid}"),
        Some(json!({"publicClient": {"redirectUris": []}, "web": {"redirectUris": ["http://localhost"]}}))).await;
    let check = w.check("contoso").await;
    assert_eq!(
        codes(&check),
        ["MC-PUBLIC-CLIENT-FLOWS-DISABLED"],
        "{:?}",
        check.findings
    );
    assert!(!check.ok);
    w.alice("contoso", "browser");
    let e = w
        .connect_alice()
        .await
        .expect_err("a web-platform redirect cannot finish a desktop sign-in");
    assert_eq!(
        diagnose(&e, Default::default()).code,
        "MC-PUBLIC-CLIENT-FLOWS-DISABLED",
        "{e}"
    );
    w.graph(&token, patch.clone(), &format!("applications/{oid}"),
        Some(json!({"publicClient": {"redirectUris": ["http://localhost"]}, "web": {"redirectUris": []}}))).await;

    // 2. "Allow public client flows" off: the device code fails.
    w.graph(
        &token,
        patch.clone(),
        &format!("applications/{oid}"),
        Some(json!({"isFallbackPublicClient": false})),
    )
    .await;
    let check = w.check("contoso").await;
    assert_eq!(
        codes(&check),
        ["MC-PUBLIC-CLIENT-FLOWS-DISABLED"],
        "{:?}",
        check.findings
    );
    w.alice("contoso", "device_code");
    let e = w
        .connect_alice()
        .await
        .expect_err("device code without public client flows");
    assert_eq!(
        diagnose(&e, Default::default()).code,
        "MC-PUBLIC-CLIENT-FLOWS-DISABLED",
        "{e}"
    );
    w.graph(
        &token,
        patch.clone(),
        &format!("applications/{oid}"),
        Some(json!({"isFallbackPublicClient": true})),
    )
    .await;
    let check = w.check("contoso").await;
    assert!(check.ok, "{:?}", check.findings);

    // 3. SMTP.Send removed from the API permissions and from the organisation's consent.
    let app = w
        .graph(
            &token,
            reqwest::Method::GET,
            &format!("applications/{oid}"),
            None,
        )
        .await;
    let mut rra = app["requiredResourceAccess"].clone();
    let exo = w
        .graph(
            &token,
            reqwest::Method::GET,
            "servicePrincipals?$filter=appId%20eq%20'00000002-0000-0ff1-ce00-000000000000'",
            None,
        )
        .await;
    let smtp_id = exo["value"][0]["oauth2PermissionScopes"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["value"] == "SMTP.Send"))
        .and_then(|s| s["id"].as_str())
        .expect("SMTP.Send on Exchange Online")
        .to_string();
    for r in rra.as_array_mut().expect("rra") {
        if let Some(a) = r["resourceAccess"].as_array_mut() {
            a.retain(|x| x["id"] != smtp_id.as_str());
        }
    }
    w.graph(
        &token,
        patch.clone(),
        &format!("applications/{oid}"),
        Some(json!({"requiredResourceAccess": rra})),
    )
    .await;
    let grants = w
        .graph(
            &token,
            reqwest::Method::GET,
            &format!(
                "oauth2PermissionGrants?$filter=clientId%20eq%20'{}'",
                report.service_principal_id
            ),
            None,
        )
        .await;
    let exo_sp = exo["value"][0]["id"].as_str().expect("exo sp id");
    let grant = grants["value"]
        .as_array()
        .and_then(|a| a.iter().find(|g| g["resourceId"] == exo_sp))
        .expect("the Exchange grant")
        .clone();
    w.graph(
        &token,
        patch.clone(),
        &format!("oauth2PermissionGrants/{}", grant["id"].as_str().unwrap()),
        Some(json!({"scope": "IMAP.AccessAsUser.All POP.AccessAsUser.All"})),
    )
    .await;
    let check = w.check("contoso").await;
    assert_eq!(
        codes(&check),
        ["MC-PERMISSIONS-NOT-CONFIGURED", "MC-ADMIN-CONSENT-REQUIRED"],
        "{:?}",
        check.findings
    );
    assert!(
        check
            .findings
            .iter()
            .all(|f| f.severity == Severity::Error && f.detail_en.contains("SMTP.Send")),
        "{:?}",
        check.findings
    );
    // Where users may not consent, alice meets "Need admin approval" (AADSTS90094) and the
    // connect fails; nothing is stored.
    let mut tenant = w
        .env
        .emulator
        .config()
        .tenants
        .into_iter()
        .find(|t| t.id == EXAMPLE_TENANT_ID)
        .expect("tenant");
    tenant.users_can_consent = false;
    w.env.emulator.put_tenant(tenant);
    w.alice("contoso", "browser");
    let mut script = sign_in_as("alice@example.test");
    script.consent = Consent::Accept;
    let user = ScriptedUser::new(script);
    let e = w
        .client
        .connect(
            "alice",
            ConnectOptions::default(),
            &user,
            &CancellationToken::new(),
        )
        .await
        .expect_err("SMTP.Send has no consent");
    // The browser showed "Need admin approval" (AADSTS90094, check's MC-ADMIN-CONSENT-REQUIRED);
    // returning to the application is a declined consent (AADSTS65004), whose fix names it.
    assert_eq!(
        diagnose(&e, Default::default()).code,
        "MC-CONSENT-DECLINED",
        "{e}"
    );
    let outcome = user
        .outcome()
        .await
        .expect("the browser ran")
        .expect("pages");
    assert!(
        outcome
            .admin_approval
            .as_deref()
            .is_some_and(|p| p.contains("AADSTS90094")),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_only_with_a_short_secret_warns_and_a_user_without_rights_is_refused() {
    let w = world().await;
    let mut opts = register_options("contoso");
    opts.app_only = true;
    opts.secret_days = 10;
    let report = w.register(&opts).await;
    let json = serde_json::to_string(&report).unwrap();
    assert_eq!(
        report.app_registration_id.as_deref(),
        Some("contoso-app"),
        "{json}"
    );
    assert!(
        w.client
            .registration("contoso-app")
            .unwrap()
            .has_client_secret
    );
    assert!(
        report
            .exchange_steps
            .iter()
            .any(|s| s.contains("Add-MailboxPermission")),
        "{json}"
    );
    assert_eq!(
        report.findings.iter().map(|f| f.code).collect::<Vec<_>>(),
        ["MC-CLIENT-SECRET-EXPIRING"],
        "{json}"
    );
    assert!(
        report.findings[0].detail_en.contains("in 9 days")
            || report.findings[0].detail_en.contains("in 10 days"),
        "{json}"
    );
    // The secret is in no report.
    let secret_free = !json.contains("secretText");
    assert!(secret_free, "{json}");
    // The app-only registration gets a token with the secret (client credentials).
    w.client
        .put_account_json(&json!({"id": "svc", "mailbox": "alice@example.test", "registration": "contoso-app", "flow": "client_credentials", "servers": w.stack.servers()}).to_string())
        .unwrap();
    w.client
        .connect(
            "svc",
            ConnectOptions::default(),
            &admin(),
            &CancellationToken::new(),
        )
        .await
        .expect("app-only token with the new secret");

    // alice is no administrator: the setup stops with the catalog's code, nothing is stored.
    let mut opts = register_options("other");
    opts.login_hint = Some("alice@example.test".into());
    let user = ScriptedUser::new(sign_in_as("alice@example.test"));
    let e = w
        .client
        .admin_register(&opts, &user, &CancellationToken::new())
        .await
        .expect_err("a user without rights");
    assert_eq!(
        diagnose(&e, Default::default()).code,
        "MC-SETUP-INSUFFICIENT-PRIVILEGES",
        "{e}"
    );
    assert!(w.client.registration("other").is_err());
}
