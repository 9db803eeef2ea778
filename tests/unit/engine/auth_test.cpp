#include <catch2/catch.hpp>

#include <set>

#include "loa/engine/auth.h"

using namespace loa::engine;

TEST_CASE("token_is_256_random_bits_in_hex", "[auth]") {
    std::set<std::string> seen;
    for (int i = 0; i < 64; ++i) {
        const auto t = generate_token();
        REQUIRE(t.size() == 5 + 64);
        REQUIRE(t.rfind("loa1_", 0) == 0);
        REQUIRE(t.find_first_not_of("0123456789abcdef", 5) == std::string::npos);
        seen.insert(t);
    }
    REQUIRE(seen.size() == 64);
}

TEST_CASE("token_hash_is_stable_and_hides_the_token", "[auth]") {
    const auto t = generate_token();
    const auto h = hash_token(t);
    REQUIRE(h.size() == 64);
    REQUIRE(h == hash_token(t));
    REQUIRE(h.find(t.substr(5, 16)) == std::string::npos);
    auto other = t;
    other.back() = other.back() == '0' ? '1' : '0';
    REQUIRE(hash_token(other) != h);
}

TEST_CASE("only_root_or_engine_uid_is_trusted_without_token", "[auth]") {
    REQUIRE(is_trusted_local_uid(0, 1000));
    REQUIRE(is_trusted_local_uid(1000, 1000));
    REQUIRE_FALSE(is_trusted_local_uid(1001, 1000));
}

TEST_CASE("role_names_round_trip", "[auth]") {
    for (const auto r : {Role::Viewer, Role::Operator, Role::Admin}) REQUIRE(parse_role(to_string(r)) == r);
    REQUIRE(parse_role("ADMIN") == Role::Admin);
    REQUIRE_FALSE(parse_role("root"));
}
