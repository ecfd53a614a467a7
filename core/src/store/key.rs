//! Where the store key comes from: a key file, bytes the host hands over, or (Windows) a key file
//! whose key is protected with DPAPI.
//!
//! A **plain key file** holds base64 of 32 random bytes and is created owner-only (mode 0600; on
//! Windows a protected DACL naming only the process user).
//!
//! A **DPAPI key file** (Windows; the default there) holds one JSON object:
//! `{"mailconnect_store_key":1,"protection":"dpapi","scope":"user","machine":"…","owner":"PC\\user","blob":"…"}`.
//! `blob` is `CryptProtectData` of the key, in the current user's scope (only that Windows user can
//! unlock it) or the machine scope (any process on the computer: a program and the Windows service
//! beside it sharing one store), with the computer's `MachineGuid` in the entropy, so a copy of the
//! store and its key file on another computer cannot be opened even where DPAPI itself would
//! follow the user there (roaming profiles, Wine's DPAPI). `machine` (a hash of that id) and
//! `owner` are not secret; they let the error name where the key belongs. A plain key file found
//! where a DPAPI one is configured is protected in place on first use.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::platform::{self, FileAccess};

/// The DPAPI scope of a protected key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DpapiScope {
    /// Only the Windows user the process runs as (the default).
    User,
    /// Any process on this computer: a program and a Windows service sharing one store. The
    /// files then keep their folder's permissions, which the installer sets for both accounts.
    Machine,
}

impl DpapiScope {
    /// Parse `user` or `machine`.
    pub fn parse(s: &str) -> Result<DpapiScope> {
        match s {
            "user" => Ok(DpapiScope::User),
            "machine" => Ok(DpapiScope::Machine),
            other => Err(Error::invalid(
                "key",
                format!(
                    "'dpapi' must be 'user' or 'machine', not '{}'",
                    crate::error::quote(other)
                ),
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            DpapiScope::User => "user",
            DpapiScope::Machine => "machine",
        }
    }
}

/// Where the store key comes from.
#[derive(Clone)]
pub enum KeySource {
    /// A plain key file (created owner-only when missing).
    File(PathBuf),
    /// 32 key bytes handed over by the host (e.g. from its own secret storage).
    Bytes(Zeroizing<[u8; 32]>),
    /// A key file protected with Windows DPAPI in the given scope (Windows only).
    Dpapi {
        /// The key file.
        file: PathBuf,
        /// User or machine scope.
        scope: DpapiScope,
    },
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File(p) => f.debug_tuple("File").field(p).finish(),
            KeySource::Bytes(_) => f.write_str("Bytes([redacted])"),
            KeySource::Dpapi { file, scope } => f
                .debug_struct("Dpapi")
                .field("file", file)
                .field("scope", scope)
                .finish(),
        }
    }
}

impl KeySource {
    /// Parse a base64 key of exactly 32 bytes.
    pub fn from_base64(s: &str) -> Result<KeySource> {
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|_| Error::invalid("key", "'key' must be base64 of 32 random bytes"))?,
        );
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            Error::invalid(
                "key",
                format!("'key' must decode to 32 bytes, not {}", bytes.len()),
            )
        })?;
        Ok(KeySource::Bytes(Zeroizing::new(arr)))
    }

    /// The key of a store file when the options name none: `<store>.key`, protected with DPAPI
    /// in user scope on Windows, a plain owner-only file elsewhere.
    pub fn default_for(store: &Path) -> KeySource {
        let file = default_key_file(store);
        if cfg!(windows) {
            KeySource::Dpapi {
                file,
                scope: DpapiScope::User,
            }
        } else {
            KeySource::File(file)
        }
    }

    /// Who may open the files of a store with this key: everyone the folder allows for a
    /// machine-scope DPAPI key (a program and a service share it), else only the process user.
    pub fn file_access(&self) -> FileAccess {
        match self {
            KeySource::Dpapi {
                scope: DpapiScope::Machine,
                ..
            } => FileAccess::Inherit,
            _ => FileAccess::OwnerOnly,
        }
    }

    /// The key bytes (creating the key file when missing). A key file that cannot be read,
    /// created or unlocked is explained by `MC-STORE-KEY` unless a more precise code was named.
    pub(crate) fn load(&self) -> Result<Zeroizing<[u8; 32]>> {
        self.load_uncoded().map_err(|e| match e.code() {
            None if e.kind() == crate::error::ErrorKind::Store => e.with_code(super::WRONG_KEY),
            _ => e,
        })
    }

    fn load_uncoded(&self) -> Result<Zeroizing<[u8; 32]>> {
        match self {
            KeySource::Bytes(b) => Ok(b.clone()),
            KeySource::File(p) => load_or_create(p, None),
            KeySource::Dpapi { file, scope } => {
                if !cfg!(windows) {
                    return Err(Error::invalid(
                        "key",
                        "'dpapi' key protection exists only on Windows; use {\"file\": PATH} or {\"base64\": ...}",
                    ));
                }
                load_or_create(file, Some(*scope))
            }
        }
    }
}

/// `<store>.key`: where the key file of a SQLite store is kept unless the options say otherwise.
pub fn default_key_file(store: &Path) -> PathBuf {
    let mut p = store.as_os_str().to_owned();
    p.push(".key");
    PathBuf::from(p)
}

/// The JSON form of a DPAPI-protected key file.
#[derive(Serialize, Deserialize)]
struct Protected {
    mailconnect_store_key: u32,
    protection: String,
    scope: DpapiScope,
    /// Hex prefix of SHA-256 of the MachineGuid bound into the entropy; `None`: not bound.
    machine: Option<String>,
    owner: String,
    blob: String,
}

fn random_key() -> Result<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(key.as_mut())
        .map_err(|_| Error::internal("no system randomness"))?;
    Ok(key)
}

fn plain_text(key: &[u8; 32]) -> Zeroizing<Vec<u8>> {
    let mut t = base64::engine::general_purpose::STANDARD
        .encode(key)
        .into_bytes();
    t.push(b'\n');
    Zeroizing::new(t)
}

fn decode_plain(path: &Path, text: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let text = Zeroizing::new(String::from_utf8_lossy(text).into_owned());
    match KeySource::from_base64(&text) {
        Ok(KeySource::Bytes(b)) => Ok(b),
        _ => Err(Error::store(format!(
            "the key file {} is damaged (it must hold base64 of 32 bytes)",
            path.display()
        ))),
    }
}

/// Write `content` to a new file at `path` and flush it to disk.
fn write_new(path: &Path, content: &[u8], access: FileAccess) -> std::io::Result<()> {
    let mut f = platform::create_new(path, access)?;
    let written = f.write_all(content).and_then(|_| f.sync_all());
    if written.is_err() {
        drop(f);
        let _ = std::fs::remove_file(path);
    }
    written
}

fn load_or_create(path: &Path, dpapi: Option<DpapiScope>) -> Result<Zeroizing<[u8; 32]>> {
    let access = match dpapi {
        Some(DpapiScope::Machine) => FileAccess::Inherit,
        _ => FileAccess::OwnerOnly,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
                return open_protected(path, &bytes);
            }
            let key = decode_plain(path, &bytes)?;
            if let Some(scope) = dpapi {
                protect_in_place(path, &key, scope, access);
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = random_key()?;
            let content = match dpapi {
                None => plain_text(&key),
                Some(scope) => Zeroizing::new(protected_json(path, &key, scope)?),
            };
            match write_new(path, &content, access) {
                Ok(()) => Ok(key),
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    load_or_create(path, dpapi)
                }
                Err(e) => Err(Error::store(format!(
                    "cannot create the key file {}: {e}",
                    path.display()
                ))),
            }
        }
        Err(e) => Err(Error::store(format!(
            "cannot read the key file {}: {e}",
            path.display()
        ))),
    }
}

/// Replace a plain key file by its DPAPI-protected form (best effort: on failure the plain file
/// stays and works; the next open tries again).
fn protect_in_place(path: &Path, key: &[u8; 32], scope: DpapiScope, access: FileAccess) {
    let json = match protected_json(path, key, scope) {
        Ok(j) => j,
        Err(e) => {
            tracing::warn!(
                "the plain key file {} could not be protected with DPAPI: {e}",
                path.display()
            );
            return;
        }
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let done = write_new(&tmp, &json, access).and_then(|_| std::fs::rename(&tmp, path));
    match done {
        Ok(()) => tracing::info!(
            "the key file {} is now protected with Windows DPAPI ({} scope)",
            path.display(),
            scope.name()
        ),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(
                "the plain key file {} could not be replaced by its DPAPI-protected form: {e}",
                path.display()
            );
        }
    }
}

#[cfg(windows)]
const ENTROPY: &[u8] = b"mailconnect store key v1";

#[cfg(windows)]
fn entropy(machine_id: Option<&str>) -> Vec<u8> {
    let mut e = ENTROPY.to_vec();
    if let Some(id) = machine_id {
        e.push(0);
        e.extend_from_slice(id.as_bytes());
    }
    e
}

#[cfg(windows)]
fn fingerprint(machine_id: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, machine_id.as_bytes());
    d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(windows)]
fn protected_json(path: &Path, key: &[u8; 32], scope: DpapiScope) -> Result<Vec<u8>> {
    use platform::windows;
    let machine_id = windows::machine_guid();
    let win_scope = match scope {
        DpapiScope::User => windows::Scope::User,
        DpapiScope::Machine => windows::Scope::Machine,
    };
    let blob = windows::protect(key, &entropy(machine_id.as_deref()), win_scope).map_err(|e| {
        Error::store(format!(
            "cannot protect the store key {} with Windows DPAPI ({} scope): {e}",
            path.display(),
            scope.name()
        ))
    })?;
    let p = Protected {
        mailconnect_store_key: 1,
        protection: "dpapi".into(),
        scope,
        machine: machine_id.as_deref().map(fingerprint),
        owner: windows::account_name(),
        blob: base64::engine::general_purpose::STANDARD.encode(blob),
    };
    let mut v = serde_json::to_vec(&p).map_err(|e| Error::internal(format!("key file: {e}")))?;
    v.push(b'\n');
    Ok(v)
}

#[cfg(not(windows))]
fn protected_json(_: &Path, _: &[u8; 32], _: DpapiScope) -> Result<Vec<u8>> {
    Err(Error::invalid(
        "key",
        "'dpapi' key protection exists only on Windows",
    ))
}

fn open_protected(path: &Path, bytes: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let damaged = || {
        Error::store(format!(
            "the key file {} is damaged (it is neither base64 of 32 bytes nor a DPAPI-protected key)",
            path.display()
        ))
    };
    let p: Protected = serde_json::from_slice(bytes).map_err(|_| damaged())?;
    if p.mailconnect_store_key != 1 || p.protection != "dpapi" {
        return Err(damaged());
    }
    let blob = base64::engine::general_purpose::STANDARD
        .decode(p.blob.trim())
        .map_err(|_| damaged())?;
    unprotect(path, &p, &blob)
}

#[cfg(windows)]
fn unprotect(path: &Path, p: &Protected, blob: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    use platform::windows;
    let here = windows::machine_guid();
    let same_machine = match (&p.machine, &here) {
        (Some(f), Some(id)) => *f == fingerprint(id),
        (None, _) => true,
        (Some(_), None) => false,
    };
    let bound = if p.machine.is_some() {
        here.as_deref()
    } else {
        None
    };
    let me = windows::account_name();
    let clear = windows::unprotect(blob, &entropy(bound)).map_err(|e| {
        let scope = p.scope.name();
        let file = path.display();
        let owner = &p.owner;
        if !same_machine {
            Error::store(format!(
                "the store key file {file} is protected with Windows DPAPI ({scope} scope) for another computer or Windows installation (it was created by {owner} there; this process is {me} on a computer with another machine id): it cannot be unlocked here. A store copied from another computer, or restored onto a reinstalled Windows, cannot be decrypted: connect the accounts again with a new store, or use the store where it was created"
            )).with_code(super::KEY_PROTECTED)
        } else if p.scope == DpapiScope::User {
            Error::store(format!(
                "the store key file {file} is protected with Windows DPAPI for the Windows user {owner} (user scope) and cannot be unlocked by {me} ({e}). Run the program as that user or connect the accounts again; a program and a Windows service that share one store need \"key\": {{\"dpapi\": \"machine\"}}"
            )).with_code(super::KEY_PROTECTED)
        } else {
            Error::store(format!(
                "the store key file {file} is protected with Windows DPAPI (machine scope, by {owner}) and cannot be unlocked on this computer ({e}); connect the accounts again with a new store"
            )).with_code(super::KEY_PROTECTED)
        }
    })?;
    let key: [u8; 32] = clear.as_slice().try_into().map_err(|_| {
        Error::store(format!(
            "the key file {} is damaged (the protected key is not 32 bytes)",
            path.display()
        ))
    })?;
    Ok(Zeroizing::new(key))
}

#[cfg(not(windows))]
fn unprotect(path: &Path, p: &Protected, _: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    Err(Error::store(format!(
        "the store key file {} is protected with Windows DPAPI ({} scope, by {}); it cannot be unlocked on this system, only on that Windows computer. Connect the accounts again with a new store here",
        path.display(),
        p.scope.name(),
        p.owner
    ))
    .with_code(super::KEY_PROTECTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_key_file_is_created_owner_only_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let a = load_or_create(&p, None).unwrap();
        let b = load_or_create(&p, None).unwrap();
        assert_eq!(a.as_ref(), b.as_ref());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(KeySource::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn damaged_and_foreign_key_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, "not base64 at all").unwrap();
        let e = KeySource::File(p.clone()).load().unwrap_err();
        assert!(e.message().contains("damaged"), "{e}");
        std::fs::write(&p, "{\"mailconnect_store_key\":7}").unwrap();
        let e = KeySource::File(p.clone()).load().unwrap_err();
        assert!(e.message().contains("damaged"), "{e}");
        // A DPAPI key file copied from Windows.
        std::fs::write(&p, "{\"mailconnect_store_key\":1,\"protection\":\"dpapi\",\"scope\":\"user\",\"machine\":\"00\",\"owner\":\"PC\\\\j\",\"blob\":\"AAAA\"}").unwrap();
        let e = KeySource::File(p).load().unwrap_err();
        #[cfg(not(windows))]
        assert!(
            e.message().contains("DPAPI") && e.message().contains("PC\\j"),
            "{e}"
        );
        #[cfg(windows)]
        assert!(e.message().contains("DPAPI"), "{e}");
    }

    #[cfg(not(windows))]
    #[test]
    fn dpapi_is_refused_off_windows() {
        let e = KeySource::Dpapi {
            file: "/tmp/x".into(),
            scope: DpapiScope::User,
        }
        .load()
        .unwrap_err();
        assert!(e.message().contains("only on Windows"), "{e}");
        assert!(matches!(
            KeySource::default_for(Path::new("/s.db")),
            KeySource::File(p) if p == Path::new("/s.db.key")
        ));
    }

    #[test]
    fn scopes_and_file_access() {
        assert_eq!(DpapiScope::parse("user").unwrap(), DpapiScope::User);
        assert!(DpapiScope::parse("roaming").is_err());
        let m = KeySource::Dpapi {
            file: "k".into(),
            scope: DpapiScope::Machine,
        };
        assert_eq!(m.file_access(), FileAccess::Inherit);
        assert_eq!(
            KeySource::File("k".into()).file_access(),
            FileAccess::OwnerOnly
        );
        let b = KeySource::Bytes(Zeroizing::new([9; 32]));
        assert_eq!(format!("{b:?}"), "Bytes([redacted])");
    }
}
