//! The boundary: every export runs inside [`call`], which catches panics, sets the last error and
//! returns a status code; argument helpers check pointers and UTF-8.

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::Serialize;

use crate::status::{
    clear_last, set_last, FfiError, MC_E_INTERNAL, MC_E_INVALID_ARGUMENT, MC_E_INVALID_UTF8,
    MC_E_NULL_POINTER, MC_OK,
};

/// Run `f`; map its error or a panic to a status code and the thread's last error.
pub(crate) fn call(f: impl FnOnce() -> Result<(), FfiError>) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            clear_last();
            MC_OK
        }
        Ok(Err(e)) => {
            set_last(&e);
            e.code
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            let e = FfiError::new(
                MC_E_INTERNAL,
                format!("internal error (a bug in mailconnect, please report it): {what}"),
            );
            set_last(&e);
            MC_E_INTERNAL
        }
    }
}

/// Run `f` for an export without a status (free functions); panics are swallowed.
pub(crate) fn call_void(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

/// A required UTF-8 string argument.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string valid for the call.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, name: &str) -> Result<&'a str, FfiError> {
    if p.is_null() {
        return Err(FfiError::new(
            MC_E_NULL_POINTER,
            format!("'{name}' must not be NULL"),
        ));
    }
    // SAFETY: non-null and NUL-terminated per the contract above.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|e| {
        FfiError::new(
            MC_E_INVALID_UTF8,
            format!(
                "'{name}' is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// An optional JSON argument read with `parse` (a core parser); NULL gives the defaults.
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_json_arg<T: Default>(
    p: *const c_char,
    name: &str,
    parse: impl FnOnce(&str) -> mailconnect_core::Result<T>,
) -> Result<T, FfiError> {
    if p.is_null() {
        return Ok(T::default());
    }
    // SAFETY: forwarded contract.
    Ok(parse(unsafe { str_arg(p, name)? })?)
}

/// A required non-empty id argument.
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn id_arg<'a>(p: *const c_char, name: &str) -> Result<&'a str, FfiError> {
    // SAFETY: forwarded contract.
    let s = unsafe { str_arg(p, name)? };
    if s.is_empty() {
        return Err(FfiError::new(
            MC_E_INVALID_ARGUMENT,
            format!("'{name}' must not be empty"),
        ));
    }
    Ok(s)
}

/// A required out-parameter, set to NULL before anything else can fail (libgit2's convention): a
/// host that looks at the pointer instead of the status never finds a stale value in it. Every
/// export checks its out-parameter first.
pub(crate) fn out_arg<T>(p: *mut *mut T, name: &str) -> Result<(), FfiError> {
    nonnull_arg(p, name)?;
    // SAFETY: non-null, and writable per every export's contract.
    unsafe { *p = std::ptr::null_mut() };
    Ok(())
}

/// An optional out-parameter (NULL = the caller does not want it), set to NULL first like
/// [`out_arg`] when given.
pub(crate) fn opt_out_arg<T>(p: *mut *mut T) {
    if !p.is_null() {
        // SAFETY: non-null, and writable per every export's contract.
        unsafe { *p = std::ptr::null_mut() };
    }
}

/// A required pointer argument that is not an out-parameter.
pub(crate) fn nonnull_arg<T>(p: *mut T, name: &str) -> Result<(), FfiError> {
    if p.is_null() {
        return Err(FfiError::new(
            MC_E_NULL_POINTER,
            format!("'{name}' must not be NULL"),
        ));
    }
    Ok(())
}

/// A required byte-buffer argument: `len` bytes at `p`, which may be NULL only when `len` is 0.
/// `null_message` is the error when it is NULL with bytes to read.
///
/// # Safety
/// `p` must be NULL or valid for reading `len` bytes during the call.
pub(crate) unsafe fn bytes_arg<'a>(
    p: *const u8,
    len: usize,
    null_message: &str,
) -> Result<&'a [u8], FfiError> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(FfiError::new(MC_E_NULL_POINTER, null_message));
    }
    // SAFETY: non-null and valid for `len` bytes per the contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A C string for a host callback or a borrowed result: `s` with any NUL byte replaced by a
/// space (a C string ends at its first NUL, so nothing after one would reach the host).
pub(crate) fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

/// Hand `value` as JSON to the caller (free with `mc_string_free`).
///
/// # Safety
/// As [`give_string`].
pub(crate) unsafe fn give_json<T: Serialize + ?Sized>(
    out: *mut *mut c_char,
    value: &T,
) -> Result<(), FfiError> {
    let s = serde_json::to_string(value)
        .map_err(|e| FfiError::new(MC_E_INTERNAL, format!("JSON: {e}")))?;
    // SAFETY: forwarded contract.
    unsafe { give_string(out, s) }
}

/// Hand a copy of the secret `s` to `out` with one allocation (the token fast path); the copy is
/// the caller's to free with `mc_string_free`, which overwrites it.
///
/// # Safety
/// As [`give_string`].
pub(crate) unsafe fn give_secret_str(out: *mut *mut c_char, s: &str) -> Result<(), FfiError> {
    if s.as_bytes().contains(&0) {
        return Err(FfiError::new(MC_E_INTERNAL, "output contains a NUL byte"));
    }
    let mut bytes = Vec::with_capacity(s.len() + 1);
    bytes.extend_from_slice(s.as_bytes());
    // SAFETY: checked above that there is no interior NUL.
    let c = unsafe { CString::from_vec_unchecked(bytes) };
    // SAFETY: `out` is non-null and writable per the contract.
    unsafe { *out = c.into_raw() };
    Ok(())
}

/// Hand `value` as JSON to an optional out-parameter: nothing is produced when `out` is NULL.
///
/// # Safety
/// `out` NULL or writable.
pub(crate) unsafe fn give_optional<T: Serialize + ?Sized>(
    out: *mut *mut c_char,
    value: &T,
) -> Result<(), FfiError> {
    if out.is_null() {
        return Ok(());
    }
    // SAFETY: non-null and writable per the caller's contract.
    unsafe { give_json(out, value) }
}

/// Hand a string to the caller (free with `mc_string_free`). The one way strings leave the
/// library through out-parameters: the original is wiped, as it may hold a token.
///
/// # Safety
/// `out` must be a valid, writable pointer (checked for NULL by the caller with [`out_arg`]).
pub(crate) unsafe fn give_string(out: *mut *mut c_char, s: String) -> Result<(), FfiError> {
    if s.as_bytes().contains(&0) {
        return Err(FfiError::new(MC_E_INTERNAL, "output contains a NUL byte"));
    }
    // Room for the NUL first, so CString::new does not reallocate and leave an unwiped copy of a
    // token behind.
    let mut bytes = Vec::with_capacity(s.len() + 1);
    bytes.extend_from_slice(s.as_bytes());
    zeroize::Zeroize::zeroize(&mut s.into_bytes());
    // SAFETY: checked above that there is no interior NUL.
    let c = unsafe { CString::from_vec_unchecked(bytes) };
    // SAFETY: `out` is non-null and writable per the contract.
    unsafe { *out = c.into_raw() };
    Ok(())
}

/// Free a string that mailconnect returned through a `char **` out-parameter. NULL is allowed.
///
/// # Ownership
/// takes ownership of `s`; do not use it afterwards. Strings that hold secrets (access
/// tokens, SASL strings) are overwritten before they are freed.
///
/// # Threads
/// any thread.
///
/// # Safety
/// `s` must be NULL or a pointer returned by mailconnect and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn mc_string_free(s: *mut c_char) {
    call_void(|| {
        if s.is_null() {
            return;
        }
        // SAFETY: `s` came from `CString::into_raw` in this library and is freed once (contract).
        let c = unsafe { CString::from_raw(s) };
        // The string may have held a token.
        zeroize::Zeroize::zeroize(&mut c.into_bytes());
    });
}
