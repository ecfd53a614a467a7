//! `mailconnect harness SCENARIO.json`: the vendor test harness. It loads the mailconnect library at
//! run time with libloading, exactly as a host does with LoadLibrary/dlopen, checks the ABI version,
//! runs the scenario's steps through the C ABI and prints a pass/fail table.
//!
//! Scenario file:
//! ```json
//! {"client": {"store": "${TMP}/mc.db"},
//!  "registration": {...}, "account": {...},
//!  "steps": [
//!    {"do": "connect", "sign_in": {"user": "alice@example.test", "password": "alice-password"}},
//!    {"do": "status", "expect_json": {"state": "connected"}},
//!    {"do": "test", "protocols": ["imap", "smtp"], "expect_json": {"ok": true}},
//!    {"do": "access_token"}, {"do": "sasl_xoauth2"},
//!    {"do": "send", "message": "From: ...\r\n..."},
//!    {"do": "message_send", "message": {"to": ["bob@example.test"], "subject": "Hi", "text": "..."}},
//!    {"do": "fetch", "query": {"protocol": "imap"}},
//!    {"do": "disconnect"}, {"do": "access_token", "expect": "MC_E_STATE"}]}
//! ```
//! `expect` is a status name (default `MC_OK`); `expect_json` a subset the returned JSON must contain
//! (objects: these keys with matching values; arrays: each expected element matches some element).
//! `${NAME}` is replaced by `--var NAME=VALUE` values, environment variables and the built-ins
//! `TMP` (a fresh directory), `RUN_ID` (unique per run) and `MAILCONNECT` (this program). A
//! `sign_in` is completed with the sandbox's scripted browser (device code or browser flow); with
//! `"via": "command"` the harness runs `mailconnect sandbox sign-in` instead and shows that command.
//!
//! More per step:
//! * `say`: a line printed before the step (the harness prints each step as it runs);
//! * `explain: true`: print the error's diagnostic (code, who fixes it, en and de texts);
//! * `show_log: true`: print the library's warnings logged during the step (the harness receives
//!   them through `mc_log_callback_set`, as a host's logger would);
//! * fetch `until_contains` (a text or a list of texts; with `retry_secs`, default 10): fetch again
//!   until a message contains each text (delivery takes a moment), else fail;
//! * `message_send` (`mc_message_send`): `message` is the message JSON; the result shows the
//!   transport that carried it, and whether `auto` fell back from SMTP to Microsoft Graph during
//!   the call (the account's status said `smtp` just before, the result says `graph`);
//!   `expect_fallback: true|false` checks that;
//! * `reopen`: `mc_client_free`, then `mc_client_open` with the same options, as a host that is
//!   restarted (the store keeps the accounts, tokens and what the library learnt);
//! * `{"do": "emulator", "post": URL}`: a request to the sandbox emulator's control API (e.g.
//!   `${EMULATOR}/_sandbox/users/alice@example.test/revoke`), expected to answer `HTTP 200`; or
//!   `{"do": "emulator", "method": "GET"|"POST"|..., "url": URL, "body": {...}}` with a JSON body
//!   (e.g. a `TenantConfig` to `${EMULATOR}/_sandbox/tenants`); `expect_json` checks the answer,
//!   `show` (a JSON pointer or a list of them) prints parts of it.

use std::collections::BTreeMap;
use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use libloading::Library;
use mailconnect_sandbox::{Consent, ScriptedBrowser, SignIn};
use serde_json::Value;

/// The header's `MC_ABI_VERSION` this harness was written against.
const EXPECTED_ABI: u32 = 2;

#[repr(C)]
struct Callbacks {
    version: u32,
    user_data: *mut c_void,
    on_open_url: Option<unsafe extern "C" fn(*mut c_void, *const c_char) -> i32>,
    on_device_code:
        Option<unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, *const c_char)>,
    on_progress: Option<unsafe extern "C" fn(*mut c_void, *const c_char)>,
}

enum Prompt {
    Device {
        code: String,
        uri: String,
        message: String,
    },
    Url(String),
    Stage(String),
}

unsafe extern "C" fn on_device_code(
    ud: *mut c_void,
    code: *const c_char,
    uri: *const c_char,
    msg: *const c_char,
) {
    // SAFETY: `ud` is the sender passed in `Callbacks`, alive during mc_account_connect; strings are valid for the call.
    let tx = unsafe { &*(ud as *const mpsc::Sender<Prompt>) };
    let (code, uri, message) = unsafe {
        (
            CStr::from_ptr(code).to_string_lossy().into_owned(),
            CStr::from_ptr(uri).to_string_lossy().into_owned(),
            if msg.is_null() {
                String::new()
            } else {
                CStr::from_ptr(msg).to_string_lossy().into_owned()
            },
        )
    };
    let _ = tx.send(Prompt::Device { code, uri, message });
}

unsafe extern "C" fn on_progress(ud: *mut c_void, stage: *const c_char) {
    // SAFETY: as above.
    let tx = unsafe { &*(ud as *const mpsc::Sender<Prompt>) };
    if !stage.is_null() {
        let stage = unsafe { CStr::from_ptr(stage).to_string_lossy().into_owned() };
        let _ = tx.send(Prompt::Stage(stage));
    }
}

unsafe extern "C" fn on_open_url(ud: *mut c_void, url: *const c_char) -> i32 {
    // SAFETY: as above.
    let tx = unsafe { &*(ud as *const mpsc::Sender<Prompt>) };
    let url = unsafe { CStr::from_ptr(url).to_string_lossy().into_owned() };
    let _ = tx.send(Prompt::Url(url));
    1
}

type StrOut = unsafe extern "C" fn(*mut c_void, *const c_char, *mut *mut c_char) -> i32;

/// `mc_log_fn`.
type LogFn = unsafe extern "C" fn(*mut c_void, i32, *const c_char, *const c_char);

/// The header's `MC_LOG_WARN`.
const MC_LOG_WARN: i32 = 2;

/// Library log records received since the last step (level, message).
static LOG: std::sync::Mutex<Vec<(i32, String)>> = std::sync::Mutex::new(Vec::new());

unsafe extern "C" fn on_log(
    _ud: *mut c_void,
    level: i32,
    _target: *const c_char,
    msg: *const c_char,
) {
    if msg.is_null() {
        return;
    }
    // SAFETY: valid during the call (header).
    let msg = unsafe { CStr::from_ptr(msg) }
        .to_string_lossy()
        .into_owned();
    if let Ok(mut l) = LOG.lock() {
        l.push((level, msg));
    }
}

/// Take the log records received so far.
fn take_log() -> Vec<(i32, String)> {
    LOG.lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default()
}

/// The library, loaded at run time.
struct Lib {
    _lib: Library,
    abi: unsafe extern "C" fn() -> u32,
    version: unsafe extern "C" fn() -> *const c_char,
    status_name: unsafe extern "C" fn(i32) -> *const c_char,
    last_message: unsafe extern "C" fn() -> *const c_char,
    last_diagnostic: unsafe extern "C" fn() -> *const c_char,
    string_free: unsafe extern "C" fn(*mut c_char),
    client_open: unsafe extern "C" fn(*const c_char, *mut *mut c_void) -> i32,
    client_free: unsafe extern "C" fn(*mut c_void),
    registration_put: unsafe extern "C" fn(*mut c_void, *const c_char) -> i32,
    account_put: unsafe extern "C" fn(*mut c_void, *const c_char) -> i32,
    connect: unsafe extern "C" fn(*mut c_void, *const c_char, *const Callbacks, *mut c_void) -> i32,
    disconnect: unsafe extern "C" fn(*mut c_void, *const c_char, *mut c_void) -> i32,
    status: StrOut,
    test:
        unsafe extern "C" fn(*mut c_void, *const c_char, u32, *mut c_void, *mut *mut c_char) -> i32,
    access_token:
        unsafe extern "C" fn(*mut c_void, *const c_char, *mut c_void, *mut *mut c_char) -> i32,
    sasl: unsafe extern "C" fn(*mut c_void, *const c_char, *mut c_void, *mut *mut c_char) -> i32,
    send: unsafe extern "C" fn(*mut c_void, *const c_char, *const u8, usize, *mut c_void) -> i32,
    fetch: unsafe extern "C" fn(
        *mut c_void,
        *const c_char,
        *const c_char,
        *mut c_void,
        *mut *mut c_char,
    ) -> i32,
    list_folders:
        unsafe extern "C" fn(*mut c_void, *const c_char, *mut c_void, *mut *mut c_char) -> i32,
    message_send: unsafe extern "C" fn(
        *mut c_void,
        *const c_char,
        *const c_char,
        *mut c_void,
        *mut *mut c_char,
    ) -> i32,
    log_callback_set: unsafe extern "C" fn(Option<LogFn>, *mut c_void, i32) -> i32,
}

impl Lib {
    fn load(path: &Path) -> Result<Lib, String> {
        // SAFETY: loading a library runs its initializers; this is the point of the harness.
        let lib = unsafe { Library::new(path) }
            .map_err(|e| format!("cannot load {}: {e}", path.display()))?;
        macro_rules! sym {
            ($name:literal) => {{
                // SAFETY: the symbol's type is the one in include/mailconnect.h.
                let s = unsafe { lib.get($name) }.map_err(|e| {
                    format!(
                        "{} lacks {}: {e}",
                        path.display(),
                        String::from_utf8_lossy(&$name[..$name.len() - 1])
                    )
                })?;
                *s
            }};
        }
        Ok(Lib {
            abi: sym!(b"mc_abi_version_get\0"),
            version: sym!(b"mc_version_get\0"),
            status_name: sym!(b"mc_result_name_get\0"),
            last_message: sym!(b"mc_error_message_get\0"),
            last_diagnostic: sym!(b"mc_error_diagnostic_get\0"),
            string_free: sym!(b"mc_string_free\0"),
            client_open: sym!(b"mc_client_open\0"),
            client_free: sym!(b"mc_client_free\0"),
            registration_put: sym!(b"mc_registration_put\0"),
            account_put: sym!(b"mc_account_put\0"),
            connect: sym!(b"mc_account_connect\0"),
            disconnect: sym!(b"mc_account_disconnect\0"),
            status: sym!(b"mc_account_status_get\0"),
            test: sym!(b"mc_account_test\0"),
            access_token: sym!(b"mc_token_get\0"),
            sasl: sym!(b"mc_sasl_xoauth2_get\0"),
            send: sym!(b"mc_mail_send\0"),
            fetch: sym!(b"mc_mail_fetch\0"),
            list_folders: sym!(b"mc_folder_list\0"),
            message_send: sym!(b"mc_message_send\0"),
            log_callback_set: sym!(b"mc_log_callback_set\0"),
            _lib: lib,
        })
    }

    fn name(&self, code: i32) -> String {
        // SAFETY: returns a static string.
        unsafe { CStr::from_ptr((self.status_name)(code)) }
            .to_string_lossy()
            .into_owned()
    }

    fn last(&self) -> (String, String) {
        // SAFETY: borrowed strings valid until the next call on this thread.
        unsafe {
            (
                CStr::from_ptr((self.last_message)())
                    .to_string_lossy()
                    .into_owned(),
                CStr::from_ptr((self.last_diagnostic)())
                    .to_string_lossy()
                    .into_owned(),
            )
        }
    }

    /// Take an owned output string.
    fn take(&self, p: *mut c_char) -> Option<String> {
        if p.is_null() {
            return None;
        }
        // SAFETY: `p` came from the library and is freed once.
        let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
        unsafe { (self.string_free)(p) };
        Some(s)
    }
}

pub fn default_lib() -> PathBuf {
    if let Ok(p) = std::env::var("MAILCONNECT_LIB") {
        return PathBuf::from(p);
    }
    let name = if cfg!(windows) {
        "mailconnect.dll"
    } else if cfg!(target_os = "macos") {
        "libmailconnect.dylib"
    } else {
        "libmailconnect.so"
    };
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    for d in [dir.clone(), dir.join("deps")] {
        if d.join(name).exists() {
            return d.join(name);
        }
    }
    dir.join(name)
}

fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    out
}

/// Whether `actual` contains every key/value of `expected` (recursively for objects).
fn json_contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, ev)| a.get(k).is_some_and(|av| json_contains(av, ev))),
        (Value::Array(a), Value::Array(e)) => {
            e.iter().all(|ev| a.iter().any(|av| json_contains(av, ev)))
        }
        _ => actual == expected,
    }
}

struct Row {
    step: usize,
    call: String,
    expected: String,
    got: String,
    ms: u128,
    pass: bool,
    note: String,
}

/// Where the scenario comes from.
pub enum Source<'a> {
    /// A file.
    File(&'a Path),
    /// Text built into this program (name, text).
    Builtin(&'a str, &'a str),
}

/// Run a scenario file. Returns whether every step passed.
pub async fn run(
    scenario: &Path,
    lib_path: Option<PathBuf>,
    vars: Vec<String>,
) -> Result<bool, Box<dyn std::error::Error>> {
    run_source(Source::File(scenario), lib_path, vars).await
}

fn unique_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:x}{:x}", nanos % 0xffff_ffff_ffff, std::process::id())
}

/// How an account's mail travels (the `transport` of a status or Test report), for people.
fn transport_line(t: &Value) -> Option<String> {
    let send = t["send"].as_str()?;
    let mut line = format!(
        "transport: {}, sends over {send}",
        t["configured"].as_str().unwrap_or("?")
    );
    if let Some(since) = t["since"].as_str() {
        line.push_str(&format!(" since {since}"));
    }
    if let Some(r) = t["reason"].as_str() {
        line.push_str(&format!(" (reason: {r})"));
    }
    Some(line)
}

/// One line for people about what a call returned.
fn describe(what: &str, json: &Value) -> Option<String> {
    let s = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    };
    match what {
        "status" => {
            let mut line = format!("state: {}", s(&json["state"]));
            if let Some(r) = json["reason"].as_str() {
                line.push_str(&format!(" (reason: {r})"));
            }
            if let Some(u) = json["identity"]["username"].as_str() {
                line.push_str(&format!(", signed in as {u}"));
            }
            if let Some(e) = json["expires_at"].as_str() {
                let secs = json["expires_in_secs"].as_i64().unwrap_or(0);
                line.push_str(&format!(
                    ", access token expires {e} (in {} min {} s), refresh token: {}",
                    secs / 60,
                    secs % 60,
                    if json["has_refresh_token"].as_bool() == Some(true) {
                        "yes"
                    } else {
                        "no"
                    }
                ));
            }
            if let Some(t) = transport_line(&json["transport"]) {
                line.push_str(&format!("\n      {t}"));
            }
            Some(line)
        }
        "message_send" => Some(format!(
            "carried by: {}, {}, Message-ID {}, {} bytes",
            s(&json["transport"]),
            s(&json["reply"]),
            s(&json["message_id"]),
            json["size"]
        )),
        "test" => {
            let mut lines = vec![format!(
                "ok: {}, token: {}",
                json["ok"],
                s(&json["token"]["status"])
            )];
            for r in json["results"].as_array().into_iter().flatten() {
                let mut l = format!(
                    "{:<5} {}:{} {}",
                    s(&r["protocol"]),
                    s(&r["host"]),
                    r["port"],
                    if r["ok"].as_bool() == Some(true) {
                        "ok"
                    } else {
                        "FAILED"
                    }
                );
                if let Some(m) = r["mechanism_used"].as_str() {
                    l.push_str(&format!(" {m}"));
                }
                if let Some(t) = r["tls_version"].as_str() {
                    l.push_str(&format!(", {t}"));
                }
                if let Some(d) = r["detail"].as_str() {
                    l.push_str(&format!(", {d}"));
                }
                l.push_str(&format!(", {} ms", r["elapsed_ms"]));
                if let Some(code) = r["error"]["code"].as_str() {
                    l.push_str(&format!(
                        " [{code}] {}",
                        s(&r["error"]["diagnostic"]["en"]["title"])
                    ));
                }
                lines.push(l);
            }
            let g = &json["graph"];
            if g.is_object() {
                let f = &g["found"];
                let mut l = format!(
                    "graph {} {}",
                    s(&g["endpoint"]),
                    if g["ok"].as_bool() == Some(true) {
                        "ok"
                    } else {
                        "FAILED"
                    }
                );
                if let Some(p) = f["mailbox_path"].as_str() {
                    l.push_str(&format!(", {p}"));
                }
                if let Some(p) = f["permissions"].as_array() {
                    let p: Vec<String> = p.iter().map(s).collect();
                    l.push_str(&format!(", permissions: {}", p.join(" ")));
                }
                if let Some(c) = f["can_send"].as_bool() {
                    l.push_str(&format!(", can send: {}", if c { "yes" } else { "no" }));
                }
                if let Some(d) = f["detail"].as_str() {
                    l.push_str(&format!(", {d}"));
                }
                l.push_str(&format!(", {} ms", g["elapsed_ms"]));
                if let Some(code) = g["error"]["code"].as_str() {
                    l.push_str(&format!(
                        " [{code}] {}",
                        s(&g["error"]["diagnostic"]["en"]["title"])
                    ));
                }
                lines.push(l);
            }
            if let Some(t) = transport_line(&json["transport"]) {
                lines.push(t);
            }
            Some(lines.join("\n      "))
        }
        "folders" => Some(format!(
            "folders: {}",
            json.as_array()
                .into_iter()
                .flatten()
                .map(|f| s(&f["name"]))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        "fetch" => Some(format!(
            "{} message(s)",
            json.as_array().map(Vec::len).unwrap_or(0)
        )),
        _ => None,
    }
}

/// The diagnostic of the last error, in English and German, for people.
fn explain(diagnostic: &str) -> String {
    let Ok(d) = serde_json::from_str::<Value>(diagnostic) else {
        return String::new();
    };
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut out = format!(
        "diagnostic {} (category {}, fixed by: {})",
        s(&d["code"]),
        s(&d["category"]),
        s(&d["fixer"])
    );
    for (lang, label_fix) in [("en", "Fix"), ("de", "Abhilfe")] {
        let t = &d[lang];
        out.push_str(&format!(
            "\n      {lang}: {}\n          {}\n          {label_fix}: {}",
            s(&t["title"]),
            s(&t["explanation"]),
            s(&t["fix"])
        ));
    }
    out
}

/// Whether a fetched message (JSON with base64 `raw`) contains `needle`.
fn fetched_contains(json: &Value, needle: &str) -> Option<String> {
    use base64::Engine;
    json.as_array()?.iter().find_map(|m| {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(m["raw"].as_str().unwrap_or_default())
            .ok()?;
        String::from_utf8_lossy(&raw)
            .contains(needle)
            .then(|| m["id"].as_str().unwrap_or_default().to_string())
    })
}

/// Run a scenario. Returns whether every step passed.
pub async fn run_source(
    source: Source<'_>,
    lib_path: Option<PathBuf>,
    vars: Vec<String>,
) -> Result<bool, Box<dyn std::error::Error>> {
    let mut map: BTreeMap<String, String> = std::env::vars().collect();
    let tmp = tempfile::tempdir()?;
    map.insert("TMP".into(), tmp.path().display().to_string());
    map.insert("RUN_ID".into(), unique_run_id());
    if let Ok(exe) = std::env::current_exe() {
        map.insert("MAILCONNECT".into(), exe.display().to_string());
    }
    for v in vars {
        let (k, val) = v
            .split_once('=')
            .ok_or_else(|| format!("--var takes NAME=VALUE, not '{v}'"))?;
        map.insert(k.to_string(), val.to_string());
    }
    let (name, raw) = match source {
        Source::File(p) => (
            p.display().to_string(),
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?,
        ),
        Source::Builtin(n, t) => (n.to_string(), t.to_string()),
    };
    let text = substitute(&raw, &map);
    let sc: Value =
        serde_json::from_str(&text).map_err(|e| format!("{name} is not valid JSON: {e}"))?;

    let path = lib_path.unwrap_or_else(default_lib);
    let lib = Lib::load(&path)?;
    // SAFETY: functions of the loaded library with the header's signatures.
    let abi = unsafe { (lib.abi)() };
    let version = unsafe { CStr::from_ptr((lib.version)()) }
        .to_string_lossy()
        .into_owned();
    println!("library {} (version {version}, ABI {abi})", path.display());
    if abi != EXPECTED_ABI {
        return Err(
            format!("ABI version {abi} does not match the harness's {EXPECTED_ABI}").into(),
        );
    }
    if let Some(title) = sc["title"].as_str() {
        println!("scenario: {title}");
    }
    // The library's warnings, shown for steps with `show_log`.
    // SAFETY: `on_log` has the header's `mc_log_fn` signature and lives as long as the process.
    unsafe { (lib.log_callback_set)(Some(on_log), std::ptr::null_mut(), MC_LOG_WARN) };

    let opts = CString::new(sc["client"].to_string())?;
    let mut client: *mut c_void = std::ptr::null_mut();
    // SAFETY: valid C string and out pointer.
    let rc = unsafe { (lib.client_open)(opts.as_ptr(), &mut client) };
    if rc != 0 {
        return Err(format!("mc_client_open: {} {}", lib.name(rc), lib.last().0).into());
    }
    println!("  mc_client_open({}) -> MC_OK", sc["client"]);
    let mut rows = Vec::new();
    let setup: [(
        &str,
        Option<&Value>,
        unsafe extern "C" fn(*mut c_void, *const c_char) -> i32,
    ); 2] = [
        (
            "mc_registration_put",
            sc.get("registration"),
            lib.registration_put,
        ),
        ("mc_account_put", sc.get("account"), lib.account_put),
    ];
    for (call, value, f) in setup {
        let Some(v) = value else { continue };
        if let Some(say) = sc["say_setup"][call].as_str() {
            println!("\n{say}");
        }
        let c = CString::new(v.to_string())?;
        let t = Instant::now();
        // SAFETY: live client, NUL-terminated JSON.
        let rc = unsafe { f(client, c.as_ptr()) };
        println!("  {call}({v}) -> {}", lib.name(rc));
        rows.push(Row {
            step: 0,
            call: call.into(),
            expected: "MC_OK".into(),
            got: lib.name(rc),
            ms: t.elapsed().as_millis(),
            pass: rc == 0,
            note: if rc == 0 { String::new() } else { lib.last().0 },
        });
    }
    let account = sc.get("account").ok_or("the scenario has no 'account'")?;
    let account_id = CString::new(account["id"].as_str().ok_or("account.id missing")?)?;

    let steps = sc["steps"].as_array().cloned().unwrap_or_default();
    for (i, step) in steps.iter().enumerate() {
        let what = step["do"].as_str().unwrap_or("?").to_string();
        let default_expect = if what == "emulator" {
            "HTTP 200"
        } else {
            "MC_OK"
        };
        let expected = step["expect"]
            .as_str()
            .unwrap_or(default_expect)
            .to_string();
        if let Some(say) = step["say"].as_str() {
            println!("\n[{}] {say}", i + 1);
        }
        take_log();
        let t = Instant::now();
        let id = account_id.as_ptr();
        let mut out: *mut c_char = std::ptr::null_mut();
        let mut extra_note = None;
        // message_send: how the status said the account sends, just before the call.
        let mut send_before: Option<String> = None;
        let (rc, json) = match what.as_str() {
            "connect" => (
                connect(&lib, client, &account_id, step.get("sign_in")).await,
                None,
            ),
            "disconnect" => (
                unsafe { (lib.disconnect)(client, id, std::ptr::null_mut()) },
                None,
            ),
            "status" => {
                let rc = unsafe { (lib.status)(client, id, &mut out) };
                (rc, lib.take(out))
            }
            "test" => {
                let mut bits = 0u32;
                for p in step["protocols"].as_array().into_iter().flatten() {
                    bits |= match p.as_str() {
                        Some("imap") => 1,
                        Some("pop3") => 2,
                        Some("smtp") => 4,
                        _ => 0,
                    };
                }
                if step["send_probe"].as_bool() == Some(true) {
                    bits |= 0x100;
                }
                let rc = unsafe { (lib.test)(client, id, bits, std::ptr::null_mut(), &mut out) };
                (rc, lib.take(out))
            }
            "access_token" => {
                let rc = unsafe { (lib.access_token)(client, id, std::ptr::null_mut(), &mut out) };
                (
                    rc,
                    lib.take(out).map(|t| format!("{{\"length\":{}}}", t.len())),
                )
            }
            "sasl_xoauth2" => {
                let rc = unsafe { (lib.sasl)(client, id, std::ptr::null_mut(), &mut out) };
                (
                    rc,
                    lib.take(out).map(|t| format!("{{\"length\":{}}}", t.len())),
                )
            }
            "reopen" => {
                // SAFETY: from mc_client_open, freed once; then opened again into `client`.
                unsafe { (lib.client_free)(client) };
                client = std::ptr::null_mut();
                (
                    unsafe { (lib.client_open)(opts.as_ptr(), &mut client) },
                    None,
                )
            }
            "message_send" => {
                let rc = unsafe { (lib.status)(client, id, &mut out) };
                send_before = lib
                    .take(out)
                    .filter(|_| rc == 0)
                    .and_then(|j| serde_json::from_str::<Value>(&j).ok())
                    .and_then(|v| v["transport"]["send"].as_str().map(str::to_string));
                out = std::ptr::null_mut();
                let msg = CString::new(step["message"].to_string())?;
                let rc = unsafe {
                    (lib.message_send)(client, id, msg.as_ptr(), std::ptr::null_mut(), &mut out)
                };
                (rc, lib.take(out))
            }
            "send" => {
                let msg = step["message"].as_str().unwrap_or("").as_bytes().to_vec();
                (
                    unsafe {
                        (lib.send)(client, id, msg.as_ptr(), msg.len(), std::ptr::null_mut())
                    },
                    None,
                )
            }
            "fetch" => {
                let q = CString::new(
                    step.get("query")
                        .cloned()
                        .unwrap_or(Value::Null)
                        .to_string(),
                )?;
                let qp = if step.get("query").is_some() {
                    q.as_ptr()
                } else {
                    std::ptr::null()
                };
                let needles: Vec<&str> = match &step["until_contains"] {
                    Value::String(n) => vec![n.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                let deadline = Instant::now()
                    + std::time::Duration::from_secs(step["retry_secs"].as_u64().unwrap_or(10));
                loop {
                    let rc = unsafe { (lib.fetch)(client, id, qp, std::ptr::null_mut(), &mut out) };
                    let json = lib.take(out);
                    out = std::ptr::null_mut();
                    if needles.is_empty() {
                        break (rc, json);
                    }
                    let parsed: Value = json
                        .as_deref()
                        .and_then(|j| serde_json::from_str(j).ok())
                        .unwrap_or(Value::Null);
                    let found: Vec<(&str, Option<String>)> = needles
                        .iter()
                        .map(|n| (*n, fetched_contains(&parsed, n)))
                        .collect();
                    if rc == 0 && found.iter().all(|(_, f)| f.is_some()) {
                        let lines: Vec<String> = found
                            .iter()
                            .map(|(n, f)| {
                                format!("found \"{n}\" (message {})", f.as_deref().unwrap_or(""))
                            })
                            .collect();
                        extra_note = Some(lines.join("\n      "));
                        break (rc, json);
                    }
                    if rc != 0 || Instant::now() > deadline {
                        if rc == 0 {
                            let missing: Vec<&str> = found
                                .iter()
                                .filter(|(_, f)| f.is_none())
                                .map(|(n, _)| *n)
                                .collect();
                            extra_note = Some(format!(
                                "no message contains \"{}\" (waited)",
                                missing.join("\", \"")
                            ));
                        }
                        break (rc, json);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
            "folders" => {
                let rc = unsafe { (lib.list_folders)(client, id, std::ptr::null_mut(), &mut out) };
                (rc, lib.take(out))
            }
            "emulator" => {
                let (method, url) = match step["post"].as_str() {
                    Some(u) => ("POST".to_string(), u),
                    None => (
                        step["method"]
                            .as_str()
                            .unwrap_or("GET")
                            .to_ascii_uppercase(),
                        step["url"].as_str().unwrap_or_default(),
                    ),
                };
                let body = step.get("body");
                let (got, answer) = match ScriptedBrowser::new()
                    .request_json(&method, url, body)
                    .await
                {
                    Ok(f) => (
                        format!("HTTP {}", f.status),
                        serde_json::from_str(&f.body).unwrap_or(Value::Null),
                    ),
                    Err(e) => (format!("error: {e}"), Value::Null),
                };
                let mut pass = got == expected;
                let mut note = String::new();
                println!("    {method} {url} -> {got}");
                if let Some(b) = body {
                    println!("      sent {b}");
                }
                let shows: Vec<&str> = match &step["show"] {
                    Value::String(p) => vec![p.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                for p in shows {
                    let v = answer.pointer(p).map(Value::to_string);
                    println!(
                        "      {p}: {}",
                        v.as_deref().unwrap_or("(not in the answer)")
                    );
                }
                if let (true, Some(exp)) = (pass, step.get("expect_json")) {
                    if !json_contains(&answer, exp) {
                        pass = false;
                        note = format!(
                            "the answer does not contain {exp}; got {}",
                            answer.to_string().chars().take(300).collect::<String>()
                        );
                    }
                }
                if !pass {
                    println!("      FAIL {note}");
                } else if let (Some(exp), true) = (step.get("expect_json"), step["show"].is_null())
                {
                    println!("      the answer contains {exp}");
                }
                rows.push(Row {
                    step: i + 1,
                    call: "emulator".into(),
                    expected,
                    got,
                    ms: t.elapsed().as_millis(),
                    pass,
                    note,
                });
                continue;
            }
            other => {
                rows.push(Row {
                    step: i + 1,
                    call: other.into(),
                    expected,
                    got: "-".into(),
                    ms: 0,
                    pass: false,
                    note: "unknown step".into(),
                });
                continue;
            }
        };
        let got = lib.name(rc);
        let (message, diagnostic) = if rc != 0 {
            lib.last()
        } else {
            (String::new(), String::new())
        };
        let mut pass = got == expected;
        let mut note = message.clone();
        let parsed: Value = json
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or(Value::Null);
        if let (true, Some(exp)) = (pass, step.get("expect_json")) {
            if !json_contains(&parsed, exp) {
                pass = false;
                note = format!(
                    "JSON does not contain {exp}; got {}",
                    json.clone()
                        .unwrap_or_default()
                        .chars()
                        .take(300)
                        .collect::<String>()
                );
            }
        }
        if let Some(n) = &extra_note {
            if n.starts_with("no message") {
                pass = false;
                note = n.clone();
            }
        }
        if what == "message_send" && rc == 0 {
            let carried = parsed["transport"].as_str().unwrap_or("?");
            let before = send_before.as_deref().unwrap_or("?");
            let fallback = before == "smtp" && carried == "graph";
            extra_note = Some(if fallback {
                "fallback: yes, from SMTP to Microsoft Graph during this call (the status said \"smtp\" just before)".to_string()
            } else {
                format!("fallback: no, straight to {carried} (the status said \"{before}\" just before)")
            });
            if let Some(want) = step["expect_fallback"].as_bool() {
                if pass && want != fallback {
                    pass = false;
                    note = format!(
                        "expected fallback: {want}, but the status said {before} before and {carried} carried it"
                    );
                }
            }
        }
        let ms = t.elapsed().as_millis();
        let call = c_function(&what);
        println!(
            "    {call} -> {got} ({ms} ms){}",
            if pass { "" } else { "  FAIL" }
        );
        if rc == 0 {
            if let Some(d) = describe(&what, &parsed) {
                println!("      {d}");
            }
            if matches!(what.as_str(), "access_token" | "sasl_xoauth2") {
                println!(
                    "      {} characters (never printed)",
                    parsed["length"].as_u64().unwrap_or(0)
                );
            }
        } else {
            println!("      {message}");
            if step["explain"].as_bool() == Some(true) {
                println!("      {}", explain(&diagnostic));
            }
        }
        if let Some(n) = extra_note {
            println!("      {n}");
        }
        if step["show_log"].as_bool() == Some(true) {
            for (level, m) in take_log() {
                let l = if level <= 1 { "error" } else { "warn" };
                println!("      library log ({l}): {m}");
            }
        }
        rows.push(Row {
            step: i + 1,
            call: call.to_string(),
            expected,
            got,
            ms,
            pass,
            note: if pass { String::new() } else { note },
        });
    }
    // SAFETY: from mc_client_open, freed once.
    unsafe { (lib.client_free)(client) };

    println!(
        "\n{:>4}  {:<22} {:<32} {:<32} {:>7}  result",
        "step", "call", "expected", "got", "ms"
    );
    for r in &rows {
        println!(
            "{:>4}  {:<22} {:<32} {:<32} {:>7}  {}",
            r.step,
            r.call,
            r.expected,
            r.got,
            r.ms,
            if r.pass { "PASS" } else { "FAIL" }
        );
        if !r.pass && !r.note.is_empty() {
            println!("      {}", r.note);
        }
    }
    let failed = rows.iter().filter(|r| !r.pass).count();
    println!("\n{} passed, {} failed", rows.len() - failed, failed);
    Ok(failed == 0)
}

/// Play the user for a device code or sign-in URL: with the scripted browser in this process,
/// or (`via: command`) by running `mailconnect sandbox sign-in`, as a person would on another
/// device, showing the command.
async fn play_user(browser: &ScriptedBrowser, prompt: Prompt, script: &SignIn, via_command: bool) {
    let (args, shown): (Vec<String>, String) = match &prompt {
        Prompt::Device { code, uri, message } => {
            println!("    the library shows the user: {message}");
            (
                vec![
                    "--device-code".into(),
                    code.clone(),
                    "--verification-uri".into(),
                    uri.clone(),
                ],
                format!("--device-code {code} --verification-uri {uri}"),
            )
        }
        Prompt::Url(url) => {
            println!("    the library opens the sign-in page: {url}");
            (vec!["--url".into(), url.clone()], format!("--url '{url}'"))
        }
        Prompt::Stage(_) => return,
    };
    if via_command {
        println!(
            "    the user signs in (the sandbox plays the user):\n    $ mailconnect sandbox sign-in {shown} --user {} --password {}",
            script.user, script.password
        );
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("mailconnect"));
        let out = tokio::process::Command::new(exe)
            .args(["sandbox", "sign-in"])
            .args(&args)
            .args(["--user", &script.user, "--password", &script.password])
            .stdin(std::process::Stdio::null())
            .output()
            .await;
        match out {
            Ok(o) => {
                for l in String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .chain(String::from_utf8_lossy(&o.stderr).lines())
                {
                    println!("      {l}");
                }
            }
            Err(e) => eprintln!("harness: cannot run the sign-in command: {e}"),
        }
        return;
    }
    let r = match prompt {
        Prompt::Device { code, uri, .. } => browser
            .complete_device_code(&uri, &code, script)
            .await
            .map(|_| ()),
        Prompt::Url(url) => browser.sign_in(&url, script).await.map(|_| ()),
        Prompt::Stage(_) => Ok(()),
    };
    if let Err(e) = r {
        eprintln!("harness: the scripted sign-in failed: {e}");
    }
}

async fn connect(lib: &Lib, client: *mut c_void, id: &CString, sign_in: Option<&Value>) -> i32 {
    let (tx, rx) = mpsc::channel::<Prompt>();
    let script = sign_in.map(|s| SignIn {
        user: s["user"].as_str().unwrap_or_default().to_string(),
        password: s["password"].as_str().unwrap_or_default().to_string(),
        mfa_code: s["mfa_code"].as_str().map(str::to_string),
        consent: if s["decline"].as_bool() == Some(true) {
            Consent::Decline
        } else {
            Consent::Accept
        },
        deliver_redirect: true,
    });
    let via_command = sign_in.is_some_and(|s| s["via"].as_str() == Some("command"));
    let connect_fn = lib.connect;
    let client_addr = client as usize;
    let id = id.clone();
    let worker = std::thread::spawn(move || {
        let tx = tx;
        let cb = Callbacks {
            version: 1,
            user_data: &tx as *const mpsc::Sender<Prompt> as *mut c_void,
            on_open_url: Some(on_open_url),
            on_device_code: Some(on_device_code),
            on_progress: Some(on_progress),
        };
        // SAFETY: the client is alive for the call; `cb` and `tx` outlive it.
        unsafe {
            connect_fn(
                client_addr as *mut c_void,
                id.as_ptr(),
                &cb,
                std::ptr::null_mut(),
            )
        }
    });
    let browser = ScriptedBrowser::new();
    loop {
        match rx.try_recv() {
            Ok(Prompt::Stage(stage)) => println!("    . {stage}"),
            Ok(prompt) => {
                if let Some(script) = &script {
                    play_user(&browser, prompt, script, via_command).await;
                }
            }
            Err(mpsc::TryRecvError::Empty) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(mpsc::TryRecvError::Disconnected) => break,
        }
    }
    worker.join().unwrap_or(-99)
}

/// The C function a scenario step (`"do"`) calls, as the header names it.
fn c_function(what: &str) -> &'static str {
    match what {
        "status" => "mc_account_status_get",
        "connect" => "mc_account_connect",
        "disconnect" => "mc_account_disconnect",
        "test" => "mc_account_test",
        "access_token" => "mc_token_get",
        "sasl_xoauth2" => "mc_sasl_xoauth2_get",
        "send" => "mc_mail_send",
        "fetch" => "mc_mail_fetch",
        "list_folders" => "mc_folder_list",
        "message_send" => "mc_message_send",
        "reopen" => "mc_client_open",
        _ => "mc_?",
    }
}
