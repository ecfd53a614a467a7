//! The README's main command end to end: `sandbox/demo.sh` installs, builds and then runs
//! `mailconnect demo`, which this test runs against the freshly built library: sandbox up, the
//! whole story through the C ABI (libloading), including a tenant that switches SMTP AUTH off
//! while the account sends through `auto`, sandbox down, in well under two minutes.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

fn cdylib() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_mailconnect"));
    let dir = exe.parent().unwrap().to_path_buf();
    for d in [dir.clone(), dir.join("deps")] {
        let p = d.join("libmailconnect.so");
        if p.exists() {
            return p;
        }
    }
    panic!("libmailconnect.so not found near {}", exe.display());
}

#[test]
fn the_demo_runs_the_whole_story_through_the_c_abi() {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_mailconnect"))
        .arg("demo")
        .arg("--lib")
        .arg(cdylib())
        .env_remove("MAILCONNECT_SANDBOX_DIR")
        .output()
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    for needle in [
        // the sandbox comes up and is shown
        "1. Bring the sandbox up",
        "alice-password",
        "CA certificate to trust",
        // through the C ABI
        "ABI 2",
        "mc_registration_put",
        "mc_account_put",
        // the device code shown to the user, and the sign-in command that plays the user
        "the library shows the user: To sign in, use a web browser to open the page",
        "$ mailconnect sandbox sign-in --device-code ",
        "signed in as alice@example.test",
        // status with expiry, test, send, fetch over IMAP and POP3
        "state: connected, signed in as alice@example.test, access token expires",
        "imap  127.0.0.1:",
        "mc_mail_send -> MC_OK",
        "Fetch it back over IMAP",
        "Fetch it back over POP3",
        "found \"mailconnect demo ",
        // an `auto` account: Graph consent at sign-in, Graph in the Test report, SMTP for now
        "\"scopes\":[\"Mail.ReadWrite\",\"Mail.Send\"]",
        "graph http://127.0.0.1:",
        "permissions: User.Read Mail.ReadWrite Mail.Send, can send: yes",
        "transport: auto, sends over smtp",
        // the tenant switches SMTP AUTH off; auto falls back to Graph after one 5.7.139 refusal
        "mc_client_open -> MC_OK",
        "/_sandbox/tenants -> HTTP 200",
        "\"smtp_client_authentication_disabled\":true",
        "mc_message_send -> MC_OK",
        "carried by: graph, 202 Accepted by Microsoft Graph",
        "fallback: yes, from SMTP to Microsoft Graph during this call",
        "library log (warn): SMTP AUTH is disabled for the organisation (tenant)",
        "535): 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant",
        "/smtp_auth_disabled_refusals: 1",
        "transport: auto, sends over graph since ",
        "(reason: smtp_auth_disabled)",
        // remembered: the second message goes straight to Graph, and both arrive
        "fallback: no, straight to graph (the status said \"graph\" just before)",
        "found \"mailconnect demo via auto #1 ",
        "found \"mailconnect demo via auto #2 ",
        // the dying refresh token and its diagnostic in both languages
        "/_sandbox/users/alice@example.test/revoke -> HTTP 200",
        "mc_mail_fetch -> MC_E_REAUTHORIZATION_REQUIRED",
        "diagnostic MC-REFRESH-TOKEN-REVOKED",
        "en: The authorization was revoked",
        "de: Die Autorisierung wurde widerrufen",
        "state: needs_reauthorization (reason: refresh_token_revoked)",
        "mc_account_disconnect -> MC_OK",
        "28 passed, 0 failed",
        "3. Bring the sandbox down",
        "sandbox stopped",
        "Demo finished in",
    ] {
        assert!(text.contains(needle), "'{needle}' missing in:\n{text}");
    }
    let found = text.matches("found \"mailconnect demo ").count();
    assert_eq!(
        found, 4,
        "the SMTP message came back over IMAP and POP3, both Graph messages over IMAP:\n{text}"
    );
    // The fallback happened exactly once, and no built message went over SMTP.
    assert_eq!(text.matches("carried by: graph").count(), 2, "{text}");
    assert!(!text.contains("carried by: smtp"), "{text}");
    assert_eq!(text.matches("fallback: yes").count(), 1, "{text}");
    assert_eq!(
        text.matches("library log (warn): SMTP AUTH is disabled")
            .count(),
        1,
        "one 5.7.139 refusal, logged once:\n{text}"
    );
    assert_eq!(
        text.matches("/smtp_auth_disabled_refusals: 1").count(),
        2,
        "the emulator counted one refusal after each send:\n{text}"
    );
    assert!(!text.contains("FAIL"), "{text}");
    assert!(secs < 120.0, "the demo took {secs:.1} s");
    println!("demo took {secs:.1} s");
}

#[test]
fn the_readme_command_is_the_demo_script_and_it_runs_the_demo() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = std::fs::read_to_string(root.join("sandbox/demo.sh")).unwrap();
    assert!(script.contains("sandbox/stack/install-deps.sh"), "{script}");
    assert!(script.contains("cargo build"), "{script}");
    assert!(script.contains(" demo --lib "), "{script}");
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(root.join("sandbox/demo.sh"))
        .output()
        .unwrap();
    assert!(syntax.status.success(), "{syntax:?}");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains("`bash sandbox/demo.sh`"),
        "the README's main command"
    );
}
