//! The C++ binding (bindings/cpp, cxx bridge in the same library as the C ABI) built with g++ by its
//! Makefile and run against the sandbox and the real mail stack.

use std::path::Path;
use std::process::Command;

use mailconnect_tests::*;

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
    let store = work.path().join("cpp.db").display().to_string();
    let (imaps, pop3s, smtp) = (
        stack.port("imap_tls").to_string(),
        stack.port("pop3_tls").to_string(),
        stack.port("smtp_starttls").to_string(),
    );
    let ca = stack.info["ca_pem"].as_str().unwrap().to_string();
    let cli = target_dir().join("mailconnect").display().to_string();
    let mut cmd = Command::new(cpp.join("examples/scenario"));
    cmd.args([
        store.as_str(),
        env.emulator.base_url(),
        &cli,
        "127.0.0.1",
        &imaps,
        &pop3s,
        &smtp,
        &ca,
    ]);
    let out = tokio::task::spawn_blocking(move || run_ok(&mut cmd))
        .await
        .unwrap();
    assert!(
        out.contains(" 0 failed") && out.contains("ok failing call has the diagnostic"),
        "{out}"
    );
}
