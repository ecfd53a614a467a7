//! Wine for the Windows tests (tests/windows.rs): the Windows build's artifacts
//! (`target/windows/<arch>`, made by `ffi/windows/build.sh`), MinGW-built C hosts beside a copy of
//! `mailconnect.dll` (how a Windows program ships it), and Wine prefixes of the tests' own.
//!
//! A prefix is made once per test process with `wineboot` (20-30 s) and then copied for each test
//! that needs one (hard links for the read-only bulk, real copies of the registry files), so tests
//! that change the registry (proxy settings, the browser's handler) do not see each other. A
//! second, separately booted template stands for "another computer" (another `MachineGuid`).
//! Every prefix gets the test-only `bcryptprimitives.dll` stand-in (tests/windows/bcryptprimitives.c)
//! that Wine 8 lacks and Rust's std needs; it is never shipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A Windows architecture of the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// 64-bit (x86_64-pc-windows-gnu).
    X64,
    /// 32-bit (i686-pc-windows-gnu).
    X86,
}

impl Arch {
    /// The folder name under target/windows.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X64 => "x64",
            Arch::X86 => "x86",
        }
    }

    /// The MinGW C compiler.
    pub fn gcc(self) -> &'static str {
        match self {
            Arch::X64 => "x86_64-w64-mingw32-gcc",
            Arch::X86 => "i686-w64-mingw32-gcc",
        }
    }

    /// The Wine loader for this architecture's programs.
    pub fn loader(self) -> &'static str {
        match self {
            Arch::X64 => "/usr/lib/wine/wine64",
            Arch::X86 => "/usr/lib/wine/wine",
        }
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// The Windows build's output folder (`MAILCONNECT_WINDOWS_DIR`, default `target/windows`) when the
/// Windows tests are asked for: by `MAILCONNECT_REQUIRE_WINDOWS=1` (what tests/windows/run.sh sets,
/// after building; a missing build then fails the test) or by naming the folder. Otherwise `None`,
/// and the test says it was skipped: `cargo test --workspace` leaves them to tests/windows/run.sh,
/// which builds the DLLs they test first.
pub fn windows_dir() -> Option<PathBuf> {
    let named = std::env::var_os("MAILCONNECT_WINDOWS_DIR").map(PathBuf::from);
    let required = std::env::var("MAILCONNECT_REQUIRE_WINDOWS").is_ok_and(|v| v == "1");
    if named.is_none() && !required {
        eprintln!(
            "skipped: the Windows tests run from tests/windows/run.sh (it builds the DLLs first)"
        );
        return None;
    }
    let dir = named.unwrap_or_else(|| workspace().join("target/windows"));
    let built = [Arch::X64, Arch::X86]
        .iter()
        .all(|a| dir.join(a.name()).join("mailconnect.dll").exists())
        && Path::new(Arch::X86.loader()).exists();
    if built {
        return Some(dir);
    }
    if required {
        panic!(
            "the Windows build is missing in {} (run bash ffi/windows/build.sh) or Wine is not installed",
            dir.display()
        );
    }
    eprintln!(
        "skipped: no Windows build in {} (bash tests/windows/run.sh builds it and runs these tests under Wine)",
        dir.display()
    );
    None
}

/// The artifacts of one architecture.
pub fn artifacts(arch: Arch) -> PathBuf {
    windows_dir()
        .expect("the Windows build exists")
        .join(arch.name())
}

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("mcwine-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// Compile a C host with MinGW (`-std=c11 -Wall -Wextra -Werror`, plus `flags`) against the
/// committed header and the build's import library, into a folder of its own with a copy of
/// `mailconnect.dll` beside it. `source` is relative to the workspace. Each program is compiled
/// once per test process (tests running in parallel share it; none sees a half-written file).
pub fn compile(arch: Arch, source: &str, flags: &[&str], libs: &[&str]) -> PathBuf {
    type Built = std::collections::HashMap<String, PathBuf>;
    static BUILT: std::sync::Mutex<Option<Built>> = std::sync::Mutex::new(None);
    let key = format!(
        "{}|{source}|{}|{}",
        arch.name(),
        flags.join(" "),
        libs.join(" ")
    );
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(exe) = built.get_or_insert_with(Built::new).get(&key) {
        return exe.clone();
    }
    let exe = compile_now(arch, source, flags, libs);
    built
        .get_or_insert_with(Built::new)
        .insert(key, exe.clone());
    exe
}

fn compile_now(arch: Arch, source: &str, flags: &[&str], libs: &[&str]) -> PathBuf {
    let stem = Path::new(source)
        .file_stem()
        .expect("source name")
        .to_string_lossy()
        .into_owned();
    let dir = scratch().join(format!("{stem}-{}-{}", arch.name(), flags.join("")));
    std::fs::create_dir_all(&dir).expect("program dir");
    let lib = artifacts(arch);
    let exe = dir.join(format!("{stem}.exe"));
    let out = Command::new(arch.gcc())
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1"])
        .args(flags)
        .arg(format!("-I{}", workspace().join("include").display()))
        .arg(workspace().join(source))
        .arg(format!("-L{}", lib.display()))
        .arg("-lmailconnect")
        .args(libs)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("MinGW gcc runs");
    assert!(
        out.status.success(),
        "{source} does not compile for {}:\n{}",
        arch.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::copy(lib.join("mailconnect.dll"), dir.join("mailconnect.dll")).expect("copy DLL");
    exe
}

/// The stand-in `bcryptprimitives.dll` for both architectures (built once per process).
fn stand_ins() -> &'static (PathBuf, PathBuf) {
    static DLLS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DLLS.get_or_init(|| {
        let dir = scratch().join("bcryptprimitives");
        std::fs::create_dir_all(&dir).expect("dir");
        let build = |gcc: &str, def: &str, out: &str| {
            let path = dir.join(out);
            let st = Command::new(gcc)
                .args(["-O2", "-shared", "-o"])
                .arg(&path)
                .arg(workspace().join("tests/windows/bcryptprimitives.c"))
                .arg(workspace().join("tests/windows").join(def))
                .arg("-ladvapi32")
                .status()
                .expect("MinGW gcc runs");
            assert!(st.success(), "the bcryptprimitives stand-in compiles");
            path
        };
        (
            build(
                "x86_64-w64-mingw32-gcc",
                "bcryptprimitives-x64.def",
                "bcryptprimitives64.dll",
            ),
            build(
                "i686-w64-mingw32-gcc",
                "bcryptprimitives-x86.def",
                "bcryptprimitives32.dll",
            ),
        )
    })
}

/// Boot a new prefix at `dir` (a new Windows installation: its own MachineGuid).
fn boot(dir: &Path) {
    let out = Command::new(Arch::X64.loader())
        .args(["wineboot", "-i"])
        .env("WINEPREFIX", dir)
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
        .output()
        .expect("wineboot runs");
    assert!(
        out.status.success() && dir.join("system.reg").exists(),
        "wineboot failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Let the prefix's wineserver finish writing the registry before it is copied.
    let _ = Command::new("/usr/lib/wine/wineserver")
        .arg("-w")
        .env("WINEPREFIX", dir)
        .status();
    let (x64, x86) = stand_ins();
    std::fs::copy(
        x64,
        dir.join("drive_c/windows/system32/bcryptprimitives.dll"),
    )
    .expect("install the 64-bit stand-in");
    std::fs::copy(
        x86,
        dir.join("drive_c/windows/syswow64/bcryptprimitives.dll"),
    )
    .expect("install the 32-bit stand-in");
}

fn template(which: usize) -> &'static Path {
    static TEMPLATES: [OnceLock<PathBuf>; 2] = [OnceLock::new(), OnceLock::new()];
    TEMPLATES[which].get_or_init(|| {
        let dir = scratch().join(format!("template{which}"));
        let _ = std::fs::remove_dir_all(&dir);
        boot(&dir);
        dir
    })
}

/// A Wine prefix of one test, removed (and its wineserver stopped) on drop.
pub struct Prefix {
    /// The prefix folder (`drive_c` inside).
    pub dir: PathBuf,
}

impl Prefix {
    /// A fresh copy of this process's Windows installation.
    pub fn new(name: &str) -> Prefix {
        Prefix::copy_of(template(0), name)
    }

    /// A copy of a second, separately booted installation: "another computer".
    pub fn other_computer(name: &str) -> Prefix {
        Prefix::copy_of(template(1), name)
    }

    fn copy_of(template: &Path, name: &str) -> Prefix {
        let dir = scratch().join(format!("prefix-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        let st = Command::new("cp")
            .arg("-al")
            .arg(template)
            .arg(&dir)
            .status()
            .expect("cp runs");
        assert!(st.success(), "copying the Wine prefix");
        // Files Wine rewrites get copies of their own (hard links would change the template).
        for f in ["system.reg", "user.reg", "userdef.reg", ".update-timestamp"] {
            let p = dir.join(f);
            if p.exists() {
                std::fs::remove_file(&p).expect("unlink");
                std::fs::copy(template.join(f), &p).expect("copy registry file");
            }
        }
        Prefix { dir }
    }

    /// A command running the Windows program `exe` (a Linux path) in this prefix.
    pub fn command(&self, arch: Arch, exe: &Path) -> Command {
        let mut c = Command::new(arch.loader());
        c.arg(exe)
            .env("WINEPREFIX", &self.dir)
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            // The tests' own environment must not leak a proxy into the Windows programs.
            .env_remove("HTTPS_PROXY")
            .env_remove("HTTP_PROXY")
            .env_remove("ALL_PROXY")
            .env_remove("https_proxy")
            .env_remove("http_proxy")
            .env_remove("all_proxy");
        c
    }

    /// Like [`Self::command`] with `args`, but the program sees `bundle` as the host's CA bundle
    /// (`/etc/ssl/certs/ca-certificates.crt`, bind-mounted in a mount namespace of its own: needs
    /// root), which is where Wine's crypt32 builds the Windows Trusted Root store from.
    pub fn command_with_system_roots(
        &self,
        arch: Arch,
        exe: &Path,
        bundle: &Path,
        args: &[String],
    ) -> Command {
        let c = self.command(arch, exe);
        let mut wrapped = Command::new("unshare");
        wrapped
            .args(["--mount", "sh", "-c"])
            .arg("mount --bind \"$1\" /etc/ssl/certs/ca-certificates.crt && shift && exec \"$@\"")
            .arg("sh")
            .arg(bundle)
            .arg(arch.loader())
            .arg(exe)
            .args(args);
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        wrapped
    }

    /// End this prefix's Wine session: stop its wineserver and the programs in it (the next program
    /// starts a new one).
    pub fn end_session(&self) {
        let _ = Command::new("/usr/lib/wine/wineserver")
            .arg("-k")
            .env("WINEPREFIX", &self.dir)
            .status();
        let _ = Command::new("/usr/lib/wine/wineserver")
            .arg("-w")
            .env("WINEPREFIX", &self.dir)
            .status();
    }

    /// `reg add KEY /v NAME /t TYPE /d DATA /f` in this prefix (`name` empty: the default value).
    pub fn reg_add(&self, key: &str, name: &str, kind: &str, data: &str) {
        let mut c = Command::new(Arch::X64.loader());
        c.args(["reg", "add", key]);
        if name.is_empty() {
            c.arg("/ve");
        } else {
            c.args(["/v", name]);
        }
        c.args(["/t", kind, "/d", data, "/f"])
            .env("WINEPREFIX", &self.dir)
            .env("WINEDEBUG", "-all");
        let out = c.output().expect("wine reg runs");
        assert!(
            out.status.success(),
            "reg add {key} {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The Linux path of `C:\…` in this prefix (`rel` with forward slashes).
    pub fn c_drive(&self, rel: &str) -> PathBuf {
        self.dir.join("drive_c").join(rel)
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        self.end_session();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `path` (a Linux path) as a Windows program sees it: `Z:\tmp\…`.
pub fn z_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}
