//! Documented behaviour of mc_client_free while another thread waits in mc_account_connect: the connect
//! returns MC_E_CANCELLED, the free waits for it, nothing crashes.

use std::ffi::{c_char, c_void, CString};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mailconnect::*;

static OPENED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn host_opens_url(_ud: *mut c_void, _url: *const c_char) -> i32 {
    OPENED.fetch_add(1, Ordering::SeqCst);
    1 // the host "shows" the page; nobody signs in
}

struct SendPtr(*mut mc_client);
unsafe impl Send for SendPtr {}

#[test]
fn freeing_the_client_cancels_a_waiting_connect_and_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let opts =
        CString::new(serde_json::json!({"store": dir.path().join("s.db")}).to_string()).unwrap();
    let mut c = null_mut();
    assert_eq!(unsafe { mc_client_open(opts.as_ptr(), &mut c) }, MC_OK);
    let reg = CString::new(r#"{"id":"r","provider":"microsoft","client_id":"c","authority_host":"http://127.0.0.1:9"}"#).unwrap();
    let acc =
        CString::new(r#"{"id":"a","mailbox":"alice@example.test","registration":"r"}"#).unwrap();
    unsafe {
        assert_eq!(mc_registration_put(c, reg.as_ptr()), MC_OK);
        assert_eq!(mc_account_put(c, acc.as_ptr()), MC_OK);
    }
    let p = SendPtr(c);
    let waiter = std::thread::spawn(move || {
        let p = p;
        let id = CString::new("a").unwrap();
        let cb = mc_connect_callbacks {
            version: MC_CONNECT_CALLBACKS_VERSION,
            user_data: null_mut(),
            on_open_url: Some(host_opens_url),
            on_device_code: None,
            on_progress: None,
        };
        let rc = unsafe { mc_account_connect(p.0, id.as_ptr(), &cb, null_mut()) };
        (
            rc,
            unsafe { std::ffi::CStr::from_ptr(mc_error_message_get()) }
                .to_string_lossy()
                .into_owned(),
        )
    });
    let started = Instant::now();
    while OPENED.load(Ordering::SeqCst) == 0 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        OPENED.load(Ordering::SeqCst),
        1,
        "the connect is waiting for the browser"
    );
    let freeing = Instant::now();
    unsafe { mc_client_free(c) };
    assert!(
        freeing.elapsed() < Duration::from_secs(5),
        "mc_client_free returned promptly"
    );
    let (rc, msg) = waiter.join().unwrap();
    assert_eq!(rc, MC_E_CANCELLED, "{msg}");
}

static OPENED2: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn host_opens_url2(_ud: *mut c_void, _url: *const c_char) -> i32 {
    OPENED2.fetch_add(1, Ordering::SeqCst);
    1
}

struct SendCancel(*mut mc_cancel);
unsafe impl Send for SendCancel {}

#[test]
fn a_cancel_triggered_during_a_call_ends_it_and_one_triggered_after_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let opts =
        CString::new(serde_json::json!({"store": dir.path().join("s.db")}).to_string()).unwrap();
    let mut c = null_mut();
    let mut cancel = null_mut();
    unsafe {
        assert_eq!(mc_client_open(opts.as_ptr(), &mut c), MC_OK);
        assert_eq!(mc_cancel_new(&mut cancel), MC_OK);
        let reg = CString::new(r#"{"id":"r","provider":"microsoft","client_id":"c","authority_host":"http://127.0.0.1:9"}"#).unwrap();
        let acc = CString::new(r#"{"id":"a","mailbox":"alice@example.test","registration":"r"}"#)
            .unwrap();
        assert_eq!(mc_registration_put(c, reg.as_ptr()), MC_OK);
        assert_eq!(mc_account_put(c, acc.as_ptr()), MC_OK);
    }
    let trigger = SendCancel(cancel);
    let canceller = std::thread::spawn(move || {
        let t = trigger;
        let started = Instant::now();
        while OPENED2.load(Ordering::SeqCst) == 0 && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        unsafe { mc_cancel_trigger(t.0) };
    });
    let id = CString::new("a").unwrap();
    let cb = mc_connect_callbacks {
        version: MC_CONNECT_CALLBACKS_VERSION,
        user_data: null_mut(),
        on_open_url: Some(host_opens_url2),
        on_device_code: None,
        on_progress: None,
    };
    let started = Instant::now();
    let rc = unsafe { mc_account_connect(c, id.as_ptr(), &cb, cancel) };
    canceller.join().unwrap();
    assert_eq!(rc, MC_E_CANCELLED);
    assert!(started.elapsed() < Duration::from_secs(10));
    unsafe {
        // After: a status call with no cancel works; triggering again and freeing is harmless.
        let mut out = null_mut();
        assert_eq!(mc_account_status_get(c, id.as_ptr(), &mut out), MC_OK);
        mc_string_free(out);
        mc_cancel_trigger(cancel);
        mc_cancel_free(cancel);
        mc_client_free(c);
    }
}
