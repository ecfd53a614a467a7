//! Running the benchmarks' Python peers.

use std::process::Command;

/// The Python with the benchmark peers' packages: the venv of `tests/benches/peers.sh`, else
/// `python3` from the path.
pub fn python_bin() -> String {
    let venv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target-bench/peers/venv/bin/python"
    );
    if std::path::Path::new(venv).exists() {
        venv.into()
    } else {
        "python3".into()
    }
}

/// Run `script` with `python` and these environment variables; the script prints the seconds
/// it measured itself (interpreter start-up excluded). Panics with the script's stderr on failure.
pub fn python_seconds(python: &str, script: &str, env: &[(&str, String)]) -> f64 {
    let mut cmd = Command::new(python);
    cmd.arg("-c").arg(script);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("python runs");
    assert!(
        out.status.success(),
        "python peer failed (tests/benches/peers.sh installs the peers' packages):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the peer printed its seconds")
}
