//! `mailconnect service`: the background refresher in the foreground, for a vendor's mail
//! service or a cron-less server. Prints each event (JSON lines with `--json`) until Ctrl-C.

use std::time::Duration;

use mailconnect_core::{CancellationToken, EventKind, Language, Refresher, RefresherOptions};

use crate::admin::StoreArgs;

type Res = Result<(), Box<dyn std::error::Error>>;

/// Options of `mailconnect service`.
#[derive(clap::Args)]
pub struct ServiceArgs {
    /// Seconds between rounds.
    #[arg(long, default_value_t = 30)]
    pub interval: u64,
    /// Refresh tokens expiring within this many seconds.
    #[arg(long, default_value_t = 600)]
    pub ahead: u64,
    /// Spread refreshes over up to this many extra seconds ahead.
    #[arg(long, default_value_t = 120)]
    pub jitter: u64,
    /// Refreshes at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Run one round, print its report and exit (for a scheduler such as cron or a Windows task).
    #[arg(long)]
    pub once: bool,
    /// Also print log records at this level (error, warn, info, debug).
    #[arg(long)]
    pub log_level: Option<String>,
    /// Windows: manage the Windows service that runs this refresher in the background.
    #[command(subcommand)]
    pub action: Option<Action>,
    /// Run under the Windows service control manager as the service of this name (what
    /// `service install` records; not for people).
    #[arg(long, hide = true)]
    pub as_windows_service: Option<String>,
    /// Windows service: write the event lines to this file (default: beside the store,
    /// `<store>.service.log`).
    #[arg(long)]
    pub log_file: Option<std::path::PathBuf>,
}

/// The default Windows service name.
pub const DEFAULT_NAME: &str = "mailconnect";

/// What to do with the Windows service (Windows only; elsewhere run `mailconnect service` from
/// systemd, launchd or cron).
#[derive(clap::Subcommand)]
pub enum Action {
    /// Install the service (as LocalSystem unless --account), recording the store and the
    /// refresher settings given with it. Needs an administrator.
    Install {
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
        #[arg(long, default_value = "mailconnect token refresher")]
        display_name: String,
        /// The account to run as (`NT AUTHORITY\LocalService`, `.\svc-mail`); default LocalSystem.
        #[arg(long)]
        account: Option<String>,
        /// The account's password, from this environment variable.
        #[arg(long)]
        password_env: Option<String>,
        /// Start on demand instead of automatically with Windows.
        #[arg(long)]
        manual: bool,
    },
    /// Stop (when running) and remove the service.
    Uninstall {
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
    },
    /// Start the service.
    Start {
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
    },
    /// Stop the service and wait until it has stopped.
    Stop {
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
    },
    /// Print whether the service is installed and running.
    Status {
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
    },
}

/// `mailconnect service …`: a Windows service action, the service itself under the service
/// control manager, or the refresher in the foreground.
pub fn dispatch(
    rt: &tokio::runtime::Runtime,
    store: &StoreArgs,
    lang: Language,
    mut args: ServiceArgs,
) -> Res {
    #[cfg(windows)]
    {
        if let Some(action) = args.action.take() {
            return crate::winservice::manage(action, store, lang, &args);
        }
        if let Some(name) = args.as_windows_service.clone() {
            return crate::winservice::run_as_service(name, store.clone(), lang, args);
        }
    }
    #[cfg(not(windows))]
    if args.action.take().is_some() || args.as_windows_service.is_some() {
        return Err("Windows services exist only on Windows; here run `mailconnect service` from systemd, launchd or cron (`--once` for a scheduler)".into());
    }
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            c.cancel();
        }
    });
    rt.block_on(run(store, lang, args, cancel, &|line: &str| {
        println!("{line}")
    }))
}

fn human(kind: &EventKind, lang: Language) -> String {
    let de = lang == Language::De;
    match kind {
        EventKind::TokenRefreshed {
            account_id,
            expires_at,
        } => {
            if de {
                format!("{account_id}: Token erneuert, gültig bis {expires_at}")
            } else {
                format!("{account_id}: token refreshed, valid until {expires_at}")
            }
        }
        EventKind::NeedsReauthorization {
            account_id,
            diagnostic,
            ..
        } => {
            let t = &diagnostic[if de { "de" } else { "en" }];
            format!(
                "{account_id}: {} {} — {}",
                if de {
                    "MUSS NEU AUTORISIERT WERDEN:"
                } else {
                    "NEEDS RE-AUTHORIZATION:"
                },
                t["title"].as_str().unwrap_or_default(),
                t["fix"].as_str().unwrap_or_default()
            )
        }
        EventKind::StateChanged {
            account_id,
            from,
            to,
        } => format!(
            "{account_id}: {} {} -> {}",
            if de { "Zustand" } else { "state" },
            serde_json::to_value(from)
                .unwrap_or_default()
                .as_str()
                .unwrap_or_default(),
            serde_json::to_value(to)
                .unwrap_or_default()
                .as_str()
                .unwrap_or_default()
        ),
        EventKind::ReauthorizationDue {
            account_id,
            at,
            code,
        } => {
            let t = mailconnect_core::diagnose::entry(code).texts(lang);
            if de {
                format!(
                    "{account_id}: muss ab {at} neu autorisiert werden: {} — {}",
                    t.title, t.fix
                )
            } else {
                format!(
                    "{account_id}: must be authorized again from {at}: {} — {}",
                    t.title, t.fix
                )
            }
        }
        EventKind::ConnectProgress { account_id, stage } => format!("{account_id}: {stage}"),
        EventKind::Log { level, message, .. } => format!("[{level}] {message}"),
        EventKind::EventsDropped { count } => {
            if de {
                format!("{count} Ereignisse verworfen")
            } else {
                format!("{count} events dropped")
            }
        }
    }
}

/// Run the refresher until `cancel` (or one round with `--once`), writing each line to `out`.
pub async fn run(
    store: &StoreArgs,
    lang: Language,
    args: ServiceArgs,
    cancel: CancellationToken,
    out: &(dyn Fn(&str) + Sync),
) -> Res {
    let client = crate::admin::open(store, lang)?;
    let options = RefresherOptions::from_json(
        &serde_json::json!({
            "interval_secs": args.interval,
            "ahead_secs": args.ahead,
            "jitter_secs": args.jitter,
            "concurrency": args.concurrency,
        })
        .to_string(),
    )?;
    let level = match args.log_level.as_deref() {
        None => 0,
        Some(l) => mailconnect_core::events::level_number(l).ok_or_else(|| {
            format!("--log-level must be error, warn, info, debug or trace, not '{l}'")
        })?,
    };
    client.events().configure(4096, level);
    let refresher = Refresher::new(client.clone(), options);
    let print = |e: mailconnect_core::Event| {
        if store.json {
            out(&e.to_json());
        } else {
            out(&format!("{} {}", e.time, human(&e.kind, lang)));
        }
    };
    if args.once {
        let report = refresher.round(&cancel).await?;
        while let Some(e) = client.events().try_next() {
            print(e);
        }
        if store.json {
            out(&serde_json::to_string(&report)?);
        } else {
            out(&format!(
                "{}: {} accounts, {} refreshed, {} fresh, {} failed, {} need re-authorization, {} backing off, {} not connected",
                if lang == Language::De { "Runde" } else { "round" },
                report.accounts, report.refreshed, report.fresh, report.failed,
                report.needs_reauthorization, report.backing_off, report.not_connected
            ));
        }
        return if report.failed > 0 || report.needs_reauthorization > 0 {
            Err("some accounts could not be refreshed (see above)".into())
        } else {
            Ok(())
        };
    }
    if !store.json {
        eprintln!(
            "{}",
            if lang == Language::De {
                "mailconnect-Dienst läuft (Strg-C beendet) ..."
            } else {
                "mailconnect service running (Ctrl-C stops) ..."
            }
        );
    }
    let r = refresher.clone_handle();
    let runner = tokio::spawn({
        let cancel = cancel.clone();
        async move { r.run(&cancel).await }
    });
    let events = client.events().clone();
    while !cancel.is_cancelled() {
        if let Some(e) = events.next(Duration::from_millis(500), &cancel).await {
            print(e);
        }
    }
    let _ = runner.await;
    Ok(())
}
