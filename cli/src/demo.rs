//! `mailconnect demo`: the sandbox round through core.

use std::sync::{Arc, Mutex};

use mailconnect_core::oauth::DeviceCodeInfo;
use mailconnect_core::{
    CancellationToken, Client, ClientOptions, ConnectObserver, ConnectOptions, ConnectStage,
    Language,
};
use mailconnect_sandbox::{Consent, Emulator, EmulatorConfig, ScriptedBrowser, SignIn};

/// Plays the user: shows the device code, then signs in on the device page with the scripted browser.
struct DemoUser {
    browser: Arc<ScriptedBrowser>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl ConnectObserver for DemoUser {
    fn device_code(&self, info: &DeviceCodeInfo) {
        println!("  device code shown to the user: {}", info.message);
        println!(
            "  (the sandbox's scripted browser now opens {} and signs in as alice@example.test)",
            info.verification_uri
        );
        let (browser, errors, info) = (self.browser.clone(), self.errors.clone(), info.clone());
        tokio::spawn(async move {
            let script = SignIn {
                user: "alice@example.test".into(),
                password: "alice-password".into(),
                mfa_code: None,
                consent: Consent::Accept,
                deliver_redirect: true,
            };
            if let Err(e) = browser
                .complete_device_code(&info.verification_uri, &info.user_code, &script)
                .await
            {
                if let Ok(mut v) = errors.lock() {
                    v.push(e.to_string());
                }
            }
        });
    }

    fn progress(&self, stage: ConnectStage) {
        println!("  . {}", stage.as_str());
    }
}

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

pub async fn run(lang: Language) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = EmulatorConfig::sandbox();
    config.tokens.device_poll_interval_secs = 1;
    step(
        1,
        "Starting the Microsoft identity platform emulator on loopback",
    );
    let emulator = Emulator::start(config).await?;
    println!("  emulator: {}", emulator.base_url());

    let dir = tempfile::tempdir()?;
    let store = dir.path().join("mailconnect.db");
    let mut options = ClientOptions::new(&store);
    options.language = lang;
    let client = Client::open(options)?;
    step(
        2,
        "Registering the app and adding the mailbox alice@example.test",
    );
    let registration = serde_json::json!({
        "id": "contoso-desktop", "provider": "microsoft", "tenant": "organizations",
        "authority_host": emulator.base_url(), "client_id": "d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90"
    });
    client.put_registration_json(&registration.to_string())?;
    client.put_account_json(r#"{"id":"alice","mailbox":"alice@example.test","registration":"contoso-desktop","flow":"device_code"}"#)?;
    println!(
        "  store: {} (tokens encrypted with AES-256-GCM)",
        store.display()
    );

    step(3, "Connect (device code flow)");
    let user = DemoUser {
        browser: Arc::new(ScriptedBrowser::new()),
        errors: Arc::new(Mutex::new(vec![])),
    };
    let status = client
        .connect(
            "alice",
            ConnectOptions::default(),
            &user,
            &CancellationToken::new(),
        )
        .await?;
    if let Ok(errors) = user.errors.lock() {
        for e in errors.iter() {
            println!("  scripted browser: {e}");
        }
    }
    println!(
        "  connected as {}",
        status
            .identity
            .as_ref()
            .and_then(|i| i.username.clone())
            .unwrap_or_default()
    );

    step(4, "Status");
    println!(
        "{}",
        serde_json::to_string_pretty(&client.status("alice")?)?
    );

    step(5, "Access token for the host's own mail code (shown by length only; tokens are never printed)");
    let token = client
        .access_token("alice", &CancellationToken::new())
        .await?;
    let sasl = client
        .sasl_xoauth2("alice", &CancellationToken::new())
        .await?;
    println!(
        "  access token: {} characters, SASL XOAUTH2 string: {} characters",
        secrecy::ExposeSecret::expose_secret(&token.token).len(),
        secrecy::ExposeSecret::expose_secret(&sasl).len()
    );

    step(6, "Disconnect");
    client.disconnect("alice").await?;
    println!(
        "  state: {}",
        serde_json::to_value(client.status("alice")?.state)?
    );

    step(7, "Stopping the emulator");
    emulator.shutdown().await;
    println!("\nDemo finished.");
    Ok(())
}
