//! Win32 for the store, the browser and the proxy, through `windows-sys`.
//!
//! * files the store creates get a protected DACL naming only the process user
//!   (`D:P(A;;FA;;;<user SID>)`), set atomically by `CreateFileW`, the counterpart of mode 0600;
//! * the store key is protected with DPAPI (`CryptProtectData`), in user or machine scope, with
//!   the machine's `MachineGuid` in the entropy (see [`protect`]);
//! * the browser is opened with `ShellExecuteW` (the registered `http` handler);
//! * the proxy settings come from WinHTTP (see `crate::sysproxy`).
//!
//! Every function here is safe to call from any thread; none keeps global state.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::os::windows::io::FromRawHandle;
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};

use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, GlobalFree, LocalFree, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Networking::WinHttp as wh;
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::Cryptography::{
    CryptProtectData, CryptUnprotectData, CRYPTPROTECT_LOCAL_MACHINE, CRYPTPROTECT_UI_FORBIDDEN,
    CRYPT_INTEGER_BLOB,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, TokenUser, SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_DELETE, FILE_SHARE_READ,
    FILE_SHARE_WRITE,
};
use windows_sys::Win32::System::Com::{
    CoInitializeEx, CoUninitialize, COINIT_APARTMENTTHREADED, COINIT_DISABLE_OLE1DDE,
};
use windows_sys::Win32::System::Registry::{
    RegGetValueW, HKEY_LOCAL_MACHINE, RRF_RT_REG_SZ, RRF_SUBKEY_WOW6464KEY,
};
use windows_sys::Win32::System::SystemInformation::{ComputerNameNetBIOS, GetComputerNameExW};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};
use windows_sys::Win32::System::WindowsProgramming::GetUserNameW;
use windows_sys::Win32::UI::Shell::ShellExecuteW;
use windows_sys::Win32::UI::WindowsAndMessaging::SW_SHOWNORMAL;
use zeroize::Zeroizing;

use super::FileAccess;

const GENERIC_READ: u32 = 0x8000_0000;
const GENERIC_WRITE: u32 = 0x4000_0000;

/// `s` as a NUL-terminated UTF-16 string.
pub fn wide(s: impl AsRef<OsStr>) -> Vec<u16> {
    s.as_ref().encode_wide().chain(std::iter::once(0)).collect()
}

/// A NUL-terminated UTF-16 string at `p` (NULL: empty).
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated UTF-16 string.
pub unsafe fn from_wide_ptr(p: *const u16) -> String {
    if p.is_null() {
        return String::new();
    }
    let mut n = 0;
    while *p.add(n) != 0 {
        n += 1;
    }
    OsString::from_wide(std::slice::from_raw_parts(p, n))
        .to_string_lossy()
        .into_owned()
}

/// A path `CreateFileW` takes at any length: paths of 248 characters or more get the `\\?\`
/// (or `\\?\UNC\`) prefix that lifts the `MAX_PATH` limit; shorter ones are passed unchanged.
fn long_path(path: &Path) -> Vec<u16> {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let s = abs.as_os_str();
    if s.len() < 248 || s.to_string_lossy().starts_with(r"\\?\") {
        return wide(path);
    }
    let text = s.to_string_lossy();
    let verbatim = match text.strip_prefix(r"\\") {
        Some(unc) => PathBuf::from(format!(r"\\?\UNC\{unc}")),
        None => PathBuf::from(format!(r"\\?\{text}")),
    };
    wide(verbatim)
}

struct TokenHandle(HANDLE);

impl Drop for TokenHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from OpenProcessToken and is closed once.
        unsafe { CloseHandle(self.0) };
    }
}

/// The SID of the user this process runs as, in string form (`S-1-5-21-…`).
pub fn user_sid() -> io::Result<String> {
    // SAFETY: documented Win32 calls with buffers of the sizes they ask for; every allocation
    // Windows makes for us (the SID string) is released with LocalFree.
    unsafe {
        let mut token: HANDLE = null_mut();
        if OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) == 0 {
            return Err(io::Error::last_os_error());
        }
        let token = TokenHandle(token);
        let mut len = 0u32;
        GetTokenInformation(token.0, TokenUser, null_mut(), 0, &mut len);
        if len == 0 {
            return Err(io::Error::last_os_error());
        }
        // u64 elements: TOKEN_USER needs pointer alignment.
        let mut buf = vec![0u64; (len as usize).div_ceil(8)];
        if GetTokenInformation(token.0, TokenUser, buf.as_mut_ptr().cast(), len, &mut len) == 0 {
            return Err(io::Error::last_os_error());
        }
        let user = &*(buf.as_ptr() as *const TOKEN_USER);
        let mut text: *mut u16 = null_mut();
        if ConvertSidToStringSidW(user.User.Sid, &mut text) == 0 {
            return Err(io::Error::last_os_error());
        }
        let sid = from_wide_ptr(text);
        LocalFree(text.cast());
        Ok(sid)
    }
}

/// The security descriptor, in SDDL, that `create_new` gives an owner-only file.
pub fn owner_only_sddl() -> io::Result<String> {
    Ok(format!("D:P(A;;FA;;;{})", user_sid()?))
}

struct SecurityDescriptor(*mut core::ffi::c_void);

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
        unsafe { LocalFree(self.0) };
    }
}

/// Create `path` (new) with `access`; see [`super::create_new`].
pub fn create_new(path: &Path, access: FileAccess) -> io::Result<File> {
    let sd = match access {
        FileAccess::Inherit => None,
        FileAccess::OwnerOnly => {
            let sddl = wide(owner_only_sddl()?);
            let mut sd = null_mut();
            // SAFETY: sddl is NUL-terminated; sd receives a LocalAlloc'd descriptor.
            if unsafe {
                ConvertStringSecurityDescriptorToSecurityDescriptorW(
                    sddl.as_ptr(),
                    SDDL_REVISION_1,
                    &mut sd,
                    null_mut(),
                )
            } == 0
            {
                return Err(io::Error::last_os_error());
            }
            Some(SecurityDescriptor(sd))
        }
    };
    let sa = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd.as_ref().map_or(null_mut(), |s| s.0),
        bInheritHandle: 0,
    };
    let name = long_path(path);
    // SAFETY: name is NUL-terminated, sa and the descriptor it points to outlive the call.
    let h = unsafe {
        CreateFileW(
            name.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            &sa,
            CREATE_NEW,
            FILE_ATTRIBUTE_NORMAL,
            null_mut(),
        )
    };
    if h == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh, owned file handle.
    Ok(unsafe { File::from_raw_handle(h as _) })
}

/// The DPAPI scope of a protected key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only the Windows user who protected it (on this computer, see [`protect`]).
    User,
    /// Any process on this computer.
    Machine,
}

fn blob(data: &[u8]) -> CRYPT_INTEGER_BLOB {
    CRYPT_INTEGER_BLOB {
        cbData: data.len() as u32,
        pbData: data.as_ptr() as *mut u8,
    }
}

/// Protect `data` with DPAPI in `scope`, bound to `entropy` as well.
pub fn protect(data: &[u8], entropy: &[u8], scope: Scope) -> io::Result<Vec<u8>> {
    let description = wide("mailconnect store key");
    let input = blob(data);
    let ent = blob(entropy);
    let mut out = CRYPT_INTEGER_BLOB {
        cbData: 0,
        pbData: null_mut(),
    };
    let flags = CRYPTPROTECT_UI_FORBIDDEN
        | if scope == Scope::Machine {
            CRYPTPROTECT_LOCAL_MACHINE
        } else {
            0
        };
    // SAFETY: input and entropy point into live slices; out receives a LocalAlloc'd buffer.
    let ok = unsafe {
        CryptProtectData(
            &input,
            description.as_ptr(),
            &ent,
            null(),
            null(),
            flags,
            &mut out,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: out.pbData holds out.cbData bytes until LocalFree.
    let v = unsafe { std::slice::from_raw_parts(out.pbData, out.cbData as usize).to_vec() };
    unsafe { LocalFree(out.pbData.cast()) };
    Ok(v)
}

/// Unprotect a DPAPI blob made by [`protect`] with the same entropy. The clear bytes are wiped
/// in Windows' buffer before it is freed.
pub fn unprotect(data: &[u8], entropy: &[u8]) -> io::Result<Zeroizing<Vec<u8>>> {
    let input = blob(data);
    let ent = blob(entropy);
    let mut out = CRYPT_INTEGER_BLOB {
        cbData: 0,
        pbData: null_mut(),
    };
    // SAFETY: as in protect.
    let ok = unsafe {
        CryptUnprotectData(
            &input,
            null_mut(),
            &ent,
            null(),
            null(),
            CRYPTPROTECT_UI_FORBIDDEN,
            &mut out,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: out.pbData holds out.cbData bytes until LocalFree; wiped before.
    unsafe {
        let s = std::slice::from_raw_parts_mut(out.pbData, out.cbData as usize);
        let v = Zeroizing::new(s.to_vec());
        zeroize::Zeroize::zeroize(s);
        LocalFree(out.pbData.cast());
        Ok(v)
    }
}

/// This Windows installation's `MachineGuid` (`HKLM\SOFTWARE\Microsoft\Cryptography`), read from
/// the 64-bit registry view so 32- and 64-bit processes see the same value. Made by Windows Setup
/// (and by `wineboot` for a Wine prefix); a cloned or reinstalled system has another one.
pub fn machine_guid() -> Option<String> {
    let key = wide(r"SOFTWARE\Microsoft\Cryptography");
    let value = wide("MachineGuid");
    let mut buf = [0u16; 128];
    let mut len = (buf.len() * 2) as u32;
    // SAFETY: buf has len bytes.
    let rc = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            key.as_ptr(),
            value.as_ptr(),
            RRF_RT_REG_SZ | RRF_SUBKEY_WOW6464KEY,
            null_mut(),
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: RegGetValueW NUL-terminates REG_SZ data within the buffer.
    let s = unsafe { from_wide_ptr(buf.as_ptr()) };
    (!s.trim().is_empty()).then(|| s.trim().to_ascii_lowercase())
}

/// `COMPUTER\user` of this process, for messages (never a secret).
pub fn account_name() -> String {
    let mut computer = [0u16; 256];
    let mut clen = computer.len() as u32;
    let mut user = [0u16; 257];
    let mut ulen = user.len() as u32;
    // SAFETY: buffers of the given sizes; both functions NUL-terminate on success.
    unsafe {
        let c = if GetComputerNameExW(ComputerNameNetBIOS, computer.as_mut_ptr(), &mut clen) != 0 {
            from_wide_ptr(computer.as_ptr())
        } else {
            "?".into()
        };
        let u = if GetUserNameW(user.as_mut_ptr(), &mut ulen) != 0 {
            from_wide_ptr(user.as_ptr())
        } else {
            "?".into()
        };
        format!("{c}\\{u}")
    }
}

/// Open `url` with the shell (the handler registered for its scheme), as Explorer would.
pub fn shell_open(url: &str) -> io::Result<()> {
    let verb = wide("open");
    let file = wide(url);
    // SAFETY: COM is initialised for this (blocking-pool) thread around the call, as the
    // ShellExecute documentation asks; the strings are NUL-terminated.
    let rc = unsafe {
        let init = CoInitializeEx(
            null(),
            (COINIT_APARTMENTTHREADED | COINIT_DISABLE_OLE1DDE) as u32,
        );
        let rc = ShellExecuteW(
            null_mut(),
            verb.as_ptr(),
            file.as_ptr(),
            null(),
            null(),
            SW_SHOWNORMAL,
        ) as isize;
        if init >= 0 {
            CoUninitialize();
        }
        rc
    };
    if rc > 32 {
        return Ok(());
    }
    // ShellExecute returns an SE_ERR_* value (<= 32), not a Win32 error.
    let what = match rc {
        2 | 3 => "the browser program registered for web links was not found".to_string(),
        5 => "access to the browser program was denied".to_string(),
        26 => "a sharing violation occurred starting the browser".to_string(),
        27 | 31 => "no program is registered to open web links".to_string(),
        other => format!("ShellExecute failed with code {other}"),
    };
    Err(io::Error::other(what))
}

/// The current user's Internet Options proxy settings as WinHTTP reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IeProxyConfig {
    /// "Automatically detect settings" (WPAD).
    pub auto_detect: bool,
    /// "Use automatic configuration script" (PAC URL).
    pub auto_config_url: Option<String>,
    /// "Use a proxy server": `host:port` or `http=h:p;https=h:p`.
    pub proxy: Option<String>,
    /// The exceptions (`*.corp;<local>`).
    pub bypass: Option<String>,
}

unsafe fn take_global(p: *mut u16) -> Option<String> {
    if p.is_null() {
        return None;
    }
    let s = from_wide_ptr(p);
    GlobalFree(p.cast());
    (!s.trim().is_empty()).then_some(s)
}

/// `WinHttpGetIEProxyConfigForCurrentUser`: Internet Options of the user this process runs as.
pub fn ie_proxy_config() -> Option<IeProxyConfig> {
    let mut c = wh::WINHTTP_CURRENT_USER_IE_PROXY_CONFIG::default();
    // SAFETY: c receives GlobalAlloc'd strings, each freed once in take_global.
    unsafe {
        if wh::WinHttpGetIEProxyConfigForCurrentUser(&mut c) == 0 {
            return None;
        }
        Some(IeProxyConfig {
            auto_detect: c.fAutoDetect != 0,
            auto_config_url: take_global(c.lpszAutoConfigUrl),
            proxy: take_global(c.lpszProxy),
            bypass: take_global(c.lpszProxyBypass),
        })
    }
}

/// `WinHttpGetDefaultProxyConfiguration`: the machine's WinHTTP proxy (`netsh winhttp set proxy`),
/// what services use. `None` when it says "direct".
pub fn winhttp_default_proxy() -> Option<(String, Option<String>)> {
    let mut info = wh::WINHTTP_PROXY_INFO::default();
    // SAFETY: info receives GlobalAlloc'd strings, freed in take_global.
    unsafe {
        if wh::WinHttpGetDefaultProxyConfiguration(&mut info) == 0 {
            return None;
        }
        let proxy = take_global(info.lpszProxy);
        let bypass = take_global(info.lpszProxyBypass);
        if info.dwAccessType == wh::WINHTTP_ACCESS_TYPE_NAMED_PROXY {
            proxy.map(|p| (p, bypass))
        } else {
            None
        }
    }
}

/// A WinHTTP session for proxy auto-configuration (PAC/WPAD) lookups.
pub struct AutoProxy(*mut core::ffi::c_void);

// SAFETY: WinHTTP session handles may be used from any thread.
unsafe impl Send for AutoProxy {}
unsafe impl Sync for AutoProxy {}

impl Drop for AutoProxy {
    fn drop(&mut self) {
        // SAFETY: the handle came from WinHttpOpen and is closed once.
        unsafe { wh::WinHttpCloseHandle(self.0) };
    }
}

/// What a PAC script or WPAD said for one URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoProxyAnswer {
    /// Connect directly.
    Direct,
    /// Use these proxies (`host:port;host2:port`), in order.
    Proxies(String),
}

impl AutoProxy {
    /// Open a session (synchronous WinHTTP, no proxy of its own).
    pub fn new() -> io::Result<AutoProxy> {
        let agent = wide(concat!("mailconnect/", env!("CARGO_PKG_VERSION")));
        // SAFETY: agent is NUL-terminated; NULL proxy strings are allowed with NO_PROXY.
        let h = unsafe {
            wh::WinHttpOpen(
                agent.as_ptr(),
                wh::WINHTTP_ACCESS_TYPE_NO_PROXY,
                null(),
                null(),
                0,
            )
        };
        if h.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(AutoProxy(h))
    }

    /// Ask `WinHttpGetProxyForUrl` for `url`: with `config_url` the PAC script there, else WPAD
    /// discovery (DHCP and DNS). Blocking: it may download and run the script.
    pub fn lookup(&self, url: &str, config_url: Option<&str>) -> io::Result<AutoProxyAnswer> {
        let url_w = wide(url);
        let config_w = config_url.map(wide);
        let mut opts = wh::WINHTTP_AUTOPROXY_OPTIONS::default();
        match &config_w {
            Some(c) => {
                opts.dwFlags = wh::WINHTTP_AUTOPROXY_CONFIG_URL;
                opts.lpszAutoConfigUrl = c.as_ptr();
            }
            None => {
                opts.dwFlags = wh::WINHTTP_AUTOPROXY_AUTO_DETECT;
                opts.dwAutoDetectFlags =
                    wh::WINHTTP_AUTO_DETECT_TYPE_DHCP | wh::WINHTTP_AUTO_DETECT_TYPE_DNS_A;
            }
        }
        let mut info = wh::WINHTTP_PROXY_INFO::default();
        // SAFETY: the strings outlive the calls; info's strings are freed in take_global.
        unsafe {
            let mut ok = wh::WinHttpGetProxyForUrl(self.0, url_w.as_ptr(), &mut opts, &mut info);
            if ok == 0 && GetLastError() == wh::ERROR_WINHTTP_LOGIN_FAILURE {
                // The script's server wants the user's Windows credentials: the documented retry.
                opts.fAutoLogonIfChallenged = 1;
                ok = wh::WinHttpGetProxyForUrl(self.0, url_w.as_ptr(), &mut opts, &mut info);
            }
            if ok == 0 {
                return Err(io::Error::last_os_error());
            }
            let proxy = take_global(info.lpszProxy);
            let _ = take_global(info.lpszProxyBypass);
            Ok(match proxy {
                Some(p) if info.dwAccessType == wh::WINHTTP_ACCESS_TYPE_NAMED_PROXY => {
                    AutoProxyAnswer::Proxies(p)
                }
                _ => AutoProxyAnswer::Direct,
            })
        }
    }
}
