//! `mailconnect demo`: the README's main job after the build (what `sandbox/demo.sh` runs). It
//! brings a private sandbox up (emulator + real Dovecot/Postfix), runs the whole story through the
//! C ABI with the libloading harness (cli/scenarios/sandbox-demo.json, built in), and brings the
//! sandbox down again, printing what it does as it goes.

use std::path::PathBuf;
use std::time::Instant;

use crate::harness::{self, Source};
use crate::sandbox;

const SCENARIO: &str = include_str!("../scenarios/sandbox-demo.json");

fn banner(text: &str) {
    println!("\n==== {text}");
}

pub async fn run(lib: Option<PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let lib = lib.unwrap_or_else(harness::default_lib);
    if !lib.exists() {
        return Err(format!(
            "the mailconnect library is not built ({} is missing): run `cargo build -p mailconnect-ffi` first, or give --lib PATH",
            lib.display()
        )
        .into());
    }
    println!("mailconnect demo: a host application links libmailconnect and reaches a Microsoft 365-like tenant");
    println!("(everything runs locally: an emulator of the Microsoft identity platform, real Dovecot and Postfix)");

    banner("1. Bring the sandbox up (mailconnect sandbox up)");
    let dir = tempfile::Builder::new()
        .prefix("mailconnect-demo-")
        .tempdir_in(std::env::temp_dir())?;
    let state = sandbox::up_in(dir.path()).await?;
    sandbox::print(&state);
    let up_secs = started.elapsed().as_secs_f64();

    banner("2. The story through the C ABI: the harness loads the library as a host does (dlopen/LoadLibrary)");
    let vars: Vec<String> = sandbox::harness_vars(dir.path())?
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let result = harness::run_source(
        Source::Builtin("cli/scenarios/sandbox-demo.json", SCENARIO),
        Some(lib),
        vars,
    )
    .await;

    banner("3. Bring the sandbox down (mailconnect sandbox down)");
    let down = sandbox::down_in(dir.path());
    match &down {
        Ok(_) => println!("sandbox stopped"),
        Err(e) => println!("stopping the sandbox failed: {e}"),
    }
    println!(
        "\nDemo finished in {:.1} s (sandbox up in {up_secs:.1} s).",
        started.elapsed().as_secs_f64()
    );
    match result? {
        true => {
            down?;
            Ok(())
        }
        false => Err("some steps of the demo failed (see the table above)".into()),
    }
}
