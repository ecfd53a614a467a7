//! `mc_client`: one store, one runtime, thread-safe.

use std::ffi::c_char;
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex};

use mailconnect_core::{CancellationToken, Client, ClientOptions};

use crate::cancel::mc_cancel;
use crate::guard::{call, call_void, give_json, id_arg, out_arg, str_arg};
use crate::status::{FfiError, MC_E_INTERNAL, MC_E_STATE};

/// A mailconnect client: one token store, its own async runtime. Opaque.
pub struct mc_client {
    pub(crate) client: Client,
    runtime: tokio::runtime::Runtime,
    /// Cancelled by `mc_client_free`: ends calls in progress on other threads.
    pub(crate) shutdown: CancellationToken,
    in_flight: Arc<(Mutex<usize>, Condvar)>,
    /// Calls on the fast path ([`mc_client::fast`]) in progress; `mc_client_free` waits for them.
    fast_in_flight: std::sync::atomic::AtomicUsize,
    /// The background refresher, when started.
    pub(crate) refresher: Mutex<Option<CancellationToken>>,
}

struct InFlight(Arc<(Mutex<usize>, Condvar)>);
impl Drop for InFlight {
    fn drop(&mut self) {
        let (m, cv) = &*self.0;
        if let Ok(mut n) = m.lock() {
            *n = n.saturating_sub(1);
        }
        cv.notify_all();
    }
}

impl mc_client {
    /// Run a core call to completion on the client's runtime, from the calling (host) thread: the
    /// one way a blocking export waits for core. `f` gets a token that fires when the caller's
    /// `cancel` (NULL = none) or `mc_client_free` fires; it is cancelled when the call returns, so
    /// nothing started for it outlives it. Refused with `MC_E_STATE` on a mailconnect callback
    /// thread; counted as in flight, so `mc_client_free` waits for it.
    pub(crate) fn run<T>(
        &self,
        cancel: *const mc_cancel,
        f: impl AsyncFnOnce(&CancellationToken) -> mailconnect_core::Result<T>,
    ) -> Result<T, FfiError> {
        let token = self.cancel_for(cancel);
        let _done = token.clone().drop_guard();
        Ok(self.block_on(f(&token))??)
    }

    /// Answer from memory, on the calling thread, without the runtime: `f` gets the client and
    /// says `None` when the answer needs the store or the network (then the caller takes the
    /// blocking path, which also gives the errors: a callback thread, a client being freed).
    /// Counted as in flight with one atomic, so `mc_client_free` waits for it.
    pub(crate) fn fast<R>(&self, f: impl FnOnce(&Client) -> Option<R>) -> Option<R> {
        use std::sync::atomic::Ordering;
        struct Done<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        self.fast_in_flight.fetch_add(1, Ordering::AcqRel);
        let _done = Done(&self.fast_in_flight);
        if self.shutdown.is_cancelled() || tokio::runtime::Handle::try_current().is_ok() {
            return None;
        }
        f(&self.client)
    }

    /// Run `fut` to completion on the client's runtime, from the calling (host) thread.
    fn block_on<T>(&self, fut: impl Future<Output = T>) -> Result<T, FfiError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(FfiError::new(
                MC_E_STATE,
                "a blocking mailconnect call was made from a mailconnect callback thread; call it from one of your own threads",
            ));
        }
        let guard = {
            let (m, _) = &*self.in_flight;
            let mut n = m
                .lock()
                .map_err(|_| FfiError::new(MC_E_INTERNAL, "client lock poisoned"))?;
            *n += 1;
            InFlight(self.in_flight.clone())
        };
        let out = self.runtime.block_on(fut);
        drop(guard);
        Ok(out)
    }

    /// Build a client with its runtime and hand it to `out`.
    pub(crate) fn boxed(
        out: *mut *mut mc_client,
        open: impl FnOnce(ClientOptions) -> mailconnect_core::Result<Client>,
        options: ClientOptions,
    ) -> Result<(), FfiError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mailconnect")
            .enable_all()
            .build()
            .map_err(|e| FfiError::new(MC_E_INTERNAL, format!("cannot start the runtime: {e}")))?;
        let client = {
            let _enter = runtime.enter();
            open(options)
        };
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                shut_down(runtime);
                return Err(e.into());
            }
        };
        let boxed = Box::new(mc_client {
            client,
            runtime,
            shutdown: CancellationToken::new(),
            in_flight: Arc::new((Mutex::new(0), Condvar::new())),
            fast_in_flight: std::sync::atomic::AtomicUsize::new(0),
            refresher: Mutex::new(None),
        });
        // SAFETY: `out` is non-null and writable (checked by the caller).
        unsafe { *out = Box::into_raw(boxed) };
        Ok(())
    }

    /// Run `fut` in the background on the client's runtime.
    pub(crate) fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        self.runtime.spawn(fut);
    }

    /// Enter the client's runtime (for calls that do not block but touch runtime resources).
    pub(crate) fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.runtime.enter()
    }

    /// A cancellation token that fires when the caller's `mc_cancel` or `mc_client_free` fires.
    fn cancel_for(&self, cancel: *const mc_cancel) -> CancellationToken {
        let token = self.shutdown.child_token();
        if !cancel.is_null() {
            // SAFETY: non-null `mc_cancel` pointers come from `mc_cancel_new` (contract of every export).
            let c = unsafe { &*cancel };
            if c.token.is_cancelled() {
                token.cancel();
                return token;
            }
            let t = token.clone();
            let watched = c.token.clone();
            self.runtime.spawn(async move {
                tokio::select! {
                    _ = watched.cancelled() => t.cancel(),
                    _ = t.cancelled() => {}
                }
            });
        }
        token
    }
}

impl mc_client {
    /// Cancel the calls in progress, wait until they have returned, then free the client and stop
    /// its runtime.
    ///
    /// # Safety
    /// `client` non-null, from `mc_client_open`, not yet freed; no new call starts on it.
    unsafe fn close(client: *mut mc_client) {
        // SAFETY: live per the contract.
        let c = unsafe { &*client };
        c.shutdown.cancel();
        {
            let (m, cv) = &*c.in_flight;
            if let Ok(mut n) = m.lock() {
                while *n > 0 {
                    match cv.wait(n) {
                        Ok(g) => n = g,
                        Err(_) => break,
                    }
                }
            }
        }
        // Fast-path calls take microseconds; they see the shutdown and return at once.
        while c.fast_in_flight.load(std::sync::atomic::Ordering::Acquire) > 0 {
            std::thread::yield_now();
        }
        // SAFETY: no call is in progress any more; we own the pointer.
        let boxed = unsafe { Box::from_raw(client) };
        let mc_client {
            runtime,
            client: inner,
            ..
        } = *boxed;
        drop(inner);
        shut_down(runtime);
    }
}

/// Stop a client's runtime. From a thread inside another Tokio runtime (a Rust host) it must not
/// block, so the runtime is left to finish in the background there.
fn shut_down(runtime: tokio::runtime::Runtime) {
    if tokio::runtime::Handle::try_current().is_ok() {
        runtime.shutdown_background();
    } else {
        runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    }
}

/// Borrow the client behind a pointer.
///
/// # Safety
/// `c` must be NULL or a live pointer from `mc_client_open`.
pub(crate) unsafe fn client_arg<'a>(c: *const mc_client) -> Result<&'a mc_client, FfiError> {
    if c.is_null() {
        return Err(FfiError::new(
            crate::status::MC_E_NULL_POINTER,
            "'client' must not be NULL",
        ));
    }
    // SAFETY: non-null and live per the contract.
    Ok(unsafe { &*c })
}

/// Open a client on a token store.
///
/// `options_json`: `{"store": PATH, "key": {"file": PATH} | {"base64": KEY}, "language": "en"|"de",
/// "log_level": "info", "proxy": URL, "no_proxy": bool, "extra_ca_file": PATH, "http_timeout_secs": N}`
/// (README, "Client options"). The store and its key file are created when missing.
///
/// # Ownership
/// on success `*out` owns a new client; release it with `mc_client_free`.
///
/// # Threads
/// any thread. The client may be used from several threads at once.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_INVALID_UTF8`, `MC_E_INVALID_ARGUMENT` (bad JSON; the
/// diagnostic names the field), `MC_E_STORE` (cannot create or open the store, wrong key).
///
/// # Safety
/// `options_json` must be a NUL-terminated string; `out` a writable pointer.
#[no_mangle]
pub unsafe extern "C" fn mc_client_open(
    options_json: *const c_char,
    out: *mut *mut mc_client,
) -> i32 {
    call(|| {
        out_arg(out, "out")?;
        // SAFETY: checked for NULL; NUL-terminated per the contract.
        let json = unsafe { str_arg(options_json, "options_json")? };
        let options = ClientOptions::from_json(json)?;
        mc_client::boxed(out, Client::open, options)?;
        Ok(())
    })
}

/// Close a client. NULL is allowed.
///
/// Calls in progress on other threads are cancelled (they return `MC_E_CANCELLED`); this function
/// waits until they have returned, then stops the runtime and frees the client.
///
/// # Ownership
/// takes ownership of `client`; do not use it afterwards (nor start new calls on it
/// from other threads once this function has been called).
///
/// # Threads
/// any thread except a mailconnect callback thread.
///
/// # Safety
/// `client` must be NULL or a pointer from `mc_client_open` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn mc_client_free(client: *mut mc_client) {
    call_void(|| {
        if !client.is_null() {
            // SAFETY: from `mc_client_open`, still live, freed once (contract).
            unsafe { mc_client::close(client) }
        }
    });
}

/// Insert or update an account (JSON, README "Accounts and registrations"). `registration` may be
/// an id or an inline registration object, which is stored too. Validated before anything is written.
///
/// # Ownership
/// nothing is kept from the argument.
///
/// # Threads
/// any thread.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_INVALID_UTF8`, `MC_E_INVALID_ARGUMENT` (the diagnostic's
/// `evidence.field` names the field), `MC_E_STORE`.
///
/// # Safety
/// `client` from `mc_client_open`; `account_json` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mc_account_put(
    client: *mut mc_client,
    account_json: *const c_char,
) -> i32 {
    call(|| {
        // SAFETY: contract of this export.
        let (c, json) = unsafe { (client_arg(client)?, str_arg(account_json, "account_json")?) };
        c.client.put_account_json(json)?;
        Ok(())
    })
}

/// The account as JSON.
///
/// # Ownership
/// on success `*out_json` is a new string; free it with `mc_string_free`.
///
/// # Threads
/// any thread.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_INVALID_UTF8`, `MC_E_NOT_FOUND`, `MC_E_STORE`.
///
/// # Safety
/// `client` from `mc_client_open`; `account_id` NUL-terminated; `out_json` writable.
#[no_mangle]
pub unsafe extern "C" fn mc_account_get(
    client: *mut mc_client,
    account_id: *const c_char,
    out_json: *mut *mut c_char,
) -> i32 {
    call(|| {
        out_arg(out_json, "out_json")?;
        // SAFETY: contract of this export.
        let (c, id) = unsafe { (client_arg(client)?, id_arg(account_id, "account_id")?) };
        // SAFETY: checked writable above.
        unsafe { give_json(out_json, &c.client.account(id)?) }
    })
}

/// All accounts as a JSON array.
///
/// # Ownership
/// `*out_json` is a new string; free it with `mc_string_free`.
///
/// # Threads
/// any thread.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_STORE`.
///
/// # Safety
/// `client` from `mc_client_open`; `out_json` writable.
#[no_mangle]
pub unsafe extern "C" fn mc_account_list(
    client: *mut mc_client,
    out_json: *mut *mut c_char,
) -> i32 {
    call(|| {
        out_arg(out_json, "out_json")?;
        // SAFETY: contract of this export.
        let c = unsafe { client_arg(client)? };
        // SAFETY: checked writable above.
        unsafe { give_json(out_json, &c.client.accounts()?) }
    })
}

/// Remove an account and its tokens.
///
/// # Threads
/// any thread.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_INVALID_UTF8`, `MC_E_NOT_FOUND`, `MC_E_STORE`.
///
/// # Safety
/// `client` from `mc_client_open`; `account_id` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mc_account_remove(
    client: *mut mc_client,
    account_id: *const c_char,
) -> i32 {
    call(|| {
        // SAFETY: contract of this export.
        let (c, id) = unsafe { (client_arg(client)?, id_arg(account_id, "account_id")?) };
        c.client.remove_account(id)?;
        Ok(())
    })
}

/// Insert or update an app registration (JSON). A registration put without `client_secret`
/// keeps a stored secret. Secrets are stored encrypted and never returned.
///
/// # Threads
/// any thread.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_INVALID_UTF8`, `MC_E_INVALID_ARGUMENT`, `MC_E_STORE`.
///
/// # Safety
/// `client` from `mc_client_open`; `registration_json` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mc_registration_put(
    client: *mut mc_client,
    registration_json: *const c_char,
) -> i32 {
    call(|| {
        // SAFETY: contract of this export.
        let (c, json) = unsafe {
            (
                client_arg(client)?,
                str_arg(registration_json, "registration_json")?,
            )
        };
        c.client.put_registration_json(json)?;
        Ok(())
    })
}

/// One app registration as JSON (the secret is shown as `has_client_secret` only).
///
/// # Ownership
/// on success `*out_json` is a new string; free it with `mc_string_free`.
///
/// # Threads
/// any thread.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_INVALID_UTF8`, `MC_E_NOT_FOUND`, `MC_E_STORE`.
///
/// # Safety
/// `client` from `mc_client_open`; `registration_id` NUL-terminated; `out_json` writable.
#[no_mangle]
pub unsafe extern "C" fn mc_registration_get(
    client: *mut mc_client,
    registration_id: *const c_char,
    out_json: *mut *mut c_char,
) -> i32 {
    call(|| {
        out_arg(out_json, "out_json")?;
        // SAFETY: contract of this export.
        let (c, id) = unsafe {
            (
                client_arg(client)?,
                id_arg(registration_id, "registration_id")?,
            )
        };
        // SAFETY: checked writable above.
        unsafe { give_json(out_json, &c.client.registration(id)?) }
    })
}

/// All registrations as a JSON array (secrets are shown as `has_client_secret` only).
///
/// # Ownership
/// `*out_json` is a new string; free it with `mc_string_free`.
///
/// # Threads
/// any thread.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_STORE`.
///
/// # Safety
/// `client` from `mc_client_open`; `out_json` writable.
#[no_mangle]
pub unsafe extern "C" fn mc_registration_list(
    client: *mut mc_client,
    out_json: *mut *mut c_char,
) -> i32 {
    call(|| {
        out_arg(out_json, "out_json")?;
        // SAFETY: contract of this export.
        let c = unsafe { client_arg(client)? };
        // SAFETY: checked writable above.
        unsafe { give_json(out_json, &c.client.registrations()?) }
    })
}

/// Remove a registration (refused with `MC_E_STATE` while accounts use it).
///
/// # Threads
/// any thread.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_INVALID_UTF8`, `MC_E_NOT_FOUND`, `MC_E_STATE`, `MC_E_STORE`.
///
/// # Safety
/// `client` from `mc_client_open`; `registration_id` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mc_registration_remove(
    client: *mut mc_client,
    registration_id: *const c_char,
) -> i32 {
    call(|| {
        // SAFETY: contract of this export.
        let (c, id) = unsafe {
            (
                client_arg(client)?,
                id_arg(registration_id, "registration_id")?,
            )
        };
        c.client.remove_registration(id)?;
        Ok(())
    })
}

/// Store the proxy every connection takes (identity provider, Microsoft Graph, IMAP, POP3,
/// SMTP), sealed in the store with its password like a client secret, and use it at once.
///
/// `proxy` is what the `proxy` option of `mc_client_open` takes: a URL (`http://host:3128`,
/// `http://user:password@host:3128`, `socks5://…`, `socks5h://…` for names resolved by the proxy),
/// `direct` (no proxy, whatever the environment says), or a JSON object with `url`, per-protocol
/// `https`, `imap`, `pop3`, `smtp` (each a URL or `direct`), `username`, `password` and
/// `no_proxy` (host names, `.domain` suffixes, addresses and CIDR ranges). NULL removes the
/// stored setting.
///
/// Precedence when a client opens: the `no_proxy` option, the `proxy` option, this stored
/// setting, the environment (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`), the system settings
/// (Windows, HTTPS only). A call here changes this client at once whatever it was opened with,
/// and every client opened later on the same store without `proxy`/`no_proxy` options (the
/// service beside the program, say). Idle mail sessions are closed so none keeps the old path.
///
/// # Threads
/// any thread but a mailconnect callback thread; blocks while the store is written.
///
/// # Errors
/// `MC_E_NULL_POINTER` (`client`), `MC_E_INVALID_UTF8`, `MC_E_INVALID_ARGUMENT` (not a proxy
/// URL or object; the message never repeats a password), `MC_E_STORE`. On an error nothing is
/// stored and the client keeps its path.
///
/// # Safety
/// `client` from `mc_client_open`; `proxy` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mc_proxy_set(client: *mut mc_client, proxy: *const c_char) -> i32 {
    call(|| {
        // SAFETY: contract of this export.
        let c = unsafe { client_arg(client)? };
        let text = if proxy.is_null() {
            None
        } else {
            // SAFETY: contract of this export.
            Some(unsafe { str_arg(proxy, "proxy")? })
        };
        c.run(std::ptr::null(), async |_| c.client.set_proxy(text).await)?;
        Ok(())
    })
}

/// The proxy settings as JSON: `source` (where the proxy of this client comes from:
/// `no_proxy_option`, `option`, `stored`, `environment`), `stored` (the stored setting as set with
/// `mc_proxy_set`, every password removed and `has_password` saying whether it has one; `null`
/// when none), `environment` (whether proxy variables are set). The path each connection takes is
/// in `mc_account_test`'s report (`path`).
///
/// # Ownership
/// on success `*out_json` is a new string; free it with `mc_string_free`.
///
/// # Threads
/// any thread but a mailconnect callback thread.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_STORE` (the stored setting cannot be opened: another key).
///
/// # Safety
/// `client` from `mc_client_open`; `out_json` writable.
#[no_mangle]
pub unsafe extern "C" fn mc_proxy_get(client: *mut mc_client, out_json: *mut *mut c_char) -> i32 {
    call(|| {
        out_arg(out_json, "out_json")?;
        // SAFETY: contract of this export.
        let c = unsafe { client_arg(client)? };
        let info = c.run(std::ptr::null(), async |_| c.client.proxy_info().await)?;
        // SAFETY: checked writable above.
        unsafe { give_json(out_json, &info) }
    })
}

/// The status of an account as JSON (README, "Status"). Never contacts a server.
///
/// # Ownership
/// `*out_json` is a new string; free it with `mc_string_free`.
///
/// # Threads
/// any thread.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_INVALID_UTF8`, `MC_E_NOT_FOUND`, `MC_E_STORE`.
///
/// # Safety
/// `client` from `mc_client_open`; `account_id` NUL-terminated; `out_json` writable.
#[no_mangle]
pub unsafe extern "C" fn mc_account_status_get(
    client: *mut mc_client,
    account_id: *const c_char,
    out_json: *mut *mut c_char,
) -> i32 {
    call(|| {
        out_arg(out_json, "out_json")?;
        // SAFETY: contract of this export.
        let (c, id) = unsafe { (client_arg(client)?, id_arg(account_id, "account_id")?) };
        // SAFETY: checked writable above.
        unsafe { give_json(out_json, &c.client.status(id)?) }
    })
}
