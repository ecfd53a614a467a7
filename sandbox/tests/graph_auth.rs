//! The Graph side of the emulator without a mail stack (no root needed): Graph tokens from an
//! Exchange sign-in's refresh token and the consent they need, bearer checks, permission and
//! access-policy refusals in Graph's error shape, the throttling switch and the control API.

use mailconnect_sandbox::testing::{
    access_token, claims, get_json, graph_app_token, http, refresh, refresh_token, sign_in,
};
use mailconnect_sandbox::*;
use serde_json::{json, Value};

const EXO: &str = "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access openid profile";
const GRAPH_MAIL: &str =
    "https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/Mail.Send offline_access";

async fn start() -> Emulator {
    Emulator::start(EmulatorConfig::sandbox())
        .await
        .expect("emulator starts")
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn graph(emu: &Emulator, method: &str, path: &str, token: Option<&str>) -> Answer {
    let mut r = http()
        .request(
            method.parse().unwrap(),
            format!("{}{path}", emu.graph_base_url()),
        )
        .header("client-request-id", "my-request-7");
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if method == "POST" {
        r = r
            .header("content-type", "application/json")
            .body(json!({"message": {"subject": "x"}}).to_string());
    }
    let resp = r.send().await.unwrap();
    Answer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.json().await.unwrap_or(Value::Null),
    }
}

fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.body["error"]["code"], code, "{}", a.body);
    let inner = &a.body["error"]["innerError"];
    assert_eq!(
        inner["request-id"].as_str(),
        a.headers.get("request-id").and_then(|v| v.to_str().ok()),
        "{}",
        a.body
    );
    assert_eq!(inner["client-request-id"], "my-request-7");
    assert_eq!(a.headers.get("client-request-id").unwrap(), "my-request-7");
    assert!(inner["date"].as_str().is_some_and(|d| d.len() == 19));
}

#[tokio::test]
async fn graph_tokens_come_from_an_exchange_refresh_token_after_consent() {
    let emu = start().await;
    // Consent to Exchange only (the sandbox users' standing consent): no Graph mail token.
    let t = sign_in(&emu, "alice@example.test", EXO, None).await;
    assert_eq!(
        claims(access_token(&t))["aud"],
        "https://outlook.office.com"
    );
    let r = refresh(&emu, refresh_token(&t), GRAPH_MAIL).await;
    assert_eq!(r["error"], "invalid_grant", "{r}");
    assert_eq!(r["error_codes"], json!([65001]), "{r}");
    assert_eq!(r["suberror"], "consent_required");

    // Graph scopes asked for alongside Exchange's at /authorize: consent is recorded.
    let both = format!(
        "{EXO} https://graph.microsoft.com/Mail.Send https://graph.microsoft.com/Mail.ReadWrite"
    );
    let t = sign_in(&emu, "alice@example.test", &both, None).await;
    assert_eq!(
        claims(access_token(&t))["aud"],
        "https://outlook.office.com",
        "{t}"
    );
    let alice = emu.user("alice@example.test").unwrap();
    let consented: Vec<String> = alice
        .consented
        .iter()
        .flat_map(|g| g.scopes.clone())
        .collect();
    assert!(consented.iter().any(|s| s == "Mail.Send"), "{consented:?}");
    // The same refresh token (not bound to a resource) now gives Graph tokens.
    let g = refresh(&emu, refresh_token(&t), GRAPH_MAIL).await;
    let c = claims(access_token(&g));
    assert_eq!(c["aud"], "https://graph.microsoft.com", "{g}");
    let scp = c["scp"].as_str().unwrap();
    for s in ["Mail.Send", "Mail.ReadWrite", "User.Read"] {
        assert!(scp.split(' ').any(|x| x == s), "{scp}");
    }
    assert!(g["refresh_token"].is_string());
    // And Exchange tokens again from the rotated one.
    let e = refresh(
        &emu,
        refresh_token(&g),
        "https://outlook.office.com/IMAP.AccessAsUser.All",
    )
    .await;
    assert_eq!(
        claims(access_token(&e))["aud"],
        "https://outlook.office.com"
    );
    // Redeeming a code for scopes of two resources stays an error.
    let r = sign_in(&emu, "alice@example.test", &both, Some(&both)).await;
    assert_eq!(r["error_codes"], json!([700022]), "{r}");

    // The service app gets Graph application roles for graph/.default.
    let app = graph_app_token(&emu).await;
    let c = claims(access_token(&app));
    assert_eq!(c["aud"], "https://graph.microsoft.com");
    assert_eq!(c["roles"], json!(["Mail.Send", "Mail.ReadWrite"]));
}

#[tokio::test]
async fn graph_refusals_switches_and_control_api_without_a_mail_stack() {
    let emu = start().await;
    let both = format!("{EXO} https://graph.microsoft.com/Mail.Read");
    let t = sign_in(&emu, "alice@example.test", &both, None).await;
    let exchange = access_token(&t).to_string();
    let read = refresh(
        &emu,
        refresh_token(&t),
        "https://graph.microsoft.com/Mail.Read",
    )
    .await;
    let read = access_token(&read).to_string();
    // bob consented to Graph's User.Read only (the sandbox's standing consent).
    let bob = sign_in(&emu, "bob@example.test", EXO, None).await;
    let profile_only = refresh(&emu, refresh_token(&bob), "User.Read").await;
    let profile_only = access_token(&profile_only).to_string();

    // 401: none, an Exchange token, garbage, an expired Graph token.
    for tok in [None, Some(exchange.as_str()), Some("x.y.z")] {
        let a = graph(&emu, "GET", "/me/messages", tok).await;
        assert_error(&a, 401, "InvalidAuthenticationToken");
        assert_eq!(
            a.headers.get("www-authenticate").unwrap().to_str().unwrap(),
            format!("Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"", emu.base_url())
        );
    }
    let a = graph(&emu, "GET", "/me/messages", Some(&exchange)).await;
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Invalid audience"));
    emu.set_token_settings(TokenSettings {
        access_token_lifetime_secs: 0,
        ..emu.config().tokens
    });
    let expired = refresh(
        &emu,
        refresh_token(&t),
        "https://graph.microsoft.com/Mail.Read",
    )
    .await;
    emu.set_token_settings(TokenSettings::default());
    let a = graph(
        &emu,
        "GET",
        "/me/messages",
        expired["access_token"].as_str(),
    )
    .await;
    assert_error(&a, 401, "InvalidAuthenticationToken");
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));

    // The profile needs no mailbox; mail needs Mail.*; sending needs Mail.Send.
    let me = graph(&emu, "GET", "/me", Some(&profile_only)).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["userPrincipalName"], "bob@example.test");
    assert!(me.headers.get("request-id").is_some());
    let a = graph(&emu, "GET", "/me/messages", Some(&profile_only)).await;
    assert_error(&a, 403, "ErrorAccessDenied");
    assert_eq!(
        a.body["error"]["message"],
        "Access is denied. Check credentials and try again."
    );
    assert_error(
        &graph(&emu, "POST", "/me/sendMail", Some(&read)).await,
        403,
        "ErrorAccessDenied",
    );
    // Allowed, but no mail stack connected yet.
    assert_error(
        &graph(&emu, "GET", "/me/messages", Some(&read)).await,
        503,
        "ErrorMailboxStoreUnavailable",
    );
    // Another user's mailbox; an unknown user; unknown segments and methods.
    assert_error(
        &graph(&emu, "GET", "/users/bob@example.test/messages", Some(&read)).await,
        403,
        "ErrorAccessDenied",
    );
    assert_error(
        &graph(
            &emu,
            "GET",
            "/users/nobody@example.test/messages",
            Some(&read),
        )
        .await,
        404,
        "ErrorInvalidUser",
    );
    assert_error(
        &graph(&emu, "GET", "/me/calendars", Some(&read)).await,
        400,
        "BadRequest",
    );
    assert_eq!(
        graph(&emu, "DELETE", "/me/messages", Some(&read))
            .await
            .status,
        405
    );

    // App-only: no /me; the access policy.
    let app = graph_app_token(&emu).await;
    let app = access_token(&app).to_string();
    assert_error(
        &graph(&emu, "GET", "/me/messages", Some(&app)).await,
        400,
        "BadRequest",
    );
    let a = graph(&emu, "GET", "/users/bob@example.test/messages", Some(&app)).await;
    assert_error(&a, 403, "ErrorAccessDenied");
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("[RAOP]"));
    assert_error(
        &graph(
            &emu,
            "GET",
            "/users/sales@example.test/messages",
            Some(&app),
        )
        .await,
        503,
        "ErrorMailboxStoreUnavailable",
    );

    // The throttling switch over the control API.
    let c = http();
    let r = c
        .post(format!("{}/_sandbox/graph", emu.base_url()))
        .json(&json!({"throttle": {"requests": 1, "retry_after_secs": 5}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let a = graph(&emu, "GET", "/me", Some(&profile_only)).await;
    assert_error(&a, 429, "ApplicationThrottled");
    assert_eq!(a.headers.get("retry-after").unwrap(), "5");
    assert_eq!(
        graph(&emu, "GET", "/me", Some(&profile_only)).await.status,
        200
    );
    let settings = get_json(format!("{}/_sandbox/graph", emu.base_url())).await;
    assert_eq!(settings["throttle"], Value::Null);
    assert_eq!(settings["max_request_bytes"], 4 * 1024 * 1024);
    assert!(emu.stats().graph_requests >= 10);
    assert_eq!(emu.stats().graph_throttled, 1);

    // The mail-stack call: nothing connected; a broken configuration is refused.
    let v = get_json(format!("{}/_sandbox/mail-stack", emu.base_url())).await;
    assert_eq!(v["mail_stack"], Value::Null);
    assert_eq!(v["graph_base_url"], emu.graph_base_url());
    let r = c
        .post(format!("{}/_sandbox/mail-stack", emu.base_url()))
        .json(&json!({"imap_tls": 1, "smtp_starttls": 2, "smtp_tls": 3, "ca_pem": "/nonexistent/ca.pem"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(emu.mail_stack().is_none() && emu.smtp_front().is_none());

    // An upload URL nobody created; with a bearer token.
    let r = c
        .put(format!(
            "{}/api/v2.0/Users('x')/Messages('y')/AttachmentSessions('nope')?authtoken=z",
            emu.base_url()
        ))
        .header("content-range", "bytes 0-0/1")
        .body(vec![0u8])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .put(format!(
            "{}/api/v2.0/Users('x')/Messages('y')/AttachmentSessions('nope')?authtoken=z",
            emu.base_url()
        ))
        .bearer_auth(&read)
        .body(vec![0u8])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// A GET with `token` whose body is kept as text (an outage may answer HTML).
async fn graph_text(
    emu: &Emulator,
    path: &str,
    token: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = http()
        .get(format!("{}{path}", emu.graph_base_url()))
        .header("client-request-id", "my-request-7")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

async fn post_graph_settings(emu: &Emulator, settings: Value) -> u16 {
    http()
        .post(format!("{}/_sandbox/graph", emu.base_url()))
        .json(&settings)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn another_clouds_graph_refuses_every_token_and_outages_answer_server_errors() {
    let emu = start().await;
    let both = format!("{EXO} {GRAPH_MAIL}");
    let t = sign_in(&emu, "alice@example.test", &both, None).await;
    let g = refresh(&emu, refresh_token(&t), GRAPH_MAIL).await;
    let token = access_token(&g).to_string();
    assert_eq!(graph(&emu, "GET", "/me", Some(&token)).await.status, 200);

    // The US Government cloud's Graph: a global token, also a freshly refreshed one, has the
    // wrong audience there.
    assert_eq!(
        post_graph_settings(&emu, json!({"cloud": "usgov"})).await,
        200
    );
    let fresh = refresh(&emu, refresh_token(&g), GRAPH_MAIL).await;
    let fresh = access_token(&fresh).to_string();
    assert_ne!(fresh, token);
    for tok in [&token, &fresh] {
        let a = graph(&emu, "GET", "/me/messages", Some(tok)).await;
        assert_error(&a, 401, "InvalidAuthenticationToken");
        assert_eq!(
            a.body["error"]["message"],
            "Access token validation failure. Invalid audience."
        );
        assert!(a
            .headers
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Bearer realm=\"\", authorization_uri="));
    }
    let settings = get_json(format!("{}/_sandbox/graph", emu.base_url())).await;
    assert_eq!(settings["cloud"], "usgov");
    assert_eq!(
        post_graph_settings(&emu, json!({"cloud": "mars"})).await,
        400
    );
    emu.set_graph_settings(GraphSettings::default());
    assert_eq!(graph(&emu, "GET", "/me", Some(&fresh)).await.status, 200);

    // An outage of two requests: Graph's UnknownError body, Retry-After when set, then it clears.
    let before = emu.stats();
    assert_eq!(
        post_graph_settings(
            &emu,
            json!({"outage": {"requests": 2, "status": 503, "retry_after_secs": 3}})
        )
        .await,
        200
    );
    for _ in 0..2 {
        let a = graph(&emu, "GET", "/me", Some(&fresh)).await;
        assert_error(&a, 503, "UnknownError");
        assert_eq!(a.body["error"]["message"], "");
        assert_eq!(a.headers.get("retry-after").unwrap(), "3");
    }
    assert_eq!(graph(&emu, "GET", "/me", Some(&fresh)).await.status, 200);
    let settings = get_json(format!("{}/_sandbox/graph", emu.base_url())).await;
    assert_eq!(settings["outage"], Value::Null);
    let stats = emu.stats();
    assert_eq!(stats.graph_outage_answers - before.graph_outage_answers, 2);
    assert_eq!(stats.graph_requests - before.graph_requests, 3);

    // Until cleared, as a gateway's HTML page without Retry-After.
    emu.set_graph_settings(GraphSettings {
        outage: Some(GraphOutage {
            status: 502,
            html: true,
            ..Default::default()
        }),
        ..Default::default()
    });
    for _ in 0..3 {
        let (status, headers, body) = graph_text(&emu, "/me", &fresh).await;
        assert_eq!(status, 502, "{body}");
        assert!(headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(headers.get("retry-after").is_none());
        assert!(body.contains("<title>502 - Bad Gateway</title>"), "{body}");
    }
    // A refused token is refused before the outage is reached.
    let a = graph(&emu, "GET", "/me", Some("x.y.z")).await;
    assert_error(&a, 401, "InvalidAuthenticationToken");

    // Only sends: reading passes; sendMail gets the error (500 by default).
    emu.set_graph_settings(GraphSettings {
        outage: Some(GraphOutage {
            send_mail_only: true,
            ..Default::default()
        }),
        ..Default::default()
    });
    assert_eq!(graph(&emu, "GET", "/me", Some(&fresh)).await.status, 200);
    let a = graph(&emu, "POST", "/me/sendMail", Some(&fresh)).await;
    assert_error(&a, 500, "UnknownError");
    assert!(a.headers.get("retry-after").is_none());
    // After processing: the request is carried out (here the profile read), then the error.
    emu.set_graph_settings(GraphSettings {
        outage: Some(GraphOutage {
            requests: Some(1),
            status: 504,
            after_processing: true,
            code: Some("GatewayTimeout".into()),
            message: Some("The gateway did not receive a response in time.".into()),
            ..Default::default()
        }),
        ..Default::default()
    });
    let a = graph(&emu, "GET", "/me", Some(&fresh)).await;
    assert_error(&a, 504, "GatewayTimeout");
    assert_eq!(
        a.body["error"]["message"],
        "The gateway did not receive a response in time."
    );
    assert_eq!(graph(&emu, "GET", "/me", Some(&fresh)).await.status, 200);
    assert_eq!(
        post_graph_settings(&emu, json!({"outage": {"requests": 1, "bogus": true}})).await,
        400
    );
}
