//! Status codes and the thread-local last error.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};

use mailconnect_core::{Error, ErrorKind};

use crate::guard::c_string;

/// Success.
pub const MC_OK: i32 = 0;
/// An argument is invalid (bad JSON, a missing or wrong field, a bad value).
pub const MC_E_INVALID_ARGUMENT: i32 = -1;
/// A required pointer argument was NULL.
pub const MC_E_NULL_POINTER: i32 = -2;
/// A string argument was not valid UTF-8.
pub const MC_E_INVALID_UTF8: i32 = -3;
/// The named account or registration does not exist.
pub const MC_E_NOT_FOUND: i32 = -10;
/// Not possible in the current state (e.g. the account is not connected; called from a callback thread).
pub const MC_E_STATE: i32 = -11;
/// The account must be authorized again (Connect); see the diagnostic for the reason.
pub const MC_E_REAUTHORIZATION_REQUIRED: i32 = -20;
/// The identity provider refused because of the app registration or tenant configuration.
pub const MC_E_PROVIDER_CONFIGURATION: i32 = -21;
/// The user declined, or signed in with the wrong account.
pub const MC_E_AUTHORIZATION_DENIED: i32 = -22;
/// The identity provider or a proxy failed or answered something unreadable; retry later.
pub const MC_E_PROVIDER_UNAVAILABLE: i32 = -23;
/// A network error (DNS, refused, reset, proxy).
pub const MC_E_NETWORK: i32 = -30;
/// TLS handshake or certificate verification failed.
pub const MC_E_TLS: i32 = -31;
/// A mail server refused or failed.
pub const MC_E_MAIL_SERVER: i32 = -40;
/// The token store failed (locked, damaged, wrong key, I/O).
pub const MC_E_STORE: i32 = -50;
/// The call was cancelled through its `mc_cancel`.
pub const MC_E_CANCELLED: i32 = -60;
/// The call took longer than its configured limit.
pub const MC_E_TIMEOUT: i32 = -61;
/// A bug in mailconnect (a caught panic). Please report it with the diagnostic.
pub const MC_E_INTERNAL: i32 = -99;

pub(crate) fn code_of(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::InvalidArgument => MC_E_INVALID_ARGUMENT,
        ErrorKind::NotFound => MC_E_NOT_FOUND,
        ErrorKind::State => MC_E_STATE,
        ErrorKind::ReauthorizationRequired => MC_E_REAUTHORIZATION_REQUIRED,
        ErrorKind::ProviderConfiguration => MC_E_PROVIDER_CONFIGURATION,
        ErrorKind::AuthorizationDenied => MC_E_AUTHORIZATION_DENIED,
        ErrorKind::ProviderUnavailable => MC_E_PROVIDER_UNAVAILABLE,
        ErrorKind::Network => MC_E_NETWORK,
        ErrorKind::Tls => MC_E_TLS,
        ErrorKind::MailServer => MC_E_MAIL_SERVER,
        ErrorKind::Store => MC_E_STORE,
        ErrorKind::Cancelled => MC_E_CANCELLED,
        ErrorKind::Timeout => MC_E_TIMEOUT,
        ErrorKind::Internal => MC_E_INTERNAL,
    }
}

/// The status codes and their names.
static NAMES: [(i32, &CStr); 17] = [
    (MC_OK, c"MC_OK"),
    (MC_E_INVALID_ARGUMENT, c"MC_E_INVALID_ARGUMENT"),
    (MC_E_NULL_POINTER, c"MC_E_NULL_POINTER"),
    (MC_E_INVALID_UTF8, c"MC_E_INVALID_UTF8"),
    (MC_E_NOT_FOUND, c"MC_E_NOT_FOUND"),
    (MC_E_STATE, c"MC_E_STATE"),
    (
        MC_E_REAUTHORIZATION_REQUIRED,
        c"MC_E_REAUTHORIZATION_REQUIRED",
    ),
    (MC_E_PROVIDER_CONFIGURATION, c"MC_E_PROVIDER_CONFIGURATION"),
    (MC_E_AUTHORIZATION_DENIED, c"MC_E_AUTHORIZATION_DENIED"),
    (MC_E_PROVIDER_UNAVAILABLE, c"MC_E_PROVIDER_UNAVAILABLE"),
    (MC_E_NETWORK, c"MC_E_NETWORK"),
    (MC_E_TLS, c"MC_E_TLS"),
    (MC_E_MAIL_SERVER, c"MC_E_MAIL_SERVER"),
    (MC_E_STORE, c"MC_E_STORE"),
    (MC_E_CANCELLED, c"MC_E_CANCELLED"),
    (MC_E_TIMEOUT, c"MC_E_TIMEOUT"),
    (MC_E_INTERNAL, c"MC_E_INTERNAL"),
];

/// The name of a status code as a static C string; unknown codes give `MC_E_INTERNAL`.
pub(crate) fn name_c(code: i32) -> &'static CStr {
    NAMES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(c"MC_E_INTERNAL", |(_, name)| *name)
}

/// The name of a status code.
pub(crate) fn name_of(code: i32) -> &'static str {
    name_c(code).to_str().unwrap_or("MC_E_INTERNAL")
}

/// An error crossing the boundary.
pub(crate) struct FfiError {
    pub code: i32,
    pub message: String,
    pub diagnostic: serde_json::Value,
}

impl FfiError {
    pub(crate) fn new(code: i32, message: impl Into<String>) -> FfiError {
        let message = message.into();
        let diagnostic = serde_json::json!({"status": name_of(code), "message": message});
        FfiError {
            code,
            message,
            diagnostic,
        }
    }
}

impl From<Error> for FfiError {
    fn from(e: Error) -> FfiError {
        let code = code_of(e.kind());
        let mut diagnostic = e.diagnostic_json();
        diagnostic["status"] = serde_json::Value::String(name_of(code).to_string());
        FfiError {
            code,
            message: e.to_string(),
            diagnostic,
        }
    }
}

struct LastError {
    code: i32,
    message: CString,
    diagnostic: CString,
}

thread_local! {
    static LAST: RefCell<LastError> = RefCell::new(LastError { code: MC_OK, message: CString::default(), diagnostic: c"{}".into() });
}

pub(crate) fn set_last(e: &FfiError) {
    LAST.with(|l| {
        let mut l = l.borrow_mut();
        l.code = e.code;
        l.message = c_string(&e.message);
        l.diagnostic = c_string(&e.diagnostic.to_string());
    });
}

pub(crate) fn clear_last() {
    LAST.with(|l| {
        let mut l = l.borrow_mut();
        if l.code != MC_OK {
            l.code = MC_OK;
            l.message = CString::default();
            l.diagnostic = c"{}".into();
        }
    });
}

/// The status code of the most recent mailconnect call on this thread (`MC_OK` after a success).
///
/// # Threads
/// per thread. Errors: none.
#[no_mangle]
pub extern "C" fn mc_error_code_get() -> i32 {
    LAST.with(|l| l.borrow().code)
}

/// The message of the most recent failed call on this thread: what was being done and why, in
/// English, without secrets. Never NULL (empty after a success).
///
/// # Ownership
/// borrowed; valid until the next mailconnect call on this thread. Do not free.
///
/// # Threads
/// per thread.
#[no_mangle]
pub extern "C" fn mc_error_message_get() -> *const c_char {
    LAST.with(|l| l.borrow().message.as_ptr())
}

/// The diagnostic of the most recent failed call on this thread as JSON: `status` (the code's
/// name), `kind`, `message` and `evidence` (provider error with AADSTS codes and trace ids, HTTP
/// status, server reply, SASL challenge, field). Never NULL (`{}` after a success).
///
/// # Ownership
/// borrowed; valid until the next mailconnect call on this thread. Do not free.
///
/// # Threads
/// per thread.
#[no_mangle]
pub extern "C" fn mc_error_diagnostic_get() -> *const c_char {
    LAST.with(|l| l.borrow().diagnostic.as_ptr())
}
