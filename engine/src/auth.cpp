#include "loa/engine/auth.h"

#include <sodium.h>

#include <array>
#include <cctype>
#include <stdexcept>

#include "loa/engine/control_status.h"

namespace loa::engine {

namespace {
void ensure_sodium() {
    static const int rc = sodium_init();
    if (rc < 0) throw ControlError(RpcCode::Internal, "libsodium failed to initialise");
}

std::string to_hex(const unsigned char* data, std::size_t n) {
    std::string out(n * 2 + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), data, n);
    out.pop_back();
    return out;
}
}  // namespace

std::string_view to_string(Role r) noexcept {
    switch (r) {
        case Role::Viewer: return "viewer";
        case Role::Operator: return "operator";
        case Role::Admin: return "admin";
    }
    return "viewer";
}

std::optional<Role> parse_role(std::string_view text) noexcept {
    std::string t;
    for (const char c : text) t.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (t == "viewer") return Role::Viewer;
    if (t == "operator") return Role::Operator;
    if (t == "admin") return Role::Admin;
    return std::nullopt;
}

std::string generate_token() {
    ensure_sodium();
    std::array<unsigned char, 32> bytes{};
    randombytes_buf(bytes.data(), bytes.size());
    auto token = "loa1_" + to_hex(bytes.data(), bytes.size());
    sodium_memzero(bytes.data(), bytes.size());
    return token;
}

std::string hash_token(std::string_view token) {
    ensure_sodium();
    std::array<unsigned char, crypto_generichash_BYTES> h{};
    crypto_generichash(h.data(), h.size(), reinterpret_cast<const unsigned char*>(token.data()), token.size(),
                       nullptr, 0);
    return to_hex(h.data(), h.size());
}

bool is_trusted_local_uid(unsigned uid, unsigned engine_uid) noexcept { return uid == 0 || uid == engine_uid; }

}  // namespace loa::engine
