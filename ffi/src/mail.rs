//! Tokens for hosts with their own mail code, and sending and fetching mail.

use std::ffi::c_char;

use mailconnect_core::compose::MessageSpec;
use mailconnect_core::mail::FetchRequest;
use mailconnect_core::model::parse_json;
use mailconnect_core::Resource;
use secrecy::ExposeSecret;

use crate::cancel::mc_cancel;
use crate::client::{client_arg, mc_client};
use crate::guard::{
    bytes_arg, call, give_json, give_optional, give_secret_str, give_string, id_arg, opt_json_arg,
    opt_out_arg, out_arg, str_arg,
};

/// What [`secret_out`] hands out.
enum Secret {
    /// An access token for the resource.
    Token(Resource),
    /// The SASL XOAUTH2 string of the mail token.
    Sasl,
}

/// Shared body of `mc_token_get`, `mc_graph_token_get` and `mc_sasl_xoauth2_get`: a fresh
/// token, or its SASL string.
///
/// # Safety
/// As those exports.
unsafe fn secret_out(
    client: *mut mc_client,
    account_id: *const c_char,
    cancel: *mut mc_cancel,
    out: *mut *mut c_char,
    out_name: &str,
    what: Secret,
) -> i32 {
    call(|| {
        out_arg(out, out_name)?;
        // SAFETY: contract of the calling export.
        let (cl, id) = unsafe { (client_arg(client)?, id_arg(account_id, "account_id")?) };
        // A token in memory that is still what the store holds: no runtime hop, no store read.
        let hit = cl.fast(|c| match what {
            Secret::Token(r) => c.cached_token(id, r, |t| {
                // SAFETY: checked writable.
                unsafe { give_secret_str(out, t.token.expose_secret()) }
            }),
            Secret::Sasl => c.cached_token(id, Resource::Mail, |t| {
                let s = mailconnect_core::transport::sasl::xoauth2(t.user, t.token);
                // SAFETY: checked writable.
                unsafe { give_secret_str(out, s.expose_secret()) }
            }),
        });
        if let Some(given) = hit {
            return given;
        }
        let secret = cl.run(cancel, async |t| match what {
            Secret::Sasl => cl.client.sasl_xoauth2(id, t).await,
            Secret::Token(r) => Ok(cl.client.access_token_for(id, r, t).await?.token),
        })?;
        // SAFETY: checked writable.
        unsafe { give_string(out, secret.expose_secret().to_string()) }
    })
}

/// A valid access token for the account, refreshed ahead of expiry (single-flight across threads
/// and processes sharing the store). One token serves IMAP, POP3 and SMTP. `cancel` ends a
/// refresh in progress (`MC_E_CANCELLED`; the stored tokens stay as they were).
///
/// With a SQLite store a token the client holds in memory is answered on the calling thread without
/// touching the store (under a microsecond) while the store's change counter (`<store>.gen`) says no
/// process changed the account's tokens since; so asking before every use is cheap, and another
/// process's refresh or disconnect is seen by the very next call.
///
/// # Ownership
/// `*out_token` is a new string holding a secret; free it with `mc_string_free`, which
/// overwrites it. Never log it.
///
/// # Threads
/// any thread except a mailconnect callback thread.
///
/// # Errors
/// `MC_E_NOT_FOUND`, `MC_E_STATE` (not connected), `MC_E_REAUTHORIZATION_REQUIRED` (the
/// diagnostic says why), `MC_E_PROVIDER_CONFIGURATION`, `MC_E_NETWORK`, `MC_E_TLS`,
/// `MC_E_PROVIDER_UNAVAILABLE`, `MC_E_TIMEOUT`, `MC_E_STORE`, `MC_E_CANCELLED`.
///
/// # Safety
/// `client` from `mc_client_open`; `account_id` NUL-terminated; `cancel` NULL or from
/// `mc_cancel_new`; `out_token` writable.
#[no_mangle]
pub unsafe extern "C" fn mc_token_get(
    client: *mut mc_client,
    account_id: *const c_char,
    cancel: *mut mc_cancel,
    out_token: *mut *mut c_char,
) -> i32 {
    // SAFETY: forwarded contract of this export.
    unsafe {
        secret_out(
            client,
            account_id,
            cancel,
            out_token,
            "out_token",
            Secret::Token(Resource::Mail),
        )
    }
}

/// The ready SASL XOAUTH2 initial response (base64 of `user=<mailbox>^Aauth=Bearer <token>^A^A`)
/// for the account's mailbox, for hosts that speak IMAP, POP3 or SMTP themselves.
///
/// # Ownership
/// `*out_base64` is a new secret string; free it with `mc_string_free`.
///
/// # Threads
/// As `mc_token_get`.
///
/// # Errors
/// As `mc_token_get`.
///
/// # Safety
/// `client` from `mc_client_open`; `account_id` NUL-terminated; `cancel` NULL or from
/// `mc_cancel_new`; `out_base64` writable.
#[no_mangle]
pub unsafe extern "C" fn mc_sasl_xoauth2_get(
    client: *mut mc_client,
    account_id: *const c_char,
    cancel: *mut mc_cancel,
    out_base64: *mut *mut c_char,
) -> i32 {
    // SAFETY: forwarded contract of this export.
    unsafe {
        secret_out(
            client,
            account_id,
            cancel,
            out_base64,
            "out_base64",
            Secret::Sasl,
        )
    }
}

/// A valid Microsoft Graph access token for the account (audience `https://graph.microsoft.com`),
/// for hosts that call Graph themselves. Minted from the account's refresh token (refresh tokens
/// are not bound to a resource), cached and refreshed like the mail token; for an account with
/// `"transport": "graph"` the same token as `mc_token_get`. Microsoft registrations only.
///
/// # Ownership
/// `*out_token` is a new secret string; free it with `mc_string_free`. Never log it.
///
/// # Threads
/// any thread except a mailconnect callback thread.
///
/// # Errors
/// As `mc_token_get`, plus `MC_E_INVALID_ARGUMENT` for a registration that is not Microsoft's
/// and `MC_E_REAUTHORIZATION_REQUIRED` / `MC_E_PROVIDER_CONFIGURATION` when consent for Graph's
/// `Mail.Send`/`Mail.ReadWrite` is missing (the diagnostic says which; connect again).
///
/// # Safety
/// `client` from `mc_client_open`; `account_id` NUL-terminated; `cancel` NULL or from
/// `mc_cancel_new`; `out_token` writable.
#[no_mangle]
pub unsafe extern "C" fn mc_graph_token_get(
    client: *mut mc_client,
    account_id: *const c_char,
    cancel: *mut mc_cancel,
    out_token: *mut *mut c_char,
) -> i32 {
    let what = Secret::Token(Resource::Graph);
    // SAFETY: forwarded contract of this export.
    unsafe { secret_out(client, account_id, cancel, out_token, "out_token", what) }
}

/// Build a message from JSON and send it over the account's transport (SMTP, Microsoft Graph,
/// or `auto`). `message_json`: `{"from", "to": [...], "cc", "bcc", "reply_to", "subject",
/// "text", "html", "attachments": [{"path" | "content_base64", "file_name", "content_type",
/// "content_id"}], "headers": [{"name", "value"}], "importance": "low|normal|high",
/// "read_receipt": bool}`; an address is `"a@example.com"` or `{"name", "address"}`. Non-ASCII
/// subjects, names and file names are encoded as mail needs. Sent at most once.
///
/// # Ownership
/// `*out_result_json` (if `out_result_json` is not NULL) is `{"transport": "smtp|graph",
/// "message_id", "reply", "size"}`; free it with `mc_string_free`. Attachment files are read
/// during the call only.
///
/// # Threads
/// any thread except a mailconnect callback thread.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_INVALID_UTF8`, `MC_E_INVALID_ARGUMENT` (the diagnostic's
/// `evidence.field` names the field: no recipients, a bad address, an unreadable attachment),
/// and those of `mc_mail_send`; over Graph also `MC_E_PROVIDER_CONFIGURATION` (a permission or
/// the application access policy). An answer lost after the message was handed over says the
/// message may have been sent (`MC-GRAPH-SEND-UNCERTAIN` over Graph).
///
/// # Safety
/// `client` from `mc_client_open`; strings NUL-terminated; `cancel` NULL or from
/// `mc_cancel_new`; `out_result_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mc_message_send(
    client: *mut mc_client,
    account_id: *const c_char,
    message_json: *const c_char,
    cancel: *mut mc_cancel,
    out_result_json: *mut *mut c_char,
) -> i32 {
    call(|| {
        opt_out_arg(out_result_json);
        // SAFETY: contract of this export.
        let (cl, id) = unsafe { (client_arg(client)?, id_arg(account_id, "account_id")?) };
        // SAFETY: NUL-terminated per the contract.
        let json = unsafe { str_arg(message_json, "message_json")? };
        let spec: MessageSpec = parse_json("message", json)?;
        let sent = cl.run(cancel, async |t| {
            cl.client.send_message(id, &spec, None, t).await
        })?;
        // SAFETY: NULL or writable (contract).
        unsafe { give_optional(out_result_json, &sent) }
    })
}

/// Send a raw RFC 5322 message over SMTP. The envelope comes from the header (`Sender`/`From`,
/// `To`/`Cc`/`Bcc`; `Bcc` is removed from what is sent).
///
/// # Ownership
/// the bytes are read during the call only.
///
/// # Threads
/// any thread except a mailconnect callback thread.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_INVALID_ARGUMENT` (no recipients, unreadable header),
/// `MC_E_STATE` (no SMTP server, not connected), `MC_E_REAUTHORIZATION_REQUIRED`, `MC_E_MAIL_SERVER`
/// (the reply is in the diagnostic), `MC_E_NETWORK`, `MC_E_TLS`, `MC_E_TIMEOUT`, `MC_E_CANCELLED`.
/// A timeout after the data was sent means the server may or may not have accepted the message.
///
/// # Safety
/// `rfc5322` must point to `len` readable bytes (may be NULL only when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn mc_mail_send(
    client: *mut mc_client,
    account_id: *const c_char,
    rfc5322: *const u8,
    len: usize,
    cancel: *mut mc_cancel,
) -> i32 {
    call(|| {
        // SAFETY: contract of this export.
        let (cl, id) = unsafe { (client_arg(client)?, id_arg(account_id, "account_id")?) };
        // SAFETY: NULL only when `len` is 0, else `len` readable bytes (contract).
        let bytes = unsafe { bytes_arg(rfc5322, len, "'rfc5322' must not be NULL")? };
        cl.run(cancel, async |t| cl.client.send(id, bytes, None, t).await)?;
        Ok(())
    })
}

/// The account's IMAP folders as JSON: `[{"name","delimiter","special_use":"inbox|sent|drafts|junk|trash|archive|all|flagged","selectable"}]`.
///
/// # Ownership
/// `*out_json` is a new string; free it with `mc_string_free`.
///
/// # Threads
/// Any thread except a mailconnect callback thread.
///
/// # Errors
/// As `mc_mail_send`, without the errors about the message.
///
/// # Safety
/// `client` from `mc_client_open`; `account_id` NUL-terminated; `cancel` NULL or from
/// `mc_cancel_new`; `out_json` writable.
#[no_mangle]
pub unsafe extern "C" fn mc_folder_list(
    client: *mut mc_client,
    account_id: *const c_char,
    cancel: *mut mc_cancel,
    out_json: *mut *mut c_char,
) -> i32 {
    call(|| {
        out_arg(out_json, "out_json")?;
        // SAFETY: contract of this export.
        let (cl, id) = unsafe { (client_arg(client)?, id_arg(account_id, "account_id")?) };
        let folders = cl.run(cancel, async |t| cl.client.list_folders(id, t).await)?;
        // SAFETY: checked writable above.
        unsafe { give_json(out_json, &folders) }
    })
}

/// Fetch messages. `query_json` (may be NULL for the defaults): `{"protocol":"imap"|"pop3",
/// "folder":"INBOX","uid_from":N,"uid_to":N,"since":"YYYY-MM-DD","headers_only":bool,"limit":N,
/// "mark_seen":bool,"unread_only":bool,"connections":N}`. The result is a JSON array of
/// `{"id","size","flags","internal_date","raw"}` with `raw` the message (or header) in base64.
/// POP3 honours the account's leave-on-server and ignore-older-than options. `connections` (IMAP,
/// 1 to 4, default 1): a fetch of at least 1,000 messages is split into that many runs of UIDs,
/// each read on its own session at the same time; the result is the same as with one (faster
/// only where the server serves sessions in parallel: docs/integration.md).
///
/// # Ownership
/// `*out_json` is a new string; free it with `mc_string_free`.
///
/// # Threads
/// Any thread except a mailconnect callback thread.
///
/// # Errors
/// As `mc_folder_list`, plus `MC_E_INVALID_ARGUMENT` for a bad query.
///
/// # Safety
/// as `mc_folder_list`; `query_json` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mc_mail_fetch(
    client: *mut mc_client,
    account_id: *const c_char,
    query_json: *const c_char,
    cancel: *mut mc_cancel,
    out_json: *mut *mut c_char,
) -> i32 {
    call(|| {
        out_arg(out_json, "out_json")?;
        // SAFETY: contract of this export.
        let (cl, id) = unsafe { (client_arg(client)?, id_arg(account_id, "account_id")?) };
        let parse = |q: &str| parse_json::<FetchRequest>("fetch query", q);
        // SAFETY: NULL or NUL-terminated (contract).
        let req = unsafe { opt_json_arg(query_json, "query_json", parse)? };
        let msgs = cl.run(cancel, async |t| cl.client.fetch(id, &req, t).await)?;
        // SAFETY: checked writable above.
        unsafe { give_json(out_json, &msgs) }
    })
}
