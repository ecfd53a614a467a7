//! The C++ bridge (feature `cxx`): the exports of the C ABI, called through cxx so a C++ program
//! links this one Rust library. Every method goes through the `mc_*` functions, so C++ gets
//! exactly the C ABI's behaviour; the JSON those return is read here, once, into the shared
//! structs below, so C++ receives typed values and never parses JSON.
//!
//! Failures cross as a typed [`bridge::ErrorInfo`] out-parameter (code, name, message and the
//! parsed diagnostic) that every fallible function fills; no cxx exception is used, so nothing is
//! encoded into or parsed out of an exception's text. `bindings/cpp/include/mailconnect.hpp`
//! throws `mailconnect::Error` from it.
//!
//! The tenant setup reports (`admin_register`, `admin_check`) are the exception: they cross as
//! the C ABI's JSON, as the options they take do.
//!
//! Option-like values: a string that is absent is empty; an absent number is 0 unless its doc
//! says otherwise; an absent nested struct has `present == false`; lists are `Vec`.

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::null_mut;
use std::sync::{PoisonError, RwLock};

use cxx::UniquePtr;
use serde::de::{DeserializeOwned, Deserializer};
use serde::Deserialize;

use crate::status::FfiError;
use crate::*;

#[cxx::bridge(namespace = "mailconnect::ffi")]
mod bridge {
    /// The title, explanation and fix of a diagnostic in one language.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Texts {
        title: String,
        explanation: String,
        fix: String,
    }

    /// The provider's OAuth error response (Microsoft adds the AADSTS codes and support ids).
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct OAuthError {
        /// Whether the evidence has one.
        #[serde(skip_deserializing, default = "super::present")]
        present: bool,
        error: String,
        error_description: String,
        error_codes: Vec<i64>,
        suberror: String,
        timestamp: String,
        trace_id: String,
        correlation_id: String,
        error_uri: String,
    }

    /// The raw evidence behind an error, free of secrets.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Evidence {
        oauth: OAuthError,
        /// HTTP status of the response the error came from (0: none).
        http_status: u16,
        /// The server asked to wait this long (0: it did not say).
        retry_after_secs: u64,
        server_reply: String,
        sasl_challenge: String,
        /// The input field an invalid-argument error is about.
        field: String,
        reauth_reason: String,
        endpoint: String,
    }

    /// A diagnostic (`mc_error_diagnostic_get`): the catalog entry of the failure and its evidence.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Diagnostic {
        #[serde(skip_deserializing, default = "super::present")]
        present: bool,
        /// The stable catalog code (`MC-NOT-CONNECTED`, `MC-REFRESH-TOKEN-REVOKED`, ...).
        code: String,
        /// The status code's name (`MC_E_STATE`); empty in events and test reports.
        status: String,
        /// `configuration`, `consent`, `account`, `tenant_policy`, `network`, `server`, `local`.
        category: String,
        /// Who can fix it: `user`, `mailbox_admin`, `tenant_admin`, `vendor`.
        fixer: String,
        /// The error kind (`state`, `reauthorization_required`, ...).
        kind: String,
        message: String,
        evidence: Evidence,
        en: Texts,
        de: Texts,
        links: Vec<String>,
    }

    /// A failed call: `code` is the negative `MC_E_*` status (0: no failure).
    #[derive(Debug, Default)]
    struct ErrorInfo {
        code: i32,
        /// `MC_E_NOT_FOUND`, ...
        name: String,
        /// What was being done and why (English, no secrets).
        message: String,
        diagnostic: Diagnostic,
    }

    /// The state of an account. `Unknown`: a state this binding does not know yet.
    #[derive(Debug, Default)]
    enum AccountState {
        #[default]
        Unknown,
        NotConnected,
        Connected,
        NeedsReauthorization,
        Error,
    }

    /// Who signed in.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Identity {
        #[serde(skip_deserializing, default = "super::present")]
        present: bool,
        /// `preferred_username` (else `upn`, else `email`).
        username: String,
        name: String,
        /// Microsoft tenant id.
        tid: String,
        /// Microsoft object id.
        oid: String,
        /// Every name the account has in the token, lowercased.
        names: Vec<String>,
        sub: String,
    }

    /// Connected without a refresh token: when signing in again will be needed.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct ReauthorizationDue {
        #[serde(skip_deserializing, default = "super::present")]
        present: bool,
        /// When the access token expires (RFC 3339).
        #[serde(deserialize_with = "super::nullable")]
        at: String,
        /// The diagnostic code (`MC-NO-REFRESH-TOKEN`).
        code: String,
    }

    /// How an account's mail travels, and why (accounts that may use Microsoft Graph).
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct TransportStatus {
        #[serde(skip_deserializing, default = "super::present")]
        present: bool,
        /// The account's setting: `smtp_imap`, `graph` or `auto`.
        configured: String,
        /// How mail is sent now: `smtp` or `graph`.
        send: String,
        /// Why `auto` sends over Graph (`smtp_auth_disabled`), else empty.
        reason: String,
        /// Since when `auto` sends over Graph (RFC 3339), else empty.
        since: String,
    }

    /// The status of an account (`mc_account_status_get`). Never contacts a server.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Status {
        account_id: String,
        mailbox: String,
        #[serde(deserialize_with = "super::account_state")]
        state: AccountState,
        /// Why re-authorization is needed (`refresh_token_revoked`, ...).
        reason: String,
        /// The flow used (`browser`, `device_code`, `client_credentials`).
        flow: String,
        identity: Identity,
        scopes: Vec<String>,
        /// Access token expiry (RFC 3339).
        expires_at: String,
        /// Seconds until the access token expires (negative: expired; 0 without `expires_at`).
        expires_in_secs: i64,
        has_refresh_token: bool,
        connected_at: String,
        refreshed_at: String,
        /// The last refresh error.
        last_error: String,
        reauthorization_due: ReauthorizationDue,
        /// Whether the signed-in account was checked against the account's login (false also
        /// for app-only accounts, which have no user).
        identity_checked: bool,
        /// How mail travels (not `present` for accounts that cannot use Microsoft Graph).
        transport: TransportStatus,
    }

    /// An error in a test report.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct ErrorReport {
        #[serde(skip_deserializing, default = "super::present")]
        present: bool,
        /// The diagnostic catalog code.
        code: String,
        diagnostic: Diagnostic,
        kind: String,
        message: String,
        reauth_reason: String,
        server_reply: String,
        sasl_challenge: String,
        /// The AADSTS code (0: none).
        aadsts: i64,
        /// Who issued a certificate that was not trusted (a TLS-inspecting proxy's CA); empty if none.
        certificate_issuer: String,
    }

    /// The token phase of a test.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct TokenPhase {
        /// `fresh`, `refreshed`, `not_connected`, `needs_reauthorization` or `error`.
        status: String,
        expires_at: String,
        elapsed_ms: u64,
        error: ErrorReport,
    }

    /// Milliseconds per phase; -1: the phase was not reached.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Phases {
        #[serde(deserialize_with = "super::ms")]
        connect: i64,
        #[serde(deserialize_with = "super::ms")]
        tls: i64,
        #[serde(deserialize_with = "super::ms")]
        auth: i64,
        #[serde(deserialize_with = "super::ms")]
        check: i64,
    }

    /// One protocol's result in a test report.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct ProtocolResult {
        /// `imap`, `pop3`, `smtp`.
        protocol: String,
        host: String,
        port: u16,
        /// `tls`, `starttls`, `none`.
        security: String,
        /// The network path: `direct`, `http proxy HOST:PORT`, `socks5 proxy HOST:PORT`.
        path: String,
        ok: bool,
        tls_version: String,
        mechanisms_offered: Vec<String>,
        mechanism_used: String,
        retried_with_refreshed_token: bool,
        auth_attempts: u32,
        phases_ms: Phases,
        /// What the check found ("12 folders").
        detail: String,
        error: ErrorReport,
        elapsed_ms: u64,
    }

    /// The probe message of a test (`Protocol::SendProbe`).
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct ProbeResult {
        #[serde(skip_deserializing, default = "super::present")]
        present: bool,
        ok: bool,
        accepted: String,
        /// `imap`, `pop3` or `graph`.
        found_via: String,
        delivery_ms: u64,
        error: ErrorReport,
    }

    /// What the Graph check found out about the mailbox.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct GraphFound {
        #[serde(skip_deserializing, default = "super::present")]
        present: bool,
        /// `/me` or `/users/{mailbox}`.
        mailbox_path: String,
        /// Whether the Graph token tells its permissions (personal accounts' tokens do not);
        /// `permissions` and `can_send` are empty and false when it does not.
        #[serde(skip_deserializing)]
        permissions_known: bool,
        /// The permissions the Graph token carries (`Mail.Send`, ...).
        #[serde(deserialize_with = "super::nullable_list")]
        permissions: Vec<String>,
        /// Whether the token may send (`Mail.Send`).
        #[serde(deserialize_with = "super::nullable_bool")]
        can_send: bool,
        /// What the Inbox holds ("1204 messages, 3 unread").
        detail: String,
    }

    /// Milliseconds per Graph phase; -1: the phase was not reached.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct GraphPhases {
        /// Getting the Graph token.
        #[serde(deserialize_with = "super::ms")]
        token: i64,
        /// Reading the mailbox.
        #[serde(deserialize_with = "super::ms")]
        mailbox: i64,
    }

    /// The Microsoft Graph check of a test (accounts whose transport is `graph` or `auto`).
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct GraphResult {
        #[serde(skip_deserializing, default = "super::present")]
        present: bool,
        /// Whether Graph works for this mailbox.
        ok: bool,
        /// The Graph API base.
        endpoint: String,
        /// The network path of the Graph requests.
        path: String,
        found: GraphFound,
        phases_ms: GraphPhases,
        error: ErrorReport,
        elapsed_ms: u64,
    }

    /// The report of `mc_account_test` (schema 1).
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct TestReport {
        schema: u32,
        account_id: String,
        mailbox: String,
        /// Whether everything tested worked.
        ok: bool,
        token: TokenPhase,
        results: Vec<ProtocolResult>,
        /// Microsoft Graph (accounts whose transport is `graph` or `auto`).
        graph: GraphResult,
        /// How mail travels (accounts that may use Microsoft Graph).
        transport: TransportStatus,
        probe: ProbeResult,
        elapsed_ms: u64,
    }

    /// An IMAP folder.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Folder {
        name: String,
        delimiter: String,
        /// `inbox`, `sent`, `drafts`, `junk`, `trash`, `archive`, `all`, `flagged` or empty.
        special_use: String,
        selectable: bool,
    }

    /// A fetched message.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Message {
        /// IMAP UID (as text) or POP3 UIDL.
        id: String,
        /// Size in octets as the server reported it (0: not reported).
        size: u64,
        flags: Vec<String>,
        internal_date: String,
        /// The message (or its header), as the server sent it.
        #[serde(deserialize_with = "super::base64")]
        raw: Vec<u8>,
    }

    /// What `fetch` takes; zero and empty fields mean the default.
    #[derive(Debug, Default)]
    struct FetchRequest {
        /// `imap` (default) or `pop3`.
        protocol: String,
        /// IMAP folder (default INBOX).
        folder: String,
        uid_from: u32,
        uid_to: u32,
        /// `YYYY-MM-DD`.
        since: String,
        headers_only: bool,
        /// At most this many (the newest).
        limit: u64,
        /// Mark fetched messages as seen (IMAP) or read (Graph).
        mark_seen: bool,
        /// Only unread messages (IMAP, Graph).
        unread_only: bool,
        /// `graph` to read over Microsoft Graph, `smtp_imap` for IMAP or POP3 as `protocol`
        /// says; empty: the account's transport.
        transport: String,
    }

    /// A mail address; `name` empty: none (non-ASCII names are encoded as mail needs).
    #[derive(Debug, Default, Clone)]
    struct MailAddress {
        address: String,
        name: String,
    }

    /// An attachment: a file (`path`, read while sending) or bytes (`content`, when `path` is
    /// empty). `file_name`: what the recipient sees (empty: the file's name); `content_type`
    /// empty: `application/octet-stream`; with a `content_id` it is an inline part the HTML body
    /// shows as `cid:<content_id>`.
    #[derive(Debug, Default, Clone)]
    struct Attachment {
        path: String,
        content: Vec<u8>,
        file_name: String,
        content_type: String,
        content_id: String,
    }

    /// An extra header (`X-Invoice-Number: 42`).
    #[derive(Debug, Default, Clone)]
    struct MailHeader {
        name: String,
        value: String,
    }

    /// A message for `send_message`; mailconnect builds the MIME (non-ASCII subjects, names and
    /// file names encoded as mail needs). At least one recipient (`to`, `cc` or `bcc`).
    #[derive(Debug, Default, Clone)]
    struct MessageSpec {
        /// The sender; `address` empty: the account's mailbox.
        from: MailAddress,
        to: Vec<MailAddress>,
        cc: Vec<MailAddress>,
        bcc: Vec<MailAddress>,
        reply_to: Vec<MailAddress>,
        subject: String,
        /// The plain-text body (empty: none).
        text: String,
        /// The HTML body (empty: none).
        html: String,
        attachments: Vec<Attachment>,
        headers: Vec<MailHeader>,
        /// `low`, `normal` or `high` (empty: normal).
        importance: String,
        /// Ask for a read receipt (`Disposition-Notification-To` the sender).
        read_receipt: bool,
    }

    /// What `send_message` did.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct SendResult {
        /// `smtp` or `graph`: what carried the message.
        transport: String,
        /// The message's `Message-ID` (`<...@...>`).
        message_id: String,
        /// The server's acceptance (`250 2.0.0 Ok: queued as ...`).
        reply: String,
        /// Bytes sent.
        size: u64,
    }

    /// A sign-in begun by the host (`mc_authorization_begin`); fields of the other flow are empty.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Authorization {
        handle: String,
        account_id: String,
        /// `browser` or `device_code`.
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
    }

    /// One check of a device-code sign-in (`mc_authorization_poll`).
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct PollResult {
        #[serde(rename = "state", deserialize_with = "super::connected")]
        connected: bool,
        /// Pending: poll again after this many milliseconds.
        retry_after_ms: u64,
        /// Connected: the account's status.
        status: Status,
    }

    /// The type of an event. `Unknown`: a type this binding does not know yet.
    #[derive(Debug, Default)]
    enum EventKind {
        #[default]
        Unknown,
        TokenRefreshed,
        NeedsReauthorization,
        ReauthorizationDue,
        ConnectProgress,
        StateChanged,
        Log,
        EventsDropped,
    }

    /// An event (`mc_events_next`); fields of other kinds are empty.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Event {
        seq: u64,
        /// RFC 3339, UTC.
        time: String,
        #[serde(rename = "type", deserialize_with = "super::event_kind")]
        kind: EventKind,
        account_id: String,
        /// token_refreshed.
        expires_at: String,
        /// needs_reauthorization.
        reason: String,
        /// needs_reauthorization.
        diagnostic: Diagnostic,
        /// reauthorization_due: when the access token expires.
        at: String,
        /// reauthorization_due: the diagnostic code.
        code: String,
        /// connect_progress.
        stage: String,
        /// state_changed.
        #[serde(deserialize_with = "super::account_state")]
        from: AccountState,
        /// state_changed.
        #[serde(deserialize_with = "super::account_state")]
        to: AccountState,
        /// log: `error` .. `trace`.
        level: String,
        /// log.
        target: String,
        /// log.
        message: String,
        /// events_dropped.
        count: u64,
    }

    /// The counts of one refresher round (`mc_refresher_run`).
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct RefreshReport {
        accounts: u64,
        fresh: u64,
        refreshed: u64,
        failed: u64,
        needs_reauthorization: u64,
        backing_off: u64,
        not_connected: u64,
    }

    /// The proxy setting stored with `mc_proxy_set`, every password removed; not `present` when
    /// none is stored.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct StoredProxy {
        #[serde(skip_deserializing, default = "super::present")]
        present: bool,
        /// The proxy of every protocol without its password (`http://user@host:3128`, `direct`);
        /// empty when only per-protocol ones are set.
        url: String,
        /// Per protocol (a URL without its password, or `direct`); empty: `url`'s.
        https: String,
        imap: String,
        pop3: String,
        smtp: String,
        username: String,
        /// Host names, `.domain` suffixes, addresses and CIDR ranges reached directly.
        no_proxy: Vec<String>,
        /// Whether the setting has a password (it is never returned).
        has_password: bool,
    }

    /// The proxy settings of a client (`mc_proxy_get`). The path each connection takes is in the
    /// test report (`ProtocolResult::path`, `GraphResult::path`).
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct ProxyInfo {
        /// Where this client's proxy comes from: `no_proxy_option`, `option`, `stored`
        /// (`mc_proxy_set`) or `environment` (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`).
        source: String,
        #[serde(deserialize_with = "super::nullable_struct")]
        stored: StoredProxy,
        /// Whether proxy environment variables are set.
        environment: bool,
    }

    /// An app registration (`mc_registration_get`); the secret shows as `has_client_secret` only.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Registration {
        id: String,
        /// `microsoft`, `google`, `generic`.
        provider: String,
        tenant: String,
        cloud: String,
        authority_host: String,
        /// Microsoft: the Graph host override.
        graph_host: String,
        client_id: String,
        redirect_uri: String,
        issuer: String,
        authorization_endpoint: String,
        token_endpoint: String,
        device_authorization_endpoint: String,
        revocation_endpoint: String,
        userinfo_endpoint: String,
        #[serde(default = "super::present")]
        verify_identity: bool,
        /// Empty: the provider's defaults.
        scopes: Vec<String>,
        has_client_secret: bool,
    }

    /// One mail server of an account.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct ServerConfig {
        #[serde(skip_deserializing, default = "super::present")]
        present: bool,
        host: String,
        port: u16,
        /// `tls`, `starttls`, `none`.
        security: String,
        mechanism: String,
        danger_accept_invalid_certs: bool,
    }

    /// The mail servers of an account; not `present`: the provider's defaults.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Servers {
        #[serde(skip_deserializing, default = "super::present")]
        present: bool,
        imap: ServerConfig,
        pop3: ServerConfig,
        smtp: ServerConfig,
    }

    /// POP3 options of an account.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Pop3Options {
        leave_on_server: bool,
        /// 0: not set.
        ignore_older_than_days: u32,
        max_message_bytes: u64,
    }

    /// Options of an account.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct AccountOptions {
        interactive_timeout_secs: u64,
        refresh_margin_secs: u64,
        select_account: bool,
        mail_timeout_secs: u64,
        pop3: Pop3Options,
    }

    /// An account (`mc_account_get`).
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Account {
        id: String,
        mailbox: String,
        /// The identity that signs in, when not the mailbox.
        login: String,
        login_aliases: Vec<String>,
        registration: String,
        flow: String,
        servers: Servers,
        /// How mail travels: `smtp_imap`, `graph` or `auto`.
        #[serde(default = "super::smtp_imap")]
        transport: String,
        options: AccountOptions,
    }

    unsafe extern "C++" {
        include!("mailconnect-ffi/cpp/events.h");
        /// Connect callbacks (std::function members).
        type Events;
        fn device_code(self: &Events, code: &str, uri: &str, message: &str);
        fn open_url(self: &Events, url: &str) -> bool;
        fn progress(self: &Events, stage: &str);

        /// The process's log sink (a std::function).
        type LogSink;
        fn log(self: &LogSink, level: i32, target: &str, message: &str);

        /// `mc_store_callbacks` of include/mailconnect_store.h.
        type StoreCallbacks;
    }

    extern "Rust" {
        fn abi_version() -> u32;
        fn version() -> String;
        fn result_name(code: i32) -> String;
        fn log_callback_set(sink: UniquePtr<LogSink>, max_level: i32, error: &mut ErrorInfo);

        type CxxCancel;
        fn cancel_new(error: &mut ErrorInfo) -> Box<CxxCancel>;
        fn trigger(self: &CxxCancel);

        type CxxClient;
        fn client_open(options_json: &str, error: &mut ErrorInfo) -> Box<CxxClient>;
        /// # Safety
        /// `callbacks` valid as `mc_client_open_with_store` requires.
        unsafe fn client_open_with_store(
            options_json: &str,
            callbacks: *const StoreCallbacks,
            error: &mut ErrorInfo,
        ) -> Box<CxxClient>;

        fn registration_put(self: &CxxClient, json: &str, error: &mut ErrorInfo);
        fn registration_get(self: &CxxClient, id: &str, error: &mut ErrorInfo) -> Registration;
        fn registration_list(self: &CxxClient, error: &mut ErrorInfo) -> Vec<Registration>;
        fn registration_remove(self: &CxxClient, id: &str, error: &mut ErrorInfo);
        fn proxy_set(self: &CxxClient, proxy: &str, error: &mut ErrorInfo);
        fn proxy_clear(self: &CxxClient, error: &mut ErrorInfo);
        fn proxy_get(self: &CxxClient, error: &mut ErrorInfo) -> ProxyInfo;
        fn account_put(self: &CxxClient, json: &str, error: &mut ErrorInfo);
        fn account_get(self: &CxxClient, id: &str, error: &mut ErrorInfo) -> Account;
        fn account_list(self: &CxxClient, error: &mut ErrorInfo) -> Vec<Account>;
        fn account_remove(self: &CxxClient, id: &str, error: &mut ErrorInfo);
        fn status(self: &CxxClient, account_id: &str, error: &mut ErrorInfo) -> Status;

        fn authorization_begin(
            self: &CxxClient,
            account_id: &str,
            flow: &str,
            redirect_uri: &str,
            cancel: &CxxCancel,
            error: &mut ErrorInfo,
        ) -> Authorization;
        fn authorization_complete(
            self: &CxxClient,
            handle: &str,
            redirect: &str,
            cancel: &CxxCancel,
            error: &mut ErrorInfo,
        ) -> Status;
        fn authorization_poll(
            self: &CxxClient,
            handle: &str,
            cancel: &CxxCancel,
            error: &mut ErrorInfo,
        ) -> PollResult;
        fn authorization_wait(
            self: &CxxClient,
            handle: &str,
            cancel: &CxxCancel,
            error: &mut ErrorInfo,
        ) -> Status;
        fn authorization_abort(self: &CxxClient, handle: &str, error: &mut ErrorInfo);
        fn connect(
            self: &CxxClient,
            account_id: &str,
            events: &Events,
            cancel: &CxxCancel,
            error: &mut ErrorInfo,
        );
        fn disconnect(
            self: &CxxClient,
            account_id: &str,
            cancel: &CxxCancel,
            error: &mut ErrorInfo,
        );

        fn test(
            self: &CxxClient,
            account_id: &str,
            protocols: u32,
            cancel: &CxxCancel,
            error: &mut ErrorInfo,
        ) -> TestReport;

        /// `mc_admin_register`: the report JSON.
        ///
        /// # Safety
        /// `events` NULL (no callbacks) or valid until the call returns.
        unsafe fn admin_register(
            self: &CxxClient,
            options_json: &str,
            events: *const Events,
            cancel: &CxxCancel,
            error: &mut ErrorInfo,
        ) -> String;
        /// `mc_admin_check`: the report JSON.
        ///
        /// # Safety
        /// `events` NULL (no callbacks) or valid until the call returns.
        unsafe fn admin_check(
            self: &CxxClient,
            registration_id: &str,
            options_json: &str,
            events: *const Events,
            cancel: &CxxCancel,
            error: &mut ErrorInfo,
        ) -> String;
        fn access_token(
            self: &CxxClient,
            account_id: &str,
            cancel: &CxxCancel,
            error: &mut ErrorInfo,
        ) -> String;
        fn sasl_xoauth2(
            self: &CxxClient,
            account_id: &str,
            cancel: &CxxCancel,
            error: &mut ErrorInfo,
        ) -> String;
        fn graph_token(
            self: &CxxClient,
            account_id: &str,
            cancel: &CxxCancel,
            error: &mut ErrorInfo,
        ) -> String;
        fn send(
            self: &CxxClient,
            account_id: &str,
            message: &[u8],
            cancel: &CxxCancel,
            error: &mut ErrorInfo,
        );
        fn send_message(
            self: &CxxClient,
            account_id: &str,
            message: &MessageSpec,
            cancel: &CxxCancel,
            error: &mut ErrorInfo,
        ) -> SendResult;
        fn folders(
            self: &CxxClient,
            account_id: &str,
            cancel: &CxxCancel,
            error: &mut ErrorInfo,
        ) -> Vec<Folder>;
        fn fetch(
            self: &CxxClient,
            account_id: &str,
            query: &FetchRequest,
            cancel: &CxxCancel,
            error: &mut ErrorInfo,
        ) -> Vec<Message>;

        fn events_configure(
            self: &CxxClient,
            capacity: u32,
            log_level: &str,
            error: &mut ErrorInfo,
        );
        fn next_event(
            self: &CxxClient,
            timeout_ms: i32,
            out: &mut Event,
            error: &mut ErrorInfo,
        ) -> bool;

        fn refresher_start(self: &CxxClient, options_json: &str, error: &mut ErrorInfo);
        fn refresher_stop(self: &CxxClient, error: &mut ErrorInfo);
        fn refresher_run(
            self: &CxxClient,
            options_json: &str,
            cancel: &CxxCancel,
            error: &mut ErrorInfo,
        ) -> RefreshReport;
    }
}

use bridge::{
    Account, AccountState, Authorization, ErrorInfo, Event, EventKind, Events, FetchRequest,
    Folder, LogSink, MailAddress, Message, MessageSpec, PollResult, ProxyInfo, RefreshReport,
    Registration, SendResult, Status, StoreCallbacks, TestReport,
};

// --- serde helpers named by the shared structs' attributes ---

fn present() -> bool {
    true
}

/// An account's transport when the JSON leaves it out (the default).
fn smtp_imap() -> String {
    "smtp_imap".into()
}

/// A string that may be JSON `null`.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// A nested struct that may be `null` (its default: not `present`).
fn nullable_struct<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A list that may be `null` (empty).
fn nullable_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// A boolean that may be `null` (false).
fn nullable_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or_default())
}

/// Milliseconds that may be `null` (-1).
fn ms<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(Option::<u64>::deserialize(d)?.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX)))
}

fn account_state<'de, D: Deserializer<'de>>(d: D) -> Result<AccountState, D::Error> {
    Ok(match String::deserialize(d)?.as_str() {
        "not_connected" => AccountState::NotConnected,
        "connected" => AccountState::Connected,
        "needs_reauthorization" => AccountState::NeedsReauthorization,
        "error" => AccountState::Error,
        _ => AccountState::Unknown,
    })
}

fn event_kind<'de, D: Deserializer<'de>>(d: D) -> Result<EventKind, D::Error> {
    Ok(match String::deserialize(d)?.as_str() {
        "token_refreshed" => EventKind::TokenRefreshed,
        "needs_reauthorization" => EventKind::NeedsReauthorization,
        "reauthorization_due" => EventKind::ReauthorizationDue,
        "connect_progress" => EventKind::ConnectProgress,
        "state_changed" => EventKind::StateChanged,
        "log" => EventKind::Log,
        "events_dropped" => EventKind::EventsDropped,
        _ => EventKind::Unknown,
    })
}

fn connected<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(String::deserialize(d)? == "connected")
}

/// Standard base64 (the `raw` of fetched messages) into bytes.
fn base64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(serde::de::Error::custom("raw is not base64")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

/// Standard base64 with padding (attachment bytes in the message JSON).
fn base64_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(v >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// --- errors ---

type Res<T> = Result<T, Box<ErrorInfo>>;

/// An error of the bridge itself, in the C ABI's shape.
fn bridge_error(e: FfiError) -> Box<ErrorInfo> {
    let mut info = ErrorInfo {
        code: e.code,
        name: result_name(e.code),
        message: e.message,
        ..ErrorInfo::default()
    };
    info.diagnostic = serde_json::from_value(e.diagnostic).unwrap_or_default();
    Box::new(info)
}

/// The calling thread's last error, as the C ABI keeps it.
fn last_error() -> Box<ErrorInfo> {
    let code = mc_error_code_get();
    // SAFETY: borrowed strings, valid until the next mailconnect call on this thread.
    let (message, diagnostic) = unsafe {
        (
            CStr::from_ptr(mc_error_message_get()).to_string_lossy(),
            CStr::from_ptr(mc_error_diagnostic_get()).to_string_lossy(),
        )
    };
    Box::new(ErrorInfo {
        code,
        name: result_name(code),
        message: message.into_owned(),
        diagnostic: serde_json::from_str(&diagnostic).unwrap_or_default(),
    })
}

fn check(rc: i32) -> Res<()> {
    if rc == MC_OK {
        Ok(())
    } else {
        Err(last_error())
    }
}

/// `f`'s value, or its error in `error` and the type's default.
fn report<T: Default>(error: &mut ErrorInfo, f: impl FnOnce() -> Res<T>) -> T {
    f().unwrap_or_else(|e| {
        *error = *e;
        T::default()
    })
}

/// A C string argument (`what` names it in the error).
fn c(s: &str, what: &str) -> Res<CString> {
    CString::new(s).map_err(|_| {
        bridge_error(
            mailconnect_core::Error::invalid(what, format!("'{what}' contains a NUL byte")).into(),
        )
    })
}

/// An optional C string argument: empty gives NULL.
fn c_opt(s: &str, what: &str) -> Res<Option<CString>> {
    if s.is_empty() {
        Ok(None)
    } else {
        c(s, what).map(Some)
    }
}

fn ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// An owned string from the library, freed once.
fn take(p: *mut c_char) -> String {
    // SAFETY: an owned NUL-terminated string from the library, freed once here.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    unsafe { mc_string_free(p) };
    s
}

/// A JSON answer of the C ABI read into `T`.
fn parse<T: DeserializeOwned>(json: &str) -> Res<T> {
    serde_json::from_str(json).map_err(|e| {
        bridge_error(FfiError::new(
            MC_E_INTERNAL,
            format!("unreadable JSON from mailconnect: {e}"),
        ))
    })
}

/// A string out-parameter of a C ABI call.
fn out(f: impl FnOnce(*mut *mut c_char) -> i32) -> Res<String> {
    let mut p = null_mut();
    check(f(&mut p))?;
    Ok(if p.is_null() { String::new() } else { take(p) })
}

fn lossy(p: *const c_char) -> String {
    // SAFETY: strings the library passes to callbacks are valid NUL-terminated strings for the call.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

// --- library-wide ---

fn abi_version() -> u32 {
    mc_abi_version_get()
}

fn version() -> String {
    // SAFETY: a static string.
    unsafe { CStr::from_ptr(mc_version_get()) }
        .to_string_lossy()
        .into_owned()
}

fn result_name(code: i32) -> String {
    // SAFETY: a static string.
    unsafe { CStr::from_ptr(mc_result_name_get(code)) }
        .to_string_lossy()
        .into_owned()
}

// SAFETY: the C++ LogSink is a std::function called from any thread (documented in mailconnect.hpp).
unsafe impl Send for LogSink {}
unsafe impl Sync for LogSink {}

/// The C++ log sink; replaced under the write lock, so a record being delivered finishes first.
static LOG_SINK: RwLock<Option<UniquePtr<LogSink>>> = RwLock::new(None);

unsafe extern "C" fn on_log(
    _ud: *mut c_void,
    level: i32,
    target: *const c_char,
    message: *const c_char,
) {
    let sink = LOG_SINK.read().unwrap_or_else(PoisonError::into_inner);
    if let Some(s) = sink.as_ref().and_then(|s| s.as_ref()) {
        s.log(level, &lossy(target), &lossy(message));
    }
}

fn log_callback_set(sink: UniquePtr<LogSink>, max_level: i32, error: &mut ErrorInfo) {
    report(error, || {
        let cb: mc_log_fn = if sink.is_null() { None } else { Some(on_log) };
        // SAFETY: `on_log` stays callable for the process's life; it ignores user_data.
        check(unsafe { mc_log_callback_set(cb, null_mut(), max_level) })?;
        *LOG_SINK.write().unwrap_or_else(PoisonError::into_inner) =
            (!sink.is_null()).then_some(sink);
        Ok(())
    })
}

/// A cancellation token for C++ (owns an `mc_cancel`; NULL after a failed `cancel_new`).
pub struct CxxCancel {
    raw: *mut mc_cancel,
}

// SAFETY: mc_cancel may be triggered from any thread (C ABI).
unsafe impl Send for CxxCancel {}
unsafe impl Sync for CxxCancel {}

impl Drop for CxxCancel {
    fn drop(&mut self) {
        // SAFETY: `raw` is NULL or came from mc_cancel_new; freed once.
        unsafe { mc_cancel_free(self.raw) };
    }
}

fn cancel_new(error: &mut ErrorInfo) -> Box<CxxCancel> {
    let mut raw = null_mut();
    // SAFETY: a valid out pointer.
    if let Err(e) = check(unsafe { mc_cancel_new(&mut raw) }) {
        *error = *e;
    }
    Box::new(CxxCancel { raw })
}

impl CxxCancel {
    fn trigger(&self) {
        // SAFETY: NULL or a live mc_cancel.
        unsafe { mc_cancel_trigger(self.raw) }
    }
}

/// A client for C++ (owns an `mc_client`; NULL after a failed open).
pub struct CxxClient {
    raw: *mut mc_client,
}

// SAFETY: mc_client is thread-safe (C ABI rule 6).
unsafe impl Send for CxxClient {}
unsafe impl Sync for CxxClient {}

impl Drop for CxxClient {
    fn drop(&mut self) {
        // SAFETY: `raw` is NULL or came from mc_client_open*; freed once.
        unsafe { mc_client_free(self.raw) };
    }
}

fn client_open(options_json: &str, error: &mut ErrorInfo) -> Box<CxxClient> {
    let mut raw = null_mut();
    report(error, || {
        let o = c(options_json, "options_json")?;
        // SAFETY: a valid C string and out pointer.
        check(unsafe { mc_client_open(o.as_ptr(), &mut raw) })
    });
    Box::new(CxxClient { raw })
}

/// # Safety
/// `callbacks` as `mc_client_open_with_store` requires (NULL is refused by it).
unsafe fn client_open_with_store(
    options_json: &str,
    callbacks: *const StoreCallbacks,
    error: &mut ErrorInfo,
) -> Box<CxxClient> {
    let mut raw = null_mut();
    report(error, || {
        let o = c(options_json, "options_json")?;
        let cb = callbacks.cast::<mc_store_callbacks>();
        // SAFETY: StoreCallbacks is mc_store_callbacks (ffi/cpp/events.h); forwarded contract.
        check(unsafe { mc_client_open_with_store(o.as_ptr(), cb, &mut raw) })
    });
    Box::new(CxxClient { raw })
}

/// `mc_connect_callbacks` calling `events` (its address is the user data: it must outlive the call).
fn connect_callbacks(events: &Events) -> mc_connect_callbacks {
    mc_connect_callbacks {
        version: MC_CONNECT_CALLBACKS_VERSION,
        user_data: events as *const Events as *mut c_void,
        on_open_url: Some(on_open_url),
        on_device_code: Some(on_device_code),
        on_progress: Some(on_progress),
    }
}

unsafe extern "C" fn on_device_code(
    ud: *mut c_void,
    code: *const c_char,
    uri: *const c_char,
    msg: *const c_char,
) {
    // SAFETY: `ud` is the &Events of `connect_callbacks`, alive for the call that got them.
    let ev = unsafe { &*(ud as *const Events) };
    ev.device_code(&lossy(code), &lossy(uri), &lossy(msg));
}

unsafe extern "C" fn on_open_url(ud: *mut c_void, url: *const c_char) -> i32 {
    // SAFETY: as above.
    let ev = unsafe { &*(ud as *const Events) };
    i32::from(ev.open_url(&lossy(url)))
}

unsafe extern "C" fn on_progress(ud: *mut c_void, stage: *const c_char) {
    // SAFETY: as above.
    let ev = unsafe { &*(ud as *const Events) };
    ev.progress(&lossy(stage));
}

/// The query JSON of `mc_mail_fetch` (only the fields set).
fn fetch_query(q: &FetchRequest) -> String {
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| {
        m.insert(k.to_string(), v);
    };
    if !q.protocol.is_empty() {
        put("protocol", q.protocol.as_str().into());
    }
    if !q.folder.is_empty() {
        put("folder", q.folder.as_str().into());
    }
    if q.uid_from != 0 {
        put("uid_from", q.uid_from.into());
    }
    if q.uid_to != 0 {
        put("uid_to", q.uid_to.into());
    }
    if !q.since.is_empty() {
        put("since", q.since.as_str().into());
    }
    if q.limit != 0 {
        put("limit", q.limit.into());
    }
    if !q.transport.is_empty() {
        put("transport", q.transport.as_str().into());
    }
    put("headers_only", q.headers_only.into());
    put("mark_seen", q.mark_seen.into());
    put("unread_only", q.unread_only.into());
    serde_json::Value::Object(m).to_string()
}

/// An address of the message JSON: `"a@x"`, or `{"name","address"}` with a name.
fn address_json(a: &MailAddress) -> serde_json::Value {
    if a.name.is_empty() {
        a.address.as_str().into()
    } else {
        serde_json::json!({ "name": a.name.as_str(), "address": a.address.as_str() })
    }
}

/// The message JSON of `mc_message_send` (empty fields left out).
fn message_json(m: &MessageSpec) -> String {
    let mut o = serde_json::Map::new();
    if !m.from.address.is_empty() {
        o.insert("from".into(), address_json(&m.from));
    }
    for (key, list) in [
        ("to", &m.to),
        ("cc", &m.cc),
        ("bcc", &m.bcc),
        ("reply_to", &m.reply_to),
    ] {
        if !list.is_empty() {
            o.insert(key.into(), list.iter().map(address_json).collect());
        }
    }
    o.insert("subject".into(), m.subject.as_str().into());
    for (key, v) in [
        ("text", &m.text),
        ("html", &m.html),
        ("importance", &m.importance),
    ] {
        if !v.is_empty() {
            o.insert(key.into(), v.as_str().into());
        }
    }
    if !m.attachments.is_empty() {
        let list = m.attachments.iter().map(|a| {
            let mut j = serde_json::Map::new();
            if a.path.is_empty() {
                j.insert("content_base64".into(), base64_encode(&a.content).into());
            } else {
                j.insert("path".into(), a.path.as_str().into());
            }
            for (key, v) in [
                ("file_name", &a.file_name),
                ("content_type", &a.content_type),
                ("content_id", &a.content_id),
            ] {
                if !v.is_empty() {
                    j.insert(key.into(), v.as_str().into());
                }
            }
            serde_json::Value::Object(j)
        });
        o.insert("attachments".into(), list.collect());
    }
    if !m.headers.is_empty() {
        let list = m
            .headers
            .iter()
            .map(|h| serde_json::json!({ "name": h.name.as_str(), "value": h.value.as_str() }));
        o.insert("headers".into(), list.collect());
    }
    if m.read_receipt {
        o.insert("read_receipt".into(), true.into());
    }
    serde_json::Value::Object(o).to_string()
}

/// The Test report JSON read into [`TestReport`], with what only the JSON's shape tells.
fn test_report(json: &str) -> Res<TestReport> {
    let mut r: TestReport = parse(json)?;
    let v: serde_json::Value = parse(json)?;
    r.graph.found.permissions_known = v["graph"]["found"]["permissions"].is_array();
    Ok(r)
}

impl CxxClient {
    /// A call with one id-like string argument and a JSON answer read into `T`.
    fn get<T: DeserializeOwned + Default>(
        &self,
        error: &mut ErrorInfo,
        arg: &str,
        what: &str,
        f: impl FnOnce(*const c_char, *mut *mut c_char) -> i32,
    ) -> T {
        report(error, || {
            let a = c(arg, what)?;
            parse(&out(|o| f(a.as_ptr(), o))?)
        })
    }

    /// A call with one string argument and no answer.
    fn put(
        &self,
        error: &mut ErrorInfo,
        arg: &str,
        what: &str,
        f: impl FnOnce(*const c_char) -> i32,
    ) {
        report(error, || check(f(c(arg, what)?.as_ptr())))
    }

    fn registration_put(&self, json: &str, error: &mut ErrorInfo) {
        // SAFETY (all calls below): a live client, C strings alive for the call, valid out pointers.
        self.put(error, json, "registration_json", |j| unsafe {
            mc_registration_put(self.raw, j)
        })
    }

    fn registration_get(&self, id: &str, error: &mut ErrorInfo) -> Registration {
        self.get(error, id, "registration_id", |i, o| unsafe {
            mc_registration_get(self.raw, i, o)
        })
    }

    fn registration_list(&self, error: &mut ErrorInfo) -> Vec<Registration> {
        report(error, || {
            parse(&out(|o| unsafe { mc_registration_list(self.raw, o) })?)
        })
    }

    fn registration_remove(&self, id: &str, error: &mut ErrorInfo) {
        self.put(error, id, "registration_id", |i| unsafe {
            mc_registration_remove(self.raw, i)
        })
    }

    fn proxy_set(&self, proxy: &str, error: &mut ErrorInfo) {
        self.put(error, proxy, "proxy", |p| unsafe {
            mc_proxy_set(self.raw, p)
        })
    }

    fn proxy_clear(&self, error: &mut ErrorInfo) {
        report(error, || {
            check(unsafe { mc_proxy_set(self.raw, std::ptr::null()) })
        })
    }

    fn proxy_get(&self, error: &mut ErrorInfo) -> ProxyInfo {
        report(error, || {
            parse(&out(|o| unsafe { mc_proxy_get(self.raw, o) })?)
        })
    }

    fn account_put(&self, json: &str, error: &mut ErrorInfo) {
        self.put(error, json, "account_json", |j| unsafe {
            mc_account_put(self.raw, j)
        })
    }

    fn account_get(&self, id: &str, error: &mut ErrorInfo) -> Account {
        self.get(error, id, "account_id", |i, o| unsafe {
            mc_account_get(self.raw, i, o)
        })
    }

    fn account_list(&self, error: &mut ErrorInfo) -> Vec<Account> {
        report(error, || {
            parse(&out(|o| unsafe { mc_account_list(self.raw, o) })?)
        })
    }

    fn account_remove(&self, id: &str, error: &mut ErrorInfo) {
        self.put(error, id, "account_id", |i| unsafe {
            mc_account_remove(self.raw, i)
        })
    }

    fn status(&self, account_id: &str, error: &mut ErrorInfo) -> Status {
        self.get(error, account_id, "account_id", |i, o| unsafe {
            mc_account_status_get(self.raw, i, o)
        })
    }

    fn authorization_begin(
        &self,
        account_id: &str,
        flow: &str,
        redirect_uri: &str,
        cancel: &CxxCancel,
        error: &mut ErrorInfo,
    ) -> Authorization {
        let mut opts = serde_json::Map::new();
        if !flow.is_empty() {
            opts.insert("flow".into(), flow.into());
        }
        if !redirect_uri.is_empty() {
            opts.insert("redirect_uri".into(), redirect_uri.into());
        }
        let opts = serde_json::Value::Object(opts).to_string();
        report(error, || {
            let (id, o) = (c(account_id, "account_id")?, c(&opts, "options_json")?);
            parse(&out(|out| unsafe {
                mc_authorization_begin(self.raw, id.as_ptr(), o.as_ptr(), cancel.raw, out)
            })?)
        })
    }

    fn authorization_complete(
        &self,
        handle: &str,
        redirect: &str,
        cancel: &CxxCancel,
        error: &mut ErrorInfo,
    ) -> Status {
        report(error, || {
            let (h, r) = (c(handle, "handle")?, c(redirect, "redirect")?);
            parse(&out(|o| unsafe {
                mc_authorization_complete(self.raw, h.as_ptr(), r.as_ptr(), cancel.raw, o)
            })?)
        })
    }

    fn authorization_poll(
        &self,
        handle: &str,
        cancel: &CxxCancel,
        error: &mut ErrorInfo,
    ) -> PollResult {
        self.get(error, handle, "handle", |h, o| unsafe {
            mc_authorization_poll(self.raw, h, cancel.raw, o)
        })
    }

    fn authorization_wait(
        &self,
        handle: &str,
        cancel: &CxxCancel,
        error: &mut ErrorInfo,
    ) -> Status {
        self.get(error, handle, "handle", |h, o| unsafe {
            mc_authorization_wait(self.raw, h, cancel.raw, o)
        })
    }

    fn authorization_abort(&self, handle: &str, error: &mut ErrorInfo) {
        self.put(error, handle, "handle", |h| unsafe {
            mc_authorization_abort(self.raw, h)
        })
    }

    fn connect(
        &self,
        account_id: &str,
        events: &Events,
        cancel: &CxxCancel,
        error: &mut ErrorInfo,
    ) {
        let cb = connect_callbacks(events);
        self.put(error, account_id, "account_id", |i| unsafe {
            mc_account_connect(self.raw, i, &cb, cancel.raw)
        })
    }

    fn disconnect(&self, account_id: &str, cancel: &CxxCancel, error: &mut ErrorInfo) {
        self.put(error, account_id, "account_id", |i| unsafe {
            mc_account_disconnect(self.raw, i, cancel.raw)
        })
    }

    fn test(
        &self,
        account_id: &str,
        protocols: u32,
        cancel: &CxxCancel,
        error: &mut ErrorInfo,
    ) -> TestReport {
        report(error, || {
            let id = c(account_id, "account_id")?;
            test_report(&out(|o| unsafe {
                mc_account_test(self.raw, id.as_ptr(), protocols, cancel.raw, o)
            })?)
        })
    }

    /// # Safety
    /// `events` NULL or valid until the call returns.
    unsafe fn admin_register(
        &self,
        options_json: &str,
        events: *const Events,
        cancel: &CxxCancel,
        error: &mut ErrorInfo,
    ) -> String {
        // SAFETY: NULL or valid for the call (contract).
        let cb = unsafe { events.as_ref() }.map(connect_callbacks);
        let cbp = cb.as_ref().map_or(std::ptr::null(), |cb| cb as *const _);
        report(error, || {
            let o = c(options_json, "options_json")?;
            out(|r| unsafe { mc_admin_register(self.raw, o.as_ptr(), cbp, cancel.raw, r) })
        })
    }

    /// # Safety
    /// `events` NULL or valid until the call returns.
    unsafe fn admin_check(
        &self,
        registration_id: &str,
        options_json: &str,
        events: *const Events,
        cancel: &CxxCancel,
        error: &mut ErrorInfo,
    ) -> String {
        // SAFETY: NULL or valid for the call (contract).
        let cb = unsafe { events.as_ref() }.map(connect_callbacks);
        let cbp = cb.as_ref().map_or(std::ptr::null(), |cb| cb as *const _);
        report(error, || {
            let (id, o) = (
                c(registration_id, "registration_id")?,
                c(options_json, "options_json")?,
            );
            out(|r| unsafe {
                mc_admin_check(self.raw, id.as_ptr(), o.as_ptr(), cbp, cancel.raw, r)
            })
        })
    }

    fn access_token(&self, account_id: &str, cancel: &CxxCancel, error: &mut ErrorInfo) -> String {
        report(error, || {
            let id = c(account_id, "account_id")?;
            out(|o| unsafe { mc_token_get(self.raw, id.as_ptr(), cancel.raw, o) })
        })
    }

    fn sasl_xoauth2(&self, account_id: &str, cancel: &CxxCancel, error: &mut ErrorInfo) -> String {
        report(error, || {
            let id = c(account_id, "account_id")?;
            out(|o| unsafe { mc_sasl_xoauth2_get(self.raw, id.as_ptr(), cancel.raw, o) })
        })
    }

    fn graph_token(&self, account_id: &str, cancel: &CxxCancel, error: &mut ErrorInfo) -> String {
        report(error, || {
            let id = c(account_id, "account_id")?;
            out(|o| unsafe { mc_graph_token_get(self.raw, id.as_ptr(), cancel.raw, o) })
        })
    }

    fn send_message(
        &self,
        account_id: &str,
        message: &MessageSpec,
        cancel: &CxxCancel,
        error: &mut ErrorInfo,
    ) -> SendResult {
        report(error, || {
            let (id, m) = (
                c(account_id, "account_id")?,
                c(&message_json(message), "message")?,
            );
            parse(&out(|o| unsafe {
                mc_message_send(self.raw, id.as_ptr(), m.as_ptr(), cancel.raw, o)
            })?)
        })
    }

    fn send(&self, account_id: &str, message: &[u8], cancel: &CxxCancel, error: &mut ErrorInfo) {
        self.put(error, account_id, "account_id", |i| unsafe {
            mc_mail_send(self.raw, i, message.as_ptr(), message.len(), cancel.raw)
        })
    }

    fn folders(&self, account_id: &str, cancel: &CxxCancel, error: &mut ErrorInfo) -> Vec<Folder> {
        self.get(error, account_id, "account_id", |i, o| unsafe {
            mc_folder_list(self.raw, i, cancel.raw, o)
        })
    }

    fn fetch(
        &self,
        account_id: &str,
        query: &FetchRequest,
        cancel: &CxxCancel,
        error: &mut ErrorInfo,
    ) -> Vec<Message> {
        report(error, || {
            let (id, q) = (
                c(account_id, "account_id")?,
                c(&fetch_query(query), "query")?,
            );
            parse(&out(|o| unsafe {
                mc_mail_fetch(self.raw, id.as_ptr(), q.as_ptr(), cancel.raw, o)
            })?)
        })
    }

    fn events_configure(&self, capacity: u32, log_level: &str, error: &mut ErrorInfo) {
        let mut opts = serde_json::Map::new();
        if capacity != 0 {
            opts.insert("capacity".into(), capacity.into());
        }
        if !log_level.is_empty() {
            opts.insert("log_level".into(), log_level.into());
        }
        let opts = serde_json::Value::Object(opts).to_string();
        self.put(error, &opts, "options_json", |o| unsafe {
            mc_events_configure(self.raw, o)
        })
    }

    fn next_event(&self, timeout_ms: i32, event: &mut Event, error: &mut ErrorInfo) -> bool {
        report(error, || {
            let mut p = null_mut();
            check(unsafe { mc_events_next(self.raw, timeout_ms, &mut p) })?;
            if p.is_null() {
                return Ok(false);
            }
            *event = parse(&take(p))?;
            Ok(true)
        })
    }

    fn refresher_start(&self, options_json: &str, error: &mut ErrorInfo) {
        report(error, || {
            let o = c_opt(options_json, "options_json")?;
            check(unsafe { mc_refresher_start(self.raw, ptr(&o)) })
        })
    }

    fn refresher_stop(&self, error: &mut ErrorInfo) {
        report(error, || check(unsafe { mc_refresher_stop(self.raw) }))
    }

    fn refresher_run(
        &self,
        options_json: &str,
        cancel: &CxxCancel,
        error: &mut ErrorInfo,
    ) -> RefreshReport {
        report(error, || {
            let o = c_opt(options_json, "options_json")?;
            parse(&out(|r| unsafe {
                mc_refresher_run(self.raw, ptr(&o), cancel.raw, r)
            })?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_structs_read_the_c_abis_json() {
        let s: Status = parse(
            r#"{"account_id":"a","mailbox":"a@x","state":"connected","flow":"device_code",
                "identity":{"username":"a@x","names":["a@x"]},"expires_at":"2030-01-01T00:00:00Z",
                "expires_in_secs":-5,"has_refresh_token":false,
                "reauthorization_due":{"at":null,"code":"MC-NO-REFRESH-TOKEN"},"identity_checked":true}"#,
        )
        .unwrap();
        assert!(s.state == AccountState::Connected && s.identity.present);
        assert_eq!((s.expires_in_secs, s.identity.names.len()), (-5, 1));
        assert!(s.reauthorization_due.present && s.reauthorization_due.at.is_empty());
        let e: Event = parse(
            r#"{"seq":3,"time":"t","type":"state_changed","account_id":"a","from":"connected","to":"needs_reauthorization"}"#,
        )
        .unwrap();
        assert!(e.kind == EventKind::StateChanged && e.to == AccountState::NeedsReauthorization);
        assert!(!e.diagnostic.present);
        let m: Vec<Message> = parse(r#"[{"id":"1","raw":"SGVsbG8sIHdvcmxkIQ=="}]"#).unwrap();
        assert_eq!(m[0].raw, b"Hello, world!");
        let p: PollResult = parse(r#"{"state":"pending","retry_after_ms":5000}"#).unwrap();
        assert!(!p.connected && p.retry_after_ms == 5000);
        let r: TestReport = parse(
            r#"{"schema":1,"ok":false,"token":{"status":"fresh","elapsed_ms":1},"results":[{"protocol":"imap",
                "ok":false,"phases_ms":{"connect":3,"tls":null,"auth":null,"check":null},
                "error":{"code":"MC-TLS","diagnostic":{"code":"MC-TLS"},"kind":"tls","message":"m"}}]}"#,
        )
        .unwrap();
        let imap = &r.results[0];
        assert!(!r.token.error.present && imap.error.present && !r.probe.present);
        assert_eq!((imap.phases_ms.connect, imap.phases_ms.tls), (3, -1));
        assert!(!s.transport.present);
        let s: Status = parse(
            r#"{"account_id":"a","mailbox":"a@x","state":"connected",
                "transport":{"configured":"graph","send":"graph"}}"#,
        )
        .unwrap();
        assert!(
            s.transport.present
                && s.transport.configured == "graph"
                && s.transport.since.is_empty()
        );
        let r = test_report(
            r#"{"schema":1,"ok":false,"results":[],"graph":{"ok":false,"found":{"mailbox_path":"/me",
                "detail":""},"phases_ms":{"token":4,"mailbox":null},"error":{"code":"MC-GRAPH-PERMISSION",
                "kind":"provider_configuration","message":"m"},"elapsed_ms":9}}"#,
        )
        .unwrap();
        assert!(r.graph.present && !r.graph.ok && r.graph.error.present && !r.transport.present);
        assert!(
            r.graph.found.present && !r.graph.found.permissions_known && !r.graph.found.can_send
        );
        let a: Account =
            parse(r#"{"id":"a","mailbox":"m","registration":"r","flow":"browser","options":{}}"#)
                .unwrap();
        assert!(!a.servers.present);
        let reg: Registration =
            parse(r#"{"id":"r","provider":"microsoft","client_id":"c"}"#).unwrap();
        assert!(reg.verify_identity && !reg.has_client_secret);
    }

    /// What core serializes reads back field by field (a renamed field would read as empty).
    #[test]
    fn core_types_read_back_into_the_shared_structs() {
        use mailconnect_core::check::{ErrorReport as CoreErrorReport, TokenPhase};
        use mailconnect_core::check::{
            Phases, ProtocolResult as CoreResult, TestReport as CoreReport,
        };
        use mailconnect_core::{model::Security, ErrorKind, EventKind as Kind};
        let due = mailconnect_core::Event {
            seq: 7,
            time: "2030-01-01T00:00:00.000Z".into(),
            kind: Kind::ReauthorizationDue {
                account_id: "a".into(),
                at: "2030-01-01T01:00:00Z".into(),
                code: "MC-NO-REFRESH-TOKEN",
            },
        };
        let e: Event = parse(&due.to_json()).unwrap();
        assert!(e.kind == EventKind::ReauthorizationDue && e.seq == 7 && e.account_id == "a");
        assert_eq!(
            (e.at.as_str(), e.code.as_str()),
            ("2030-01-01T01:00:00Z", "MC-NO-REFRESH-TOKEN")
        );
        let failure = mailconnect_core::Error::new(ErrorKind::Tls, "handshake failed");
        let lost = mailconnect_core::Event {
            seq: 8,
            time: "t".into(),
            kind: Kind::NeedsReauthorization {
                account_id: "a".into(),
                reason: mailconnect_core::error::ReauthReason::RefreshTokenRevoked,
                diagnostic: failure.diagnostic_json(),
            },
        };
        let e: Event = parse(&lost.to_json()).unwrap();
        assert!(e.kind == EventKind::NeedsReauthorization && e.reason == "refresh_token_revoked");
        assert!(e.diagnostic.present && e.diagnostic.code == "MC-TLS-UNTRUSTED");
        assert!(!e.diagnostic.en.title.is_empty() && !e.diagnostic.de.fix.is_empty());
        assert_eq!(e.diagnostic.kind, "tls");
        let report = CoreReport {
            schema: 1,
            account_id: "a".into(),
            mailbox: "a@x".into(),
            ok: false,
            token: TokenPhase {
                status: "fresh",
                expires_at: Some("2030".into()),
                elapsed_ms: 4,
                error: None,
            },
            results: vec![CoreResult {
                protocol: mailconnect_core::Protocol::Smtp,
                host: "smtp.x".into(),
                port: 587,
                security: Security::Starttls,
                path: "http proxy 10.0.0.5:3128".into(),
                ok: false,
                tls_version: Some("TLSv1.3".into()),
                mechanisms_offered: vec!["XOAUTH2".into()],
                mechanism_used: Some("XOAUTH2".into()),
                retried_with_refreshed_token: true,
                auth_attempts: 2,
                phases_ms: Phases {
                    connect: Some(0),
                    tls: Some(9),
                    auth: Some(12),
                    check: None,
                },
                detail: None,
                error: Some(CoreErrorReport::from(&failure)),
                elapsed_ms: 30,
            }],
            graph: Some(mailconnect_core::check::GraphResult {
                ok: true,
                endpoint: Some("https://graph.microsoft.com/v1.0".into()),
                path: Some("direct".into()),
                found: Some(mailconnect_core::graph::GraphProbe {
                    mailbox_path: "/me".into(),
                    permissions: Some(vec!["Mail.Send".into(), "Mail.ReadWrite".into()]),
                    can_send: Some(true),
                    detail: "3 messages, 1 unread".into(),
                }),
                phases_ms: mailconnect_core::check::GraphPhases {
                    token: Some(12),
                    mailbox: None,
                },
                error: None,
                elapsed_ms: 20,
            }),
            transport: Some(mailconnect_core::account_state::TransportStatus {
                configured: mailconnect_core::model::Transport::Auto,
                send: "graph",
                reason: Some("smtp_auth_disabled"),
                since: Some("2030-01-01T00:00:00Z".into()),
            }),
            probe: None,
            elapsed_ms: 40,
        };
        let r = test_report(&serde_json::to_string(&report).unwrap()).unwrap();
        assert!(!r.ok && r.token.status == "fresh" && !r.token.error.present && !r.probe.present);
        let g = &r.graph;
        assert!(g.present && g.ok && g.found.present && g.found.permissions_known);
        assert!(g.found.can_send && g.found.permissions == ["Mail.Send", "Mail.ReadWrite"]);
        assert_eq!(
            (g.endpoint.as_str(), g.found.mailbox_path.as_str()),
            ("https://graph.microsoft.com/v1.0", "/me")
        );
        assert_eq!(
            (g.phases_ms.token, g.phases_ms.mailbox, g.elapsed_ms),
            (12, -1, 20)
        );
        assert!(!g.error.present && g.found.detail == "3 messages, 1 unread");
        let t = &r.transport;
        assert!(t.present && t.configured == "auto" && t.send == "graph");
        assert_eq!(
            (t.reason.as_str(), t.since.as_str()),
            ("smtp_auth_disabled", "2030-01-01T00:00:00Z")
        );
        let smtp = &r.results[0];
        assert_eq!(
            (smtp.protocol.as_str(), smtp.port, smtp.security.as_str()),
            ("smtp", 587, "starttls")
        );
        assert_eq!(
            (
                smtp.phases_ms.connect,
                smtp.phases_ms.tls,
                smtp.phases_ms.check
            ),
            (0, 9, -1)
        );
        assert!(smtp.retried_with_refreshed_token && smtp.auth_attempts == 2);
        assert!(smtp.error.present && smtp.error.code == "MC-TLS-UNTRUSTED");
        assert!(smtp.error.diagnostic.present && smtp.error.kind == "tls");
        assert_eq!(
            (smtp.path.as_str(), g.path.as_str()),
            ("http proxy 10.0.0.5:3128", "direct")
        );
    }

    /// Registrations, accounts, the status and the refresher's report read through the C ABI.
    #[test]
    fn the_c_abis_answers_read_back_into_the_shared_structs() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = ErrorInfo::default();
        let options = serde_json::json!({ "store": dir.path().join("s.db") }).to_string();
        let c = client_open(&options, &mut e);
        c.registration_put(
            r#"{"id":"r","provider":"microsoft","tenant":"organizations","client_id":"d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90","client_secret":"s"}"#,
            &mut e,
        );
        c.account_put(
            r#"{"id":"a","mailbox":"a@example.test","registration":"r","servers":{"imap":{"host":"imap.example.test","port":993,"security":"tls"}},"options":{"pop3":{"ignore_older_than_days":7}}}"#,
            &mut e,
        );
        assert_eq!(e.code, MC_OK, "{}", e.message);
        let r = c.registration_get("r", &mut e);
        assert!(r.has_client_secret && r.verify_identity && r.scopes.is_empty());
        assert_eq!(
            (r.provider.as_str(), r.tenant.as_str()),
            ("microsoft", "organizations")
        );
        let a = c.account_get("a", &mut e);
        assert!(a.servers.present && a.servers.imap.present && !a.servers.smtp.present);
        assert_eq!(
            (
                a.servers.imap.port,
                a.servers.imap.security.as_str(),
                a.flow.as_str()
            ),
            (993, "tls", "browser")
        );
        assert!(a.options.pop3.leave_on_server && a.options.pop3.ignore_older_than_days == 7);
        assert_eq!(a.transport, "smtp_imap");
        assert_eq!(c.account_list(&mut e).len(), 1);
        assert_eq!(c.registration_list(&mut e)[0].id, "r");
        let s = c.status("a", &mut e);
        assert!(
            s.state == AccountState::NotConnected
                && !s.identity.present
                && s.mailbox == "a@example.test"
        );
        let cancel = cancel_new(&mut e);
        let round = c.refresher_run("", &cancel, &mut e);
        assert_eq!(
            (round.accounts, round.not_connected, round.failed),
            (1, 1, 0)
        );
        assert_eq!(e.code, MC_OK, "{}", e.message);

        let mut e = ErrorInfo::default();
        c.access_token("a", &cancel, &mut e);
        assert_eq!(
            (e.code, e.diagnostic.code.as_str()),
            (MC_E_STATE, "MC-NOT-CONNECTED")
        );
        let mut e = ErrorInfo::default();
        c.registration_remove("r", &mut e);
        assert_eq!((e.code, e.name.as_str()), (MC_E_STATE, "MC_E_STATE"));
        let mut e = ErrorInfo::default();
        c.account_get("nobody", &mut e);
        assert_eq!(
            (e.code, e.diagnostic.status.as_str()),
            (MC_E_NOT_FOUND, "MC_E_NOT_FOUND")
        );
        let mut e = ErrorInfo::default();
        c.fetch(
            "a",
            &FetchRequest {
                protocol: "smoke signals".into(),
                ..Default::default()
            },
            &cancel,
            &mut e,
        );
        assert_eq!(e.code, MC_E_INVALID_ARGUMENT, "{}", e.message);
    }

    #[test]
    fn a_message_spec_becomes_the_c_abis_message_json() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(&[0, 255, 254, 1]), "AP/+AQ==");
        let addr = |address: &str, name: &str| MailAddress {
            address: address.into(),
            name: name.into(),
        };
        let m = MessageSpec {
            from: addr("me@example.test", "Me \"Boss\""),
            to: vec![
                addr("a@example.test", ""),
                addr("b@example.test", "Bernd Groß"),
            ],
            subject: "Rechnung für März".into(),
            html: "<p>Hallo</p>".into(),
            attachments: vec![
                bridge::Attachment {
                    content: vec![0, 255],
                    content_id: "img1".into(),
                    content_type: "image/png".into(),
                    ..Default::default()
                },
                bridge::Attachment {
                    path: "/tmp/x.pdf".into(),
                    file_name: "Übersicht.pdf".into(),
                    ..Default::default()
                },
            ],
            headers: vec![bridge::MailHeader {
                name: "X-A".into(),
                value: "1".into(),
            }],
            importance: "high".into(),
            read_receipt: true,
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::from_str(&message_json(&m)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "from": {"name": "Me \"Boss\"", "address": "me@example.test"},
                "to": ["a@example.test", {"name": "Bernd Groß", "address": "b@example.test"}],
                "subject": "Rechnung für März",
                "html": "<p>Hallo</p>",
                "attachments": [
                    {"content_base64": "AP8=", "content_type": "image/png", "content_id": "img1"},
                    {"path": "/tmp/x.pdf", "file_name": "Übersicht.pdf"}
                ],
                "headers": [{"name": "X-A", "value": "1"}],
                "importance": "high",
                "read_receipt": true
            })
        );
        // What core's message builder reads (it refuses unknown fields).
        let spec: mailconnect_core::compose::MessageSpec =
            serde_json::from_value(v).expect("core reads the bridge's message JSON");
        assert_eq!(spec.to.len(), 2);
        let empty = message_json(&MessageSpec::default());
        assert_eq!(empty, r#"{"subject":""}"#);
        let q = fetch_query(&FetchRequest {
            unread_only: true,
            transport: "graph".into(),
            ..Default::default()
        });
        let q: mailconnect_core::mail::FetchRequest = serde_json::from_str(&q).unwrap();
        assert!(q.unread_only && q.transport == Some(mailconnect_core::model::Transport::Graph));
    }

    /// send_message and graph_token through the C ABI without a server: refusals only.
    #[test]
    fn send_message_and_graph_token_refuse_through_the_c_abi() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = ErrorInfo::default();
        let options = serde_json::json!({ "store": dir.path().join("s.db") }).to_string();
        let c = client_open(&options, &mut e);
        c.registration_put(
            r#"{"id":"r","provider":"microsoft","client_id":"d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90"}"#,
            &mut e,
        );
        c.account_put(
            r#"{"id":"a","mailbox":"a@example.test","registration":"r","transport":"auto"}"#,
            &mut e,
        );
        assert_eq!(e.code, MC_OK, "{}", e.message);
        assert_eq!(c.account_get("a", &mut e).transport, "auto");
        let cancel = cancel_new(&mut e);
        let m = MessageSpec {
            subject: "Rechnung für März".into(),
            ..Default::default()
        };
        let r = c.send_message("a", &m, &cancel, &mut e);
        assert_eq!(e.code, MC_E_INVALID_ARGUMENT, "{}", e.message);
        assert_eq!(e.diagnostic.evidence.field, "to");
        assert!(r.message_id.is_empty());
        let mut e = ErrorInfo::default();
        c.graph_token("a", &cancel, &mut e);
        assert_eq!(
            (e.code, e.diagnostic.code.as_str()),
            (MC_E_STATE, "MC-NOT-CONNECTED")
        );
    }

    /// The stored proxy through the C ABI: set with a password, read back typed without it (the
    /// object form too), a bad setting refused, cleared.
    #[test]
    fn the_proxy_is_stored_and_read_back_without_its_password() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = ErrorInfo::default();
        let options = serde_json::json!({ "store": dir.path().join("s.db") }).to_string();
        let c = client_open(&options, &mut e);
        let p = c.proxy_get(&mut e);
        assert_eq!(e.code, MC_OK, "{}", e.message);
        assert!(!p.stored.present && p.source == "environment");
        c.proxy_set("http://al:Pr0xy-Secret@127.0.0.1:3128", &mut e);
        assert_eq!(e.code, MC_OK, "{}", e.message);
        let p = c.proxy_get(&mut e);
        assert_eq!((p.source.as_str(), p.stored.present), ("stored", true));
        assert_eq!(p.stored.url, "http://al@127.0.0.1:3128");
        assert!(p.stored.has_password && p.stored.no_proxy.is_empty());
        c.proxy_set(
            r#"{"url":"http://127.0.0.1:3128","smtp":"direct","username":"al","password":"Pr0xy-Secret","no_proxy":[".example.test"]}"#,
            &mut e,
        );
        let p = c.proxy_get(&mut e);
        assert_eq!(e.code, MC_OK, "{}", e.message);
        assert_eq!(
            (
                p.stored.url.as_str(),
                p.stored.smtp.as_str(),
                p.stored.username.as_str()
            ),
            ("http://127.0.0.1:3128", "direct", "al")
        );
        assert!(p.stored.has_password && p.stored.no_proxy == [".example.test"]);
        let mut e = ErrorInfo::default();
        c.proxy_set("gopher://127.0.0.1:70", &mut e);
        assert_eq!(e.code, MC_E_INVALID_ARGUMENT, "{}", e.message);
        let mut e = ErrorInfo::default();
        assert_eq!(c.proxy_get(&mut e).stored.username, "al");
        c.proxy_clear(&mut e);
        let p = c.proxy_get(&mut e);
        assert_eq!(e.code, MC_OK, "{}", e.message);
        assert!(!p.stored.present && p.source == "environment" && p.stored.url.is_empty());
    }

    #[test]
    fn failures_carry_the_c_abis_last_error() {
        let mut e = ErrorInfo::default();
        let c = client_open("{not json", &mut e);
        assert!(c.raw.is_null());
        assert_eq!(
            (e.code, e.name.as_str()),
            (MC_E_INVALID_ARGUMENT, "MC_E_INVALID_ARGUMENT")
        );
        assert!(e.diagnostic.present && !e.diagnostic.code.is_empty() && !e.message.is_empty());
        let mut e = ErrorInfo::default();
        client_open("a\0b", &mut e);
        assert_eq!(e.code, MC_E_INVALID_ARGUMENT);
        assert_eq!(e.diagnostic.evidence.field, "options_json");
    }
}
