//! mailconnect.dll and mailconnect.exe, built for Windows by ffi/windows/build.sh, run under Wine
//! against the sandbox on loopback (the emulator, real Dovecot and Postfix), driven by MinGW-built C
//! hosts written only from include/mailconnect.h and include/mailconnect_store.h (ABI 2). The
//! 32-bit host is compiled with `-mrtd` (stdcall as the default calling convention, as some Delphi
//! and Visual C++ projects have), so it only works if the headers' `MC_CALL` (cdecl) annotations
//! are right.
//!
//! Skipped (with a message) when the Windows build is missing; `bash tests/windows/run.sh` builds
//! it and runs this with MAILCONNECT_REQUIRE_WINDOWS=1, where a missing build fails.
//! Wine is not Windows: docs/integration.md says what these tests prove and what needs a real one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mailconnect_sandbox::ScriptedBrowser;
use mailconnect_tests::proxies::{HttpProxy, HttpProxyOptions};
use mailconnect_tests::wine::{self, Arch, Prefix};
use mailconnect_tests::*;

/// What a Windows program did.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Run `cmd`, playing the user for every sign-in it asks for: a `DEVICE code uri` or `OPEN url` line
/// on its stdout, or a URL the stand-in browser (`wincheck browse`) wrote to `browse_log`.
///
/// Output goes to files, not pipes: the first program of a Wine session starts the wineserver and
/// Wine's system processes, which inherit its standard handles and may outlive it (a pipe would
/// then never reach its end). The files are read as the program writes them.
async fn drive(mut cmd: Command, browse_log: Option<PathBuf>) -> Run {
    let dir = tempfile::tempdir().expect("output dir");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    cmd.stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"));
    let mut child = cmd.spawn().expect("the Windows program starts under Wine");
    let browser = ScriptedBrowser::new();
    let mut out = String::new();
    let mut consumed = 0;
    let mut browsed = browse_log.is_none();
    let status = loop {
        // Whether it has ended is asked before reading, so the last read sees all it wrote.
        let ended = child.try_wait().expect("wait");
        let text = std::fs::read(&out_path).unwrap_or_default();
        while let Some(nl) = text[consumed..].iter().position(|b| *b == b'\n') {
            let line = String::from_utf8_lossy(&text[consumed..consumed + nl]).into_owned();
            consumed += nl + 1;
            play_sign_in_line(&browser, &line).await;
            out.push_str(&line);
            out.push('\n');
        }
        if let (false, Some(log)) = (browsed, &browse_log) {
            if let Some(url) = std::fs::read_to_string(log)
                .ok()
                .and_then(|t| t.lines().next().map(str::to_string))
            {
                play_sign_in_line(&browser, &format!("BROWSER {url}")).await;
                out.push_str(&format!("BROWSER {url}\n"));
                browsed = true;
            }
        }
        if let Some(status) = ended {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    Run {
        ok: status.success(),
        stdout: out,
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// Run `cmd` to its end with its output in files (see [`drive`]): (success, stdout + stderr).
fn run_to_end(cmd: &mut Command) -> (bool, String) {
    let dir = tempfile::tempdir().expect("output dir");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let status = cmd
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .status()
        .expect("the Windows program starts under Wine");
    let text = format!(
        "{}{}",
        std::fs::read_to_string(&out_path).unwrap_or_default(),
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    (status.success(), text)
}

/// Run a C host that must pass every check.
async fn pass(cmd: Command, what: &str) -> String {
    let r = drive(cmd, None).await;
    assert!(
        r.ok && r.stdout.contains("PASS 0 failures"),
        "{what} failed under Wine:\n{}",
        r.all()
    );
    r.stdout
}

/// Run mailconnect.exe; return its output (asserting success when `must_succeed`).
fn cli(prefix: &Prefix, arch: Arch, args: &[&str], must_succeed: bool) -> String {
    let exe = wine::artifacts(arch).join("mailconnect.exe");
    let (ok, text) = run_to_end(prefix.command(arch, &exe).args(args));
    if must_succeed {
        assert!(ok, "mailconnect.exe {args:?} failed:\n{text}");
    }
    text
}

fn scenario_exe(arch: Arch) -> PathBuf {
    let flags: &[&str] = match arch {
        // stdcall by default: only MC_CALL in the header keeps calls and callbacks cdecl.
        Arch::X86 => &["-mrtd"],
        Arch::X64 => &[],
    };
    // -municode: the program starts at wmain and gets its arguments in UTF-16.
    wine::compile(arch, "tests/c/mc_scenario.c", flags, &["-municode"])
}

fn wincheck(arch: Arch) -> PathBuf {
    wine::compile(arch, "tests/windows/wincheck.c", &[], &["-lversion"])
}

/// The key file of a store, parsed.
fn key_file(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("key file");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("the key file is not JSON ({e}): {text}"))
}

/// Connect by device code, Test over IMAP/POP3/SMTP against Dovecot and Postfix, send, fetch over
/// IMAP and POP3, a refresh, a second process, the command line (status, token, test, service
/// --once), disconnect; in a store under a user folder with a non-ASCII name and a space.
async fn the_whole_story(arch: Arch) {
    if wine::windows_dir().is_none() {
        return;
    }
    let env = env().await;
    // Short-lived access tokens: the refresh step sees one expire.
    token_lifetime(&env.emulator, 8);
    let stack = MailStack::up(&env.emulator.introspection_url(), &[]);
    let prefix = Prefix::new(&format!("story-{}", arch.name()));
    let exe = scenario_exe(arch);
    let store = r"C:\Users\Jürgen\AppData\Local\Acme Mail\mailconnect.db";
    let url = env.emulator.base_url().to_string();
    let ca = wine::z_path(Path::new(stack.info["ca_pem"].as_str().expect("ca_pem")));
    let (imaps, pop3s, smtp) = (
        stack.port("imap_tls").to_string(),
        stack.port("pop3_tls").to_string(),
        stack.port("smtp_starttls").to_string(),
    );
    let host = |args: &[&str]| {
        let mut c = prefix.command(arch, &exe);
        c.args(args);
        c
    };
    let out = pass(host(&["connect-device", store, &url]), "connect-device").await;
    assert!(
        out.contains("ok the device-code callback ran once"),
        "{out}"
    );
    let out = pass(
        host(&["mail", store, "127.0.0.1", &imaps, &pop3s, &smtp, &ca]),
        "mail",
    )
    .await;
    for step in [
        "ok mc_account_test all protocols ok",
        "ok mc_mail_send",
        "ok mc_mail_fetch over IMAP finds the message sent from C",
        "ok mc_mail_fetch over POP3",
    ] {
        assert!(out.contains(step), "missing '{step}':\n{out}");
    }
    let out = pass(host(&["refresh", store]), "refresh").await;
    assert!(out.contains("ok a new access token"), "{out}");
    let out = pass(host(&["check-connected", store]), "check-connected").await;
    assert!(
        out.contains("second process finds the account connected"),
        "{out}"
    );

    // The files: the store under the non-ASCII folder, the key protected with DPAPI (user scope).
    let dir = prefix.c_drive("users/Jürgen/AppData/Local/Acme Mail");
    assert!(
        dir.join("mailconnect.db").exists(),
        "the store is where the path says"
    );
    let key = key_file(&dir.join("mailconnect.db.key"));
    assert_eq!(key["protection"], "dpapi", "{key}");
    assert_eq!(key["scope"], "user", "{key}");
    assert!(
        key["machine"].as_str().is_some_and(|m| m.len() == 16),
        "{key}"
    );

    // The command line on the same store.
    let status = cli(&prefix, arch, &["--store", store, "--json", "status"], true);
    assert!(status.contains("\"state\":\"connected\""), "{status}");
    let token = cli(&prefix, arch, &["--store", store, "token", "alice"], true);
    assert!(token.trim().len() > 500, "a token on stdout: {token}");
    let sasl = cli(
        &prefix,
        arch,
        &["--store", store, "token", "alice", "--sasl"],
        true,
    );
    assert!(
        sasl.starts_with("dXNlcj1hbGljZUBleGFtcGxlLnRlc3QB"),
        "{sasl}"
    );
    let test = cli(
        &prefix,
        arch,
        &[
            "--store",
            store,
            "--ca-file",
            &ca,
            "--lang",
            "de",
            "test",
            "alice",
        ],
        true,
    );
    assert!(
        test.contains("imap")
            && test.contains("pop3")
            && test.contains("smtp")
            && !test.contains("failed"),
        "{test}"
    );
    let round = cli(
        &prefix,
        arch,
        &["--store", store, "--lang", "en", "service", "--once"],
        true,
    );
    assert!(round.contains("round: 1 accounts"), "{round}");

    let out = pass(host(&["disconnect", store]), "disconnect").await;
    assert!(out.contains("ok status not_connected"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_story_through_the_64_bit_dll() {
    the_whole_story(Arch::X64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_story_through_the_32_bit_dll_from_a_stdcall_default_host() {
    the_whole_story(Arch::X86).await;
}

/// The C bad-input checks (tests/c/bad_input.c) against the Windows DLLs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_from_c_hosts_on_both_architectures() {
    if wine::windows_dir().is_none() {
        return;
    }
    let prefix = Prefix::new("bad-input");
    for arch in [Arch::X64, Arch::X86] {
        let flags: &[&str] = if arch == Arch::X86 { &["-mrtd"] } else { &[] };
        let exe = wine::compile(arch, "tests/c/bad_input.c", flags, &[]);
        let store = format!(r"C:\bad-input-{}\store.db", arch.name());
        let mut c = prefix.command(arch, &exe);
        c.arg(&store);
        pass(c, &format!("bad_input ({})", arch.name())).await;
    }
}

/// A store written by a 64-bit process is read by a 32-bit one (the DPAPI key and the machine
/// id read from the registry's 64-bit view); the same files on another Windows installation
/// cannot be opened and the error says why (MC-STORE-KEY-PROTECTED), in the host's language.
/// A plain key file where the default DPAPI one belongs is protected on first use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpapi_store_is_shared_by_processes_but_refused_on_another_computer() {
    if wine::windows_dir().is_none() {
        return;
    }
    let env = env().await;
    let prefix = Prefix::new("dpapi");
    let store = r"C:\ProgramData\Acme\mailconnect.db";
    let url = env.emulator.base_url().to_string();
    let mut c = prefix.command(Arch::X64, &scenario_exe(Arch::X64));
    c.args(["connect-device", store, &url]);
    pass(c, "connect-device (64-bit)").await;
    let mut c = prefix.command(Arch::X86, &scenario_exe(Arch::X86));
    c.args(["check-connected", store]);
    let out = pass(c, "check-connected (32-bit)").await;
    assert!(out.contains("second process gets a token"), "{out}");

    let other = Prefix::other_computer("dpapi-other");
    let from = prefix.c_drive("ProgramData/Acme");
    let to = other.c_drive("ProgramData/Acme");
    std::fs::create_dir_all(&to).expect("dir");
    for f in ["mailconnect.db", "mailconnect.db.key"] {
        std::fs::copy(from.join(f), to.join(f)).expect("copy the store");
    }
    let mut c = other.command(Arch::X64, &scenario_exe(Arch::X64));
    c.args(["check-connected", store]);
    let r = drive(c, None).await;
    assert!(!r.ok, "a copied store must not open:\n{}", r.all());
    let all = r.all();
    assert!(
        all.contains("MC-STORE-KEY-PROTECTED")
            && all.contains("DPAPI")
            && all.contains("another computer"),
        "the refusal names the cause:\n{all}"
    );
    let text = cli(
        &other,
        Arch::X64,
        &["--store", store, "--lang", "de", "status"],
        false,
    );
    assert!(
        text.contains("Der Tokenspeicher gehört zu einem anderen Computer")
            && text.contains("MC-STORE-KEY-PROTECTED"),
        "the command explains it in German:\n{text}"
    );

    // Machine scope (a program and its service) and the upgrade of a plain key file.
    let plain = prefix.c_drive("Acme2/mailconnect.db.key");
    std::fs::create_dir_all(plain.parent().expect("dir")).expect("dir");
    std::fs::write(&plain, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").expect("plain key");
    cli(
        &prefix,
        Arch::X64,
        &[
            "--store",
            r"C:\Acme2\mailconnect.db",
            "--key-protection",
            "machine",
            "status",
        ],
        true,
    );
    let key = key_file(&plain);
    assert_eq!(key["scope"], "machine", "{key}");
    assert!(
        !key.to_string()
            .contains("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"),
        "the plain key is gone from the file"
    );
    // The service's account opens it (under Wine every process is the same user; on Windows
    // machine scope is what lets LocalSystem open what the program's user created).
    cli(
        &prefix,
        Arch::X86,
        &[
            "--store",
            r"C:\Acme2\mailconnect.db",
            "--key-protection",
            "machine",
            "status",
        ],
        true,
    );
}

/// Owner-only files: the store and the key file refuse other users. Wine maps the protected DACL
/// with the user's SID alone to Unix mode bits (no group/other read); on Windows it is that DACL.
/// Paths as Windows users write them: a UNC share and forward slashes (the non-ASCII user folder is
/// in the story tests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_paths_and_owner_only_files() {
    if wine::windows_dir().is_none() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let prefix = Prefix::new("acl");
    // \\fileserver\acme is a share Wine maps to a folder (dosdevices/unc/SERVER/SHARE).
    let share = prefix.dir.join("share");
    std::fs::create_dir_all(prefix.dir.join("dosdevices/unc/fileserver")).expect("unc dir");
    std::fs::create_dir_all(&share).expect("share");
    std::os::unix::fs::symlink(&share, prefix.dir.join("dosdevices/unc/fileserver/acme"))
        .expect("share link");
    cli(
        &prefix,
        Arch::X64,
        &["--store", r"\\fileserver\acme\Mail Store\mc.db", "status"],
        true,
    );
    assert!(share.join("Mail Store/mc.db").exists() && share.join("Mail Store/mc.db.key").exists());
    cli(
        &prefix,
        Arch::X86,
        &["--store", r"\\fileserver\acme\Mail Store\mc.db", "status"],
        true,
    );
    cli(
        &prefix,
        Arch::X64,
        &["--store", "C:/forward/slashes/mc.db", "status"],
        true,
    );
    assert!(prefix.c_drive("forward/slashes/mc.db.key").exists());
    cli(
        &prefix,
        Arch::X64,
        &["--store", r"C:\acl\mc.db", "status"],
        true,
    );
    let check = wincheck(Arch::X64);
    let sid = {
        let (_, out) = run_to_end(prefix.command(Arch::X64, &check).arg("sid"));
        out.trim()
            .strip_prefix("SID ")
            .expect("SID line")
            .to_string()
    };
    // A file Windows creates with its defaults, for comparison.
    std::fs::write(prefix.c_drive("acl/plain.txt"), "x").expect("plain file");
    for f in ["mc.db", "mc.db.key"] {
        let path = prefix.c_drive(&format!("acl/{f}"));
        let mode = std::fs::metadata(&path).expect("file").permissions().mode();
        assert_eq!(mode & 0o077 & !0o050, 0, "{f}: mode {mode:o}");
        assert_eq!(
            mode & 0o007,
            0,
            "{f}: others have no access (mode {mode:o})"
        );
        let (_, text) = run_to_end(
            prefix
                .command(Arch::X64, &check)
                .args(["acl", &format!(r"C:\acl\{f}")]),
        );
        assert!(text.contains(&sid), "{f}: the owner has access: {text}");
        assert!(
            !text.contains(";;;WD)") && !text.contains(";;;BU)") && !text.contains(";;;AU)"),
            "{f}: no entry for Everyone, Users or Authenticated Users: {text}"
        );
    }
    let plain = std::fs::metadata(prefix.c_drive("acl/plain.txt"))
        .expect("plain")
        .permissions()
        .mode();
    assert_ne!(
        plain & 0o004,
        0,
        "the comparison file is world-readable ({plain:o})"
    );
}

/// rustls-platform-verifier on Windows verifies through crypt32's chain engine and the system's
/// Trusted Root store: a CA the system trusts is trusted without `extra_ca_file`; before, it is not.
/// Wine 8 fills that Root store from the host's CA bundle once per Wine session (wineserver) and
/// keeps nothing added to it through the certificate store API, so the CA is added where Wine's Root
/// store comes from: the host bundle, in a private mount namespace seen only by the Wine session
/// started for it. The servers are named `localhost` (in the certificate's SAN): Wine's SSL policy
/// does not match IP-address SANs, which Windows does, and it wants a revocation answer (it ignores
/// CERT_CHAIN_POLICY_IGNORE_ALL_REV_UNKNOWN_FLAGS): the stack's certificate names a CRL, served here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_the_windows_root_store_trusts_needs_no_extra_ca_file() {
    if wine::windows_dir().is_none() {
        return;
    }
    let env = env().await;
    let (crl, crl_port) = loopback_listener();
    let stack = MailStack::up_with(
        &env.emulator.introspection_url(),
        &[],
        &["--crl-url", &format!("http://127.0.0.1:{crl_port}/ca.crl")],
    );
    serve(
        crl,
        std::fs::read(stack.dir.path().join("tls/ca.crl")).expect("the stack's CRL"),
        "application/pkix-crl",
    );
    let prefix = Prefix::new("certstore");
    let exe = scenario_exe(Arch::X64);
    let store = r"C:\certs\mc.db";
    let url = env.emulator.base_url().to_string();
    let args = [
        "mail".to_string(),
        store.to_string(),
        "localhost".to_string(),
        stack.port("imap_tls").to_string(),
        stack.port("pop3_tls").to_string(),
        stack.port("smtp_starttls").to_string(),
    ];
    let mut c = prefix.command(Arch::X64, &exe);
    c.args(["connect-device", store, &url]);
    pass(c, "connect-device").await;
    let mut c = prefix.command(Arch::X64, &exe);
    c.args(&args);
    let before = drive(c, None).await;
    assert!(
        !before.ok,
        "the stack's CA is not trusted yet:\n{}",
        before.all()
    );
    assert!(
        before.all().contains("MC-TLS-UNTRUSTED"),
        "the Test report names the untrusted certificate:\n{}",
        before.all()
    );
    let system = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    let bundle = prefix.dir.join("roots.pem");
    std::fs::write(&bundle, [system, stack.ca_pem()].concat()).expect("bundle");
    prefix.end_session();
    let c = prefix.command_with_system_roots(Arch::X64, &exe, &bundle, &args);
    let out = pass(c, "mail with the CA in the system's Root store").await;
    assert!(out.contains("ok mc_account_test all protocols ok"), "{out}");
}

/// The browser flow without a host callback: mailconnect asks the shell to open the sign-in page
/// (ShellExecute runs the handler registered for http links, here a stand-in browser that records
/// the URL), listens on 127.0.0.1 only, and the redirect completes the sign-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_browser_is_the_registered_http_handler_and_the_listener_is_loopback_only() {
    if wine::windows_dir().is_none() {
        return;
    }
    let env = env().await;
    let prefix = Prefix::new("browser");
    let tools = prefix.c_drive("tools");
    std::fs::create_dir_all(&tools).expect("tools dir");
    std::fs::copy(wincheck(Arch::X64), tools.join("wincheck.exe")).expect("copy wincheck");
    std::fs::copy(
        wine::artifacts(Arch::X64).join("mailconnect.dll"),
        tools.join("mailconnect.dll"),
    )
    .expect("copy DLL");
    // The handler registered for web links machine-wide (what a browser installed for all users
    // writes; Wine's shell, unlike Windows 10's, does not read HKCU's per-user choice).
    for key in [
        r"HKLM\Software\Classes\http\shell\open\command",
        r"HKLM\Software\Classes\https\shell\open\command",
    ] {
        prefix.reg_add(key, "", "REG_SZ", r#""C:\tools\wincheck.exe" browse "%1""#);
    }
    let log = prefix.dir.join("browse.log");
    let mut c = prefix.command(Arch::X64, &scenario_exe(Arch::X64));
    c.args([
        "connect-system-browser",
        r"C:\browser\mc.db",
        env.emulator.base_url(),
    ])
    .env("WINCHECK_BROWSE_LOG", wine::z_path(&log));
    // Watch the listener while the sign-in page is open.
    let watch_log = log.clone();
    let listener = std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(300) {
            if let Some(url) = std::fs::read_to_string(&watch_log)
                .ok()
                .and_then(|t| t.lines().next().map(str::to_string))
            {
                let port = url::Url::parse(&url)
                    .ok()
                    .and_then(|u| {
                        u.query_pairs()
                            .find(|(k, _)| k == "redirect_uri")
                            .map(|(_, v)| v.into_owned())
                    })
                    .and_then(|r| url::Url::parse(&r).ok())
                    .and_then(|r| r.port());
                let ss = Command::new("ss").args(["-ltnH"]).output().ok();
                return (
                    url,
                    port,
                    ss.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()),
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the stand-in browser was never started");
    });
    let r = drive(c, Some(log)).await;
    assert!(
        r.ok && r.stdout.contains("PASS 0 failures"),
        "connect through the system browser:\n{}",
        r.all()
    );
    assert!(
        r.stdout
            .contains("ok no callback ran: the system browser showed the sign-in"),
        "{}",
        r.stdout
    );
    let (url, port, ss) = listener.join().expect("watcher");
    assert!(url.contains("/oauth2/v2.0/authorize?"), "{url}");
    let port = port.expect("the redirect URI has the listener's port");
    let ss = ss.expect("ss runs");
    let lines: Vec<&str> = ss
        .lines()
        .filter(|l| l.contains(&format!(":{port} ")))
        .collect();
    assert!(
        !lines.is_empty()
            && lines
                .iter()
                .all(|l| l.contains(&format!("127.0.0.1:{port}"))),
        "the listener is bound to 127.0.0.1:{port} only (no firewall prompt on Windows):\n{ss}"
    );
}

/// Internet Options' `DefaultConnectionSettings` (what the Internet Options dialog writes and
/// WinHTTP reads): flags 2 = proxy server, 4 = automatic configuration script, 8 = detect.
fn connection_settings(flags: u32, proxy: &str, bypass: &str, pac: &str) -> String {
    let mut b = Vec::new();
    b.extend_from_slice(&0x46u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&(flags | 1).to_le_bytes());
    for s in [proxy, bypass, pac] {
        b.extend_from_slice(&(s.len() as u32).to_le_bytes());
        b.extend_from_slice(s.as_bytes());
    }
    b.extend_from_slice(&[0u8; 32]);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Answer every HTTP request on `listener` with `body` (a PAC script, a CRL).
fn serve(listener: std::net::TcpListener, body: Vec<u8>, content_type: &'static str) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut s = stream;
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = std::io::Write::write_all(&mut s, head.as_bytes());
            let _ = std::io::Write::write_all(&mut s, &body);
        }
    });
}

fn loopback_listener() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (listener, port)
}

/// No proxy in the options or the environment: the identity provider is reached through the proxy
/// Internet Options name, first as a fixed proxy server, then through a PAC script WinHTTP runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_windows_system_proxy_is_used_when_nothing_else_names_one() {
    if wine::windows_dir().is_none() {
        return;
    }
    let env = env().await;
    let emulator_port = url::Url::parse(env.emulator.base_url())
        .expect("url")
        .port()
        .expect("port");
    let key = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings\Connections";
    let url = env.emulator.base_url().to_string();

    // 1. "Use a proxy server" with "<-loopback>": the emulator on 127.0.0.1 goes through it too.
    let proxy = HttpProxy::start(HttpProxyOptions::default());
    let prefix = Prefix::new("proxy-fixed");
    let proxy_addr = format!("127.0.0.1:{}", proxy.port());
    prefix.reg_add(
        key,
        "DefaultConnectionSettings",
        "REG_BINARY",
        &connection_settings(2, &proxy_addr, "<-loopback>", ""),
    );
    let mut c = prefix.command(Arch::X64, &scenario_exe(Arch::X64));
    c.args(["connect-device", r"C:\proxy\mc.db", &url]);
    pass(c, "connect-device through the Internet Options proxy").await;
    let log = proxy.log();
    assert!(
        log.contains(&format!("127.0.0.1:{emulator_port}")),
        "the token requests went through the proxy:\n{log}"
    );

    // 2. "Use automatic configuration script": the PAC script sends everything to the proxy.
    let proxy2 = HttpProxy::start(HttpProxyOptions::default());
    let (pac, pac_port) = loopback_listener();
    serve(
        pac,
        format!(
            "function FindProxyForURL(url, host) {{ return \"PROXY 127.0.0.1:{}\"; }}",
            proxy2.port()
        )
        .into_bytes(),
        "application/x-ns-proxy-autoconfig",
    );
    let prefix = Prefix::new("proxy-pac");
    prefix.reg_add(
        key,
        "DefaultConnectionSettings",
        "REG_BINARY",
        &connection_settings(4, "", "", &format!("http://127.0.0.1:{pac_port}/proxy.pac")),
    );
    let mut c = prefix.command(Arch::X64, &scenario_exe(Arch::X64));
    c.args(["connect-device", r"C:\proxy\mc.db", &url]);
    pass(c, "connect-device through the PAC script's proxy").await;
    let log = proxy2.log();
    assert!(
        log.contains(&format!("127.0.0.1:{emulator_port}")),
        "the PAC script's proxy carried the token requests:\n{log}"
    );

    // 3. The host's own setting wins: no_proxy goes direct although Internet Options name a proxy.
    let before = proxy2.log().len();
    let mut c = prefix.command(Arch::X64, &scenario_exe(Arch::X64));
    c.args(["connect-device", r"C:\proxy\direct.db", &url])
        .env("MC_OPTIONS_EXTRA", ",\"no_proxy\":true");
    pass(c, "connect-device with no_proxy").await;
    assert!(
        !proxy2.log()[before..].contains(&format!("127.0.0.1:{emulator_port}")),
        "no_proxy: true bypasses the system proxy"
    );
}

/// The proxy a Windows host stores through the DLL (`mc_proxy_set`, 32-bit DLL from a
/// stdcall-default host): a second process on the store takes it, and the sign-in, Test, send and
/// fetch over IMAP and POP3 all go through a real tinyproxy with Basic authentication, whose log
/// shows the requests to the emulator and the tunnels to the mail ports, never the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_proxy_carries_sign_in_and_mail_from_a_windows_host() {
    if wine::windows_dir().is_none() {
        return;
    }
    const PW: &str = "W1ne-proxy-pw-2c8f";
    let env = env().await;
    let stack = MailStack::up(&env.emulator.introspection_url(), &[]);
    let proxy = HttpProxy::start(HttpProxyOptions {
        basic_auth: Some(("mcwine".into(), PW.into())),
        connect_ports: None,
    });
    let arch = Arch::X86;
    let prefix = Prefix::new("stored-proxy");
    let exe = scenario_exe(arch);
    let store = r"C:\ProgramData\Acme\mailconnect.db";
    let url = env.emulator.base_url().to_string();
    let ca = wine::z_path(Path::new(stack.info["ca_pem"].as_str().expect("ca_pem")));
    let ports = [
        stack.port("imap_tls").to_string(),
        stack.port("pop3_tls").to_string(),
        stack.port("smtp_starttls").to_string(),
    ];
    let host = |args: &[&str]| {
        let mut c = prefix.command(arch, &exe);
        c.args(args);
        c
    };
    let out = pass(
        host(&["proxy-set", store, &proxy.url_with_credentials(), PW]),
        "proxy-set",
    )
    .await;
    assert!(
        out.contains("ok the proxy is stored, with a password")
            && out.contains("ok mc_proxy_get does not show the password"),
        "{out}"
    );
    pass(host(&["connect-device", store, &url]), "connect-device").await;
    let emulator = format!(
        "127.0.0.1:{}",
        url::Url::parse(&url).expect("url").port().expect("port")
    );
    assert!(
        proxy.log().contains(&emulator),
        "the sign-in went through the proxy:\n{}",
        proxy.log()
    );
    let out = pass(
        host(&[
            "mail",
            store,
            "127.0.0.1",
            &ports[0],
            &ports[1],
            &ports[2],
            &ca,
        ]),
        "mail",
    )
    .await;
    for step in [
        "ok mc_account_test all protocols ok",
        "ok mc_mail_send",
        "ok mc_mail_fetch over IMAP finds the message sent from C",
    ] {
        assert!(out.contains(step), "missing '{step}':\n{out}");
    }
    for p in &ports {
        proxy.wait_for_connect(&format!("127.0.0.1:{p}"));
    }
    let log = proxy.log();
    assert!(!log.contains(PW) && !log.contains("Unauthorized"), "{log}");
    let out = pass(host(&["proxy-clear", store]), "proxy-clear").await;
    assert!(out.contains("ok the stored proxy is gone"), "{out}");
}

/// `mailconnect service install|start|status|stop|uninstall` through the service control manager:
/// the installed service refreshes the tokens of a store it shares (machine scope) with a program.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresher_runs_as_a_windows_service() {
    if wine::windows_dir().is_none() {
        return;
    }
    let env = env().await;
    token_lifetime(&env.emulator, 8);
    let prefix = Prefix::new("service");
    let store = r"C:\ProgramData\Acme\mailconnect.db";
    let mut c = prefix.command(Arch::X64, &scenario_exe(Arch::X64));
    c.args(["connect-device", store, env.emulator.base_url()])
        .env("MC_OPTIONS_EXTRA", ",\"key\":{\"dpapi\":\"machine\"}");
    pass(c, "connect-device (machine scope)").await;
    // Wine ends the services of a prefix when its last program exits (Windows keeps them running
    // without anyone logged in): a long-running program stands in for the logged-on desktop.
    let mut session = prefix
        .command(Arch::X64, &wincheck(Arch::X64))
        .args(["sleep", "600"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("a session program");
    let base = ["--store", store, "--key-protection", "machine"];
    let with = |rest: &[&'static str]| -> Vec<&str> { base.iter().chain(rest).copied().collect() };
    let out = cli(
        &prefix,
        Arch::X64,
        &with(&[
            "service",
            "--interval",
            "2",
            "--ahead",
            "6",
            "--jitter",
            "0",
            "install",
            "--name",
            "mcsvc",
            "--manual",
        ]),
        true,
    );
    assert!(out.contains("service installed"), "{out}");
    let out = cli(
        &prefix,
        Arch::X64,
        &with(&["service", "start", "--name", "mcsvc"]),
        true,
    );
    assert!(out.contains("mcsvc: running"), "{out}");
    let log = prefix.c_drive("ProgramData/Acme/mailconnect.db.service.log");
    let status = cli(
        &prefix,
        Arch::X64,
        &with(&["service", "status", "--name", "mcsvc"]),
        true,
    );
    assert!(
        status.contains("mcsvc: running (pid"),
        "{status}\nservice log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let start = Instant::now();
    let mut text = String::new();
    while start.elapsed() < Duration::from_secs(180) {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("alice: token refreshed") {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        text.contains("service 'mcsvc' started") && text.contains("alice: token refreshed"),
        "the service refreshed the token:\n{text}"
    );
    let out = cli(
        &prefix,
        Arch::X64,
        &with(&["service", "stop", "--name", "mcsvc"]),
        true,
    );
    assert!(out.contains("mcsvc: stopped"), "{out}");
    let out = cli(
        &prefix,
        Arch::X64,
        &with(&["service", "uninstall", "--name", "mcsvc"]),
        true,
    );
    assert!(out.contains("service removed"), "{out}");
    let out = cli(
        &prefix,
        Arch::X64,
        &with(&["service", "status", "--name", "mcsvc"]),
        false,
    );
    assert!(out.contains("not installed"), "{out}");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("service 'mcsvc' stopped"), "{text}");
    let _ = session.kill();
    let _ = session.wait();
}

/// What Explorer's Properties and installers read: the version resource of the DLL and the exe,
/// and the import libraries and headers beside them: both headers as committed, and a .def whose
/// exports are exactly the functions the two headers declare (43 when ABI 2 was introduced).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_resources_and_the_files_a_host_ships() {
    let Some(dir) = wine::windows_dir() else {
        return;
    };
    let prefix = Prefix::new("version");
    let version = env!("CARGO_PKG_VERSION");
    for arch in [Arch::X64, Arch::X86] {
        let a = dir.join(arch.name());
        for f in [
            "mailconnect.dll",
            "libmailconnect.dll.a",
            "mailconnect.def",
            "mailconnect.lib",
            "mailconnect.exe",
            "mailconnect.h",
            "mailconnect_store.h",
        ] {
            assert!(a.join(f).exists(), "{}/{f}", arch.name());
        }
        for h in mailconnect_tests::header::HEADERS {
            let name = Path::new(h).file_name().expect("header name");
            let shipped = std::fs::read(a.join(name)).expect("shipped header");
            let committed = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(h))
                .expect("committed header");
            assert!(
                shipped == committed,
                "{}/{} differs from {h}",
                arch.name(),
                name.to_string_lossy()
            );
        }
        let check = wincheck(arch);
        for (file, kind) in [("mailconnect.dll", "dll"), ("mailconnect.exe", "app")] {
            let (_, text) = run_to_end(
                prefix
                    .command(arch, &check)
                    .args(["version", &wine::z_path(&a.join(file))]),
            );
            for want in [
                format!("FILEVERSION {version}.0"),
                format!("FILETYPE {kind}"),
                "ProductName mailconnect".to_string(),
                format!("ProductVersion {version}"),
                format!("OriginalFilename {file}"),
                "LegalCopyright Copyright (C) 2026 mailconnect developers".to_string(),
            ] {
                assert!(
                    text.contains(&want),
                    "{}/{file}: missing '{want}':\n{text}",
                    arch.name()
                );
            }
        }
        let def = std::fs::read_to_string(a.join("mailconnect.def")).expect("def");
        assert!(
            def.starts_with("LIBRARY mailconnect.dll\nEXPORTS\n"),
            "{def}"
        );
        // The .def comes from the DLL's own export table (build.sh): it must be the headers' list.
        let mut exported: Vec<&str> = def.lines().filter_map(|l| l.strip_prefix("    ")).collect();
        exported.sort_unstable();
        let mut declared = mailconnect_tests::header::all_exports();
        declared.sort_unstable();
        assert_eq!(
            exported,
            declared,
            "{}: the DLL's exports and the headers' functions differ",
            arch.name()
        );
        for f in [
            "mc_registration_get",
            "mc_client_open_with_store",
            "mc_store_list_add",
        ] {
            assert!(exported.contains(&f), "{}: {f} not exported", arch.name());
        }
    }
}

/// Figures for BENCHMARKS.md (informative: Wine is not Windows): the stripped DLL sizes, and under
/// Wine the time from LoadLibrary to the first call and of mc_client_open on an existing store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures for BENCHMARKS.md; tests/windows/run.sh prints them"]
async fn load_figures() {
    let Some(dir) = wine::windows_dir() else {
        return;
    };
    let prefix = Prefix::new("figures");
    println!("| arch | stripped mailconnect.dll | mailconnect.exe | LoadLibrary -> first call | mc_client_open (existing store), best / mean of 20 | peer: LoadLibrary(winhttp.dll) -> WinHttpOpen |");
    println!("|---|---|---|---|---|---|");
    for arch in [Arch::X64, Arch::X86] {
        let a = dir.join(arch.name());
        let store = format!(r"C:\figures\{}\mc.db", arch.name());
        cli(&prefix, arch, &["--store", &store, "status"], true);
        let opts = serde_json::json!({ "store": store }).to_string();
        let check = wincheck(arch);
        // A first run warms Wine's own caches (its DLLs, the registry); the second is measured.
        let mut text = String::new();
        for _ in 0..2 {
            let mut cmd = prefix.command(arch, &check);
            cmd.args([
                "load",
                &wine::z_path(&a.join("mailconnect.dll")),
                &opts,
                "20",
            ]);
            text = run_to_end(&mut cmd).1;
        }
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().parse::<f64>().unwrap_or(f64::NAN))
                .unwrap_or_else(|| panic!("no {k} in:\n{text}"))
        };
        let mib = |f: &str| {
            std::fs::metadata(a.join(f))
                .map(|m| m.len() as f64 / 1048576.0)
                .unwrap_or(0.0)
        };
        println!(
            "| {} | {:.2} MiB | {:.2} MiB | {:.1} ms | {:.1} ms / {:.1} ms | {:.1} ms |",
            arch.name(),
            mib("mailconnect.dll"),
            mib("mailconnect.exe"),
            get("LOAD_FIRST_CALL_US ") / 1000.0,
            get("CLIENT_OPEN_BEST_US ") / 1000.0,
            get("CLIENT_OPEN_MEAN_US ") / 1000.0,
            get("PEER_WINHTTP_US ") / 1000.0
        );
    }
}
