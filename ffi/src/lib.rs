//! The C ABI of mailconnect: a thin, mechanical translation layer over `mailconnect_core::Client`.
//! No decisions are made here; every export checks its pointers and UTF-8, catches panics and sets
//! the thread's last error. The header `include/mailconnect.h` is generated from this crate.
#![allow(non_camel_case_types)]
#![deny(unsafe_op_in_unsafe_fn)]

mod authorize;
mod cancel;
mod client;
mod connect;
#[cfg(feature = "cxx")]
mod cxx_bridge;
mod events;
mod guard;
mod log;
mod mail;
mod service;
mod status;
mod store;

use std::ffi::c_char;

pub use authorize::*;
pub use cancel::*;
pub use client::*;
pub use connect::*;
pub use events::*;
pub use guard::mc_string_free;
pub use log::*;
pub use mail::*;
pub use service::*;
pub use status::*;
pub use store::*;

/// The ABI version. Bindings check it when they load: a library with another value is incompatible.
pub const MC_ABI_VERSION: u32 = 2;

/// The ABI version of the loaded library (`MC_ABI_VERSION` of the header it was built with).
///
/// # Threads
/// any thread. Errors: none.
#[no_mangle]
pub extern "C" fn mc_abi_version_get() -> u32 {
    MC_ABI_VERSION
}

static VERSION: &[u8] = concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes();

/// The library version, e.g. `"0.1.0"`.
///
/// # Ownership
/// static; do not free. Threads: any thread. Errors: none.
#[no_mangle]
pub extern "C" fn mc_version_get() -> *const c_char {
    VERSION.as_ptr().cast()
}

/// The name of a status code (`"MC_E_TIMEOUT"`); unknown codes give `"MC_E_INTERNAL"`.
///
/// # Ownership
/// static; do not free. Threads: any thread. Errors: none.
#[no_mangle]
pub extern "C" fn mc_result_name_get(code: i32) -> *const c_char {
    status::name_c(code).as_ptr()
}
