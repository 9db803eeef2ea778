#include <catch2/catch.hpp>

#include <set>
#include <stdexcept>
#include <vector>

#include "loa/transport/packet_pool.h"

using loa::transport::PacketPool;
using loa::transport::PacketSlot;

TEST_CASE("acquire_until_exhausted_returns_null", "[packet_pool]") {
    PacketPool pool(4);
    CHECK(pool.capacity() == 4);
    std::set<PacketSlot*> seen;
    for (int i = 0; i < 4; ++i) {
        PacketSlot* s = pool.acquire();
        REQUIRE(s != nullptr);
        CHECK(s->refs.load() == 1);
        seen.insert(s);
    }
    CHECK(seen.size() == 4);
    CHECK(pool.acquire() == nullptr);
    CHECK(pool.free_approx() == 0);
}

TEST_CASE("slot_returns_only_when_last_reference_released", "[packet_pool]") {
    PacketPool pool(1);
    PacketSlot* s = pool.acquire();
    REQUIRE(s != nullptr);
    PacketPool::add_refs(s, 2);  // two consumers
    CHECK(s->refs.load() == 3);
    PacketPool::release(s);  // producer's own
    CHECK(pool.acquire() == nullptr);
    PacketPool::release(s);
    CHECK(pool.acquire() == nullptr);
    PacketPool::release(s);
    CHECK(pool.free_approx() == 1);
    PacketSlot* again = pool.acquire();
    CHECK(again == s);
    CHECK(again->refs.load() == 1);
}

TEST_CASE("acquire_is_round_robin", "[packet_pool]") {
    PacketPool pool(3);
    PacketSlot* a = pool.acquire();
    PacketSlot* b = pool.acquire();
    REQUIRE(a != nullptr);
    REQUIRE(b != nullptr);
    PacketPool::release(a);
    // The cursor moves on to the third slot before coming back to `a`.
    PacketSlot* c = pool.acquire();
    REQUIRE(c != nullptr);
    CHECK(c != a);
    CHECK(c != b);
    CHECK(pool.acquire() == a);
    CHECK(pool.acquire() == nullptr);
    PacketPool::release(b);
    CHECK(pool.acquire() == b);
}

TEST_CASE("empty_pool_rejected", "[packet_pool]") {
    CHECK_THROWS_AS(PacketPool(0), std::invalid_argument);
}

TEST_CASE("slot_bytes_view_follows_size", "[packet_pool]") {
    PacketPool pool(1);
    PacketSlot* s = pool.acquire();
    REQUIRE(s != nullptr);
    s->data[0] = 0x80;
    s->data[1] = 0x60;
    s->size = 2;
    const auto bytes = s->bytes();
    REQUIRE(bytes.size() == 2);
    CHECK(bytes[0] == 0x80);
    CHECK(bytes.data() == s->data.data());
}
