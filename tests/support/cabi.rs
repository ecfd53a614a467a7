//! Helpers for tests that call the C ABI from Rust: an owning client pointer, C strings, owned
//! output strings, the thread's last error, and running blocking calls on a host thread.

use std::ffi::{c_char, CStr, CString};

use mailconnect::*;

/// A client pointer freed on drop; shareable across the test's host threads (the client is
/// thread-safe by contract).
pub struct C(pub *mut mc_client);
// SAFETY: mc_client is thread-safe (C ABI rule 6); the pointer is freed once, on drop.
unsafe impl Send for C {}
// SAFETY: as above.
unsafe impl Sync for C {}
impl Drop for C {
    fn drop(&mut self) {
        // SAFETY: from mc_client_open*, freed once.
        unsafe { mc_client_free(self.0) }
    }
}

/// A C string (test input has no NUL).
pub fn cs(s: &str) -> CString {
    CString::new(s).expect("no NUL in test strings")
}

/// Take an owned output string (NULL = none) and free it. Only for pointers mailconnect handed
/// out (a test helper: kept safe to call so every test line does not need `unsafe`).
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn take(p: *mut c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: a string mailconnect handed out, freed once here.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    unsafe { mc_string_free(p) };
    Some(s)
}

/// The calling thread's last error: code, message, diagnostic JSON.
pub fn last_error() -> (i32, String, serde_json::Value) {
    // SAFETY: the last-error functions never return NULL.
    unsafe {
        (
            mc_error_code_get(),
            CStr::from_ptr(mc_error_message_get())
                .to_string_lossy()
                .into_owned(),
            serde_json::from_str(&CStr::from_ptr(mc_error_diagnostic_get()).to_string_lossy())
                .expect("the diagnostic is JSON"),
        )
    }
}

/// Run blocking C ABI calls on a thread of the host's own (not a Tokio thread: mailconnect
/// refuses blocking calls from threads inside a runtime, as it does from its callbacks).
pub async fn on_host_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.await.expect("the host thread ends") {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}
