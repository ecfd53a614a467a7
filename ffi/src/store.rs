//! The host-owned store: records kept by the host through callbacks (`mc_client_open_with_store`).

use std::ffi::{c_char, c_void};

use mailconnect_core::store::host::{Blob, RecordBackend};
use mailconnect_core::{Client, ClientOptions, Error};

use crate::client::mc_client;
use crate::guard::{bytes_arg, c_string, call, nonnull_arg, out_arg, str_arg};
use crate::status::{FfiError, MC_E_INVALID_ARGUMENT, MC_E_NULL_POINTER};

/// The version of `mc_store_callbacks` this header describes.
pub const MC_STORE_CALLBACKS_VERSION: u32 = 1;
/// Store callback result: done.
pub const MC_STORE_OK: i32 = 0;
/// Store callback result: no such record (`load`, `remove`).
pub const MC_STORE_NOT_FOUND: i32 = 1;
/// Store callback result: the stored version is not the expected one (`compare_and_swap`).
pub const MC_STORE_CONFLICT: i32 = 2;

/// A record being loaded; fill it with `mc_store_record_set`. Opaque; valid during the callback only.
pub struct mc_store_record {
    blob: Option<Blob>,
}

/// A list being filled by the `list` callback with `mc_store_list_add`. Opaque; valid during the
/// callback only.
pub struct mc_store_list {
    items: Vec<(String, Blob)>,
}

/// Callbacks of a host-owned store. The host keeps records of four kinds (`"tokens"`,
/// `"account"`, `"registration"`, `"lease"`), each identified by (kind, id), holding an **opaque
/// blob** and a **version** (int64; 0 is never used). Blobs are encrypted by mailconnect with the
/// key from the client options; the host never sees a token or secret in clear.
///
/// Contract:
/// - Blobs have no size limit: store every byte and give back exactly those bytes (a binary
///   column: `BLOB`, `bytea`, `varbinary(max)`). A blob cut short is detected and reported as
///   "stored incompletely" (diagnostic `MC-TOKEN-TRUNCATED`); it never crashes or silently signs out.
/// - `compare_and_swap` must be atomic per record: write `data` with `new_version` only if the
///   stored version equals `expected_version` (0 = the record must not exist), e.g.
///   `UPDATE t SET blob=?, version=? WHERE kind=? AND id=? AND version=?` / `INSERT` when 0.
/// - Return `MC_STORE_OK`, `MC_STORE_NOT_FOUND` (load, remove), `MC_STORE_CONFLICT`
///   (compare_and_swap), or a negative number for a failure of the host's database (reported as
///   `MC_E_STORE` with that number).
/// - Callbacks run on mailconnect threads, possibly several at once; they must be thread-safe and
///   must not call mailconnect functions other than `mc_store_record_set` and `mc_store_list_add`.
/// - Strings passed in are valid during the call only.
#[repr(C)]
pub struct mc_store_callbacks {
    /// Must be `MC_STORE_CALLBACKS_VERSION`.
    pub version: u32,
    /// Passed to every callback.
    pub user_data: *mut c_void,
    /// Load (kind, id): call `mc_store_record_set(out, ...)` and return `MC_STORE_OK`, or return
    /// `MC_STORE_NOT_FOUND`.
    pub load: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            kind: *const c_char,
            id: *const c_char,
            out: *mut mc_store_record,
        ) -> i32,
    >,
    /// Write `len` bytes at `data` with `new_version` if the stored version is `expected_version`
    /// (0 = no record): `MC_STORE_OK`, or `MC_STORE_CONFLICT`.
    pub compare_and_swap: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            kind: *const c_char,
            id: *const c_char,
            data: *const u8,
            len: usize,
            expected_version: i64,
            new_version: i64,
        ) -> i32,
    >,
    /// Delete (kind, id): `MC_STORE_OK` or `MC_STORE_NOT_FOUND`.
    pub remove: Option<
        unsafe extern "C" fn(user_data: *mut c_void, kind: *const c_char, id: *const c_char) -> i32,
    >,
    /// Every record of `kind`: call `mc_store_list_add(out, ...)` for each, return `MC_STORE_OK`.
    pub list: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            kind: *const c_char,
            out: *mut mc_store_list,
        ) -> i32,
    >,
}

type LoadFn =
    unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, *mut mc_store_record) -> i32;
type CasFn = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    *const c_char,
    *const u8,
    usize,
    i64,
    i64,
) -> i32;
type RemoveFn = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char) -> i32;
type ListFn = unsafe extern "C" fn(*mut c_void, *const c_char, *mut mc_store_list) -> i32;

struct Callbacks {
    user_data: usize,
    load: LoadFn,
    cas: CasFn,
    remove: RemoveFn,
    list: ListFn,
}

impl Callbacks {
    /// The host's callbacks, after checking the version and that none is missing.
    ///
    /// # Safety
    /// `callbacks` NULL or valid for the call.
    unsafe fn new(callbacks: *const mc_store_callbacks) -> Result<Callbacks, FfiError> {
        if callbacks.is_null() {
            return Err(FfiError::new(
                MC_E_NULL_POINTER,
                "'callbacks' must not be NULL",
            ));
        }
        // SAFETY: non-null and valid for the call (contract).
        let cb = unsafe { &*callbacks };
        if cb.version != MC_STORE_CALLBACKS_VERSION {
            return Err(FfiError::new(
                MC_E_INVALID_ARGUMENT,
                format!(
                    "mc_store_callbacks.version is {}, expected {MC_STORE_CALLBACKS_VERSION}",
                    cb.version
                ),
            ));
        }
        let missing = |name: &str| {
            FfiError::new(
                MC_E_NULL_POINTER,
                format!("mc_store_callbacks.{name} must not be NULL"),
            )
        };
        Ok(Callbacks {
            user_data: cb.user_data as usize,
            load: cb.load.ok_or_else(|| missing("load"))?,
            cas: cb
                .compare_and_swap
                .ok_or_else(|| missing("compare_and_swap"))?,
            remove: cb.remove.ok_or_else(|| missing("remove"))?,
            list: cb.list.ok_or_else(|| missing("list"))?,
        })
    }
}

fn host_failure(op: &str, kind: &str, id: &str, rc: i32) -> Error {
    Error::store(format!(
        "the application's store callback '{op}' failed for the {kind} record '{id}' (it returned {rc})"
    ))
}

impl RecordBackend for Callbacks {
    fn load(&self, kind: &str, id: &str) -> mailconnect_core::Result<Option<Blob>> {
        let mut rec = mc_store_record { blob: None };
        let (k, i) = (c_string(kind), c_string(id));
        // SAFETY: the host promised callable callbacks with valid user data until mc_client_free.
        let rc = unsafe {
            (self.load)(
                self.user_data as *mut c_void,
                k.as_ptr(),
                i.as_ptr(),
                &mut rec,
            )
        };
        match rc {
            MC_STORE_OK => match rec.blob {
                Some(b) => Ok(Some(b)),
                None => Err(Error::store(format!("the application's store callback 'load' returned MC_STORE_OK for the {kind} record '{id}' without calling mc_store_record_set"))),
            },
            MC_STORE_NOT_FOUND => Ok(None),
            rc => Err(host_failure("load", kind, id, rc)),
        }
    }

    fn compare_and_swap(
        &self,
        kind: &str,
        id: &str,
        data: &[u8],
        expected: i64,
        new_version: i64,
    ) -> mailconnect_core::Result<bool> {
        let (k, i) = (c_string(kind), c_string(id));
        // SAFETY: as above; `data` is valid for `len` bytes during the call.
        let rc = unsafe {
            (self.cas)(
                self.user_data as *mut c_void,
                k.as_ptr(),
                i.as_ptr(),
                data.as_ptr(),
                data.len(),
                expected,
                new_version,
            )
        };
        match rc {
            MC_STORE_OK => Ok(true),
            MC_STORE_CONFLICT => Ok(false),
            rc => Err(host_failure("compare_and_swap", kind, id, rc)),
        }
    }

    fn remove(&self, kind: &str, id: &str) -> mailconnect_core::Result<bool> {
        let (k, i) = (c_string(kind), c_string(id));
        // SAFETY: as above.
        let rc = unsafe { (self.remove)(self.user_data as *mut c_void, k.as_ptr(), i.as_ptr()) };
        match rc {
            MC_STORE_OK => Ok(true),
            MC_STORE_NOT_FOUND => Ok(false),
            rc => Err(host_failure("remove", kind, id, rc)),
        }
    }

    fn list(&self, kind: &str) -> mailconnect_core::Result<Vec<(String, Blob)>> {
        let mut out = mc_store_list { items: Vec::new() };
        let k = c_string(kind);
        // SAFETY: as above.
        let rc = unsafe { (self.list)(self.user_data as *mut c_void, k.as_ptr(), &mut out) };
        match rc {
            MC_STORE_OK => Ok(out.items),
            rc => Err(host_failure("list", kind, "*", rc)),
        }
    }
}

/// Give mailconnect the blob and version of a record from inside the `load` callback. The bytes
/// are copied.
///
/// # Threads
/// only inside the `load` callback that received `rec`.
///
/// # Errors
/// `MC_E_NULL_POINTER` (`rec`, or `data` with `len` > 0), `MC_E_INVALID_ARGUMENT` (version < 1).
///
/// # Safety
/// `rec` from the running `load` callback; `data` valid for `len` bytes (may be NULL when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn mc_store_record_set(
    rec: *mut mc_store_record,
    data: *const u8,
    len: usize,
    version: i64,
) -> i32 {
    call(|| {
        nonnull_arg(rec, "rec")?;
        // SAFETY: contract of this export.
        let blob = unsafe { blob_arg(data, len, version)? };
        // SAFETY: non-null; valid during the callback (contract).
        unsafe { (*rec).blob = Some(blob) };
        Ok(())
    })
}

/// Add one record to the list being built inside the `list` callback. The bytes are copied.
///
/// # Threads
/// only inside the `list` callback that received `list`.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_INVALID_UTF8` (`id`), `MC_E_INVALID_ARGUMENT` (version < 1).
///
/// # Safety
/// `list` from the running `list` callback; `id` NUL-terminated; `data` valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn mc_store_list_add(
    list: *mut mc_store_list,
    id: *const c_char,
    data: *const u8,
    len: usize,
    version: i64,
) -> i32 {
    call(|| {
        nonnull_arg(list, "list")?;
        // SAFETY: contract of this export.
        let (id, blob) = unsafe { (str_arg(id, "id")?, blob_arg(data, len, version)?) };
        // SAFETY: non-null; valid during the callback (contract).
        unsafe { (*list).items.push((id.to_string(), blob)) };
        Ok(())
    })
}

/// A blob from the host: `len` bytes at `data`, copied, with its version.
///
/// # Safety
/// `data` valid for `len` bytes or NULL with `len` 0.
unsafe fn blob_arg(data: *const u8, len: usize, version: i64) -> Result<Blob, FfiError> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { bytes_arg(data, len, "'data' must not be NULL when 'len' > 0")? };
    if version < 1 {
        return Err(FfiError::new(
            MC_E_INVALID_ARGUMENT,
            format!("'version' must be the positive version stored with the blob, not {version}"),
        ));
    }
    Ok(Blob {
        data: bytes.to_vec(),
        version,
    })
}

/// The client options of a host-owned store: those of `mc_client_open` without `store`.
fn host_store_options(json: &str) -> Result<ClientOptions, FfiError> {
    let options = ClientOptions::from_json(json)?;
    if !options.store_path.as_os_str().is_empty() {
        return Err(FfiError::new(
            MC_E_INVALID_ARGUMENT,
            "'store' is not used with a host-owned store; leave it out",
        ));
    }
    Ok(options)
}

/// Open a client whose registrations, accounts, tokens and refresh leases live in the host's own
/// database, through `callbacks` (see `mc_store_callbacks` for the contract). The options are
/// those of `mc_client_open` without `store`; `key` is required (`{"base64": ...}` from the
/// host's secret store, or `{"file": PATH}`): it encrypts every blob.
///
/// # Ownership
/// on success `*out` owns a new client; release it with `mc_client_free`. `callbacks` is copied;
/// the functions and `user_data` must stay valid until `mc_client_free` returns.
///
/// # Threads
/// any thread. Callbacks run on mailconnect threads.
///
/// # Errors
/// `MC_E_NULL_POINTER` (also for a missing callback), `MC_E_INVALID_UTF8`,
/// `MC_E_INVALID_ARGUMENT` (bad JSON, no key, unknown callbacks version).
///
/// # Safety
/// `options_json` NUL-terminated; `callbacks` valid for the call; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn mc_client_open_with_store(
    options_json: *const c_char,
    callbacks: *const mc_store_callbacks,
    out: *mut *mut mc_client,
) -> i32 {
    call(|| {
        out_arg(out, "out")?;
        // SAFETY: contract of this export.
        let backend = unsafe { Callbacks::new(callbacks)? };
        // SAFETY: contract of this export.
        let options = host_store_options(unsafe { str_arg(options_json, "options_json")? })?;
        mc_client::boxed(out, |o| Client::with_host_store(backend, o), options)
    })
}
