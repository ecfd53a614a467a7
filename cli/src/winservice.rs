//! `mailconnect service install|start|stop|status|uninstall` on Windows, and the service itself:
//! the background refresher (`mailconnect service`) running under the service control manager, the
//! "mail service beside the GUI" of the vendor articles.
//!
//! `install` records the whole command line: the store, its key protection, the CA file, the
//! language and the refresher's settings, with `--as-windows-service NAME`, which makes the
//! process register with the SCM (`StartServiceCtrlDispatcherW`) and run until Stop or Shutdown.
//! The service writes its event lines to `--log-file` (default `<store>.service.log`, kept below
//! 1 MiB by moving it to `.old`). A program and its service that share one store need the key in
//! DPAPI machine scope (`--key-protection machine`); `install` says so when the store is not.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mailconnect_core::{CancellationToken, Language};
use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

use crate::admin::StoreArgs;
use crate::service::{Action, ServiceArgs};

type Res = Result<(), Box<dyn std::error::Error>>;

fn manager(access: ServiceManagerAccess) -> Result<ServiceManager, Box<dyn std::error::Error>> {
    ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT | access).map_err(
        |e| {
            format!("cannot open the service control manager ({e}); installing and removing services needs an administrator").into()
        },
    )
}

fn state_name(s: ServiceState, lang: Language) -> &'static str {
    let de = lang == Language::De;
    match s {
        ServiceState::Running => {
            if de {
                "läuft"
            } else {
                "running"
            }
        }
        ServiceState::Stopped => {
            if de {
                "angehalten"
            } else {
                "stopped"
            }
        }
        ServiceState::StartPending => {
            if de {
                "startet"
            } else {
                "starting"
            }
        }
        ServiceState::StopPending => {
            if de {
                "wird angehalten"
            } else {
                "stopping"
            }
        }
        _ => "paused",
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Carry out `action`.
pub fn manage(action: Action, store: &StoreArgs, lang: Language, args: &ServiceArgs) -> Res {
    let de = lang == Language::De;
    match action {
        Action::Install {
            name,
            display_name,
            account,
            password_env,
            manual,
        } => {
            let (store_path, _) = crate::admin::store_and_key(store);
            let mut launch: Vec<OsString> = vec!["--store".into(), absolute(&store_path).into()];
            if let Some(k) = &store.key_file {
                launch.extend(["--key-file".into(), absolute(k).into()]);
            }
            if let Some(p) = &store.key_protection {
                launch.extend(["--key-protection".into(), p.into()]);
            }
            if let Some(ca) = &store.ca_file {
                launch.extend(["--ca-file".into(), absolute(ca).into()]);
            }
            launch.extend(["--lang".into(), if de { "de" } else { "en" }.into()]);
            if store.json {
                launch.push("--json".into());
            }
            launch.extend([
                "service".into(),
                "--as-windows-service".into(),
                name.clone().into(),
                "--interval".into(),
                args.interval.to_string().into(),
                "--ahead".into(),
                args.ahead.to_string().into(),
                "--jitter".into(),
                args.jitter.to_string().into(),
                "--concurrency".into(),
                args.concurrency.to_string().into(),
            ]);
            if let Some(l) = &args.log_level {
                launch.extend(["--log-level".into(), l.into()]);
            }
            if let Some(f) = &args.log_file {
                launch.extend(["--log-file".into(), absolute(f).into()]);
            }
            let password = match password_env {
                Some(v) => Some(
                    std::env::var_os(&v)
                        .ok_or_else(|| format!("the environment variable {v} is not set"))?,
                ),
                None => None,
            };
            let info = ServiceInfo {
                name: name.clone().into(),
                display_name: display_name.into(),
                service_type: ServiceType::OWN_PROCESS,
                start_type: if manual {
                    ServiceStartType::OnDemand
                } else {
                    ServiceStartType::AutoStart
                },
                error_control: ServiceErrorControl::Normal,
                executable_path: std::env::current_exe()?,
                launch_arguments: launch,
                dependencies: vec![],
                account_name: account.clone().map(OsString::from),
                account_password: password,
            };
            let m = manager(ServiceManagerAccess::CREATE_SERVICE)?;
            let service = m
                .create_service(&info, ServiceAccess::CHANGE_CONFIG)
                .map_err(|e| format!("cannot install the service '{name}': {e}"))?;
            let _ = service.set_description(
                "Keeps the OAuth 2.0 tokens of the mailboxes in the mailconnect store fresh and reports accounts that need re-authorization.",
            );
            println!(
                "{} '{name}' ({}: {})",
                if de {
                    "Dienst installiert:"
                } else {
                    "service installed:"
                },
                if de { "Speicher" } else { "store" },
                absolute(&store_path).display()
            );
            if store.key_protection.as_deref() != Some("machine") && store.key_file.is_none() {
                println!(
                    "{}",
                    if de {
                        "Hinweis: Der Schlüssel des Speichers ist per DPAPI an einen Windows-Benutzer gebunden. Läuft der Dienst unter einem anderen Konto als das Programm (LocalSystem), installieren und verwenden Sie beide mit --key-protection machine."
                    } else {
                        "Note: the store's key is protected with DPAPI for one Windows user. When the service runs as another account than the program (LocalSystem), install and use both with --key-protection machine."
                    }
                );
            }
            Ok(())
        }
        Action::Uninstall { name } => {
            let m = manager(ServiceManagerAccess::empty())?;
            let service = m
                .open_service(
                    &name,
                    ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
                )
                .map_err(|e| format!("the service '{name}' cannot be opened: {e}"))?;
            if service.query_status()?.current_state != ServiceState::Stopped {
                let _ = service.stop();
                wait_for(&service, ServiceState::Stopped, Duration::from_secs(60))?;
            }
            service.delete()?;
            println!(
                "{} '{name}'",
                if de {
                    "Dienst entfernt:"
                } else {
                    "service removed:"
                }
            );
            Ok(())
        }
        Action::Start { name } => {
            let m = manager(ServiceManagerAccess::empty())?;
            let service = m
                .open_service(&name, ServiceAccess::START | ServiceAccess::QUERY_STATUS)
                .map_err(|e| format!("the service '{name}' cannot be opened: {e}"))?;
            service.start::<&str>(&[])?;
            wait_for(&service, ServiceState::Running, Duration::from_secs(60))?;
            println!("{name}: {}", state_name(ServiceState::Running, lang));
            Ok(())
        }
        Action::Stop { name } => {
            let m = manager(ServiceManagerAccess::empty())?;
            let service = m
                .open_service(&name, ServiceAccess::STOP | ServiceAccess::QUERY_STATUS)
                .map_err(|e| format!("the service '{name}' cannot be opened: {e}"))?;
            if service.query_status()?.current_state != ServiceState::Stopped {
                service.stop()?;
            }
            wait_for(&service, ServiceState::Stopped, Duration::from_secs(60))?;
            println!("{name}: {}", state_name(ServiceState::Stopped, lang));
            Ok(())
        }
        Action::Status { name } => {
            let m = manager(ServiceManagerAccess::empty())?;
            let service = m
                .open_service(&name, ServiceAccess::QUERY_STATUS)
                .map_err(|e| format!("the service '{name}' is not installed ({e})"))?;
            let st = service.query_status()?;
            match st.process_id {
                Some(pid) => println!("{name}: {} (pid {pid})", state_name(st.current_state, lang)),
                None => println!("{name}: {}", state_name(st.current_state, lang)),
            }
            Ok(())
        }
    }
}

fn wait_for(
    service: &windows_service::service::Service,
    state: ServiceState,
    limit: Duration,
) -> Res {
    let start = Instant::now();
    loop {
        let now = service.query_status()?.current_state;
        if now == state {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(format!(
                "the service did not reach the state {state:?} within {} s (it is {now:?})",
                limit.as_secs()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What the service main needs; set before the dispatcher starts (it calls back without context).
struct Launch {
    name: String,
    store: StoreArgs,
    lang: Language,
    args: Mutex<Option<ServiceArgs>>,
}

static LAUNCH: OnceLock<Launch> = OnceLock::new();

/// Register with the service control manager and run the refresher as the service `name`.
pub fn run_as_service(name: String, store: StoreArgs, lang: Language, args: ServiceArgs) -> Res {
    let launch = Launch {
        name: name.clone(),
        store,
        lang,
        args: Mutex::new(Some(args)),
    };
    if LAUNCH.set(launch).is_err() {
        return Err("the service was started twice in one process".into());
    }
    service_dispatcher::start(&name, ffi_service_main).map_err(|e| {
        format!("cannot connect to the service control manager ({e}); --as-windows-service is for the service control manager, use `mailconnect service` to run in the foreground").into()
    })
}

define_windows_service!(ffi_service_main, service_main);

/// A log file of the service's lines, moved to `.old` when it passes 1 MiB.
struct LogFile {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl LogFile {
    fn new(path: PathBuf) -> LogFile {
        LogFile {
            path,
            file: Mutex::new(None),
        }
    }

    fn line(&self, text: &str) {
        let Ok(mut guard) = self.file.lock() else {
            return;
        };
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() > 1 << 20) {
            *guard = None;
            let mut old = self.path.as_os_str().to_owned();
            old.push(".old");
            let _ = std::fs::rename(&self.path, PathBuf::from(old));
        }
        if guard.is_none() {
            *guard = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .ok();
        }
        if let Some(f) = guard.as_mut() {
            let _ = writeln!(f, "{text}");
            let _ = f.flush();
        }
    }
}

fn status(state: ServiceState, exit: u32) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: if state == ServiceState::Running {
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
        } else {
            ServiceControlAccept::empty()
        },
        exit_code: ServiceExitCode::Win32(exit),
        checkpoint: 0,
        wait_hint: if state == ServiceState::Running {
            Duration::default()
        } else {
            Duration::from_secs(30)
        },
        process_id: None,
    }
}

fn service_main(_arguments: Vec<OsString>) {
    let Some(launch) = LAUNCH.get() else {
        return;
    };
    let Some(args) = launch.args.lock().ok().and_then(|mut a| a.take()) else {
        return;
    };
    let log_path = args.log_file.clone().unwrap_or_else(|| {
        let (store, _) = crate::admin::store_and_key(&launch.store);
        let mut p = store.into_os_string();
        p.push(".service.log");
        PathBuf::from(p)
    });
    let log = std::sync::Arc::new(LogFile::new(log_path));
    // A service has no console: a panic is written to its log before the process ends.
    let panic_log = log.clone();
    std::panic::set_hook(Box::new(move |info| {
        panic_log.line(&format!("the service failed: {info}"));
    }));
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            c.cancel();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let Ok(handle) = service_control_handler::register(&launch.name, handler) else {
        log.line("cannot register with the service control manager");
        return;
    };
    let _ = handle.set_service_status(status(ServiceState::Running, 0));
    log.line(&format!(
        "{} service '{}' started (pid {})",
        time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        launch.name,
        std::process::id()
    ));
    let exit = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => {
            let result = rt.block_on(crate::service::run(
                &launch.store,
                launch.lang,
                args,
                cancel,
                &|line: &str| log.line(line),
            ));
            match result {
                Ok(()) => 0,
                Err(e) => {
                    log.line(&format!("the service stops: {e}"));
                    1
                }
            }
        }
        Err(e) => {
            log.line(&format!("cannot start the async runtime: {e}"));
            1
        }
    };
    log.line(&format!("service '{}' stopped", launch.name));
    let _ = handle.set_service_status(status(ServiceState::Stopped, exit));
}
