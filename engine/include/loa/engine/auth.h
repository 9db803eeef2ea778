#pragma once
// Operators' roles and scope, and their tokens.
//
// A caller is an operator (found by the hash of the token it presents) or the
// local administrator (a token-less request on the Unix socket from root or
// the engine's own uid). Scope is a zone subtree (empty zone = whole network)
// plus a maximum priority level.

#include <optional>
#include <string>
#include <string_view>

#include "loa/engine/priority.h"

namespace loa::engine {

enum class Role : int { Viewer = 1, Operator = 2, Admin = 3 };

std::string_view to_string(Role r) noexcept;
/// "viewer", "operator", "admin" (case-insensitive).
std::optional<Role> parse_role(std::string_view text) noexcept;

struct Caller {
    std::string operator_name;  // empty for the local administrator
    Role role = Role::Viewer;
    std::string zone_id;        // empty = whole network
    Priority max_level = Priority::Background;

    bool is_local_admin() const noexcept { return operator_name.empty(); }
    static Caller local_admin() { return Caller{{}, Role::Admin, {}, Priority::Emergency}; }
};

/// A new token: 256 random bits from libsodium, as "loa1_" + 64 hex digits.
std::string generate_token();
/// The value stored for a token: BLAKE2b-256 (crypto_generichash) in hex.
/// Tokens carry 256 random bits, so a fast hash is enough (no salt, no
/// stretching) and the lookup stays one indexed query.
std::string hash_token(std::string_view token);

/// True when uid may act as local administrator without a token.
bool is_trusted_local_uid(unsigned uid, unsigned engine_uid) noexcept;

}  // namespace loa::engine
