#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <thread>

#include "loa/transport/spsc_queue.h"

using loa::transport::SpscQueue;

TEST_CASE("capacity_rounds_up_to_power_of_two", "[spsc]") {
    CHECK(SpscQueue<int>(0).capacity() == 2);
    CHECK(SpscQueue<int>(1).capacity() == 2);
    CHECK(SpscQueue<int>(3).capacity() == 4);
    CHECK(SpscQueue<int>(64).capacity() == 64);
    CHECK(SpscQueue<int>(65).capacity() == 128);
}

TEST_CASE("full_queue_refuses_and_keeps_contents", "[spsc]") {
    SpscQueue<int> q(4);
    for (int i = 0; i < 4; ++i) REQUIRE(q.push(i));
    CHECK_FALSE(q.push(99));
    CHECK(q.size_approx() == 4);
    int v = -1;
    for (int i = 0; i < 4; ++i) {
        REQUIRE(q.pop(v));
        CHECK(v == i);
    }
    CHECK_FALSE(q.pop(v));
    CHECK(v == 3);  // untouched on empty
    CHECK(q.empty());
}

TEST_CASE("fifo_order_across_many_wraps", "[spsc]") {
    SpscQueue<std::uint64_t> q(8);
    std::uint64_t next_in = 0;
    std::uint64_t next_out = 0;
    std::mt19937 rng(1234);
    for (int round = 0; round < 10'000; ++round) {
        const auto pushes = rng() % 9;
        for (unsigned i = 0; i < pushes; ++i) {
            if (q.push(next_in)) ++next_in;
        }
        const auto pops = rng() % 9;
        for (unsigned i = 0; i < pops; ++i) {
            std::uint64_t v = 0;
            if (!q.pop(v)) break;
            REQUIRE(v == next_out);
            ++next_out;
        }
        REQUIRE(next_in - next_out == q.size_approx());
    }
    CHECK(next_in > 10'000);
}

TEST_CASE("two_thread_stress_delivers_seeded_sequence_in_order", "[spsc]") {
    constexpr std::size_t kItems = 1'000'000;
    constexpr std::uint32_t kSeed = 20240601;
    SpscQueue<std::uint32_t> q(64);
    std::size_t full_hits = 0;

    std::thread producer([&] {
        std::mt19937 rng(kSeed);
        for (std::size_t i = 0; i < kItems; ++i) {
            const std::uint32_t v = static_cast<std::uint32_t>(rng());
            while (!q.push(v)) {
                ++full_hits;
                std::this_thread::yield();
            }
        }
    });

    std::mt19937 expected(kSeed);
    std::size_t received = 0;
    std::size_t mismatches = 0;
    while (received < kItems) {
        std::uint32_t v = 0;
        if (!q.pop(v)) {
            std::this_thread::yield();
            continue;
        }
        if (v != static_cast<std::uint32_t>(expected())) ++mismatches;
        ++received;
    }
    producer.join();
    CHECK(mismatches == 0);
    CHECK(received == kItems);
    std::uint32_t extra = 0;
    CHECK_FALSE(q.pop(extra));
    CHECK(q.empty());
}
