//! The C++ bridge (feature `cxx`): the same exports as the C ABI, called through cxx so a C++
//! program links this one Rust library. Every method goes through the `mc_*` functions, so C++
//! gets exactly the C ABI's behaviour; failures become C++ exceptions whose text is
//! `CODE \x1f STATUS \x1f message \x1f diagnostic JSON` (bindings/cpp/include/mailconnect.hpp parses it).

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::null_mut;

use crate::*;

#[cxx::bridge(namespace = "mailconnect::ffi")]
mod bridge {
    /// `mc_authorization_begin`'s answer; fields of the other flow are empty.
    struct Authorization {
        handle: String,
        account_id: String,
        flow: String,
        url: String,
        redirect_uri: String,
        loopback: bool,
        user_code: String,
        verification_uri: String,
        verification_uri_complete: String,
        message: String,
        interval_secs: u64,
        expires_at: String,
        expires_in_secs: u64,
        json: String,
    }

    /// `mc_authorization_poll`'s answer.
    struct PollResult {
        connected: bool,
        retry_after_ms: u64,
        /// The status JSON when connected.
        status: String,
    }

    /// One event of `mc_events_next`; fields of other types are empty or 0.
    struct Event {
        seq: u64,
        time: String,
        /// The event's `type`.
        kind: String,
        account_id: String,
        stage: String,
        from: String,
        to: String,
        reason: String,
        /// The diagnostic JSON (`needs_reauthorization`).
        diagnostic: String,
        expires_at: String,
        level: String,
        target: String,
        message: String,
        count: u64,
        json: String,
    }

    unsafe extern "C++" {
        include!("mailconnect-ffi/cpp/events.h");
        type Events;
        fn device_code(self: &Events, code: &str, uri: &str, message: &str);
        fn open_url(self: &Events, url: &str) -> bool;
        fn progress(self: &Events, stage: &str);
    }

    extern "Rust" {
        type CxxClient;
        fn abi_version() -> u32;
        fn client_open(options_json: &str) -> Result<Box<CxxClient>>;
        fn put_registration(self: &CxxClient, json: &str) -> Result<()>;
        fn put_account(self: &CxxClient, json: &str) -> Result<()>;
        fn status(self: &CxxClient, account_id: &str) -> Result<String>;
        fn connect(self: &CxxClient, account_id: &str, events: &Events) -> Result<()>;
        fn disconnect(self: &CxxClient, account_id: &str) -> Result<()>;
        fn test(self: &CxxClient, account_id: &str, protocols: u32) -> Result<String>;
        fn access_token(self: &CxxClient, account_id: &str) -> Result<String>;
        fn sasl_xoauth2(self: &CxxClient, account_id: &str) -> Result<String>;
        fn send(self: &CxxClient, account_id: &str, message: &[u8]) -> Result<()>;
        fn fetch(self: &CxxClient, account_id: &str, query_json: &str) -> Result<String>;
        fn folders(self: &CxxClient, account_id: &str) -> Result<String>;

        type CxxCancel;
        fn cancel_new() -> Result<Box<CxxCancel>>;
        fn trigger(self: &CxxCancel);

        fn authorization_begin(
            self: &CxxClient,
            account_id: &str,
            flow: &str,
            redirect_uri: &str,
        ) -> Result<Authorization>;
        fn authorization_complete(
            self: &CxxClient,
            handle: &str,
            redirect: &str,
            cancel: &CxxCancel,
        ) -> Result<String>;
        fn authorization_poll(
            self: &CxxClient,
            handle: &str,
            cancel: &CxxCancel,
        ) -> Result<PollResult>;
        fn authorization_wait(self: &CxxClient, handle: &str, cancel: &CxxCancel)
            -> Result<String>;
        fn authorization_abort(self: &CxxClient, handle: &str) -> Result<()>;
        fn events_configure(self: &CxxClient, options_json: &str) -> Result<()>;
        fn next_event(self: &CxxClient, timeout_ms: i32, out: &mut Event) -> Result<bool>;
    }
}

use bridge::{Authorization, Event, Events, PollResult};

/// A cancellation token for C++ (owns an `mc_cancel`).
pub struct CxxCancel {
    raw: *mut mc_cancel,
}

// SAFETY: mc_cancel may be triggered from any thread (C ABI).
unsafe impl Send for CxxCancel {}
unsafe impl Sync for CxxCancel {}

impl Drop for CxxCancel {
    fn drop(&mut self) {
        // SAFETY: `raw` came from mc_cancel_new and is freed once.
        unsafe { mc_cancel_free(self.raw) };
    }
}

fn cancel_new() -> Result<Box<CxxCancel>, String> {
    let mut raw = null_mut();
    // SAFETY: valid out pointer.
    check(unsafe { mc_cancel_new(&mut raw) })?;
    Ok(Box::new(CxxCancel { raw }))
}

impl CxxCancel {
    fn trigger(&self) {
        // SAFETY: a live mc_cancel.
        unsafe { mc_cancel_trigger(self.raw) }
    }
}

/// A JSON answer of the C ABI, read back.
fn parse(json: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(json).map_err(|e| {
        format!("-99\u{1f}MC_E_INTERNAL\u{1f}unreadable JSON from mailconnect: {e}\u{1f}{{}}")
    })
}

fn text(v: &serde_json::Value, key: &str) -> String {
    match &v[key] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn number(v: &serde_json::Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

/// A client for C++ (owns an `mc_client`).
pub struct CxxClient {
    raw: *mut mc_client,
}

// SAFETY: mc_client is thread-safe (C ABI rule 6).
unsafe impl Send for CxxClient {}
unsafe impl Sync for CxxClient {}

impl Drop for CxxClient {
    fn drop(&mut self) {
        // SAFETY: `raw` came from mc_client_open and is freed once.
        unsafe { mc_client_free(self.raw) };
    }
}

fn last_error(rc: i32) -> String {
    // SAFETY: borrowed strings valid until the next call on this thread.
    unsafe {
        format!(
            "{rc}\u{1f}{}\u{1f}{}\u{1f}{}",
            CStr::from_ptr(mc_result_name_get(rc)).to_string_lossy(),
            CStr::from_ptr(mc_error_message_get()).to_string_lossy(),
            CStr::from_ptr(mc_error_diagnostic_get()).to_string_lossy()
        )
    }
}

fn check(rc: i32) -> Result<(), String> {
    if rc == MC_OK {
        Ok(())
    } else {
        Err(last_error(rc))
    }
}

fn c(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| {
        "-1\u{1f}MC_E_INVALID_ARGUMENT\u{1f}a string contains a NUL byte\u{1f}{}".to_string()
    })
}

fn take(p: *mut c_char) -> String {
    // SAFETY: an owned string from the library, freed once.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    unsafe { mc_string_free(p) };
    s
}

fn abi_version() -> u32 {
    mc_abi_version_get()
}

fn client_open(options_json: &str) -> Result<Box<CxxClient>, String> {
    let o = c(options_json)?;
    let mut raw = null_mut();
    // SAFETY: valid C string and out pointer.
    check(unsafe { mc_client_open(o.as_ptr(), &mut raw) })?;
    Ok(Box::new(CxxClient { raw }))
}

unsafe extern "C" fn on_device_code(
    ud: *mut c_void,
    code: *const c_char,
    uri: *const c_char,
    msg: *const c_char,
) {
    // SAFETY: `ud` is the &Events passed to mc_account_connect, alive for the call; strings valid for the call.
    let ev = unsafe { &*(ud as *const Events) };
    let s = |p: *const c_char| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    ev.device_code(&s(code), &s(uri), &s(msg));
}

unsafe extern "C" fn on_open_url(ud: *mut c_void, url: *const c_char) -> i32 {
    // SAFETY: as above.
    let ev = unsafe { &*(ud as *const Events) };
    i32::from(ev.open_url(&unsafe { CStr::from_ptr(url) }.to_string_lossy()))
}

unsafe extern "C" fn on_progress(ud: *mut c_void, stage: *const c_char) {
    // SAFETY: as above.
    let ev = unsafe { &*(ud as *const Events) };
    ev.progress(&unsafe { CStr::from_ptr(stage) }.to_string_lossy());
}

impl CxxClient {
    fn put_registration(&self, json: &str) -> Result<(), String> {
        let j = c(json)?;
        check(unsafe { mc_registration_put(self.raw, j.as_ptr()) })
    }

    fn put_account(&self, json: &str) -> Result<(), String> {
        let j = c(json)?;
        check(unsafe { mc_account_put(self.raw, j.as_ptr()) })
    }

    fn out(&self, f: impl FnOnce(*mut *mut c_char) -> i32) -> Result<String, String> {
        let mut p = null_mut();
        check(f(&mut p))?;
        Ok(take(p))
    }

    fn status(&self, account_id: &str) -> Result<String, String> {
        let id = c(account_id)?;
        self.out(|o| unsafe { mc_account_status_get(self.raw, id.as_ptr(), o) })
    }

    fn connect(&self, account_id: &str, events: &Events) -> Result<(), String> {
        let id = c(account_id)?;
        let cb = mc_connect_callbacks {
            version: MC_CONNECT_CALLBACKS_VERSION,
            user_data: events as *const Events as *mut c_void,
            on_open_url: Some(on_open_url),
            on_device_code: Some(on_device_code),
            on_progress: Some(on_progress),
        };
        check(unsafe { mc_account_connect(self.raw, id.as_ptr(), &cb, null_mut()) })
    }

    fn disconnect(&self, account_id: &str) -> Result<(), String> {
        let id = c(account_id)?;
        check(unsafe { mc_account_disconnect(self.raw, id.as_ptr(), null_mut()) })
    }

    fn test(&self, account_id: &str, protocols: u32) -> Result<String, String> {
        let id = c(account_id)?;
        self.out(|o| unsafe { mc_account_test(self.raw, id.as_ptr(), protocols, null_mut(), o) })
    }

    fn access_token(&self, account_id: &str) -> Result<String, String> {
        let id = c(account_id)?;
        self.out(|o| unsafe { mc_token_get(self.raw, id.as_ptr(), null_mut(), o) })
    }

    fn sasl_xoauth2(&self, account_id: &str) -> Result<String, String> {
        let id = c(account_id)?;
        self.out(|o| unsafe { mc_sasl_xoauth2_get(self.raw, id.as_ptr(), null_mut(), o) })
    }

    fn send(&self, account_id: &str, message: &[u8]) -> Result<(), String> {
        let id = c(account_id)?;
        check(unsafe {
            mc_mail_send(
                self.raw,
                id.as_ptr(),
                message.as_ptr(),
                message.len(),
                null_mut(),
            )
        })
    }

    fn fetch(&self, account_id: &str, query_json: &str) -> Result<String, String> {
        let (id, q) = (c(account_id)?, c(query_json)?);
        self.out(|o| unsafe { mc_mail_fetch(self.raw, id.as_ptr(), q.as_ptr(), null_mut(), o) })
    }

    fn folders(&self, account_id: &str) -> Result<String, String> {
        let id = c(account_id)?;
        self.out(|o| unsafe { mc_folder_list(self.raw, id.as_ptr(), null_mut(), o) })
    }

    fn authorization_begin(
        &self,
        account_id: &str,
        flow: &str,
        redirect_uri: &str,
    ) -> Result<Authorization, String> {
        let mut opts = serde_json::Map::new();
        if !flow.is_empty() {
            opts.insert("flow".into(), flow.into());
        }
        if !redirect_uri.is_empty() {
            opts.insert("redirect_uri".into(), redirect_uri.into());
        }
        let (id, o) = (
            c(account_id)?,
            c(&serde_json::Value::Object(opts).to_string())?,
        );
        let json = self.out(|out| unsafe {
            mc_authorization_begin(self.raw, id.as_ptr(), o.as_ptr(), null_mut(), out)
        })?;
        let v = parse(&json)?;
        Ok(Authorization {
            handle: text(&v, "handle"),
            account_id: text(&v, "account_id"),
            flow: text(&v, "flow"),
            url: text(&v, "url"),
            redirect_uri: text(&v, "redirect_uri"),
            loopback: v["loopback"].as_bool().unwrap_or(false),
            user_code: text(&v, "user_code"),
            verification_uri: text(&v, "verification_uri"),
            verification_uri_complete: text(&v, "verification_uri_complete"),
            message: text(&v, "message"),
            interval_secs: number(&v, "interval_secs"),
            expires_at: text(&v, "expires_at"),
            expires_in_secs: number(&v, "expires_in_secs"),
            json,
        })
    }

    fn authorization_complete(
        &self,
        handle: &str,
        redirect: &str,
        cancel: &CxxCancel,
    ) -> Result<String, String> {
        let (h, r) = (c(handle)?, c(redirect)?);
        self.out(|o| unsafe {
            mc_authorization_complete(self.raw, h.as_ptr(), r.as_ptr(), cancel.raw, o)
        })
    }

    fn authorization_poll(&self, handle: &str, cancel: &CxxCancel) -> Result<PollResult, String> {
        let h = c(handle)?;
        let json =
            self.out(|o| unsafe { mc_authorization_poll(self.raw, h.as_ptr(), cancel.raw, o) })?;
        let v = parse(&json)?;
        let connected = v["state"] == "connected";
        Ok(PollResult {
            connected,
            retry_after_ms: if connected {
                0
            } else {
                v["retry_after_ms"].as_u64().unwrap_or(1000)
            },
            status: if connected {
                v["status"].to_string()
            } else {
                String::new()
            },
        })
    }

    fn authorization_wait(&self, handle: &str, cancel: &CxxCancel) -> Result<String, String> {
        let h = c(handle)?;
        self.out(|o| unsafe { mc_authorization_wait(self.raw, h.as_ptr(), cancel.raw, o) })
    }

    fn authorization_abort(&self, handle: &str) -> Result<(), String> {
        let h = c(handle)?;
        check(unsafe { mc_authorization_abort(self.raw, h.as_ptr()) })
    }

    fn events_configure(&self, options_json: &str) -> Result<(), String> {
        let o = c(options_json)?;
        check(unsafe { mc_events_configure(self.raw, o.as_ptr()) })
    }

    fn next_event(&self, timeout_ms: i32, out: &mut Event) -> Result<bool, String> {
        let mut p = null_mut();
        check(unsafe { mc_events_next(self.raw, timeout_ms, &mut p) })?;
        if p.is_null() {
            return Ok(false);
        }
        let json = take(p);
        let v = parse(&json)?;
        *out = Event {
            seq: number(&v, "seq"),
            time: text(&v, "time"),
            kind: text(&v, "type"),
            account_id: text(&v, "account_id"),
            stage: text(&v, "stage"),
            from: text(&v, "from"),
            to: text(&v, "to"),
            reason: text(&v, "reason"),
            diagnostic: text(&v, "diagnostic"),
            expires_at: text(&v, "expires_at"),
            level: text(&v, "level"),
            target: text(&v, "target"),
            message: text(&v, "message"),
            count: number(&v, "count"),
            json,
        };
        Ok(true)
    }
}
