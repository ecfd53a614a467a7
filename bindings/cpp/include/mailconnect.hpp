// mailconnect for C++17, over the cxx bridge built into libmailconnect (feature "cxx").
//
// Results are typed structs that cross the bridge as they are (ffi/src/cxx_bridge.rs: Status,
// TestReport, Folder, Message, Event, Authorization, Account, Registration, RefreshReport,
// SendResult, ProxyInfo, ...; strings are rust::String, lists rust::Vec or std::vector); so do the inputs
// FetchRequest and MessageSpec (a message mailconnect builds and sends over the account's
// transport, SMTP or Microsoft Graph). Failures throw mailconnect::Error
// with code(), name(), message() and the parsed diagnostic(). RAII client and cancellation
// token; callbacks as std::function (they run on mailconnect threads). The MC_* constants come
// from the C headers (include/mailconnect.h, mailconnect_store.h), which this header includes.
// Tenant setup for a vendor's setup wizard: admin_register creates the app registration through
// Microsoft Graph with one administrator sign-in, admin_check reads one back; both take and return
// the C ABI's JSON.
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "mailconnect-ffi/src/cxx_bridge.rs.h"

namespace mailconnect {

// The typed results: the bridge's shared structs (fields documented in ffi/src/cxx_bridge.rs and
// in the generated header). Absent strings are empty, absent numbers 0 (test phases: -1), absent
// nested structs have `present == false`.
using ErrorInfo = ffi::ErrorInfo;
using Diagnostic = ffi::Diagnostic;
using Evidence = ffi::Evidence;
using OAuthError = ffi::OAuthError;
using Texts = ffi::Texts;
using AccountState = ffi::AccountState;
using Identity = ffi::Identity;
using ReauthorizationDue = ffi::ReauthorizationDue;
using Status = ffi::Status;
using TestReport = ffi::TestReport;
using TokenPhase = ffi::TokenPhase;
using ProtocolResult = ffi::ProtocolResult;
using Phases = ffi::Phases;
using ProbeResult = ffi::ProbeResult;
using ErrorReport = ffi::ErrorReport;
using Folder = ffi::Folder;
using Message = ffi::Message;
using FetchRequest = ffi::FetchRequest;
using Authorization = ffi::Authorization;
using PollResult = ffi::PollResult;
using EventKind = ffi::EventKind;
using Event = ffi::Event;
using RefreshReport = ffi::RefreshReport;
using Registration = ffi::Registration;
using Account = ffi::Account;
using Servers = ffi::Servers;
using ServerConfig = ffi::ServerConfig;
using AccountOptions = ffi::AccountOptions;
using Pop3Options = ffi::Pop3Options;
using TransportStatus = ffi::TransportStatus;
using GraphResult = ffi::GraphResult;
using GraphFound = ffi::GraphFound;
using GraphPhases = ffi::GraphPhases;
using MailAddress = ffi::MailAddress;
using Attachment = ffi::Attachment;
using MailHeader = ffi::MailHeader;
using MessageSpec = ffi::MessageSpec;
using SendResult = ffi::SendResult;
using ProxyInfo = ffi::ProxyInfo;
using StoredProxy = ffi::StoredProxy;

/// A failed call. code() is the negative MC_E_* status (MC_E_NOT_FOUND, ...), name() its name,
/// message() what was being done and why, diagnostic() the catalog entry (code such as
/// "MC-NOT-CONNECTED", category, fixer, en/de title, explanation and fix, links) and the evidence
/// (OAuth error with AADSTS codes and trace ids, HTTP status, server reply, SASL challenge, field).
class Error : public std::runtime_error {
public:
    explicit Error(ErrorInfo info)
        : std::runtime_error(std::string(info.name) + ": " + std::string(info.message)),
          info_(std::make_shared<const ErrorInfo>(std::move(info))) {}
    int code() const noexcept { return info_->code; }
    std::string name() const { return std::string(info_->name); }
    std::string message() const { return std::string(info_->message); }
    const Diagnostic &diagnostic() const noexcept { return info_->diagnostic; }
    const ErrorInfo &info() const noexcept { return *info_; }

private:
    std::shared_ptr<const ErrorInfo> info_;
};

namespace detail {
/// Run a bridge call that reports failures in its ErrorInfo out-parameter; throw them as Error.
template <typename F>
auto call(F &&f) -> decltype(f(std::declval<ErrorInfo &>())) {
    ErrorInfo e;
    if constexpr (std::is_void_v<decltype(f(e))>) {
        f(e);
        if (e.code != 0) throw Error(std::move(e));
    } else {
        auto r = f(e);
        if (e.code != 0) throw Error(std::move(e));
        return r;
    }
}
template <typename T>
std::vector<T> vec(rust::Vec<T> v) {
    std::vector<T> out;
    out.reserve(v.size());
    for (auto &x : v) out.push_back(std::move(x));
    return out;
}
inline rust::Slice<const std::uint8_t> bytes(const std::string &s) {
    return rust::Slice<const std::uint8_t>(reinterpret_cast<const std::uint8_t *>(s.data()), s.size());
}
}  // namespace detail

/// The library version ("0.1.0") and its ABI version (MC_ABI_VERSION).
inline std::string version() { return std::string(ffi::version()); }
inline std::uint32_t abi_version() { return ffi::abi_version(); }
/// The name of a status code ("MC_E_TIMEOUT").
inline std::string result_name(int code) { return std::string(ffi::result_name(code)); }

/// The JSON spelling of a state ("needs_reauthorization") or event kind ("token_refreshed").
inline const char *to_string(AccountState s) {
    switch (s) {
        case AccountState::NotConnected: return "not_connected";
        case AccountState::Connected: return "connected";
        case AccountState::NeedsReauthorization: return "needs_reauthorization";
        case AccountState::Error: return "error";
        default: return "unknown";
    }
}
inline const char *to_string(EventKind k) {
    switch (k) {
        case EventKind::TokenRefreshed: return "token_refreshed";
        case EventKind::NeedsReauthorization: return "needs_reauthorization";
        case EventKind::ReauthorizationDue: return "reauthorization_due";
        case EventKind::ConnectProgress: return "connect_progress";
        case EventKind::StateChanged: return "state_changed";
        case EventKind::Log: return "log";
        case EventKind::EventsDropped: return "events_dropped";
        default: return "unknown";
    }
}
/// An address for MessageSpec (name "" = none; non-ASCII names are encoded as mail needs).
inline MailAddress address(const std::string &addr, const std::string &name = "") {
    MailAddress a;
    a.address = addr;
    a.name = name;
    return a;
}
/// An attachment read from a file while sending (file_name "": the file's own name; content_type
/// "": application/octet-stream).
inline Attachment attachment_from_file(const std::string &path, const std::string &file_name = "", const std::string &content_type = "") {
    Attachment a;
    a.path = path;
    a.file_name = file_name;
    a.content_type = content_type;
    return a;
}
/// An attachment from bytes; with a content_id an inline part the HTML body shows as cid:<content_id>.
inline Attachment attachment_from_bytes(const std::string &bytes, const std::string &file_name, const std::string &content_type = "",
                                        const std::string &content_id = "") {
    Attachment a;
    a.content.reserve(bytes.size());
    for (unsigned char b : bytes) a.content.push_back(b);
    a.file_name = file_name;
    a.content_type = content_type;
    a.content_id = content_id;
    return a;
}
/// An extra header for MessageSpec::headers.
inline MailHeader header(const std::string &name, const std::string &value) {
    MailHeader h;
    h.name = name;
    h.value = value;
    return h;
}

/// A fetched message's bytes as a string.
inline std::string raw_string(const Message &m) { return std::string(reinterpret_cast<const char *>(m.raw.data()), m.raw.size()); }

enum Protocol : std::uint32_t { All = 0, Imap = MC_PROTO_IMAP, Pop3 = MC_PROTO_POP3, Smtp = MC_PROTO_SMTP, SendProbe = MC_TEST_SEND_PROBE };

enum class LogLevel : std::int32_t {
    Off = MC_LOG_OFF,
    Error = MC_LOG_ERROR,
    Warn = MC_LOG_WARN,
    Info = MC_LOG_INFO,
    Debug = MC_LOG_DEBUG,
    Trace = MC_LOG_TRACE
};
using LogFn = std::function<void(LogLevel level, const std::string &target, const std::string &message)>;

/// Receive mailconnect's log records at or above `max_level`, process-wide (replaces the previous
/// sink; an empty function or LogLevel::Off stops forwarding). The sink runs on the thread that
/// logs, possibly several at once, and must not call mailconnect; its exceptions are swallowed.
/// Records never contain tokens or secrets.
inline void set_log_sink(LogFn sink, LogLevel max_level) {
    std::unique_ptr<ffi::LogSink> p;
    if (sink && max_level != LogLevel::Off)
        p = std::make_unique<ffi::LogSink>([sink = std::move(sink)](std::int32_t level, const std::string &target, const std::string &message) {
            sink(static_cast<LogLevel>(level), target, message);
        });
    detail::call([&](ErrorInfo &e) { ffi::log_callback_set(std::move(p), static_cast<std::int32_t>(max_level), e); });
}

/// Callbacks for connect; each may be empty. They run on a mailconnect thread.
using Events = ffi::Events;

/// A cancellation token: pass it to a blocking call and cancel() it from any thread. A cancelled
/// token stays cancelled.
class Cancel {
public:
    Cancel() : inner_(detail::call([](ErrorInfo &e) { return ffi::cancel_new(e); })) {}
    void cancel() const { inner_->trigger(); }
    const ffi::CxxCancel &native() const { return *inner_; }

private:
    rust::Box<ffi::CxxCancel> inner_;
};

/// A mailconnect client over one token store. Thread-safe; calls block. Every blocking call takes
/// an optional Cancel.
class Client {
public:
    /// Open a client (options: README "Client options").
    explicit Client(const std::string &options_json)
        : inner_(detail::call([&](ErrorInfo &e) { return ffi::client_open(options_json, e); })) {
        check_abi();
    }
    /// Open a client on a host-owned store (mailconnect_store.h): `store` and what it points to
    /// must stay valid until the client is destroyed.
    Client(const std::string &options_json, const mc_store_callbacks &store)
        : inner_(detail::call([&](ErrorInfo &e) { return ffi::client_open_with_store(options_json, &store, e); })) {
        check_abi();
    }
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;

    // Registrations and accounts: put as JSON (README "Accounts and registrations"), read as structs.

    void put_registration(const std::string &json) { detail::call([&](ErrorInfo &e) { inner_->registration_put(json, e); }); }
    Registration registration(const std::string &id) { return detail::call([&](ErrorInfo &e) { return inner_->registration_get(id, e); }); }
    std::vector<Registration> registrations() { return detail::vec(detail::call([&](ErrorInfo &e) { return inner_->registration_list(e); })); }
    void remove_registration(const std::string &id) { detail::call([&](ErrorInfo &e) { inner_->registration_remove(id, e); }); }
    void put_account(const std::string &json) { detail::call([&](ErrorInfo &e) { inner_->account_put(json, e); }); }
    Account account(const std::string &id) { return detail::call([&](ErrorInfo &e) { return inner_->account_get(id, e); }); }
    std::vector<Account> accounts() { return detail::vec(detail::call([&](ErrorInfo &e) { return inner_->account_list(e); })); }
    void remove_account(const std::string &id) { detail::call([&](ErrorInfo &e) { inner_->account_remove(id, e); }); }
    /// The account's status, from the store only.
    Status status(const std::string &id) { return detail::call([&](ErrorInfo &e) { return inner_->status(id, e); }); }

    // Network.

    /// Store the proxy every connection takes (identity provider, Graph, IMAP, POP3, SMTP), sealed
    /// in the store with its password, and use it at once: in this client whatever it was opened
    /// with, and in every client opened later on the same store without a "proxy" or "no_proxy"
    /// option. `proxy`: a URL ("http://user:password@host:3128", "socks5://...", "socks5h://..."),
    /// "direct", or a JSON object (url, https, imap, pop3, smtp, username, password, no_proxy).
    /// Blocks while the store is written; not from a mailconnect callback. Throws
    /// MC_E_INVALID_ARGUMENT (not a proxy; the message never repeats a password) or MC_E_STORE;
    /// then nothing is stored and the client keeps its path.
    void set_proxy(const std::string &proxy) { detail::call([&](ErrorInfo &e) { inner_->proxy_set(proxy, e); }); }
    /// Remove the stored proxy: this client goes back to its options, else the environment.
    void clear_proxy() { detail::call([&](ErrorInfo &e) { inner_->proxy_clear(e); }); }
    /// The proxy settings: source ("no_proxy_option", "option", "stored", "environment"), the stored
    /// setting without any password (stored.present, stored.url, stored.has_password, ...) and
    /// whether proxy environment variables are set. Throws MC_E_STORE when the stored setting
    /// cannot be opened (another key).
    ProxyInfo proxy() { return detail::call([&](ErrorInfo &e) { return inner_->proxy_get(e); }); }

    // Connect, use, disconnect.

    void connect(const std::string &id, const Events &events, const Cancel &cancel = Cancel()) {
        detail::call([&](ErrorInfo &e) { inner_->connect(id, events, cancel.native(), e); });
    }
    void disconnect(const std::string &id, const Cancel &cancel = Cancel()) {
        detail::call([&](ErrorInfo &e) { inner_->disconnect(id, cancel.native(), e); });
    }
    /// Test the token and the servers (`protocols`: Protocol bits, 0 = all configured); server
    /// failures are in the report (check `ok`), not thrown.
    TestReport test(const std::string &id, std::uint32_t protocols = All, const Cancel &cancel = Cancel()) {
        return detail::call([&](ErrorInfo &e) { return inner_->test(id, protocols, cancel.native(), e); });
    }

    // Tenant setup (a vendor's setup wizard).

    /// Create the app registration mailconnect needs through Microsoft Graph with one
    /// administrator sign-in to the vendor's setup registration (mc_admin_register), store it and
    /// read it back. `options_json`: {"setup_registration": "...", "registration_id": "...",
    /// "display_name", "flow": "browser" | "device_code", "login_hint", "graph": bool,
    /// "app_only": bool, "secret_days": 1..730, "replace": bool} (the first two required).
    /// `events` as for connect (on mailconnect threads; must outlive the call); without them the
    /// system browser opens and a device code goes to the log. Returns the report JSON:
    /// tenant_id, tenant_name, client_id, registration_id, app_registration_id, secret_expires,
    /// steps, exchange_steps and findings (empty when everything is as needed); the client secret
    /// is stored sealed and is in no output. Blocks; not from a mailconnect callback. Throws
    /// MC_E_INVALID_ARGUMENT (options, an existing registration id without "replace"),
    /// MC_E_NOT_FOUND (the setup registration), MC_E_AUTHORIZATION_DENIED (declined, or too few
    /// rights: diagnostic code MC-SETUP-INSUFFICIENT-PRIVILEGES), MC_E_PROVIDER_CONFIGURATION,
    /// MC_E_TIMEOUT, MC_E_CANCELLED, MC_E_NETWORK, MC_E_TLS, MC_E_PROVIDER_UNAVAILABLE, MC_E_STORE.
    std::string admin_register(const std::string &options_json, const Events &events, const Cancel &cancel = Cancel()) {
        return admin_register_(options_json, &events, cancel);
    }
    std::string admin_register(const std::string &options_json, const Cancel &cancel = Cancel()) {
        return admin_register_(options_json, nullptr, cancel);
    }
    /// Read the stored registration `registration_id` back through Microsoft Graph (an
    /// administrator signs in to the setup registration; mc_admin_check) and report every
    /// deviation from what mailconnect needs, each with the catalog code the sign-in would fail
    /// with. `options_json`: {"setup_registration": "...", "flow", "login_hint", "graph": bool,
    /// "app_only": bool}. `events` as for admin_register. Returns the report JSON:
    /// registration_id, client_id, tenant_id, display_name, graph, app_only, findings (errors
    /// first) and ok; deviations are in the report, not thrown. Throws as admin_register, and
    /// MC_E_NOT_FOUND for an unknown registration_id.
    std::string admin_check(const std::string &registration_id, const std::string &options_json, const Events &events,
                            const Cancel &cancel = Cancel()) {
        return admin_check_(registration_id, options_json, &events, cancel);
    }
    std::string admin_check(const std::string &registration_id, const std::string &options_json, const Cancel &cancel = Cancel()) {
        return admin_check_(registration_id, options_json, nullptr, cancel);
    }
    std::string access_token(const std::string &id, const Cancel &cancel = Cancel()) {
        return std::string(detail::call([&](ErrorInfo &e) { return inner_->access_token(id, cancel.native(), e); }));
    }
    std::string sasl_xoauth2(const std::string &id, const Cancel &cancel = Cancel()) {
        return std::string(detail::call([&](ErrorInfo &e) { return inner_->sasl_xoauth2(id, cancel.native(), e); }));
    }
    /// A Microsoft Graph access token (audience https://graph.microsoft.com) for your own Graph
    /// calls, refreshed like the mail token. A secret: never log it. Microsoft registrations only
    /// (else MC_E_INVALID_ARGUMENT); missing consent for Mail.Send / Mail.ReadWrite throws with a
    /// diagnostic that says which.
    std::string graph_token(const std::string &id, const Cancel &cancel = Cancel()) {
        return std::string(detail::call([&](ErrorInfo &e) { return inner_->graph_token(id, cancel.native(), e); }));
    }
    /// Build `message` and send it over the account's transport: SMTP, Microsoft Graph, or "auto"
    /// (SMTP until the server says SMTP AUTH is disabled, then Graph). Sent at most once. A bad
    /// message throws MC_E_INVALID_ARGUMENT before anything is sent, naming the field in
    /// diagnostic().evidence.field ("to" without recipients, "attachments[1].path", ...).
    SendResult send_message(const std::string &id, const MessageSpec &message, const Cancel &cancel = Cancel()) {
        return detail::call([&](ErrorInfo &e) { return inner_->send_message(id, message, cancel.native(), e); });
    }
    /// Send a ready RFC 5322 message over SMTP (envelope from the header; Bcc removed).
    void send(const std::string &id, const std::string &rfc5322, const Cancel &cancel = Cancel()) {
        detail::call([&](ErrorInfo &e) { inner_->send(id, detail::bytes(rfc5322), cancel.native(), e); });
    }
    std::vector<Folder> folders(const std::string &id, const Cancel &cancel = Cancel()) {
        return detail::vec(detail::call([&](ErrorInfo &e) { return inner_->folders(id, cancel.native(), e); }));
    }
    /// Fetch messages; set only the FetchRequest fields you need (protocol "imap" or "pop3", folder,
    /// uid_from/uid_to, since "YYYY-MM-DD", headers_only, limit, mark_seen, unread_only, transport
    /// "graph" to read over Microsoft Graph or "smtp_imap"; "" = the account's).
    std::vector<Message> fetch(const std::string &id, const FetchRequest &query = FetchRequest(), const Cancel &cancel = Cancel()) {
        return detail::vec(detail::call([&](ErrorInfo &e) { return inner_->fetch(id, query, cancel.native(), e); }));
    }

    // The host's own sign-in window.

    /// Begin a sign-in the host shows itself. flow: "browser", "device" or "" (the account's).
    /// redirect_uri (browser): a loopback URI (mailconnect listens; "" = the registration's) or a
    /// registered URI your web view intercepts, such as https://login.microsoftonline.com/common/oauth2/nativeclient.
    Authorization begin_authorization(const std::string &account_id, const std::string &flow = "", const std::string &redirect_uri = "",
                                      const Cancel &cancel = Cancel()) {
        return detail::call([&](ErrorInfo &e) { return inner_->authorization_begin(account_id, flow, redirect_uri, cancel.native(), e); });
    }
    /// Finish a browser sign-in with the redirect URL your web view captured; returns the status.
    Status complete_authorization(const Authorization &a, const std::string &redirect, const Cancel &cancel = Cancel()) {
        return detail::call([&](ErrorInfo &e) { return inner_->authorization_complete(a.handle, redirect, cancel.native(), e); });
    }
    /// Check a device-code sign-in once.
    PollResult poll_authorization(const Authorization &a, const Cancel &cancel = Cancel()) {
        return detail::call([&](ErrorInfo &e) { return inner_->authorization_poll(a.handle, cancel.native(), e); });
    }
    /// Block until the sign-in finishes (loopback redirect, or device code entered); returns the status.
    Status wait_authorization(const Authorization &a, const Cancel &cancel = Cancel()) {
        return detail::call([&](ErrorInfo &e) { return inner_->authorization_wait(a.handle, cancel.native(), e); });
    }
    /// Abandon a pending sign-in (the user closed the window).
    void abort_authorization(const Authorization &a) { detail::call([&](ErrorInfo &e) { inner_->authorization_abort(a.handle, e); }); }

    // Events.

    /// Queue size (2..100000; 0 = default 1024) and the level from which log records become events
    /// ("error" .. "trace"; "off"; "" = unchanged default off).
    void configure_events(std::uint32_t capacity = 0, const std::string &log_level = "") {
        detail::call([&](ErrorInfo &e) { inner_->events_configure(capacity, log_level, e); });
    }
    /// The next event, waiting up to `timeout` (0: do not wait; negative: until one arrives); nothing
    /// when none came in time.
    std::optional<Event> next_event(std::chrono::milliseconds timeout) {
        auto ms = timeout.count() < 0 ? std::int64_t{-1}
                                      : std::min<std::int64_t>(timeout.count(), std::numeric_limits<std::int32_t>::max());
        Event ev;
        if (!detail::call([&](ErrorInfo &e) { return inner_->next_event(static_cast<std::int32_t>(ms), ev, e); })) return std::nullopt;
        return ev;
    }

    // The background refresher (options: mc_refresher_start's JSON; "" = defaults).

    void start_refresher(const std::string &options_json = "") { detail::call([&](ErrorInfo &e) { inner_->refresher_start(options_json, e); }); }
    void stop_refresher() { detail::call([&](ErrorInfo &e) { inner_->refresher_stop(e); }); }
    /// One refresher round on this thread (for a host's own timer).
    RefreshReport run_refresher(const std::string &options_json = "", const Cancel &cancel = Cancel()) {
        return detail::call([&](ErrorInfo &e) { return inner_->refresher_run(options_json, cancel.native(), e); });
    }

private:
    static void check_abi() {
        if (ffi::abi_version() != MC_ABI_VERSION) {
            ErrorInfo e;
            e.code = MC_E_INTERNAL;
            e.name = "MC_E_INTERNAL";
            e.message = "libmailconnect has another ABI version than mailconnect.hpp was built for";
            throw Error(std::move(e));
        }
    }

    std::string admin_register_(const std::string &options_json, const Events *events, const Cancel &cancel) {
        return std::string(
            detail::call([&](ErrorInfo &e) { return inner_->admin_register(options_json, events, cancel.native(), e); }));
    }
    std::string admin_check_(const std::string &registration_id, const std::string &options_json, const Events *events,
                             const Cancel &cancel) {
        return std::string(detail::call(
            [&](ErrorInfo &e) { return inner_->admin_check(registration_id, options_json, events, cancel.native(), e); }));
    }

    rust::Box<ffi::CxxClient> inner_;
};

/// A thread that takes the client's events and calls `on_event` for each, on that thread (marshal to
/// your UI thread yourself). RAII: the destructor (or stop()) ends it within a quarter second; destroy
/// it before its Client (declare it after the Client). Exceptions thrown by `on_event` are swallowed.
class EventListener {
public:
    EventListener(Client &client, std::function<void(const Event &)> on_event)
        : client_(client), on_event_(std::move(on_event)), thread_([this] { run(); }) {}
    EventListener(const EventListener &) = delete;
    EventListener &operator=(const EventListener &) = delete;
    ~EventListener() { stop(); }

    /// Stop and join the thread (idempotent; not from inside on_event).
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }

private:
    void run() {
        while (!stop_) {
            std::optional<Event> e;
            try {
                // Slices of 250 ms: stop() is noticed promptly.
                e = client_.next_event(std::chrono::milliseconds(250));
            } catch (...) {
                std::this_thread::sleep_for(std::chrono::milliseconds(250));
                continue;
            }
            if (!e) continue;
            try {
                on_event_(*e);
            } catch (...) {
            }
        }
    }

    Client &client_;
    std::function<void(const Event &)> on_event_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace mailconnect
