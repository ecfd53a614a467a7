//! `mc_cancel`: a cancellation token any thread can trigger.

use mailconnect_core::CancellationToken;

use crate::guard::{call, call_void, out_arg};

/// A cancellation token. Opaque.
pub struct mc_cancel {
    pub(crate) token: CancellationToken,
}

/// Create a cancellation token. Pass it to blocking calls (`mc_account_connect`, `mc_account_test`, ...) and call
/// `mc_cancel_trigger` from any thread to make them return `MC_E_CANCELLED` promptly. A triggered
/// token stays triggered: calls started with it afterwards return `MC_E_CANCELLED` at once.
///
/// # Ownership
/// `*out` owns the token; release it with `mc_cancel_free` after the calls using it returned.
///
/// # Threads
/// any thread.
///
/// # Errors
/// `MC_E_NULL_POINTER`.
///
/// # Safety
/// `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn mc_cancel_new(out: *mut *mut mc_cancel) -> i32 {
    call(|| {
        out_arg(out, "out")?;
        let b = Box::new(mc_cancel {
            token: CancellationToken::new(),
        });
        // SAFETY: `out` is non-null and writable.
        unsafe { *out = Box::into_raw(b) };
        Ok(())
    })
}

/// Trigger the token. NULL is ignored. Idempotent.
///
/// # Threads
/// any thread, including while another thread is blocked in a call using this token.
///
/// # Safety
/// `cancel` must be NULL or a live pointer from `mc_cancel_new`.
#[no_mangle]
pub unsafe extern "C" fn mc_cancel_trigger(cancel: *mut mc_cancel) {
    call_void(|| {
        if !cancel.is_null() {
            // SAFETY: live pointer from `mc_cancel_new` (contract).
            unsafe { &*cancel }.token.cancel();
        }
    });
}

/// Free the token. NULL is allowed.
///
/// # Ownership
/// takes ownership; no call may still be using the token.
///
/// # Threads
/// any thread.
///
/// # Safety
/// `cancel` must be NULL or a pointer from `mc_cancel_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn mc_cancel_free(cancel: *mut mc_cancel) {
    call_void(|| {
        if !cancel.is_null() {
            // SAFETY: from `mc_cancel_new`, freed once (contract).
            drop(unsafe { Box::from_raw(cancel) });
        }
    });
}
