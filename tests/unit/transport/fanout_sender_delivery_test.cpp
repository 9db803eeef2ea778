// FanoutSender when delivery is hard: a full queue drops and counts, refused
// destinations do not stop the rest, IPv6 and multicast destinations, and
// frames fanned out late counted as missed.
#include <catch2/catch.hpp>

#include "fanout_test_util.h"

#include <array>
#include <optional>
#include <vector>

using namespace loa::transport;
using namespace loa::test;

TEST_CASE("full_queue_drops_and_counts", "[fanout]") {
    constexpr std::size_t kReceivers = 3;
    boost::asio::io_context io;
    PacketPool pool(16);
    auto sender = open_udp(io, {ip::make_address("127.0.0.1"), 0});
    auto receivers = make_receivers(io, kReceivers);

    FanoutConfig config;
    config.threads = 1;
    config.queue_depth = 2;
    config.now_ns = &gated_clock;
    g_gate_closed.store(true);
    g_gate_entered.store(0);

    std::optional<FanoutSender> fan;
    fan.emplace(config, sender.native_handle(), -1);
    fan->set_destinations(0, destinations_of(receivers, 0, kReceivers));

    // Frame 1 is sent, then its worker is held inside the clock.
    REQUIRE(submit_packet(*fan, pool, 0, 1) == Status::Ok);
    REQUIRE(wait_until([] { return g_gate_entered.load() == 1; }));
    // The queue (capacity 2) takes two more frames; every further one is
    // refused at once, without blocking the caller.
    REQUIRE(submit_packet(*fan, pool, 0, 2) == Status::Ok);
    REQUIRE(submit_packet(*fan, pool, 0, 3) == Status::Ok);
    for (std::uint32_t id = 4; id <= 10; ++id) {
        CHECK(submit_packet(*fan, pool, 0, id) == Status::QueueFull);
    }
    auto s = fan->stats();
    CHECK(s.frames_dropped == 7);
    CHECK(s.packets_submitted == 10);
    // Dropped copies gave their references back: 3 slots still held (1 in hand, 2 queued).
    CHECK(pool.free_approx() == pool.capacity() - 3);

    g_gate_closed.store(false);
    g_gate_closed.notify_all();
    REQUIRE(wait_until([&] { return fan->spread().count() == 3; }));
    REQUIRE(receive_until(receivers, [](std::size_t) { return 3; }));
    for (auto& r : receivers) r.drain();
    for (const auto& r : receivers) CHECK(r.ids == std::vector<std::uint32_t>{1, 2, 3});
    s = fan->stats();
    CHECK(s.datagrams_sent == 3 * kReceivers);
    CHECK(s.frames_dropped == 7);
    CHECK(wait_until([&] { return pool.free_approx() == pool.capacity(); }));
    fan.reset();
}

TEST_CASE("refused_destination_counted_fanout_continues", "[fanout]") {
    constexpr std::size_t kLive = 20;
    constexpr std::size_t kDead = 20;
    constexpr std::uint32_t kPackets = 30;
    // With IP_RECVERR each ICMP port unreachable fails the next send on the
    // socket; one shard makes that sequence deterministic. Without it (the
    // default) the kernel ignores ICMP for unconnected sockets.
    bool receive_errors = false;
    std::size_t threads = 0;
    SECTION("icmp_reported_one_shard") {
        receive_errors = true;
        threads = 1;
    }
    SECTION("icmp_ignored_two_shards") {
        receive_errors = false;
        threads = 2;
    }
    boost::asio::io_context io;
    PacketPool pool(64);
    UdpOptions options;
    options.receive_errors = receive_errors;
    auto sender = open_udp(io, {ip::make_address("127.0.0.1"), 0}, options);
    auto receivers = make_receivers(io, kLive);

    std::vector<ip::udp::endpoint> dead;
    {
        auto closed = make_receivers(io, kDead);
        for (const auto& r : closed) dead.push_back(r.endpoint());
    }  // closed: their ports now answer with ICMP port unreachable
    std::vector<Destination> d;
    for (std::size_t i = 0; i < kLive; ++i) {
        d.push_back({dead[i], 0});
        d.push_back({receivers[i].endpoint(), 0});
    }

    FanoutConfig config;
    config.threads = threads;
    FanoutSender fan(config, sender.native_handle(), -1);
    fan.set_destinations(0, d);
    for (std::uint32_t id = 0; id < kPackets; ++id) {
        REQUIRE(submit_packet(fan, pool, 0, id) == Status::Ok);
    }
    REQUIRE(wait_until([&] { return fan.spread().count() == kPackets; }));
    const auto s = fan.stats();
    INFO("sent " << s.datagrams_sent << " dropped " << s.datagrams_dropped << " errors "
                 << s.send_errors << " calls " << s.sendmmsg_calls);
    // Every message was accepted: the refusals cost a retry, not a datagram.
    CHECK(s.datagrams_sent == (kLive + kDead) * kPackets);
    CHECK(s.datagrams_dropped == 0);
    if (receive_errors) {
        CHECK(s.send_errors > 0);
        CHECK(s.sendmmsg_calls == kPackets + s.send_errors);  // one retry per refusal
    } else {
        CHECK(s.send_errors == 0);
    }

    REQUIRE(receive_until(receivers, [&](std::size_t) { return kPackets; }));
    for (auto& r : receivers) r.drain();
    for (const auto& r : receivers) {
        REQUIRE(r.malformed == 0);
        REQUIRE(r.ids == iota_ids(0, kPackets));
    }
}

TEST_CASE("ipv6_loopback", "[fanout]") {
    if (!ipv6_loopback_available()) {
        WARN("no IPv6 loopback on this machine: skipped");
        return;
    }
    constexpr std::size_t kEach = 10;
    constexpr std::uint32_t kPackets = 12;
    boost::asio::io_context io;
    PacketPool pool(16);
    auto sender_v4 = open_udp(io, {ip::make_address("127.0.0.1"), 0});
    auto sender_v6 = open_udp(io, {ip::make_address("::1"), 0});
    auto receivers = make_receivers(io, kEach, "::1");
    auto v4_receivers = make_receivers(io, kEach);
    for (auto& r : v4_receivers) receivers.push_back(std::move(r));

    std::vector<Destination> d = destinations_of(receivers, 0, receivers.size());
    {
        // Without an IPv4 socket the IPv4 destinations are skipped and counted.
        FanoutSender v6_only(FanoutConfig{}, -1, sender_v6.native_handle());
        CHECK(v6_only.set_destinations(0, d) == kEach);
        CHECK(v6_only.destination_count(0) == kEach);
    }
    FanoutConfig config;
    config.threads = 2;
    FanoutSender fan(config, sender_v4.native_handle(), sender_v6.native_handle());
    REQUIRE(fan.set_destinations(0, d) == 0);
    for (std::uint32_t id = 0; id < kPackets; ++id) {
        REQUIRE(submit_packet(fan, pool, 0, id) == Status::Ok);
    }
    REQUIRE(receive_until(receivers, [&](std::size_t) { return kPackets; }));
    REQUIRE(wait_until([&] { return fan.spread().count() == kPackets; }));
    for (auto& r : receivers) r.drain();
    for (const auto& r : receivers) {
        REQUIRE(r.malformed == 0);
        REQUIRE(r.ids == iota_ids(0, kPackets));
    }
    CHECK(fan.stats().datagrams_sent == 2 * kEach * kPackets);
    CHECK(fan.stats().send_errors == 0);
}

TEST_CASE("multicast_loopback", "[fanout]") {
    constexpr std::uint32_t kPackets = 10;
    const auto group = ip::make_address("239.255.77.77");
    boost::asio::io_context io;
    PacketPool pool(16);
    UdpOptions send_options;
    send_options.multicast_interface = ip::make_address("127.0.0.1");
    send_options.multicast_loop = true;
    send_options.multicast_ttl = 1;
    auto sender = open_udp(io, {ip::make_address("127.0.0.1"), 0}, send_options);

    UdpOptions receive_options;
    receive_options.reuse_address = true;
    std::vector<Receiver> receivers;
    receivers.emplace_back(io, open_udp(io, {group, 0}, receive_options));
    join_multicast(receivers[0].socket, group, ip::make_address("127.0.0.1"));
    receivers.emplace_back(io, ip::make_address("127.0.0.1"));  // a unicast one beside it

    std::vector<Destination> d = {{{group, receivers[0].endpoint().port()}, 0},
                                  {receivers[1].endpoint(), 0}};
    FanoutSender fan(FanoutConfig{}, sender.native_handle(), -1);
    fan.set_destinations(5, d);
    for (std::uint32_t id = 0; id < kPackets; ++id) {
        REQUIRE(submit_packet(fan, pool, 5, id) == Status::Ok);
    }
    REQUIRE(wait_until([&] { return fan.spread().count() == kPackets; }));
    INFO("send errors: " << fan.stats().send_errors);
    REQUIRE(receive_until(receivers, [&](std::size_t) { return kPackets; }));
    for (auto& r : receivers) r.drain();
    for (const auto& r : receivers) CHECK(r.ids == iota_ids(0, kPackets));
    CHECK(fan.stats().datagrams_sent == 2 * kPackets);
}

TEST_CASE("late_fanout_counted_as_missed", "[fanout]") {
    boost::asio::io_context io;
    PacketPool pool(4);
    auto sender = open_udp(io, {ip::make_address("127.0.0.1"), 0});
    auto receivers = make_receivers(io, 4);
    FanoutConfig config;
    config.threads = 2;
    config.miss_after_ns = 5'000'000;
    config.now_ns = &fixed_clock;  // every fan-out "ends" at kFixedNow
    FanoutSender fan(config, sender.native_handle(), -1);
    fan.set_destinations(0, destinations_of(receivers, 0, 4));
    const std::array<std::int64_t, 3> lateness_ns = {50'000'000, 0, 5'000'001};
    for (std::uint32_t i = 0; i < lateness_ns.size(); ++i) {
        PacketSlot* slot = make_packet(pool, i);
        slot->deadline_ns = kFixedNow - lateness_ns[i];
        REQUIRE(fan.submit(0, slot) == Status::Ok);
        PacketPool::release(slot);
    }
    REQUIRE(wait_until([&] { return fan.spread().count() == 3; }));
    CHECK(fan.stats().frames_missed == 2);
    CHECK(fan.spread().max() == 50'000);
    CHECK(fan.spread().quantile(0.0) == 0);
    CHECK(fan.spread().quantile(0.5) >= 5'000);
    CHECK(fan.spread().quantile(0.5) <= 5'000 + 5'000 / 16);
}
