//! `mailconnect admin register` and `mailconnect admin check`: the tenant setup through Microsoft
//! Graph with one administrator sign-in (core's `setup` module).

use std::time::Duration;

use clap::{Args, Subcommand};
use mailconnect_core::setup::{finding_lines, CheckOptions, Finding, RegisterOptions, Severity};
use mailconnect_core::{CancellationToken, Flow, Language};

use crate::admin::{open, paint, StoreArgs, Terminal};

type Res = Result<(), Box<dyn std::error::Error>>;

/// The administrator's sign-in.
#[derive(Args)]
pub struct SignInArgs {
    /// The stored registration of your setup app (multi-tenant, with the delegated Graph
    /// permissions Application.ReadWrite.All, DelegatedPermissionGrant.ReadWrite.All,
    /// AppRoleAssignment.ReadWrite.All).
    #[arg(long)]
    setup_registration: String,
    /// browser (default) or device.
    #[arg(long)]
    flow: Option<String>,
    /// The administrator's address, filled in on the sign-in page.
    #[arg(long)]
    login_hint: Option<String>,
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create the app registration mailconnect needs in your tenant through Microsoft Graph (one
    /// administrator sign-in): public client with http://localhost under Mobile and desktop,
    /// public client flows on, IMAP/POP/SMTP permissions, admin consent; store it.
    Register {
        /// The id to store the new registration under.
        registration: String,
        #[command(flatten)]
        sign_in: SignInArgs,
        /// The app registration's name in the tenant.
        #[arg(long, default_value = "mailconnect")]
        name: String,
        /// Also Microsoft Graph's Mail.ReadWrite and Mail.Send (the Graph transport).
        #[arg(long)]
        graph: bool,
        /// Also app-only access: a client secret (stored as REGISTRATION-app) and the
        /// application permissions; prints the Exchange steps left to do.
        #[arg(long)]
        app_only: bool,
        /// Days the client secret is valid (1 to 730).
        #[arg(long, default_value_t = 180)]
        secret_days: u32,
        /// Replace a stored registration with this id.
        #[arg(long)]
        replace: bool,
    },
    /// Read a registration back through Microsoft Graph and report everything that would make
    /// sign-ins or mail fail; exits 1 when something would.
    Check {
        /// The stored registration to check.
        registration: String,
        #[command(flatten)]
        sign_in: SignInArgs,
        /// Check Microsoft Graph's mail permissions too (default: when an account uses Graph).
        #[arg(long)]
        graph: Option<bool>,
        /// Check app-only access too (default: when the registration has a client secret).
        #[arg(long)]
        app_only: Option<bool>,
    },
}

fn flow(s: Option<&str>) -> Result<Option<Flow>, String> {
    match s {
        None | Some("browser") => Ok(Some(Flow::Browser)),
        Some("device" | "device_code") => Ok(Some(Flow::DeviceCode)),
        Some(other) => Err(format!("unknown flow '{other}': browser or device")),
    }
}

fn ctrl_c() -> CancellationToken {
    let cancel = CancellationToken::new();
    let on = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on.cancel();
        }
    });
    cancel
}

fn print_findings(findings: &[Finding], lang: Language) {
    for (f, line) in findings.iter().zip(finding_lines(findings, lang)) {
        println!("  {}", paint(&line, f.severity != Severity::Error));
    }
}

pub async fn run(cmd: AdminCommand, store: &StoreArgs, lang: Language) -> Res {
    let c = open(store, lang)?;
    let terminal = Terminal::new(store.json, Duration::from_secs(900));
    let cancel = ctrl_c();
    let de = lang == Language::De;
    match cmd {
        AdminCommand::Register {
            registration,
            sign_in,
            name,
            graph,
            app_only,
            secret_days,
            replace,
        } => {
            let opts = RegisterOptions {
                setup_registration: sign_in.setup_registration,
                registration_id: registration,
                display_name: name,
                flow: flow(sign_in.flow.as_deref())?,
                login_hint: sign_in.login_hint,
                graph,
                app_only,
                secret_days,
                replace,
            };
            let r = c.admin_register(&opts, &terminal, &cancel).await;
            terminal.done();
            let r = r?;
            if store.json {
                println!("{}", serde_json::to_string(&r)?);
                return Ok(());
            }
            println!(
                "{} {} ({}) {} {}",
                paint(if de { "eingerichtet:" } else { "registered:" }, true),
                r.registration_id,
                r.client_id,
                if de { "im Mandanten" } else { "in tenant" },
                if r.tenant_name.is_empty() {
                    &r.tenant_id
                } else {
                    &r.tenant_name
                }
            );
            for s in &r.steps {
                println!("  - {}", if de { &s.de } else { &s.en });
            }
            if let Some(id) = &r.app_registration_id {
                println!(
                    "  - {} {id}",
                    if de {
                        "App-Registrierung mit Schlüssel:"
                    } else {
                        "app-only registration with the secret:"
                    }
                );
            }
            if !r.exchange_steps.is_empty() {
                println!(
                    "{}",
                    if de {
                        "Noch in Exchange Online PowerShell auszuführen (je Postfach):"
                    } else {
                        "Still to run in Exchange Online PowerShell (per mailbox):"
                    }
                );
                for s in &r.exchange_steps {
                    println!("    {s}");
                }
            }
            if r.findings.is_empty() {
                println!(
                    "{}",
                    if de {
                        "Zurückgelesen: alles wie benötigt."
                    } else {
                        "Read back: everything as needed."
                    }
                );
            } else {
                println!(
                    "{}",
                    if de {
                        "Zurückgelesen, mit Abweichungen:"
                    } else {
                        "Read back, with deviations:"
                    }
                );
                print_findings(&r.findings, lang);
            }
            Ok(())
        }
        AdminCommand::Check {
            registration,
            sign_in,
            graph,
            app_only,
        } => {
            let opts = CheckOptions {
                setup_registration: sign_in.setup_registration,
                flow: flow(sign_in.flow.as_deref())?,
                login_hint: sign_in.login_hint,
                graph,
                app_only,
            };
            let r = c
                .admin_check(&registration, &opts, &terminal, &cancel)
                .await;
            terminal.done();
            let r = r?;
            if store.json {
                println!("{}", serde_json::to_string(&r)?);
            } else if r.findings.is_empty() {
                println!(
                    "{} {} ({}): {}",
                    paint("ok", true),
                    r.registration_id,
                    r.client_id,
                    if de {
                        "alles wie benötigt"
                    } else {
                        "everything as needed"
                    }
                );
            } else {
                println!("{} ({}):", r.registration_id, r.client_id);
                print_findings(&r.findings, lang);
            }
            if r.ok {
                Ok(())
            } else {
                Err(if de {
                    "die Registrierung hat Fehler (siehe oben)"
                } else {
                    "the registration has errors (see above)"
                }
                .into())
            }
        }
    }
}
