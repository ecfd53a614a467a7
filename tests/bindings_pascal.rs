//! The Delphi / Free Pascal unit (bindings/pascal) compiled with fpc in Delphi mode and run against
//! the sandbox and the real mail stack; then its host integration part (host-driven device code,
//! events through a TThread handing them to the main thread with TThread.Queue) with 4-second tokens.

use std::path::Path;
use std::process::Command;

use mailconnect_tests::*;

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
    let args = binding_scenario_args(&env, &stack, &work.path().join("pas.db"));
    let mut cmd = Command::new(&exe);
    cmd.args(&args).env("LD_LIBRARY_PATH", cdylib_dir());
    let out = tokio::task::spawn_blocking(move || run_ok(&mut cmd))
        .await
        .unwrap();
    assert!(
        out.contains(" 0 failed") && out.contains("ok fetch over IMAP finds the message"),
        "{out}"
    );

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
    ] {
        assert!(out.contains(line), "{line}:\n{out}");
    }
}
