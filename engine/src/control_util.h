#pragma once
// Small helpers shared by the Control service's handler files
// (control_service.cpp, control_clips.cpp, control_programmes.cpp, ...).
// Private to engine/src.

#include <algorithm>
#include <cstddef>
#include <string>

#include "loa/engine/auth.h"
#include "loa/engine/control_status.h"

namespace loa::engine::control_util {

/// Ends the call with `code` and `message` (the dispatcher turns it into the response).
[[noreturn]] inline void fail(RpcCode code, const std::string& message) { throw ControlError(code, message); }

/// The request message in `payload`; INVALID_ARGUMENT naming `what` when it does not parse.
template <class M>
M parse(const std::string& payload, const char* what) {
    M m;
    if (!m.ParseFromString(payload)) fail(RpcCode::InvalidArgument, std::string("payload is not a valid ") + what);
    return m;
}

/// PERMISSION_DENIED unless the caller's role is at least `min`.
inline void require_role(const Caller& c, Role min, const char* action) {
    if (static_cast<int>(c.role) < static_cast<int>(min)) {
        fail(RpcCode::PermissionDenied, std::string(action) + " needs role " + std::string(to_string(min)) +
                                            " (you are " + std::string(to_string(c.role)) + ")");
    }
}

/// "the whole network" or "zone 'x'", for messages.
inline std::string scope_name(const std::string& zone) {
    return zone.empty() ? "the whole network" : "zone '" + zone + "'";
}

/// The caller as events and rows name it.
inline std::string caller_name(const Caller& c) {
    return c.is_local_admin() ? std::string("local admin") : c.operator_name;
}

/// Whether `id` is 1..max_len characters of [a-z0-9._-] (and of [A-Z:] too when `allow_upper`).
inline bool valid_id(const std::string& id, std::size_t max_len, bool allow_upper) {
    if (id.empty() || id.size() > max_len) return false;
    return std::all_of(id.begin(), id.end(), [&](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
               (allow_upper && ((c >= 'A' && c <= 'Z') || c == ':'));
    });
}

}  // namespace loa::engine::control_util
