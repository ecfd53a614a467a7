// mailconnect for C++17, over the cxx bridge built into libmailconnect (feature "cxx").
// RAII client, std::string in and out, errors as mailconnect::Error (code, status, diagnostic),
// callbacks as std::function (they run on mailconnect threads).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>

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

private:
    rust::Box<ffi::CxxClient> inner_;
};

}  // namespace mailconnect
