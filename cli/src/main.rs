//! The `mailconnect` command. For now: `mailconnect demo`, the sandbox round that the README's
//! main command runs. Later issues add the admin and integrator subcommands.

mod admin;
mod demo;
mod harness;

use clap::{Parser, Subcommand};
use mailconnect_core::Protocol;

#[derive(Parser)]
#[command(
    name = "mailconnect",
    version,
    about = "Connect business applications to Microsoft 365 mailboxes with OAuth 2.0"
)]
struct Cli {
    /// Language of messages for people (en, de); default from the locale.
    #[arg(long, global = true, env = "MAILCONNECT_LANG")]
    lang: Option<String>,
    #[command(flatten)]
    store: admin::StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the identity-platform emulator and run connect -> status -> token -> disconnect against it.
    Demo,
    /// App registrations (tenant, client id, secret) shared by many accounts.
    #[command(subcommand)]
    Registration(admin::RegistrationCommand),
    /// Mailboxes.
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
    /// Forget an account's tokens.
    Disconnect { account: String },
    /// Sandbox helpers for tests and vendors' harnesses.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Load the mailconnect library at run time (as a host does) and run a scenario file through its C ABI.
    Harness {
        /// The scenario (JSON).
        scenario: std::path::PathBuf,
        /// The library to load (default: $MAILCONNECT_LIB, else next to this program).
        #[arg(long)]
        lib: Option<std::path::PathBuf>,
        /// NAME=VALUE for ${NAME} in the scenario.
        #[arg(long = "var")]
        vars: Vec<String>,
    },
}

#[derive(Subcommand)]
enum SandboxCommand {
    /// Play the user in the sandbox: complete a device code, or sign in on an authorize URL
    /// (following the emulator's real forms, like a browser), as USER with PASSWORD.
    SignIn(SignInArgs),
}

#[derive(clap::Args)]
struct SignInArgs {
    /// The user (e.g. alice@example.test).
    #[arg(long)]
    user: String,
    /// The password (sandbox users: <name>-password).
    #[arg(long)]
    password: String,
    /// Device flow: the user code shown.
    #[arg(long, requires = "verification_uri")]
    device_code: Option<String>,
    /// Device flow: the verification URI shown.
    #[arg(long)]
    verification_uri: Option<String>,
    /// Browser flow: the authorize URL the library opened.
    #[arg(long, conflicts_with = "device_code")]
    url: Option<String>,
    /// Decline the consent instead of accepting it.
    #[arg(long)]
    decline: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let lang = mailconnect_core::Language::from_tag(
        &cli.lang
            .clone()
            .unwrap_or_else(|| std::env::var("LANG").unwrap_or_default()),
    );
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
        Command::Demo => rt.block_on(demo::run(lang)),
        Command::Registration(cmd) => admin::registration(cmd, &cli.store, lang),
        Command::Account(cmd) => admin::account(cmd, &cli.store, lang),
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
        Command::Disconnect { account } => {
            rt.block_on(admin::disconnect(&cli.store, lang, account))
        }
        Command::Sandbox(SandboxCommand::SignIn(args)) => rt.block_on(sandbox_sign_in(args)),
        Command::Harness {
            scenario,
            lib,
            vars,
        } => match rt.block_on(harness::run(&scenario, lib, vars)) {
            Ok(true) => Ok(()),
            Ok(false) => Err("some steps failed".into()),
            Err(e) => Err(e),
        },
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

async fn sandbox_sign_in(args: SignInArgs) -> Result<(), Box<dyn std::error::Error>> {
    use mailconnect_sandbox::{Consent, ScriptedBrowser, SignIn};
    let SignInArgs {
        user,
        password,
        device_code,
        verification_uri,
        url,
        decline,
    } = args;
    let script = SignIn {
        user,
        password,
        mfa_code: Some("123456".into()),
        consent: if decline {
            Consent::Decline
        } else {
            Consent::Accept
        },
        deliver_redirect: true,
    };
    let browser = ScriptedBrowser::new();
    let outcome = match (device_code, verification_uri, url) {
        (Some(code), Some(uri), None) => browser.complete_device_code(&uri, &code, &script).await?,
        (None, None, Some(url)) => browser.sign_in(&url, &script).await?,
        _ => return Err("give --device-code with --verification-uri, or --url".into()),
    };
    if let Some(page) = outcome.error_page {
        return Err(format!("the sign-in ended on an error page: {page}").into());
    }
    println!("signed in as {}", outcome.signed_in_as.unwrap_or_default());
    Ok(())
}
