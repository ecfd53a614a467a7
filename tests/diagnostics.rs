//! Through the emulator's failure switches and the real mail servers, Connect and Test end in the
//! right diagnostic code, with both languages.

use std::sync::Arc;

use mailconnect_core::check::TestOptions;
use mailconnect_core::diagnose::{code_for, diagnose, Context};
use mailconnect_core::{CancellationToken, Protocol};
use mailconnect_sandbox::{Endpoint, Fault, FaultRule, ScriptedBrowser};
use mailconnect_tests::*;

fn nc() -> CancellationToken {
    CancellationToken::new()
}

fn rule(fault: Fault, endpoint: Option<Endpoint>, grant: Option<&str>) -> FaultRule {
    FaultRule {
        fault,
        app: None,
        user: None,
        endpoint,
        grant_type: grant.map(Into::into),
        times: None,
    }
}

async fn connect_error(
    fault: Option<FaultRule>,
    flow: &str,
    user: &str,
    secret_reg: bool,
) -> mailconnect_core::Error {
    let env = env().await;
    if let Some(f) = fault {
        env.emulator.add_fault(f);
    }
    let connect = if secret_reg {
        let reg = serde_json::json!({"id":"svc","provider":"microsoft","tenant":TENANT,"authority_host":env.emulator.base_url(),"client_id":SERVICE_APP,"client_secret":"wrong-value"});
        connected(&env.client, reg, "a", "alice@example.test")
    } else {
        env.connected("a", "alice@example.test")
            .with(serde_json::json!({"options": {"interactive_timeout_secs": 5}}))
    };
    connect.flow(flow).signing_in_as(user).refused().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_failures_get_their_codes() {
    let cases: Vec<(Option<FaultRule>, &str, &str, bool, &str)> = vec![
        (
            Some(rule(Fault::AppNotFound, Some(Endpoint::Devicecode), None)),
            "device_code",
            "alice@example.test",
            false,
            "MC-APP-NOT-FOUND",
        ),
        (
            None,
            "client_credentials",
            "alice@example.test",
            true,
            "MC-CLIENT-SECRET-INVALID",
        ),
        (
            None,
            "device_code",
            "bob@example.test",
            false,
            "MC-WRONG-ACCOUNT",
        ),
        (
            Some(rule(Fault::UserDeclined, None, None)),
            "device_code",
            "alice@example.test",
            false,
            "MC-CONSENT-DECLINED",
        ),
    ];
    for (fault, flow, user, secret, want) in cases {
        eprintln!("case {want}");
        let e = connect_error(fault, flow, user, secret).await;
        let d = diagnose(&e, Context::default());
        assert_eq!(d.code, want, "case {want}: {e}");
        assert!(!d.de.fix.is_empty() && !d.en.fix.is_empty(), "case {want}");
        let json = e.diagnostic_json();
        assert_eq!(json["code"], want, "case {want}");
        assert!(json["de"]["title"].is_string(), "case {want}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_failures_get_their_codes() {
    for (fault, want) in [
        (Fault::MfaRequired, "MC-MFA-REQUIRED"),
        (Fault::RefreshTokenExpired, "MC-REFRESH-TOKEN-EXPIRED"),
        (Fault::RefreshTokenRevoked, "MC-REFRESH-TOKEN-REVOKED"),
        (Fault::ConsentRequired, "MC-CONSENT-REQUIRED"),
    ] {
        let env = env_with(|c| c.tokens.access_token_lifetime_secs = 2).await;
        env.connected("a", "alice@example.test")
            .flow("device_code")
            .with(serde_json::json!({"options": {"refresh_margin_secs": 1}}))
            .await;
        env.emulator
            .add_fault(rule(fault, None, Some("refresh_token")));
        tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
        let e = env.client.access_token("a", &nc()).await.expect_err(want);
        assert_eq!(code_for(&e, Context::default()), want, "case {want}: {e}");
        // And the Test report of the account says the same.
        let report = env
            .client
            .test("a", &[], TestOptions::default(), &nc())
            .await
            .expect(want);
        assert_eq!(report.token.status, "needs_reauthorization", "case {want}");
        assert_eq!(
            report.token.error.as_ref().expect(want).code,
            want,
            "case {want}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_sign_on_as_the_wrong_account_is_mc_wrong_account_and_the_disabled_protocol_is_named(
) {
    let env = env().await;
    let stack = MailStack::up(&env.emulator.introspection_url(), &["bob@example.test"]);
    let client = open_client_with_ca(&env.dir.path().join("d.db"), stack.ca_pem());
    let browser = Arc::new(ScriptedBrowser::new());
    connected(
        &client,
        desktop(&env.emulator),
        "admin",
        "admin@example.test",
    )
    .with(serde_json::json!({"servers": stack.servers(), "options": {}}))
    .user(ScriptedUser::with_browser(
        browser.clone(),
        sign_in_as("admin@example.test"),
    ))
    .await;
    // login_hint keeps the browser session's admin from being used for bob.
    let (s, _) = connected(&client, desktop(&env.emulator), "bob", "bob@example.test")
        .with(serde_json::json!({"servers": stack.servers(), "options": {"select_account": false}}))
        .user(ScriptedUser::with_browser(
            browser.clone(),
            sign_in_as("bob@example.test"),
        ))
        .await;
    assert_eq!(
        s.identity.unwrap().username.as_deref(),
        Some("bob@example.test")
    );
    let report = client
        .test(
            "bob",
            &[Protocol::Imap, Protocol::Pop3],
            TestOptions::default(),
            &nc(),
        )
        .await
        .unwrap();
    let pop = report
        .results
        .iter()
        .find(|r| r.protocol == Protocol::Pop3)
        .unwrap();
    let e = pop.error.as_ref().expect("POP3 refused for bob");
    assert_eq!(e.code, "MC-PROTOCOL-DISABLED");
    assert!(e.diagnostic["de"]["fix"]
        .as_str()
        .unwrap()
        .contains("PopEnabled"));
}
