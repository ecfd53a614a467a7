// mailconnect for C++17, over the cxx bridge built into libmailconnect (feature "cxx").
// RAII client, std::string in and out, errors as mailconnect::Error (code, status, diagnostic),
// callbacks as std::function (they run on mailconnect threads). Host integration: the host's own
// sign-in window (begin_authorization ... as structs), events (next_event, EventListener thread).
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "mailconnect-ffi/src/cxx_bridge.rs.h"

namespace mailconnect {

/// A failed call: status name (e.g. "MC_E_REAUTHORIZATION_REQUIRED"), message and the
/// diagnostic JSON (catalog code, en/de title, explanation and fix, evidence).
class Error : public std::runtime_error {
public:
    Error(int code, std::string status, const std::string &message, std::string diagnostic)
        : std::runtime_error(status + ": " + message), code_(code), status_(std::move(status)), diagnostic_(std::move(diagnostic)) {}
    /// The negative MC_E_* code.
    int code() const noexcept { return code_; }
    const std::string &status() const noexcept { return status_; }
    const std::string &diagnostic() const noexcept { return diagnostic_; }

private:
    int code_;
    std::string status_, diagnostic_;
};

namespace detail {
template <typename F>
auto call(F &&f) -> decltype(f()) {
    try {
        return f();
    } catch (const rust::Error &e) {
        std::string what = e.what();
        auto a = what.find('\x1f');
        auto b = a == std::string::npos ? a : what.find('\x1f', a + 1);
        auto c = b == std::string::npos ? b : what.find('\x1f', b + 1);
        if (c == std::string::npos) throw Error(-99, "MC_E_INTERNAL", what, "{}");
        throw Error(std::atoi(what.substr(0, a).c_str()), what.substr(a + 1, b - a - 1), what.substr(b + 1, c - b - 1), what.substr(c + 1));
    }
}
inline std::string str(rust::String s) { return std::string(s); }
}  // namespace detail

enum Protocol : std::uint32_t { All = 0, Imap = 1, Pop3 = 2, Smtp = 4, SendProbe = 0x100 };

/// Callbacks for connect; each may be empty. They run on a mailconnect thread.
using Events = ffi::Events;

/// A sign-in begun with Client::begin_authorization: what the host shows. Browser flow: show `url`;
/// `loopback` says whether mailconnect listens on `redirect_uri` (then wait_authorization) or your web
/// view must capture the redirect (then complete_authorization). Device flow (`flow == "device_code"`):
/// show `message` (or `user_code` and `verification_uri`), then poll_authorization / wait_authorization.
struct Authorization {
    std::string handle, account_id, flow;
    std::string url, redirect_uri;  // browser
    bool loopback = false;          // browser
    std::string user_code, verification_uri, verification_uri_complete, message;  // device
    std::chrono::seconds interval{0};                                             // device
    std::string expires_at;  // RFC 3339
    std::chrono::seconds expires_in{0};
    std::string json;
    bool is_device_code() const { return flow == "device_code"; }
};

/// One check of a device-code sign-in.
struct PollResult {
    bool connected = false;
    std::chrono::milliseconds retry_after{0};  // pending: poll again after this
    std::string status;                        // connected: the status JSON
};

/// An event of the client's queue. `type`: "token_refreshed", "needs_reauthorization",
/// "connect_progress", "state_changed", "log", "events_dropped"; fields of other types are empty.
struct Event {
    std::uint64_t seq = 0;
    std::string time, type, account_id;
    std::string stage;               // connect_progress
    std::string from, to;            // state_changed
    std::string reason, diagnostic;  // needs_reauthorization (diagnostic: JSON)
    std::string expires_at;          // token_refreshed
    std::string level, target, message;  // log
    std::uint64_t count = 0;         // events_dropped
    std::string json;
};

/// A cancellation token: pass it to a blocking call and cancel() it from any thread.
class Cancel {
public:
    Cancel() : inner_(detail::call([] { return ffi::cancel_new(); })) {}
    void cancel() const { inner_->trigger(); }
    const ffi::CxxCancel &native() const { return *inner_; }

private:
    rust::Box<ffi::CxxCancel> inner_;
};

/// A mailconnect client over one token store. Thread-safe; calls block.
class Client {
public:
    explicit Client(const std::string &options_json)
        : inner_(detail::call([&] { return ffi::client_open(options_json); })) {
        if (ffi::abi_version() != 1) throw Error(-99, "MC_E_INTERNAL", "libmailconnect ABI version mismatch", "{}");
    }
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;

    void put_registration(const std::string &json) { detail::call([&] { inner_->put_registration(json); }); }
    void put_account(const std::string &json) { detail::call([&] { inner_->put_account(json); }); }
    std::string status(const std::string &id) { return detail::call([&] { return detail::str(inner_->status(id)); }); }
    void connect(const std::string &id, const Events &events) { detail::call([&] { inner_->connect(id, events); }); }
    void disconnect(const std::string &id) { detail::call([&] { inner_->disconnect(id); }); }
    std::string test(const std::string &id, std::uint32_t protocols = All) {
        return detail::call([&] { return detail::str(inner_->test(id, protocols)); });
    }
    std::string access_token(const std::string &id) { return detail::call([&] { return detail::str(inner_->access_token(id)); }); }
    std::string sasl_xoauth2(const std::string &id) { return detail::call([&] { return detail::str(inner_->sasl_xoauth2(id)); }); }
    void send(const std::string &id, const std::string &rfc5322) {
        detail::call([&] {
            inner_->send(id, rust::Slice<const std::uint8_t>(reinterpret_cast<const std::uint8_t *>(rfc5322.data()), rfc5322.size()));
        });
    }
    std::string fetch(const std::string &id, const std::string &query_json = "{}") {
        return detail::call([&] { return detail::str(inner_->fetch(id, query_json)); });
    }
    std::string folders(const std::string &id) { return detail::call([&] { return detail::str(inner_->folders(id)); }); }

    // The host's own sign-in window.

    /// Begin a sign-in the host shows itself. flow: "browser", "device" or "" (the account's).
    /// redirect_uri (browser): a loopback URI (mailconnect listens; "" = the registration's) or a
    /// registered URI your web view intercepts, such as https://login.microsoftonline.com/common/oauth2/nativeclient.
    Authorization begin_authorization(const std::string &account_id, const std::string &flow = "", const std::string &redirect_uri = "") {
        return detail::call([&] {
            ffi::Authorization a = inner_->authorization_begin(account_id, flow, redirect_uri);
            Authorization r;
            r.handle = std::string(a.handle);
            r.account_id = std::string(a.account_id);
            r.flow = std::string(a.flow);
            r.url = std::string(a.url);
            r.redirect_uri = std::string(a.redirect_uri);
            r.loopback = a.loopback;
            r.user_code = std::string(a.user_code);
            r.verification_uri = std::string(a.verification_uri);
            r.verification_uri_complete = std::string(a.verification_uri_complete);
            r.message = std::string(a.message);
            r.interval = std::chrono::seconds(a.interval_secs);
            r.expires_at = std::string(a.expires_at);
            r.expires_in = std::chrono::seconds(a.expires_in_secs);
            r.json = std::string(a.json);
            return r;
        });
    }
    /// Finish a browser sign-in with the redirect URL your web view captured; returns the status JSON.
    std::string complete_authorization(const Authorization &a, const std::string &redirect, const Cancel &cancel = Cancel()) {
        return detail::call([&] { return detail::str(inner_->authorization_complete(a.handle, redirect, cancel.native())); });
    }
    /// Check a device-code sign-in once.
    PollResult poll_authorization(const Authorization &a, const Cancel &cancel = Cancel()) {
        return detail::call([&] {
            ffi::PollResult p = inner_->authorization_poll(a.handle, cancel.native());
            return PollResult{p.connected, std::chrono::milliseconds(p.retry_after_ms), std::string(p.status)};
        });
    }
    /// Block until the sign-in finishes (loopback redirect, or device code entered); returns the status JSON.
    std::string wait_authorization(const Authorization &a, const Cancel &cancel = Cancel()) {
        return detail::call([&] { return detail::str(inner_->authorization_wait(a.handle, cancel.native())); });
    }
    /// Abandon a pending sign-in (the user closed the window).
    void abort_authorization(const Authorization &a) { detail::call([&] { inner_->authorization_abort(a.handle); }); }

    // Events.

    /// Queue size (2..100000; 0 = default 1024) and the level from which log records become events
    /// ("error" .. "trace"; "" = off).
    void configure_events(std::uint32_t capacity = 0, const std::string &log_level = "") {
        std::string o = "{";
        if (capacity) o += "\"capacity\":" + std::to_string(capacity);
        if (!log_level.empty()) o += std::string(capacity ? "," : "") + "\"log_level\":\"" + log_level + "\"";
        o += "}";
        detail::call([&] { inner_->events_configure(o); });
    }
    /// The next event, waiting up to `timeout` (0: do not wait; negative: until one arrives); nothing
    /// when none came in time.
    std::optional<Event> next_event(std::chrono::milliseconds timeout) {
        auto ms = timeout.count() < 0 ? std::int64_t{-1}
                                      : std::min<std::int64_t>(timeout.count(), std::numeric_limits<std::int32_t>::max());
        return detail::call([&]() -> std::optional<Event> {
            ffi::Event e;
            if (!inner_->next_event(static_cast<std::int32_t>(ms), e)) return std::nullopt;
            Event r;
            r.seq = e.seq;
            r.time = std::string(e.time);
            r.type = std::string(e.kind);
            r.account_id = std::string(e.account_id);
            r.stage = std::string(e.stage);
            r.from = std::string(e.from);
            r.to = std::string(e.to);
            r.reason = std::string(e.reason);
            r.diagnostic = std::string(e.diagnostic);
            r.expires_at = std::string(e.expires_at);
            r.level = std::string(e.level);
            r.target = std::string(e.target);
            r.message = std::string(e.message);
            r.count = e.count;
            r.json = std::string(e.json);
            return r;
        });
    }

private:
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
