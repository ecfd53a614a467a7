//! Runs the C test programs (tests/c/*.c, written against include/mailconnect.h and
//! include/mailconnect_store.h, ABI 2) against the cdylib and the sandbox, built with
//! gcc -std=c11 -Wall -Wextra -Werror, plainly and under AddressSanitizer. The programs print the
//! device code or the sign-in URL; this driver completes the sign-in with the scripted browser, as
//! a person would.

use std::path::{Path, PathBuf};
use std::process::Command;

use mailconnect_tests::*;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn compile(asan: bool) -> PathBuf {
    compile_program("mc_scenario", asan, &[])
}

fn compile_program(name: &str, asan: bool, libs: &[&str]) -> PathBuf {
    let out = std::env::temp_dir().join(format!(
        "{name}_{}{}",
        std::process::id(),
        if asan { "_asan" } else { "" }
    ));
    let lib = cdylib_dir();
    let mut cmd = Command::new("gcc");
    cmd.args([
        "-std=c11",
        "-D_POSIX_C_SOURCE=200809L",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-g",
    ]);
    if asan {
        cmd.args(["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]);
    }
    cmd.arg(format!("-I{}", workspace().join("include").display()))
        .arg(workspace().join(format!("tests/c/{name}.c")))
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lmailconnect")
        .args(libs)
        .arg("-o")
        .arg(&out);
    let st = cmd.status().expect("gcc runs");
    assert!(st.success(), "the C program compiles warning-free");
    out
}

/// Run the program; complete sign-ins it asks for as alice. Returns stdout.
async fn run(exe: &Path, args: &[&str], asan: bool) -> String {
    let mut cmd = Command::new(exe);
    cmd.args(args);
    if asan {
        // Leaks inside the Rust runtime's thread pools are not the C host's; UB and memory errors are.
        cmd.env("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1")
            .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1");
    }
    run_signing_in(cmd).await
}

async fn scenario(asan: bool) {
    let env = env().await;
    let exe = compile(asan);
    let store = env.dir.path().join("c.db");
    let store = store.to_str().unwrap();
    let url = env.emulator.base_url().to_string();
    let out = run(&exe, &["connect-device", store, &url], asan).await;
    assert!(out.contains("PASS 0 failures"), "{out}");
    let out = run(&exe, &["check-connected", store], asan).await;
    assert!(
        out.contains("second process finds the account connected"),
        "{out}"
    );
    // Short-lived tokens from here on: the refresh step sees one become due.
    token_lifetime(&env.emulator, 4);
    let out = run(&exe, &["connect-browser", store, &url], asan).await;
    assert!(out.contains("ok the open-URL callback ran once"), "{out}");
    assert!(out.contains("ok mc_registration_get"), "{out}");
    let out = run(&exe, &["refresh", store], asan).await;
    for line in [
        "ok once the refresh is due, mc_token_get with a triggered cancel returns MC_E_CANCELLED",
        "ok a call with a triggered cancel never refreshes the token",
        "ok a new access token after the first expired",
        "PASS 0 failures",
    ] {
        assert!(out.contains(line), "{line}:\n{out}");
    }
    let out = run(&exe, &["disconnect", store], asan).await;
    assert!(out.contains("PASS 0 failures"), "{out}");
    assert!(
        out.contains("ok the cancelled disconnect left the account connected"),
        "{out}"
    );
    let _ = std::fs::remove_file(exe);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_program_connects_by_device_code_and_browser_and_a_second_process_sees_it() {
    scenario(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_program_is_clean_under_address_sanitizer() {
    scenario(true).await;
}

/// The C host keeping blobs in its own SQLite table through the store callbacks: connect (device
/// code driven by the host) -> Test against Dovecot and Postfix -> refresh -> disconnect, under
/// ASan; then a host whose column truncates blobs gets MC-TOKEN-TRUNCATED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_host_keeps_tokens_in_its_own_table_through_the_store_callbacks() {
    let env = env().await;
    token_lifetime(&env.emulator, 4);
    let stack = MailStack::up(&env.emulator.introspection_url(), &[]);
    let exe = compile_program("host_store", true, &["-lsqlite3", "-pthread"]);
    let db = env.dir.path().join("vendor.db");
    let url = env.emulator.base_url().to_string();
    let (imaps, pop3s, smtp) = (
        stack.port("imap_tls").to_string(),
        stack.port("pop3_tls").to_string(),
        stack.port("smtp_starttls").to_string(),
    );
    let ca = stack.info["ca_pem"].as_str().unwrap().to_string();
    let out = run(
        &exe,
        &[
            "story",
            db.to_str().unwrap(),
            &url,
            "127.0.0.1",
            &imaps,
            &pop3s,
            &smtp,
            &ca,
        ],
        true,
    )
    .await;
    assert!(out.contains("PASS 0 failures"), "{out}");
    assert!(
        out.contains("ok mc_account_test against Dovecot and Postfix"),
        "{out}"
    );
    assert!(out.contains("\"type\":\"token_refreshed\""), "{out}");
    assert!(
        out.contains("ok the cancelled refreshes left the host's token row as it was"),
        "{out}"
    );
    let db2 = env.dir.path().join("vendor-short.db");
    let out = run(&exe, &["truncate", db2.to_str().unwrap(), &url], true).await;
    assert!(out.contains("PASS 0 failures"), "{out}");
    let _ = std::fs::remove_file(exe);
}

/// Bad input through the C ABI from a C host (tests/c/bad_input.c), under ASan: NULL pointers,
/// invalid UTF-8, 2 MiB strings, bad JSON and options, unknown accounts and handles, wrong hosts,
/// NULL-safe frees; after each failure the last error matches the returned code. No sandbox: every
/// case is refused before any server would be contacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_abi_refuses_bad_input_from_a_c_host_under_address_sanitizer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = compile_program("bad_input", true, &[]);
    let store = dir.path().join("bad-input.db");
    let out = run(&exe, &[store.to_str().unwrap()], true).await;
    assert!(out.contains("PASS 0 failures"), "{out}");
    assert!(
        out.contains("ok mc_result_name_get of unknown codes"),
        "{out}"
    );
    assert!(
        out.contains("ok mc_store_list_add invalid UTF-8 id -> MC_E_INVALID_UTF8"),
        "the store-callback probes ran:\n{out}"
    );
    for line in [
        "ok mc_registration_get NULL id -> MC_E_NULL_POINTER",
        "ok mc_registration_get shows has_client_secret, never the secret",
        "ok mc_token_get unknown account, cancel triggered -> MC_E_NOT_FOUND",
        "ok mc_account_disconnect with a cancel triggered before the call -> MC_E_CANCELLED",
        "ok the cancelled mc_account_disconnect left the account",
    ] {
        assert!(out.contains(line), "{line}:\n{out}");
    }
    let _ = std::fs::remove_file(exe);
}
