//! `mc-emulator`: run the identity platform emulator as a process.
//!
//! ```text
//! mc-emulator [--config FILE.json] [--port N] [--bind ADDR] [--tls-cert PEM --tls-key PEM]
//! ```
//! Prints one JSON line (`{"base_url":...,"introspection_url":...,"graph_base_url":...}`) to
//! stdout once listening (Graph needs the mail stack: POST its stack.json to
//! `{base_url}/_sandbox/mail-stack`),
//! then serves until SIGTERM or SIGINT. Logs go to stderr (`RUST_LOG` filters them).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use mailconnect_sandbox::{Emulator, EmulatorConfig, TlsConfig};

const USAGE: &str = "usage: mc-emulator [--config FILE.json] [--port N] [--bind ADDR:PORT] [--public-base-url URL] [--tls-cert PEM --tls-key PEM]\n\
without --config the standard sandbox data is used (see sandbox/README.md)";

struct Args {
    config: Option<PathBuf>,
    port: Option<u16>,
    bind: Option<SocketAddr>,
    public_base_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        config: None,
        port: None,
        bind: None,
        public_base_url: None,
        tls_cert: None,
        tls_key: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--config" => a.config = Some(value("--config")?.into()),
            "--port" => {
                a.port = Some(
                    value("--port")?
                        .parse()
                        .map_err(|e| format!("--port: {e}"))?,
                )
            }
            "--bind" => {
                a.bind = Some(
                    value("--bind")?
                        .parse()
                        .map_err(|e| format!("--bind: {e}"))?,
                )
            }
            "--public-base-url" => a.public_base_url = Some(value("--public-base-url")?),
            "--tls-cert" => a.tls_cert = Some(value("--tls-cert")?.into()),
            "--tls-key" => a.tls_key = Some(value("--tls-key")?.into()),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    if a.tls_cert.is_some() != a.tls_key.is_some() {
        return Err("--tls-cert and --tls-key go together".into());
    }
    Ok(a)
}

async fn run(args: Args) -> Result<(), String> {
    let mut config = match &args.config {
        Some(p) => EmulatorConfig::from_json_file(p).map_err(|e| e.to_string())?,
        None => EmulatorConfig::sandbox(),
    };
    if let Some(b) = args.bind {
        config.bind = Some(b);
    }
    if let Some(p) = args.port {
        let ip = config.bind.map(|b| b.ip()).unwrap_or([127, 0, 0, 1].into());
        config.bind = Some(SocketAddr::new(ip, p));
    }
    if let Some(u) = args.public_base_url {
        config.public_base_url = Some(u);
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = Some(TlsConfig {
            cert_pem_path: cert,
            key_pem_path: key,
        });
    }
    let emulator = Emulator::start(config).await.map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::json!({
            "base_url": emulator.base_url(),
            "introspection_url": emulator.introspection_url(),
            "graph_base_url": emulator.graph_base_url(),
        })
    );
    wait_for_signal().await;
    tracing::info!("stopping");
    emulator.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("mc-emulator: {e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    // One worker per core (Tokio's default); the token endpoint signs on the blocking pool.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mc-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mc-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}
