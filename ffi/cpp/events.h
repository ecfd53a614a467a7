// Callbacks for the cxx bridge: std::function members called from mailconnect threads.
// Exceptions thrown by a callback are swallowed here: they must never unwind into Rust.
#pragma once
#include <functional>
#include <string>

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

}  // namespace ffi
}  // namespace mailconnect
