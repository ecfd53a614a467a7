// C++ types of the cxx bridge (ffi/src/cxx_bridge.rs): the connect callbacks and the log sink as
// std::function members called from mailconnect threads, and the host store's callbacks (the C
// struct of mailconnect_store.h). Exceptions thrown by a callback are swallowed here: they must
// never unwind into Rust.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "mailconnect_store.h"  // include/ (on the include path: ffi/build.rs, bindings/cpp/Makefile)
#include "rust/cxx.h"

namespace mailconnect {
namespace ffi {

struct Events {
    std::function<void(const std::string &, const std::string &, const std::string &)> on_device_code;
    std::function<bool(const std::string &)> on_open_url;
    std::function<void(const std::string &)> on_progress;

    void device_code(rust::Str code, rust::Str uri, rust::Str message) const noexcept {
        try {
            if (on_device_code) on_device_code(std::string(code), std::string(uri), std::string(message));
        } catch (...) {
        }
    }
    bool open_url(rust::Str url) const noexcept {
        try {
            return on_open_url ? on_open_url(std::string(url)) : false;
        } catch (...) {
            return false;
        }
    }
    void progress(rust::Str stage) const noexcept {
        try {
            if (on_progress) on_progress(std::string(stage));
        } catch (...) {
        }
    }
};

/// The process's log sink: level (MC_LOG_ERROR .. MC_LOG_TRACE), target, message.
struct LogSink {
    std::function<void(std::int32_t, const std::string &, const std::string &)> fn;

    explicit LogSink(std::function<void(std::int32_t, const std::string &, const std::string &)> f) : fn(std::move(f)) {}
    void log(std::int32_t level, rust::Str target, rust::Str message) const noexcept {
        try {
            if (fn) fn(level, std::string(target), std::string(message));
        } catch (...) {
        }
    }
};

/// A host-owned store's callbacks (C; see mailconnect_store.h).
using StoreCallbacks = ::mc_store_callbacks;

}  // namespace ffi
}  // namespace mailconnect
