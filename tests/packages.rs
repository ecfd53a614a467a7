//! The release packages (issue 19.2), installed the way each ecosystem installs them, from the
//! folder `ffi/dist/dist.sh` wrote (`MAILCONNECT_DIST`; tests/packages/run.sh builds it and runs
//! these): the Linux tarball with `make install` under a prefix and a C program built with
//! `pkg-config` against the installed copy, shared and static; the Python wheel with pip into a
//! fresh virtual environment, running the binding's scenario without `MAILCONNECT_LIB`. The
//! NuGet package has its own test (tests/packages_nuget.rs). Without `MAILCONNECT_DIST` these
//! return at once, unless `MAILCONNECT_REQUIRE_PACKAGES=1` (tests/run-all.sh) makes that a failure.
//! The version check needs no package and always runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use mailconnect_tests::*;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// The package folder, or `None` (skip) when there is none and none is required.
fn dist() -> Option<PathBuf> {
    match std::env::var_os("MAILCONNECT_DIST") {
        Some(d) => Some(PathBuf::from(d)),
        None if std::env::var("MAILCONNECT_REQUIRE_PACKAGES").is_ok_and(|v| v == "1") => {
            panic!("MAILCONNECT_REQUIRE_PACKAGES=1 but MAILCONNECT_DIST is not set: run tests/packages/run.sh")
        }
        None => {
            eprintln!("no MAILCONNECT_DIST: the package tests are skipped (tests/packages/run.sh runs them)");
            None
        }
    }
}

fn one_file(dir: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(suffix))
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {prefix}*{suffix} in {}: {found:?}",
        dir.display()
    );
    found.into_iter().next().expect("one file")
}

/// `pkg-config ARGS mailconnect` against the installed copy.
fn pkg_config(pc_dir: &Path, args: &[&str]) -> Vec<String> {
    let out = run_ok(
        Command::new("pkg-config")
            .env("PKG_CONFIG_PATH", pc_dir)
            .env_remove("PKG_CONFIG_LIBDIR")
            .args(args)
            .arg("mailconnect"),
    );
    out.split_whitespace().map(str::to_string).collect()
}

#[test]
fn every_version_number_is_the_workspace_version() {
    let out = run_ok(Command::new("python3").arg(workspace().join("ffi/dist/versions.py")));
    assert!(out.contains(&format!("say {VERSION}")), "{out}");
}

/// The tarball, `make install PREFIX=...`, then tests/c/mc_scenario.c built with
/// `gcc $(pkg-config --cflags --libs mailconnect)` connects by device code and a second process
/// finds the account; a program linked with the static library reports the same version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_linux_package_installs_under_a_prefix_and_a_pkg_config_program_runs_the_scenario() {
    let Some(dist) = dist() else { return };
    ensure_packages(&["pkg-config", "make"]);
    let tarball = one_file(
        &dist,
        &format!("mailconnect-{VERSION}-linux-x86_64"),
        ".tar.gz",
    );
    let work = tempfile::tempdir().expect("temp dir");
    run_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(work.path()),
    );
    let unpacked = work
        .path()
        .join(format!("mailconnect-{VERSION}-linux-x86_64"));
    let prefix = work.path().join("prefix");
    run_ok(
        Command::new("make")
            .arg("-C")
            .arg(&unpacked)
            .arg("install")
            .arg(format!("PREFIX={}", prefix.display())),
    );
    let lib = prefix.join("lib");
    let soname = format!(
        "libmailconnect.so.{}",
        if VERSION.starts_with("0.") {
            VERSION.rsplit_once('.').expect("x.y.z").0.to_string()
        } else {
            VERSION.split('.').next().expect("x").to_string()
        }
    );
    for f in [
        format!("libmailconnect.so.{VERSION}"),
        soname.clone(),
        "libmailconnect.so".into(),
        "libmailconnect.a".into(),
        "pkgconfig/mailconnect.pc".into(),
    ] {
        assert!(lib.join(&f).exists(), "{f} installed");
    }
    for f in [
        "include/mailconnect.h",
        "include/mailconnect_store.h",
        "share/doc/mailconnect/admin-guide.md",
        "share/doc/mailconnect/diagnostics.de.md",
    ] {
        assert!(prefix.join(f).exists(), "{f} installed");
    }
    let pc = lib.join("pkgconfig");
    assert_eq!(pkg_config(&pc, &["--modversion"]), [VERSION]);
    let soname_field = run_ok(
        Command::new("objdump")
            .arg("-p")
            .arg(lib.join("libmailconnect.so")),
    );
    assert!(
        soname_field.contains(&format!("SONAME               {soname}")),
        "{soname_field}"
    );

    // The shared library, as a distribution's program links it.
    let exe = work.path().join("mc_scenario");
    let mut gcc = Command::new("gcc");
    gcc.args([
        "-std=c11",
        "-D_POSIX_C_SOURCE=200809L",
        "-Wall",
        "-Wextra",
        "-Werror",
    ])
    .args(pkg_config(&pc, &["--cflags"]))
    .arg(workspace().join("tests/c/mc_scenario.c"))
    .args(pkg_config(&pc, &["--libs"]))
    .arg("-o")
    .arg(&exe);
    run_ok(&mut gcc);
    let needed = run_ok(Command::new("objdump").arg("-p").arg(&exe));
    assert!(
        needed.contains(&format!("NEEDED               {soname}")),
        "{needed}"
    );

    let env = env().await;
    let store = env.dir.path().join("installed.db");
    let url = env.emulator.base_url().to_string();
    let run = |mode: &str| {
        let mut c = Command::new(&exe);
        c.arg(mode)
            .arg(&store)
            .arg(&url)
            .env("LD_LIBRARY_PATH", &lib);
        c
    };
    let out = run_signing_in(run("connect-device")).await;
    assert!(out.contains("PASS 0 failures"), "{out}");
    let out = run_signing_in(run("check-connected")).await;
    assert!(
        out.contains("second process finds the account connected"),
        "{out}"
    );

    // The static library: `-l:libmailconnect.a` instead of `-lmailconnect`, with the system
    // libraries pkg-config lists for --static; nothing of mailconnect is loaded at run time.
    let src = work.path().join("version.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include <string.h>\n#include \"mailconnect.h\"\nint main(void) {\n  printf(\"%s %s %u\\n\", mc_version_get(), MAILCONNECT_VERSION, (unsigned)mc_abi_version_get());\n  return strcmp(mc_version_get(), MAILCONNECT_VERSION) != 0;\n}\n",
    )
    .expect("write version.c");
    let static_exe = work.path().join("version_static");
    let libs: Vec<String> = pkg_config(&pc, &["--static", "--libs"])
        .into_iter()
        .map(|a| {
            if a == "-lmailconnect" {
                "-l:libmailconnect.a".into()
            } else {
                a
            }
        })
        .collect();
    run_ok(
        Command::new("gcc")
            .args(["-std=c11", "-Wall", "-Werror"])
            .args(pkg_config(&pc, &["--cflags"]))
            .arg(&src)
            .args(&libs)
            .arg("-o")
            .arg(&static_exe),
    );
    let deps = run_ok(Command::new("objdump").arg("-p").arg(&static_exe));
    assert!(!deps.contains("libmailconnect"), "{deps}");
    let out = run_ok(&mut Command::new(&static_exe));
    assert_eq!(out.trim(), format!("{VERSION} {VERSION} 2"));

    // Uninstall removes what install put there.
    run_ok(
        Command::new("make")
            .arg("-C")
            .arg(&unpacked)
            .arg("uninstall")
            .arg(format!("PREFIX={}", prefix.display())),
    );
    assert!(!lib.join("libmailconnect.so").exists() && !pc.join("mailconnect.pc").exists());
}

/// The manylinux wheel, installed by pip into a fresh virtual environment (no index: the file
/// only), loads the library it carries, and the binding's sandbox scenario (the whole story
/// against the emulator and the real Dovecot/Postfix) runs on it without `MAILCONNECT_LIB`.
#[test]
fn the_python_wheel_installs_into_a_fresh_venv_and_runs_the_scenario() {
    let Some(dist) = dist() else { return };
    let wheel = one_file(
        &dist,
        &format!("mailconnect-{VERSION}-py3-none-manylinux_2_"),
        "_x86_64.whl",
    );
    let work = tempfile::tempdir().expect("temp dir");
    let venv = work.path().join("venv");
    // pytest comes from the system's site-packages (the test command installs it); mailconnect
    // only from the wheel.
    run_ok(
        Command::new("python3")
            .args(["-m", "venv", "--system-site-packages"])
            .arg(&venv),
    );
    let py = venv.join("bin/python");
    run_ok(
        Command::new(&py)
            .args(["-m", "pip", "install", "-q", "--no-index"])
            .arg(&wheel),
    );
    let python = |args: &[&str]| {
        let mut c = Command::new(&py);
        c.args(args)
            .current_dir(work.path())
            .env_remove("MAILCONNECT_LIB")
            .env_remove("PYTHONPATH");
        c
    };
    let out = run_ok(&mut python(&[
        "-c",
        "import mailconnect; print(mailconnect.library_path()); print(mailconnect.VERSION)",
    ]));
    let mut lines = out.lines();
    let loaded = lines.next().expect("library path");
    assert!(
        loaded.starts_with(&venv.display().to_string())
            && loaded.ends_with("/mailconnect/libmailconnect.so"),
        "the wheel's own library is loaded: {out}"
    );
    assert_eq!(lines.next(), Some(VERSION), "{out}");
    let tests = workspace().join("bindings/python/tests/test_sandbox.py");
    let out = run_ok(&mut python(&[
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        &tests.display().to_string(),
        "-k",
        "version_and_abi or whole_story",
    ]));
    assert!(out.contains("2 passed"), "{out}");
}

/// The Windows zips (when the Windows DLLs were built: `MAILCONNECT_REQUIRE_WINDOWS_PACKAGES=1`
/// makes their absence a failure): what a Windows vendor links and ships, the DLL of the right
/// machine, and a program linked by MinGW against the zip's own headers and each import library
/// (`libmailconnect.dll.a` for MinGW, `mailconnect.lib` as MSVC's linker takes it).
#[test]
fn the_windows_zips_hold_the_dll_both_import_libraries_headers_and_bindings() {
    let Some(dist) = dist() else { return };
    let required = std::env::var("MAILCONNECT_REQUIRE_WINDOWS_PACKAGES").is_ok_and(|v| v == "1");
    for (arch, machine, gcc) in [
        ("x64", "pei-x86-64", "x86_64-w64-mingw32-gcc"),
        ("x86", "pei-i386", "i686-w64-mingw32-gcc"),
    ] {
        let name = format!("mailconnect-{VERSION}-windows-{arch}");
        let zip = dist.join(format!("{name}.zip"));
        if !zip.exists() {
            assert!(!required, "{} is missing", zip.display());
            eprintln!("no {}: skipped", zip.display());
            continue;
        }
        let work = tempfile::tempdir().expect("temp dir");
        run_ok(
            Command::new("python3")
                .args(["-m", "zipfile", "-e"])
                .arg(&zip)
                .arg(work.path()),
        );
        let d = work.path().join(&name);
        for f in [
            "bin/mailconnect.dll",
            "bin/mailconnect.exe",
            "lib/libmailconnect.dll.a",
            "lib/mailconnect.lib",
            "lib/mailconnect.def",
            "include/mailconnect.h",
            "include/mailconnect_store.h",
            "bindings/Mailconnect.pas",
            "bindings/Mailconnect.cs",
            "doc/admin-guide.md",
            "doc/admin-guide.de.md",
            "doc/diagnostics.md",
            "doc/img/done-en.png",
        ] {
            assert!(d.join(f).exists(), "{name}: {f}");
        }
        let head = run_ok(
            Command::new("objdump")
                .arg("-f")
                .arg(d.join("bin/mailconnect.dll")),
        );
        assert!(
            head.contains(&format!("file format {machine}")),
            "{name}: {head}"
        );
        let def = std::fs::read_to_string(d.join("lib/mailconnect.def")).expect("def");
        assert!(
            def.contains("mc_version_get") && def.contains("mc_client_open"),
            "{def}"
        );
        if Command::new(gcc).arg("--version").output().is_err() {
            assert!(!required, "{gcc} is missing");
            continue;
        }
        let src = work.path().join("v.c");
        std::fs::write(&src, "#include \"mailconnect.h\"\nint main(void) { return mc_abi_version_get() == MC_ABI_VERSION ? 0 : 1; }\n").expect("v.c");
        for import in ["lib/libmailconnect.dll.a", "lib/mailconnect.lib"] {
            let exe = work.path().join("v.exe");
            run_ok(
                Command::new(gcc)
                    .arg(format!("-I{}", d.join("include").display()))
                    .arg(&src)
                    .arg(d.join(import))
                    .arg("-o")
                    .arg(&exe),
            );
            let imports = run_ok(Command::new("objdump").arg("-p").arg(&exe));
            assert!(
                imports.contains("DLL Name: mailconnect.dll"),
                "{name} via {import}: {imports}"
            );
        }
    }
}

/// Debian packages the checks above run (pkg-config, make), installed when missing (as root).
fn ensure_packages(pkgs: &[&str]) {
    let missing: Vec<&str> = pkgs
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {p}"))
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if missing.is_empty() {
        return;
    }
    run_ok(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    );
}
