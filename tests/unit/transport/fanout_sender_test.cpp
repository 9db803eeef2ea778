// FanoutSender: every destination reached exactly once and in order, shards
// sharing one source port, batches, and destination sets swapped while
// sending and reclaimed. Drops, errors, IPv6, multicast and lateness:
// fanout_sender_delivery_test.cpp.
#include <catch2/catch.hpp>

#include "fanout_test_util.h"

#include <array>
#include <atomic>
#include <set>
#include <span>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace loa::transport;
using namespace loa::test;

TEST_CASE("fanout_reaches_every_destination", "[fanout]") {
    constexpr std::size_t kReceivers = 200;
    constexpr std::uint32_t kPackets = 50;
    boost::asio::io_context io;
    PacketPool pool(64);
    auto sender = open_udp(io, {ip::make_address("127.0.0.1"), 0});
    auto receivers = make_receivers(io, kReceivers);

    FanoutConfig config;
    config.threads = 2;
    config.miss_after_ns = 10'000'000'000;  // a burst of 50 frames queues behind itself
    FanoutSender fan(config, sender.native_handle(), -1);
    REQUIRE(fan.set_destinations(0, destinations_of(receivers, 0, kReceivers)) == 0);
    CHECK(fan.destination_count(0) == kReceivers);
    CHECK(fan.destination_count(1) == 0);

    for (std::uint32_t id = 0; id < kPackets; ++id) {
        REQUIRE(submit_packet(fan, pool, 0, id) == Status::Ok);
    }
    REQUIRE(wait_until([&] {
        return fan.stats().datagrams_sent == kReceivers * kPackets && fan.spread().count() == kPackets;
    }));
    REQUIRE(receive_until(receivers, [&](std::size_t) { return kPackets; }));
    for (auto& r : receivers) r.drain();  // anything extra would be a duplicate

    const auto expected = iota_ids(0, kPackets);
    for (const auto& r : receivers) {
        REQUIRE(r.malformed == 0);
        REQUIRE(r.ids == expected);  // each exactly once, in order (one shard per destination)
    }
    const auto s = fan.stats();
    CHECK(s.packets_submitted == kPackets);
    CHECK(s.datagrams_sent == kReceivers * kPackets);
    CHECK(s.send_errors == 0);
    CHECK(s.datagrams_dropped == 0);
    CHECK(s.frames_dropped == 0);
    CHECK(s.frames_missed == 0);
    // 100 destinations per shard fit one batch: one sendmmsg per shard per packet.
    CHECK(s.sendmmsg_calls == 2 * kPackets);
    CHECK(fan.spread().count() == kPackets);
    CHECK(fan.spread().max() >= fan.spread().quantile(0.5));
    // Every shard reference was released.
    CHECK(wait_until([&] { return pool.free_approx() == pool.capacity(); }));
}

TEST_CASE("per_shard_sockets_share_one_source_port", "[fanout]") {
    constexpr std::size_t kReceivers = 40;
    constexpr std::uint32_t kPackets = 8;
    boost::asio::io_context io;
    PacketPool pool(16);
    UdpOptions options;
    options.reuse_port = true;
    auto first = open_udp(io, {ip::make_address("127.0.0.1"), 0}, options);
    const auto port = first.local_endpoint().port();
    auto second = open_udp(io, {ip::make_address("127.0.0.1"), port}, options);
    auto receivers = make_receivers(io, kReceivers);

    FanoutConfig config;
    config.threads = 2;
    const std::array<int, 2> fds = {first.native_handle(), second.native_handle()};
    const std::array<int, 3> wrong = {first.native_handle(), second.native_handle(), 0};
    CHECK_THROWS_AS(FanoutSender(config, std::span<const int>(wrong), {}), std::invalid_argument);
    FanoutSender fan(config, std::span<const int>(fds), {});
    REQUIRE(fan.set_destinations(0, destinations_of(receivers, 0, kReceivers)) == 0);
    for (std::uint32_t id = 0; id < kPackets; ++id) {
        REQUIRE(submit_packet(fan, pool, 0, id) == Status::Ok);
    }
    REQUIRE(receive_until(receivers, [&](std::size_t) { return kPackets; }));
    REQUIRE(wait_until([&] { return fan.spread().count() == kPackets; }));
    for (auto& r : receivers) r.drain();
    for (const auto& r : receivers) {
        REQUIRE(r.ids == iota_ids(0, kPackets));
        REQUIRE(r.source_ports == std::set<std::uint16_t>{port});
    }
    CHECK(fan.stats().datagrams_sent == kReceivers * kPackets);
}

TEST_CASE("small_batches_split_a_shard_slice", "[fanout]") {
    constexpr std::size_t kReceivers = 37;
    constexpr std::uint32_t kPackets = 5;
    boost::asio::io_context io;
    PacketPool pool(8);
    auto sender = open_udp(io, {ip::make_address("127.0.0.1"), 0});
    auto receivers = make_receivers(io, kReceivers);
    FanoutConfig config;
    config.threads = 1;
    config.max_batch = 8;
    FanoutSender fan(config, sender.native_handle(), -1);
    fan.set_destinations(3, destinations_of(receivers, 0, kReceivers));
    for (std::uint32_t id = 0; id < kPackets; ++id) {
        REQUIRE(submit_packet(fan, pool, 3, id) == Status::Ok);
    }
    REQUIRE(wait_until([&] { return fan.spread().count() == kPackets; }));
    REQUIRE(receive_until(receivers, [&](std::size_t) { return kPackets; }));
    for (auto& r : receivers) r.drain();
    for (const auto& r : receivers) REQUIRE(r.ids == iota_ids(0, kPackets));
    const auto s = fan.stats();
    CHECK(s.datagrams_sent == kReceivers * kPackets);
    CHECK(s.sendmmsg_calls == 5 * kPackets);  // ceil(37 / 8)
}

TEST_CASE("destination_set_swapped_while_sending", "[fanout]") {
    constexpr std::size_t kReceivers = 150;
    constexpr std::uint32_t kPerPhase = 10;
    boost::asio::io_context io;
    PacketPool pool(32);
    auto sender = open_udp(io, {ip::make_address("127.0.0.1"), 0});
    auto receivers = make_receivers(io, kReceivers);

    FanoutConfig config;
    config.threads = 2;
    FanoutSender fan(config, sender.native_handle(), -1);

    struct Phase {
        std::vector<std::size_t> members;
    };
    std::vector<Phase> phases(3);
    for (std::size_t i = 0; i < 100; ++i) phases[0].members.push_back(i);                 // A
    for (std::size_t i = 50; i < 150; ++i) phases[1].members.push_back(i);                // B
    for (std::size_t i = 0; i < 150; ++i) if (i < 25 || i >= 125) phases[2].members.push_back(i);  // C

    std::vector<std::vector<std::uint32_t>> expected(kReceivers);
    std::uint64_t datagrams = 0;
    std::uint32_t id = 0;
    std::uint64_t frames = 0;
    for (const auto& phase : phases) {
        std::vector<Destination> d;
        for (auto m : phase.members) d.push_back({receivers[m].endpoint(), 0});
        fan.set_destinations(0, d);
        REQUIRE(fan.destination_count(0) == phase.members.size());
        for (std::uint32_t k = 0; k < kPerPhase; ++k, ++id) {
            REQUIRE(submit_packet(fan, pool, 0, id) == Status::Ok);
            for (auto m : phase.members) expected[m].push_back(id);
        }
        datagrams += phase.members.size() * kPerPhase;
        frames += kPerPhase;
        // This phase's frames have fully left before the next swap.
        REQUIRE(wait_until([&] {
            return fan.stats().datagrams_sent == datagrams && fan.spread().count() == frames;
        }));
    }
    fan.clear(0);
    CHECK(fan.destination_count(0) == 0);
    REQUIRE(submit_packet(fan, pool, 0, id) == Status::Ok);  // no destinations: nothing sent

    REQUIRE(receive_until(receivers, [&](std::size_t i) { return expected[i].size(); }));
    for (auto& r : receivers) r.drain();
    for (std::size_t i = 0; i < kReceivers; ++i) {
        INFO("receiver " << i);
        REQUIRE(receivers[i].malformed == 0);
        REQUIRE(receivers[i].ids == expected[i]);
    }
    CHECK(fan.stats().datagrams_sent == datagrams);
    CHECK(fan.stats().packets_submitted == frames + 1);
    // A, B and C were retired; each is freed once the shards have moved past it.
    REQUIRE(wait_until([&] {
        (void)fan.collect_garbage();
        return fan.stats().sets_reclaimed == 3;
    }));
    CHECK(fan.collect_garbage() == 0);
}

TEST_CASE("concurrent_swaps_reclaim_every_retired_set", "[fanout]") {
    constexpr std::size_t kReceivers = 12;
    constexpr std::uint32_t kFrames = 3000;
    constexpr std::size_t kSwaps = 400;
    boost::asio::io_context io;
    PacketPool pool(16);
    auto sender = open_udp(io, {ip::make_address("127.0.0.1"), 0});
    auto receivers = make_receivers(io, kReceivers);
    FanoutConfig config;
    config.threads = 2;
    config.queue_depth = 8;
    FanoutSender fan(config, sender.native_handle(), -1);

    std::vector<std::vector<Destination>> sets = {destinations_of(receivers, 0, 4),
                                                  destinations_of(receivers, 4, 12),
                                                  destinations_of(receivers, 2, 9)};
    fan.set_destinations(1, sets[0]);
    std::atomic<bool> media_done{false};
    std::uint64_t full = 0;
    std::thread media([&] {
        for (std::uint32_t i = 0; i < kFrames; ++i) {
            if (submit_packet(fan, pool, 1, i) == Status::QueueFull) ++full;
        }
        media_done.store(true);
    });
    std::size_t swaps = 0;
    std::size_t freed = 0;
    while (swaps < kSwaps) {
        fan.set_destinations(1, sets[swaps % sets.size()]);
        ++swaps;
        freed += fan.collect_garbage();
        for (auto& r : receivers) r.drain();  // keep receive buffers from overflowing
    }
    media.join();
    fan.clear(1);
    ++swaps;
    REQUIRE(wait_until([&] {
        (void)fan.collect_garbage();
        return fan.stats().sets_reclaimed == swaps;
    }));
    CHECK(freed <= swaps);
    const auto s = fan.stats();
    CHECK(s.packets_submitted == kFrames);
    CHECK(s.datagrams_sent > 0);
    CHECK(s.send_errors == 0);
    CHECK(s.frames_dropped >= full);
    CHECK(wait_until([&] { return pool.free_approx() == pool.capacity(); }));
}
