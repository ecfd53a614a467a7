//! Admin and integrator subcommands on the same core as the C ABI: registrations, accounts,
//! connect, test, status, token, disconnect. `--json` prints machine-readable output; otherwise
//! tables for people. Secrets never come from the command line (environment or stdin only).

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use mailconnect_core::check::TestOptions;
use mailconnect_core::oauth::DeviceCodeInfo;
use mailconnect_core::{
    CancellationToken, Client, ClientOptions, ConnectObserver, ConnectOptions, ConnectStage, Flow,
    Language, Protocol,
};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::progress::{self, Spinner};

type Res = Result<(), Box<dyn std::error::Error>>;

/// Where the store is.
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// The token store: a SQLite file (created when missing) or a postgres:// URL.
    #[arg(long, env = "MAILCONNECT_STORE", global = true)]
    pub store: Option<PathBuf>,
    /// The store's key file (default: beside a SQLite store; required for PostgreSQL).
    #[arg(long, env = "MAILCONNECT_KEY_FILE", global = true)]
    pub key_file: Option<PathBuf>,
    /// Windows: protect the key file with DPAPI for this user (`user`, the default without
    /// --key-file), for every process on this computer (`machine`: a program and a Windows service
    /// sharing the store), or not at all (`none`, the default with --key-file).
    #[arg(long, env = "MAILCONNECT_KEY_PROTECTION", global = true, value_parser = ["user", "machine", "none"])]
    pub key_protection: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Also trust the CA certificates in this PEM file (a test stack's, or a proxy's).
    #[arg(long, env = "MAILCONNECT_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// The proxy for every connection (identity provider, Graph, IMAP, POP3, SMTP):
    /// `http://[user@]host:port`, `socks5://…`, `socks5h://…`, or the `proxy` option's JSON object
    /// (per protocol, with a no_proxy list). Without it: ALL_PROXY, HTTPS_PROXY and NO_PROXY.
    #[arg(long, env = "MAILCONNECT_PROXY", global = true)]
    pub proxy: Option<String>,
    /// Read the proxy's password from this environment variable (never from the command line).
    #[arg(long, global = true, requires = "proxy")]
    pub proxy_password_env: Option<String>,
    /// Connect directly: no proxy from the options, the environment or the system settings.
    #[arg(long, global = true, conflicts_with = "proxy")]
    pub no_proxy: bool,
}

#[derive(Subcommand)]
pub enum RegistrationCommand {
    /// Add or update an app registration. The client secret comes from --secret-env VAR or --secret-stdin.
    Add {
        #[arg(long)]
        id: String,
        #[arg(long, default_value = "microsoft")]
        provider: String,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        client_id: String,
        /// Another login host (e.g. the sandbox emulator).
        #[arg(long)]
        authority_host: Option<String>,
        /// Another Microsoft Graph host (e.g. the sandbox emulator).
        #[arg(long)]
        graph_host: Option<String>,
        /// Read the client secret from this environment variable.
        #[arg(long, conflicts_with = "secret_stdin")]
        secret_env: Option<String>,
        /// Read the client secret from standard input.
        #[arg(long)]
        secret_stdin: bool,
    },
    /// List registrations (secrets are never shown).
    List,
    /// Remove a registration (refused while accounts use it).
    Remove { id: String },
}

/// The proxy stored in the store (used by every program and service that opens it without
/// --proxy/--no-proxy).
#[derive(Subcommand)]
pub enum ProxyCommand {
    /// Store the proxy of every connection, sealed with its password; the password comes from
    /// --password-env VAR or --password-stdin, never from the command line.
    Set {
        /// `http://host:port`, `socks5://host:port`, `socks5h://host:port`, `direct`, or the
        /// `proxy` option's JSON object (per protocol, with a no_proxy list).
        proxy: String,
        /// The proxy user name.
        #[arg(long)]
        username: Option<String>,
        /// Read the proxy password from this environment variable.
        #[arg(long, conflicts_with = "password_stdin")]
        password_env: Option<String>,
        /// Read the proxy password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Where this store's proxy comes from and the stored setting (without its password).
    Show,
    /// Remove the stored proxy (back to the environment and the system settings).
    Clear,
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Add or update an account.
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        mailbox: String,
        /// Who signs in, when not the mailbox owner (a delegate of a shared mailbox).
        #[arg(long)]
        login: Option<String>,
        #[arg(long)]
        registration: String,
        /// browser, device_code or client_credentials.
        #[arg(long, default_value = "browser")]
        flow: String,
    },
    /// Add or update many accounts from a CSV file (Excel's `;` too): columns mailbox, id,
    /// login, flow, imap_host/port/security, pop3_..., smtp_... . Exits non-zero if a row is invalid.
    Import {
        /// The CSV file (UTF-8, with or without BOM; Windows-1252 is read too).
        file: PathBuf,
        /// The registration every account uses.
        #[arg(long)]
        registration: String,
        /// Flow for rows without one: browser (default), device_code, client_credentials.
        #[arg(long)]
        flow: Option<String>,
        /// Change existing accounts that differ from their row (default: skip them).
        #[arg(long)]
        update: bool,
        /// Check and report only; store nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List accounts with their state.
    List,
    /// Show one account and its status.
    Show { id: String },
    /// Remove an account and its tokens.
    Remove { id: String },
}

/// The store when `--store` is not given: `%LOCALAPPDATA%\mailconnect\mailconnect.db` on Windows
/// (`%ProgramData%\mailconnect\…` with `--key-protection machine`), else
/// `$XDG_DATA_HOME/mailconnect/mailconnect.db` (`~/.local/share/…`).
pub(crate) fn default_store(store: &StoreArgs) -> PathBuf {
    let var = |v: &str| std::env::var_os(v).map(PathBuf::from);
    let base = if cfg!(windows) {
        if store.key_protection.as_deref() == Some("machine") {
            var("ProgramData")
        } else {
            var("LOCALAPPDATA")
        }
    } else {
        var("XDG_DATA_HOME").or_else(|| var("HOME").map(|h| h.join(".local/share")))
    };
    base.unwrap_or_else(|| PathBuf::from("."))
        .join("mailconnect")
        .join("mailconnect.db")
}

/// The store path and key source the arguments name.
pub(crate) fn store_and_key(
    store: &StoreArgs,
) -> (PathBuf, Option<mailconnect_core::store::KeySource>) {
    use mailconnect_core::store::{key::default_key_file, DpapiScope, KeySource};
    let path = store.store.clone().unwrap_or_else(|| default_store(store));
    let file = || {
        store
            .key_file
            .clone()
            .unwrap_or_else(|| default_key_file(&path))
    };
    let key = match store.key_protection.as_deref() {
        Some("user") => Some(KeySource::Dpapi {
            file: file(),
            scope: DpapiScope::User,
        }),
        Some("machine") => Some(KeySource::Dpapi {
            file: file(),
            scope: DpapiScope::Machine,
        }),
        Some(_) => Some(KeySource::File(file())),
        None => store.key_file.clone().map(KeySource::File),
    };
    (path, key)
}

pub fn open(store: &StoreArgs, lang: Language) -> Result<Client, Box<dyn std::error::Error>> {
    let (path, key) = store_and_key(store);
    let mut o = ClientOptions::new(path);
    o.language = lang;
    o.key = key;
    if let Some(ca) = &store.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| format!("cannot read the CA file {}: {e}", ca.display()))?;
        o.http.tls.extra_ca_pem = vec![pem];
    }
    o.http.no_proxy = store.no_proxy;
    if let Some(p) = &store.proxy {
        let mut v: serde_json::Value = if p.trim_start().starts_with('{') {
            serde_json::from_str(p).map_err(|e| format!("--proxy is not valid JSON: {e}"))?
        } else {
            serde_json::json!({ "url": p })
        };
        if let Some(var) = &store.proxy_password_env {
            let pw = std::env::var(var)
                .map_err(|_| format!("--proxy-password-env: the variable {var} is not set"))?;
            v["password"] = pw.into();
        }
        o.http.proxy = Some(mailconnect_core::net::ProxyConfig::from_json(&v)?);
    }
    Ok(Client::open(o)?)
}

pub(crate) fn paint(s: &str, ok: bool) -> String {
    if std::io::stdout().is_terminal() {
        format!("\x1b[{}m{s}\x1b[0m", if ok { "32" } else { "31" })
    } else {
        s.to_string()
    }
}

pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = w.get_mut(i) {
                *w = (*w).max(visible_len(c));
            }
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = w
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(visible_len(c));
                format!("{c}{}", " ".repeat(pad))
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    if headers.iter().any(|h| !h.is_empty()) {
        println!(
            "{}",
            line(headers.iter().map(|s| s.to_string()).collect()).trim_end()
        );
    }
    for r in rows {
        println!("{}", line(r.clone()).trim_end());
    }
}

/// Characters on screen (colour escapes take none).
fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut escape = false;
    for c in s.chars() {
        match (escape, c) {
            (false, '\x1b') => escape = true,
            (true, 'm') => escape = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

pub async fn proxy(cmd: ProxyCommand, store: &StoreArgs, lang: Language) -> Res {
    let c = open(store, lang)?;
    match cmd {
        ProxyCommand::Set {
            proxy,
            username,
            password_env,
            password_stdin,
        } => {
            let password = match (password_env, password_stdin) {
                (Some(var), _) => Some(zeroize::Zeroizing::new(
                    std::env::var(&var)
                        .map_err(|_| format!("environment variable {var} is not set"))?,
                )),
                (None, true) => {
                    let mut s = zeroize::Zeroizing::new(String::new());
                    std::io::stdin().read_to_string(&mut s)?;
                    Some(zeroize::Zeroizing::new(s.trim().to_string()))
                }
                _ => None,
            };
            let setting = if username.is_none() && password.is_none() {
                zeroize::Zeroizing::new(proxy)
            } else {
                let mut v: serde_json::Value = if proxy.trim_start().starts_with('{') {
                    serde_json::from_str(&proxy)
                        .map_err(|e| format!("the proxy is not valid JSON: {e}"))?
                } else {
                    json!({ "url": proxy })
                };
                if let Some(u) = username {
                    v["username"] = json!(u);
                }
                if let Some(p) = &password {
                    v["password"] = json!(p.as_str());
                }
                zeroize::Zeroizing::new(v.to_string())
            };
            c.set_proxy(Some(&setting)).await?;
            let info = c.proxy_info().await?;
            if store.json {
                println!("{}", serde_json::to_string(&info)?);
            } else {
                println!("proxy stored: {}", describe_stored(&info));
                if info["source"] != "stored" {
                    println!(
                        "(this invocation uses {} instead)",
                        info["source"].as_str().unwrap_or("?")
                    );
                }
            }
        }
        ProxyCommand::Show => {
            let info = c.proxy_info().await?;
            if store.json {
                println!("{}", serde_json::to_string(&info)?);
            } else {
                println!("stored:  {}", describe_stored(&info));
                println!(
                    "in use:  {}",
                    match info["source"].as_str() {
                        Some("stored") => "the stored proxy",
                        Some("option") => "--proxy of this invocation",
                        Some("no_proxy_option") => "none (--no-proxy)",
                        _ if info["environment"] == true =>
                            "the environment (HTTPS_PROXY, ALL_PROXY, NO_PROXY)",
                        _ => "the system settings for HTTPS, else direct",
                    }
                );
            }
        }
        ProxyCommand::Clear => {
            c.set_proxy(None).await?;
            if !store.json {
                println!("stored proxy removed");
            }
        }
    }
    Ok(())
}

/// The stored proxy in words (never a password).
fn describe_stored(info: &serde_json::Value) -> String {
    let s = &info["stored"];
    if s.is_null() {
        return "none".into();
    }
    let mut parts = vec![];
    for field in ["url", "https", "imap", "pop3", "smtp"] {
        if let Some(v) = s[field].as_str() {
            parts.push(if field == "url" {
                v.to_string()
            } else {
                format!("{field}: {v}")
            });
        }
    }
    if let Some(u) = s["username"].as_str() {
        parts.push(format!("user {u}"));
    }
    if s["has_password"] == true {
        parts.push("with a password".into());
    }
    if let Some(list) = s["no_proxy"].as_array() {
        let names: Vec<&str> = list.iter().filter_map(|v| v.as_str()).collect();
        if !names.is_empty() {
            parts.push(format!("not for {}", names.join(", ")));
        }
    }
    parts.join(", ")
}

pub fn registration(cmd: RegistrationCommand, store: &StoreArgs, lang: Language) -> Res {
    let c = open(store, lang)?;
    match cmd {
        RegistrationCommand::Add {
            id,
            provider,
            tenant,
            client_id,
            authority_host,
            graph_host,
            secret_env,
            secret_stdin,
        } => {
            let secret = match (secret_env, secret_stdin) {
                (Some(var), _) => Some(
                    std::env::var(&var)
                        .map_err(|_| format!("environment variable {var} is not set"))?,
                ),
                (None, true) => {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s)?;
                    Some(s.trim().to_string())
                }
                _ => None,
            };
            let mut reg = json!({"id": id, "provider": provider, "client_id": client_id});
            if let Some(t) = tenant {
                reg["tenant"] = json!(t);
            }
            if let Some(h) = authority_host {
                reg["authority_host"] = json!(h);
            }
            if let Some(h) = graph_host {
                reg["graph_host"] = json!(h);
            }
            if let Some(s) = secret {
                reg["client_secret"] = json!(s);
            }
            let r = c.put_registration_json(&reg.to_string())?;
            if store.json {
                println!(
                    "{}",
                    serde_json::to_string(&json!({"id": r.id, "stored": true}))?
                );
            } else {
                println!("registration '{}' stored", r.id);
            }
        }
        RegistrationCommand::List => {
            let regs = c.registrations()?;
            if store.json {
                println!("{}", serde_json::to_string(&regs)?);
            } else {
                let rows = regs
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.clone(),
                            format!("{:?}", r.provider).to_lowercase(),
                            r.tenant.clone().unwrap_or_default(),
                            r.client_id.clone(),
                            if r.has_client_secret {
                                "yes".into()
                            } else {
                                "no".into()
                            },
                        ]
                    })
                    .collect::<Vec<_>>();
                table(&["id", "provider", "tenant", "client id", "secret"], &rows);
            }
        }
        RegistrationCommand::Remove { id } => {
            c.remove_registration(&id)?;
            if !store.json {
                println!("registration '{id}' removed");
            }
        }
    }
    Ok(())
}

pub fn account(cmd: AccountCommand, store: &StoreArgs, lang: Language) -> Res {
    if let AccountCommand::Import {
        file,
        registration,
        flow,
        update,
        dry_run,
    } = cmd
    {
        return import(store, lang, &file, registration, flow, update, dry_run);
    }
    let c = open(store, lang)?;
    match cmd {
        AccountCommand::Import { .. } => {}
        AccountCommand::Add {
            id,
            mailbox,
            login,
            registration,
            flow,
        } => {
            let mut a =
                json!({"id": id, "mailbox": mailbox, "registration": registration, "flow": flow});
            if let Some(l) = login {
                a["login"] = json!(l);
            }
            let acc = c.put_account_json(&a.to_string())?;
            if store.json {
                println!("{}", serde_json::to_string(&acc)?);
            } else {
                println!("account '{}' stored", acc.id);
            }
        }
        AccountCommand::List => {
            let accounts = c.accounts()?;
            let statuses = accounts
                .iter()
                .map(|a| c.status(&a.id))
                .collect::<Result<Vec<_>, _>>()?;
            if store.json {
                println!("{}", serde_json::to_string(&statuses)?);
            } else {
                let rows = statuses
                    .iter()
                    .zip(&accounts)
                    .map(|(s, a)| {
                        vec![
                            a.id.clone(),
                            a.mailbox.clone(),
                            a.registration.clone(),
                            state_text(s),
                        ]
                    })
                    .collect::<Vec<_>>();
                table(&["id", "mailbox", "registration", "state"], &rows);
            }
        }
        AccountCommand::Show { id } => {
            let a = c.account(&id)?;
            let s = c.status(&id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"account": a, "status": s}))?
            );
        }
        AccountCommand::Remove { id } => {
            c.remove_account(&id)?;
            if !store.json {
                println!("account '{id}' removed");
            }
        }
    }
    Ok(())
}

fn state_text(s: &mailconnect_core::Status) -> String {
    let v = serde_json::to_value(s.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let extra = match (&s.reason, s.expires_in_secs) {
        (Some(r), _) => format!(" ({})", r.as_str()),
        (None, Some(secs)) if secs > 0 => format!(" (token {} min)", secs / 60),
        _ => String::new(),
    };
    paint(&format!("{v}{extra}"), v == "connected")
}

/// Shows the sign-in to a person: the device code on stdout (scripts read it there), the URL on
/// stderr, and a countdown spinner until the sign-in completes or expires.
pub(crate) struct Terminal {
    json: bool,
    timeout: Duration,
    spinner: Mutex<Spinner>,
}

impl Terminal {
    /// A terminal observer; `timeout` is how long the browser sign-in may take.
    pub(crate) fn new(json: bool, timeout: Duration) -> Terminal {
        Terminal {
            json,
            timeout,
            spinner: Mutex::new(Spinner::none()),
        }
    }

    /// Stop the spinner (before printing the result).
    pub(crate) fn done(&self) {
        if let Ok(mut s) = self.spinner.lock() {
            *s = Spinner::none();
        }
    }

    fn wait(&self, message: String, deadline: Instant) {
        let spinner = Spinner::countdown(self.json, message, deadline);
        if let Ok(mut s) = self.spinner.lock() {
            *s = spinner;
        }
    }
}

impl ConnectObserver for Terminal {
    fn open_url(&self, url: &str) -> bool {
        eprintln!("Opening the sign-in page in your browser. If nothing opens, visit:\n  {url}");
        self.wait(
            "Waiting for the sign-in in the browser".into(),
            Instant::now() + self.timeout,
        );
        false
    }
    fn device_code(&self, info: &DeviceCodeInfo) {
        // On stdout for people and scripts that read it; with --json stdout is JSON only.
        if self.json {
            eprintln!("{}", info.message);
        } else {
            println!("{}", info.message);
            let _ = std::io::stdout().flush();
        }
        if !progress::enabled(self.json) && !self.json {
            eprintln!("(waiting up to {} s; Ctrl-C cancels)", info.expires_in);
        }
        self.wait(
            format!("Waiting for the sign-in with code {}", info.user_code),
            Instant::now() + Duration::from_secs(info.expires_in),
        );
    }
    fn progress(&self, stage: ConnectStage) {
        let text = stage.as_str().replace('_', " ");
        match self.spinner.lock() {
            Ok(s) if progress::enabled(self.json) => {
                if matches!(
                    stage,
                    ConnectStage::RequestingTokens
                        | ConnectStage::CheckingIdentity
                        | ConnectStage::Storing
                ) {
                    s.set_message(text);
                }
            }
            _ if !self.json => eprintln!("  . {text}"),
            _ => {}
        }
    }
}

pub async fn connect(store: &StoreArgs, lang: Language, id: String, flow: Option<String>) -> Res {
    let c = open(store, lang)?;
    let flow = match flow.as_deref() {
        None => None,
        Some("browser") => Some(Flow::Browser),
        Some("device" | "device_code") => Some(Flow::DeviceCode),
        Some("client-credentials" | "client_credentials") => Some(Flow::ClientCredentials),
        Some(other) => {
            return Err(
                format!("unknown flow '{other}': browser, device or client-credentials").into(),
            )
        }
    };
    let account = c.account(&id)?;
    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.cancel();
        }
    });
    let terminal = Terminal {
        json: store.json,
        timeout: Duration::from_secs(account.options.interactive_timeout_secs),
        spinner: Mutex::new(Spinner::none()),
    };
    let result = c
        .connect(&id, ConnectOptions { flow }, &terminal, &cancel)
        .await;
    if let Ok(mut s) = terminal.spinner.lock() {
        *s = Spinner::none();
    }
    let s = result?;
    if store.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!(
            "{} as {}",
            paint("connected", true),
            s.identity.and_then(|i| i.username).unwrap_or_default()
        );
    }
    Ok(())
}

pub async fn test(
    store: &StoreArgs,
    lang: Language,
    id: String,
    protocols: Vec<Protocol>,
    send_probe: bool,
) -> Res {
    let c = open(store, lang)?;
    let spinner = Spinner::new(
        store.json,
        format!(
            "Testing {} for '{id}'",
            if protocols.is_empty() {
                "IMAP, POP3 and SMTP".to_string()
            } else {
                protocols
                    .iter()
                    .map(|p| p.as_str().to_uppercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
    );
    let report = c
        .test(
            &id,
            &protocols,
            TestOptions { send_probe },
            &CancellationToken::new(),
        )
        .await;
    drop(spinner);
    let report = report?;
    if store.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("token: {}", report.token.status);
        let rows = report
            .results
            .iter()
            .map(|r| {
                vec![
                    r.protocol.as_str().to_string(),
                    format!("{}:{}", r.host, r.port),
                    r.path.clone(),
                    paint(if r.ok { "ok" } else { "failed" }, r.ok),
                    r.mechanism_used.clone().unwrap_or_default(),
                    r.tls_version.clone().unwrap_or_default(),
                    format!("{} ms", r.elapsed_ms),
                ]
            })
            .collect::<Vec<_>>();
        table(
            &[
                "protocol",
                "server",
                "path",
                "result",
                "mechanism",
                "tls",
                "time",
            ],
            &rows,
        );
        let errors = std::iter::once(report.token.error.as_ref())
            .chain(report.results.iter().map(|r| r.error.as_ref()))
            .flatten();
        for e in errors {
            let t = if lang == Language::De {
                &e.diagnostic["de"]
            } else {
                &e.diagnostic["en"]
            };
            println!(
                "\n[{}] {}\n  {}\n  {}",
                e.code,
                t["title"].as_str().unwrap_or_default(),
                t["explanation"].as_str().unwrap_or_default(),
                t["fix"].as_str().unwrap_or_default()
            );
            if let Some(reply) = &e.server_reply {
                println!("  server: {reply}");
            }
            if let Some(issuer) = &e.certificate_issuer {
                println!("  certificate issued by: {issuer}");
            }
        }
    }
    if report.ok {
        Ok(())
    } else {
        Err("the test found problems (see above)".into())
    }
}

pub fn status(store: &StoreArgs, lang: Language, id: Option<String>) -> Res {
    let c = open(store, lang)?;
    let ids = match id {
        Some(i) => vec![i],
        None => c.accounts()?.into_iter().map(|a| a.id).collect(),
    };
    let statuses = ids
        .iter()
        .map(|i| c.status(i))
        .collect::<Result<Vec<_>, _>>()?;
    if store.json {
        println!("{}", serde_json::to_string(&statuses)?);
    } else {
        let rows = statuses
            .iter()
            .map(|s| {
                vec![
                    s.account_id.clone(),
                    s.mailbox.clone(),
                    state_text(s),
                    s.expires_at.clone().unwrap_or_default(),
                ]
            })
            .collect::<Vec<_>>();
        table(&["account", "mailbox", "state", "token expires"], &rows);
    }
    Ok(())
}

pub async fn token(store: &StoreArgs, lang: Language, id: String, sasl: bool) -> Res {
    let c = open(store, lang)?;
    let cancel = CancellationToken::new();
    // Printed only because it was asked for, on stdout only.
    if sasl {
        println!("{}", c.sasl_xoauth2(&id, &cancel).await?.expose_secret());
    } else {
        println!(
            "{}",
            c.access_token(&id, &cancel).await?.token.expose_secret()
        );
    }
    Ok(())
}

pub async fn disconnect(store: &StoreArgs, lang: Language, id: String) -> Res {
    let c = open(store, lang)?;
    c.disconnect(&id, &CancellationToken::new()).await?;
    if !store.json {
        println!("account '{id}' disconnected");
    }
    Ok(())
}

/// Text of a CSV file: UTF-8 (with or without BOM), else Windows-1252, as Excel writes "CSV
/// (Trennzeichen-getrennt)" on a German Windows.
pub(crate) fn decode_text(bytes: Vec<u8>) -> (String, bool) {
    match String::from_utf8(bytes) {
        Ok(s) => (s, false),
        Err(e) => {
            const CP1252: [char; 32] = [
                '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}',
                'Ž', '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›',
                'œ', '\u{9d}', 'ž', 'Ÿ',
            ];
            let text = e
                .into_bytes()
                .into_iter()
                .map(|b| match b {
                    0x80..=0x9f => CP1252[usize::from(b - 0x80)],
                    b => char::from(b),
                })
                .collect();
            (text, true)
        }
    }
}

fn parse_flow(s: &str) -> Result<Flow, String> {
    Flow::parse(s)
        .ok_or_else(|| format!("unknown flow '{s}': browser, device_code or client_credentials"))
}

/// `account import`: every valid row is stored (or left alone when it is already there), every
/// invalid row reported with its line; exit code 1 when any row was invalid.
fn import(
    store: &StoreArgs,
    lang: Language,
    file: &Path,
    registration: String,
    flow: Option<String>,
    update: bool,
    dry_run: bool,
) -> Res {
    use mailconnect_core::model::csv::{parse_accounts_csv, CsvDefaults};
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let (text, latin) = decode_text(bytes);
    let c = open(store, lang)?;
    c.registration(&registration)?;
    let defaults = CsvDefaults {
        registration,
        flow: flow.as_deref().map(parse_flow).transpose()?,
    };
    let parsed =
        parse_accounts_csv(&text, &defaults).map_err(|e| format!("{}: {e}", file.display()))?;
    let existing: std::collections::HashMap<String, mailconnect_core::Account> = c
        .accounts()?
        .into_iter()
        .map(|a| (a.id.clone(), a))
        .collect();
    let mut out = Vec::new();
    for row in &parsed.rows {
        let (id, mailbox, result, detail) = match &row.outcome {
            Err(e) => (
                String::new(),
                String::new(),
                "invalid",
                match &e.field {
                    Some(f) => format!("{f}: {}", e.reason),
                    None => e.reason.clone(),
                },
            ),
            Ok(a) => {
                let (result, detail, to_store) = match existing.get(&a.id) {
                    None => ("created", String::new(), Some(a.clone())),
                    Some(old) => {
                        let merged = parsed.apply(old, a, &defaults);
                        let same = serde_json::to_value(&merged)? == serde_json::to_value(old)?;
                        if same {
                            ("skipped", "already stored, identical".to_string(), None)
                        } else if update {
                            ("updated", changed_fields(old, &merged), Some(merged))
                        } else {
                            (
                                "skipped",
                                format!(
                                    "exists with other settings ({}); --update changes it",
                                    changed_fields(old, &merged)
                                ),
                                None,
                            )
                        }
                    }
                };
                match to_store {
                    Some(acc) if !dry_run => match c.put_account(&acc) {
                        Ok(()) => (a.id.clone(), a.mailbox.clone(), result, detail),
                        Err(e) => (
                            a.id.clone(),
                            a.mailbox.clone(),
                            "invalid",
                            e.message().to_string(),
                        ),
                    },
                    _ => (a.id.clone(), a.mailbox.clone(), result, detail),
                }
            }
        };
        out.push((row.line, id, mailbox, result, detail));
    }
    let count = |r: &str| out.iter().filter(|x| x.3 == r).count();
    let (created, updated, skipped, invalid) = (
        count("created"),
        count("updated"),
        count("skipped"),
        count("invalid"),
    );
    if store.json {
        let rows: Vec<_> = out
            .iter()
            .map(|(line, id, mailbox, result, detail)| {
                let mut r = json!({"line": line, "result": result});
                if !id.is_empty() {
                    r["id"] = json!(id);
                    r["mailbox"] = json!(mailbox);
                }
                if !detail.is_empty() {
                    r["detail"] = json!(detail);
                }
                r
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string(&json!({
                "file": file.display().to_string(),
                "delimiter": parsed.delimiter.to_string(),
                "encoding": if latin { "windows-1252" } else { "utf-8" },
                "dry_run": dry_run,
                "rows": rows,
                "summary": {"created": created, "updated": updated, "skipped": skipped, "invalid": invalid}
            }))?
        );
    } else {
        if latin {
            println!("(the file is not UTF-8; read as Windows-1252)");
        }
        let rows: Vec<Vec<String>> = out
            .iter()
            .map(|(line, id, mailbox, result, detail)| {
                vec![
                    line.to_string(),
                    id.clone(),
                    mailbox.clone(),
                    paint(result, *result != "invalid"),
                    detail.clone(),
                ]
            })
            .collect();
        table(&["line", "id", "mailbox", "result", "detail"], &rows);
        println!(
            "\n{}{created} created, {updated} updated, {skipped} skipped, {invalid} invalid",
            if dry_run {
                "dry run, nothing stored: "
            } else {
                ""
            }
        );
    }
    if invalid > 0 {
        Err(format!(
            "{invalid} row(s) of {} are invalid (see the table); the valid rows were {}",
            file.display(),
            if dry_run { "checked only" } else { "stored" }
        )
        .into())
    } else {
        Ok(())
    }
}

fn changed_fields(old: &mailconnect_core::Account, new: &mailconnect_core::Account) -> String {
    let (Ok(serde_json::Value::Object(o)), Ok(serde_json::Value::Object(n))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return String::new();
    };
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| o.get(*k) != n.get(*k))
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
