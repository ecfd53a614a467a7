//! Admin and integrator subcommands on the same core as the C ABI: registrations, accounts,
//! connect, test, status, token, disconnect. `--json` prints machine-readable output; otherwise
//! tables for people. Secrets never come from the command line (environment or stdin only).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use mailconnect_core::check::TestOptions;
use mailconnect_core::oauth::DeviceCodeInfo;
use mailconnect_core::{
    CancellationToken, Client, ClientOptions, ConnectObserver, ConnectOptions, ConnectStage, Flow,
    Language, Protocol,
};
use secrecy::ExposeSecret;
use serde_json::json;

type Res = Result<(), Box<dyn std::error::Error>>;

/// Where the store is.
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// The token store (SQLite file); created when missing.
    #[arg(long, env = "MAILCONNECT_STORE", global = true)]
    pub store: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
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
    /// List accounts with their state.
    List,
    /// Show one account and its status.
    Show { id: String },
    /// Remove an account and its tokens.
    Remove { id: String },
}

fn default_store() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("mailconnect").join("mailconnect.db")
}

pub fn open(store: &StoreArgs, lang: Language) -> Result<Client, Box<dyn std::error::Error>> {
    let path = store.store.clone().unwrap_or_else(default_store);
    let mut o = ClientOptions::new(path);
    o.language = lang;
    Ok(Client::open(o)?)
}

fn paint(s: &str, ok: bool) -> String {
    if std::io::stdout().is_terminal() {
        format!("\x1b[{}m{s}\x1b[0m", if ok { "32" } else { "31" })
    } else {
        s.to_string()
    }
}

fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!("{}", line(headers.iter().map(|s| s.to_string()).collect()));
    for r in rows {
        println!("{}", line(r.clone()));
    }
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
    let c = open(store, lang)?;
    match cmd {
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

struct Terminal;
impl ConnectObserver for Terminal {
    fn open_url(&self, url: &str) -> bool {
        eprintln!("Opening the sign-in page in your browser. If nothing opens, visit:\n  {url}");
        false
    }
    fn device_code(&self, info: &DeviceCodeInfo) {
        println!("{}", info.message);
        eprintln!("(waiting up to {} s; Ctrl-C cancels)", info.expires_in);
    }
    fn progress(&self, stage: ConnectStage) {
        eprintln!("  . {}", stage.as_str());
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
    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.cancel();
        }
    });
    let s = c
        .connect(&id, ConnectOptions { flow }, &Terminal, &cancel)
        .await?;
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
    let report = c
        .test(
            &id,
            &protocols,
            TestOptions { send_probe },
            &CancellationToken::new(),
        )
        .await?;
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
                    paint(if r.ok { "ok" } else { "failed" }, r.ok),
                    r.mechanism_used.clone().unwrap_or_default(),
                    r.tls_version.clone().unwrap_or_default(),
                    format!("{} ms", r.elapsed_ms),
                ]
            })
            .collect::<Vec<_>>();
        table(
            &["protocol", "server", "result", "mechanism", "tls", "time"],
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
    c.disconnect(&id).await?;
    if !store.json {
        println!("account '{id}' disconnected");
    }
    Ok(())
}
