//! The C++ binding (bindings/cpp, cxx bridge in the same library as the C ABI) built with g++ by its
//! Makefile and run against the sandbox and the real mail stack, reading typed results and typed
//! errors, sending a MessageSpec with an umlaut subject and attachments over SMTP and reading it
//! back, graph_token; then its host integration part (host-driven device code, events through
//! next_event and an EventListener thread) with 4-second tokens. The main run stores a real
//! tinyproxy with Basic auth as its proxy (set_proxy, proxy()) and does all of it through that
//! proxy, whose log shows the emulator's requests and the tunnels to IMAP, POP3 and SMTP.

use std::path::Path;
use std::process::Command;

use mailconnect_tests::proxies::{binding_went_through_proxy, HttpProxy, HttpProxyOptions};
use mailconnect_tests::*;

/// The proxy's Basic auth; only unreserved characters, so the URL carries the password as written.
const PROXY_USER: &str = "mccpp";
const PROXY_PASSWORD: &str = "Cpp-pr0xy-8a4b06";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cpp_binding_runs_the_scenario() {
    let cpp = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bindings/cpp");
    let cxx_target = target_dir().parent().unwrap().join("cxx");
    let mut make = Command::new("make");
    make.arg("-C")
        .arg(&cpp)
        .arg(format!("CARGO_TARGET_DIR={}", cxx_target.display()));
    tokio::task::spawn_blocking(move || run_ok(&mut make))
        .await
        .unwrap();

    let env = env().await;
    let stack = MailStack::up(&env.emulator.introspection_url(), &[]);
    let work = tempfile::tempdir().unwrap();
    // Every CONNECT port allowed: the mail stack's are not 443.
    let proxy = HttpProxy::start(HttpProxyOptions {
        basic_auth: Some((PROXY_USER.into(), PROXY_PASSWORD.into())),
        connect_ports: None,
    });
    let args = binding_scenario_args(&env, &stack, &work.path().join("cpp.db"));
    let mut cmd = Command::new(cpp.join("examples/scenario"));
    cmd.args(&args)
        .env("MC_TEST_PROXY", proxy.url_with_credentials());
    let out = tokio::task::spawn_blocking(move || run_ok(&mut cmd))
        .await
        .unwrap();
    println!("{out}");
    assert!(
        !out.contains(PROXY_PASSWORD),
        "the proxy password was printed"
    );
    binding_went_through_proxy(&proxy, &env, &stack, &out, PROXY_PASSWORD);
    for line in [
        " 0 failed",
        "ok registration read back as a struct",
        "ok an unknown account throws MC_E_NOT_FOUND with diagnostic ",
        "ok status connected (state, identity, expiry as members)",
        "ok Test ok for IMAP, POP3, SMTP",
        "ok fetch over IMAP finds the message",
        "ok refresher round report",
        "ok a cancelled disconnect throws MC_E_CANCELLED and changes nothing",
        "ok failing call has the diagnostic",
        "ok the log sink got ",
        "ok send_message over SMTP: transport smtp and a Message-ID",
        "ok the built message came back: umlaut subject, named recipient, both attachments' bytes",
        "ok a message without recipients throws MC_E_INVALID_ARGUMENT naming \"to\"",
        "ok graph_token of a disconnected account throws MC_E_STATE",
    ] {
        assert!(out.contains(line), "{line}:\n{out}");
    }

    // Tokens that need a refresh after 2 s, for the token_refreshed event.
    token_lifetime(&env.emulator, 4);
    let mut args = binding_scenario_args(&env, &stack, &work.path().join("cpp-host.db"));
    args.push("host".into());
    let mut cmd = Command::new(cpp.join("examples/scenario"));
    cmd.args(&args);
    let out = tokio::task::spawn_blocking(move || run_ok(&mut cmd))
        .await
        .unwrap();
    println!("{out}");
    for line in [
        " 0 failed",
        "ok polling until connected (host-driven device code)",
        "ok events in order: connect_progress, state_changed, token_refreshed",
        "ok then needs_reauthorization and its state change, in order",
        "ok the listener stops promptly",
    ] {
        assert!(out.contains(line), "{line}:\n{out}");
    }
}
