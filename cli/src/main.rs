//! The `mailconnect` command: admin and integrator subcommands on the same core as the C ABI,
//! the sandbox for vendors, the libloading harness, and `demo`, the README's main job.

mod admin;
#[cfg(unix)]
mod demo;
mod diagnostics;
#[cfg(unix)]
mod harness;
mod mail;
mod progress;
#[cfg(unix)]
mod sandbox;
mod service;
mod setup;
#[cfg(windows)]
mod winservice;

use clap::{Parser, Subcommand};
use mailconnect_core::Protocol;

#[derive(Parser)]
#[command(
    name = "mailconnect",
    version,
    about = "Connect business applications to Microsoft 365 mailboxes with OAuth 2.0"
)]
struct Cli {
    /// Language of messages for people (en, de); default from the locale (LC_ALL, LC_MESSAGES,
    /// LANG).
    #[arg(long, global = true, env = "MAILCONNECT_LANG")]
    lang: Option<String>,
    #[command(flatten)]
    store: admin::StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The sandbox demo: bring the sandbox up, run the whole story through the C ABI (register,
    /// add, connect by device code, test, send, fetch over IMAP and POP3, status, a dying refresh
    /// token, disconnect) and bring it down again. Needs root for the mail servers.
    #[cfg(unix)]
    Demo {
        /// The library to load (default: $MAILCONNECT_LIB, else next to this program).
        #[arg(long)]
        lib: Option<std::path::PathBuf>,
    },
    /// Tenant setup through Microsoft Graph: create the app registration with one administrator
    /// sign-in (register), or find what is wrong with one (check).
    #[command(subcommand)]
    Admin(setup::AdminCommand),
    /// App registrations (tenant, client id, secret) shared by many accounts.
    #[command(subcommand)]
    Registration(admin::RegistrationCommand),
    /// The proxy stored with the accounts (set, show, clear), used by every program and service
    /// that opens this store without --proxy/--no-proxy.
    #[command(subcommand)]
    Proxy(admin::ProxyCommand),
    /// Mailboxes: add, import from CSV, list, show, remove.
    #[command(subcommand)]
    Account(admin::AccountCommand),
    /// Authorize an account (browser, device code or app-only); Ctrl-C cancels.
    Connect {
        account: String,
        /// browser, device or client-credentials (default: the account's).
        #[arg(long)]
        flow: Option<String>,
    },
    /// Test IMAP, POP3 and SMTP with the stored token; exits non-zero on failure.
    Test {
        account: String,
        #[arg(long)]
        imap: bool,
        #[arg(long)]
        pop3: bool,
        #[arg(long)]
        smtp: bool,
        /// Send one message to the mailbox itself and find it again.
        #[arg(long)]
        send_probe: bool,
    },
    /// The state of one account, or of all.
    Status { account: Option<String> },
    /// Print a fresh access token (or the SASL XOAUTH2 string) on stdout, for your own mail code.
    Token {
        account: String,
        #[arg(long)]
        sasl: bool,
    },
    /// Send a message (built from --to/--subject/--body, or an .eml file) over SMTP.
    Send(mail::SendArgs),
    /// List the IMAP folders.
    Folders { account: String },
    /// Fetch messages over IMAP (or POP3) and list them.
    Fetch(mail::FetchArgs),
    /// Forget an account's tokens.
    Disconnect { account: String },
    /// The diagnostics catalog: `reference` writes the reference admins search
    /// (docs/diagnostics.md), with the raw texts each entry is recognised by.
    #[command(subcommand)]
    Diagnostics(diagnostics::DiagnosticsCommand),
    /// The local sandbox: emulator + real Dovecot/Postfix (up, status, down), and sign-in.
    #[cfg(unix)]
    Sandbox(sandbox::SandboxArgs),
    /// Keep every connected account's token fresh in the background and report accounts that
    /// need re-authorization (a vendor's mail service; Ctrl-C stops).
    Service(service::ServiceArgs),
    /// Load the mailconnect library at run time (as a host does) and run a scenario file through its C ABI.
    #[cfg(unix)]
    Harness {
        /// The scenario (JSON).
        scenario: std::path::PathBuf,
        /// The library to load (default: $MAILCONNECT_LIB, else next to this program).
        #[arg(long)]
        lib: Option<std::path::PathBuf>,
        /// NAME=VALUE for ${NAME} in the scenario.
        #[arg(long = "var")]
        vars: Vec<String>,
        /// Also define the running sandbox's EMULATOR, IMAP_PORT, POP3_PORT, SMTP_PORT, CA_FILE, ...
        #[arg(long)]
        from_sandbox: bool,
        /// The sandbox's state directory (with --from-sandbox).
        #[arg(long, env = "MAILCONNECT_SANDBOX_DIR")]
        sandbox_dir: Option<std::path::PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let lang = match &cli.lang {
        Some(tag) => mailconnect_core::Language::from_tag(tag),
        None => mailconnect_core::locale::user_language(),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mailconnect: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        #[cfg(unix)]
        Command::Demo { lib } => rt.block_on(demo::run(lib)),
        Command::Admin(cmd) => rt.block_on(setup::run(cmd, &cli.store, lang)),
        Command::Registration(cmd) => admin::registration(cmd, &cli.store, lang),
        Command::Account(cmd) => admin::account(cmd, &cli.store, lang),
        Command::Proxy(cmd) => rt.block_on(admin::proxy(cmd, &cli.store, lang)),
        Command::Connect { account, flow } => {
            rt.block_on(admin::connect(&cli.store, lang, account, flow))
        }
        Command::Test {
            account,
            imap,
            pop3,
            smtp,
            send_probe,
        } => {
            let protocols = [
                (imap, Protocol::Imap),
                (pop3, Protocol::Pop3),
                (smtp, Protocol::Smtp),
            ]
            .into_iter()
            .filter_map(|(on, p)| on.then_some(p))
            .collect();
            rt.block_on(admin::test(
                &cli.store, lang, account, protocols, send_probe,
            ))
        }
        Command::Status { account } => admin::status(&cli.store, lang, account),
        Command::Token { account, sasl } => {
            rt.block_on(admin::token(&cli.store, lang, account, sasl))
        }
        Command::Send(args) => rt.block_on(mail::send(&cli.store, lang, args)),
        Command::Folders { account } => rt.block_on(mail::folders(&cli.store, lang, account)),
        Command::Fetch(args) => rt.block_on(mail::fetch(&cli.store, lang, args)),
        Command::Disconnect { account } => {
            rt.block_on(admin::disconnect(&cli.store, lang, account))
        }
        Command::Diagnostics(cmd) => diagnostics::run(cmd, lang),
        #[cfg(unix)]
        Command::Sandbox(args) => rt.block_on(sandbox::run(args, cli.store.json)),
        Command::Service(args) => service::dispatch(&rt, &cli.store, lang, args),
        #[cfg(unix)]
        Command::Harness {
            scenario,
            lib,
            mut vars,
            from_sandbox,
            sandbox_dir,
        } => {
            let sandbox_vars = if from_sandbox {
                sandbox::harness_vars(&sandbox::state_dir(sandbox_dir))
            } else {
                Ok(vec![])
            };
            match sandbox_vars {
                Err(e) => Err(e.into()),
                Ok(sv) => {
                    // Explicit --var values win over the sandbox's.
                    let mut all: Vec<String> =
                        sv.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
                    all.append(&mut vars);
                    match rt.block_on(harness::run(&scenario, lib, all)) {
                        Ok(true) => Ok(()),
                        Ok(false) => Err("some steps failed".into()),
                        Err(e) => Err(e),
                    }
                }
            }
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<mailconnect_core::Error>() {
                Some(err) => eprintln!("{}", explain(err, lang)),
                None => eprintln!("mailconnect: {e}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// One clear paragraph: what failed, why, and the fix, from the diagnostics catalog.
fn explain(err: &mailconnect_core::Error, lang: mailconnect_core::Language) -> String {
    let d =
        mailconnect_core::diagnose::diagnose(err, mailconnect_core::diagnose::Context::default());
    let t = match lang {
        mailconnect_core::Language::De => d.de,
        mailconnect_core::Language::En => d.en,
    };
    let mut out = format!(
        "mailconnect: {} [{}]\n  {}\n  {}\n  {}",
        t.title, d.code, err, t.explanation, t.fix
    );
    if let Some(reply) = &err.evidence().server_reply {
        out.push_str(&format!("\n  server: {reply}"));
    }
    out
}
