//! The Delphi / Free Pascal unit (bindings/pascal) compiled with fpc in Delphi mode and run against
//! the sandbox and the real mail stack (registrations and accounts, the log callback, a triggered
//! cancel, device-code and browser connects, the refresher, Test, tokens, mail, a TMcMessage with an
//! umlaut subject and attachments sent over SMTP and read back, GraphToken); then its host
//! integration part with 4-second tokens on a host-owned store kept in a Pascal TDictionary
//! (host-driven device code, a cancelled refresh, events through a TThread handing them to the main
//! thread with TThread.Queue, a second client on the same store). The main run stores a real
//! tinyproxy with Basic auth as its proxy (SetProxy, GetProxy) and does all of it through that
//! proxy, whose log shows the emulator's requests and the tunnels to IMAP, POP3 and SMTP.

use std::path::Path;
use std::process::Command;

use mailconnect_tests::proxies::{binding_went_through_proxy, HttpProxy, HttpProxyOptions};
use mailconnect_tests::*;

/// The proxy's Basic auth; only unreserved characters, so the URL carries the password as written.
const PROXY_USER: &str = "mcpascal";
const PROXY_PASSWORD: &str = "Pas-pr0xy-3d7f91";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pascal_unit_runs_the_scenario() {
    let env = env().await;
    let stack = MailStack::up(&env.emulator.introspection_url(), &[]);
    let work = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bindings/pascal");
    let out = run_ok(
        Command::new("fpc")
            .args(["-Mdelphi", "-vew", "-Sew"])
            .arg(format!("-Fu{}", src.display()))
            .arg(format!("-FE{}", work.path().display()))
            .arg(format!("-Fl{}", cdylib_dir().display()))
            .arg(src.join("tests/scenario.pas")),
    );
    assert!(!out.contains("Warning:"), "{out}");
    let exe = work.path().join("scenario");
    // Every CONNECT port allowed: the mail stack's are not 443.
    let proxy = HttpProxy::start(HttpProxyOptions {
        basic_auth: Some((PROXY_USER.into(), PROXY_PASSWORD.into())),
        connect_ports: None,
    });
    let args = binding_scenario_args(&env, &stack, &work.path().join("pas.db"));
    let mut cmd = Command::new(&exe);
    cmd.args(&args)
        .env("LD_LIBRARY_PATH", cdylib_dir())
        .env("MC_TEST_PROXY", proxy.url_with_credentials());
    let out = tokio::task::spawn_blocking(move || run_ok(&mut cmd))
        .await
        .unwrap();
    assert!(
        !out.contains(PROXY_PASSWORD),
        "the proxy password was printed"
    );
    binding_went_through_proxy(&proxy, &env, &stack, &out, PROXY_PASSWORD);
    for line in [
        " 0 failed",
        "ok fetch over IMAP finds the message",
        "ok Registration reads the registration back",
        "ok RemoveRegistration: Registration raises MC_E_NOT_FOUND afterwards",
        "ok RemoveRegistration of a registration in use raises MC_E_STATE",
        "ok Connect with a triggered cancel raises MC_E_CANCELLED, no device code shown",
        "ok OnOpenUrl showed the sign-in page once",
        "ok RemoveAccount removed only that account",
        "ok RunRefresher: one account, fresh",
        "ok StartRefresher while it runs raises MC_E_STATE",
        "ok Disconnect with a triggered cancel raises MC_E_CANCELLED",
        "ok the cancelled disconnect left the account connected",
        "ok the log callback received the disconnect's record",
        "ok no log record holds the access token",
        "ok no records after SetLogCallback(nil)",
        "ok McMessageJson",
        "ok a reauthorization_due event has At and Code",
        "ok SendMessage over SMTP: transport smtp and a Message-ID",
        "ok the built message came back: umlaut subject, named recipient, both attachments' bytes",
        "ok a message without recipients raises MC_E_INVALID_ARGUMENT naming \"to\"",
        "ok GraphToken of a disconnected account raises MC_E_STATE",
    ] {
        assert!(out.contains(line), "{line}:\n{out}");
    }

    // Tokens that need a refresh after 2 s, for the token_refreshed event.
    token_lifetime(&env.emulator, 4);
    let mut args = binding_scenario_args(&env, &stack, &work.path().join("pas-host.db"));
    args.push("host".into());
    let mut cmd = Command::new(&exe);
    cmd.args(&args).env("LD_LIBRARY_PATH", cdylib_dir());
    let out = tokio::task::spawn_blocking(move || run_ok(&mut cmd))
        .await
        .unwrap();
    for line in [
        " 0 failed",
        "ok polling until connected (host-driven device code)",
        "ok events in order: connect_progress, state_changed, token_refreshed",
        "ok then needs_reauthorization and its state change, in order",
        "ok TThread.Queue delivers the events on the main thread",
        "ok the client keeps registrations, accounts and tokens in the host's TDictionary",
        "ok the host's TDictionary holds opaque blobs only",
        "ok a second client on the same host store finds carol connected",
        "ok AccessToken with a triggered cancel raises MC_E_CANCELLED",
        "ok the cancelled refresh left the host's token row as it was",
        "ok the refresh wrote a new version of the host's token row",
        "ok Disconnect removed the token row from the host's TDictionary",
    ] {
        assert!(out.contains(line), "{line}:\n{out}");
    }
}
