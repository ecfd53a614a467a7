//! What differs between operating systems, behind one small interface: creating the store's
//! private files (mode 0600 on Unix, an owner-only ACL on Windows), opening the system browser, and
//! on Windows the DPAPI key protection, the machine identity and the system proxy settings.
//!
//! Everything Windows-specific lives in `windows.rs` (Win32 through `windows-sys`); this file is
//! the portable face of it, so the rest of core has no `cfg(windows)` of its own.

use std::fs::File;
use std::io;
use std::path::Path;

#[cfg(windows)]
pub mod windows;

/// Who may open a file the store creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAccess {
    /// Only the user the process runs as (Unix mode 0600; on Windows a protected DACL with one
    /// entry, the process user's SID, full control).
    OwnerOnly,
    /// What the folder gives its files (Windows: the inherited ACL). For a store shared by a
    /// program and a Windows service (DPAPI machine scope), where the installer sets the folder's
    /// permissions for both accounts. On Unix the file is still created with mode 0600.
    Inherit,
}

/// Create `path`, which must not exist, for reading and writing with `access`.
/// Fails with `AlreadyExists` when another process created it first.
pub fn create_new(path: &Path, access: FileAccess) -> io::Result<File> {
    #[cfg(windows)]
    {
        windows::create_new(path, access)
    }
    #[cfg(not(windows))]
    {
        let _ = access;
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        opts.open(path)
    }
}

/// Create `path` with `access` unless it exists (an existing file is left as it is).
pub fn create_if_missing(path: &Path, access: FileAccess) -> io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    match create_new(path, access) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Open `url` in the user's default browser. On Windows through the shell (`ShellExecuteW`, the
/// handler registered for `http`/`https`, as Explorer does), elsewhere with the `webbrowser` crate
/// (`xdg-open`, `open`). Blocking: call it off the async threads.
pub fn open_browser(url: &str) -> io::Result<()> {
    #[cfg(windows)]
    {
        windows::shell_open(url)
    }
    #[cfg(not(windows))]
    {
        webbrowser::open(url)
    }
}
