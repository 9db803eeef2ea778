#include <catch2/catch.hpp>

// udp_socket.h first: it silences a GCC false positive inside Asio.
#include "loa/transport/udp_socket.h"

#include "loa/transport/fanout_sender.h"

#include <poll.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <thread>
#include <vector>

using namespace loa::transport;
namespace ip = boost::asio::ip;

namespace {

constexpr std::size_t kPayload = 160;
constexpr auto kDeadline = std::chrono::seconds(20);

std::int64_t mono_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// Bytes of test packet `id`: id big-endian, then a pattern depending on id.
std::array<std::uint8_t, kPayload> packet_bytes(std::uint32_t id) {
    std::array<std::uint8_t, kPayload> b{};
    b[0] = static_cast<std::uint8_t>(id >> 24);
    b[1] = static_cast<std::uint8_t>(id >> 16);
    b[2] = static_cast<std::uint8_t>(id >> 8);
    b[3] = static_cast<std::uint8_t>(id);
    for (std::size_t i = 4; i < kPayload; ++i) b[i] = static_cast<std::uint8_t>(id * 31 + i * 7);
    return b;
}

/// Acquires a slot (waiting for the workers to free one), fills it with
/// packet `id` and sets its deadline to now.
PacketSlot* make_packet(PacketPool& pool, std::uint32_t id) {
    PacketSlot* slot = pool.acquire();
    const auto limit = std::chrono::steady_clock::now() + kDeadline;
    while (slot == nullptr && std::chrono::steady_clock::now() < limit) {
        std::this_thread::yield();
        slot = pool.acquire();
    }
    REQUIRE(slot != nullptr);
    const auto bytes = packet_bytes(id);
    std::copy(bytes.begin(), bytes.end(), slot->data.begin());
    slot->size = bytes.size();
    slot->deadline_ns = mono_ns();
    return slot;
}

/// Submits packet `id` to `group` and drops the caller's reference.
Status submit_packet(FanoutSender& fan, PacketPool& pool, std::uint32_t group, std::uint32_t id) {
    PacketSlot* slot = make_packet(pool, id);
    const Status s = fan.submit(group, slot);
    PacketPool::release(slot);
    return s;
}

template <typename Cond>
bool wait_until(Cond&& cond) {
    const auto limit = std::chrono::steady_clock::now() + kDeadline;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > limit) return false;
        std::this_thread::yield();
    }
    return true;
}

/// A loopback receiver that records the packet ids it gets and whether every
/// datagram had the exact bytes of its id.
struct Receiver {
    Receiver(boost::asio::io_context& io, const ip::address& address)
        : socket(open_udp(io, {address, 0})) {
        socket.non_blocking(true);
    }
    Receiver(boost::asio::io_context& io, ip::udp::socket s) : socket(std::move(s)) {
        (void)io;
        socket.non_blocking(true);
    }

    ip::udp::endpoint endpoint() const { return socket.local_endpoint(); }

    void drain() {
        std::array<std::uint8_t, 2048> buf{};
        for (;;) {
            boost::system::error_code ec;
            ip::udp::endpoint from;
            const std::size_t n = socket.receive_from(boost::asio::buffer(buf), from, 0, ec);
            if (ec) return;
            source_ports.insert(from.port());
            if (n < 4) {
                ++malformed;
                continue;
            }
            const std::uint32_t id = (std::uint32_t{buf[0]} << 24) | (std::uint32_t{buf[1]} << 16) |
                                     (std::uint32_t{buf[2]} << 8) | std::uint32_t{buf[3]};
            const auto expected = packet_bytes(id);
            if (n != expected.size() || !std::equal(expected.begin(), expected.end(), buf.begin())) {
                ++malformed;
            }
            ids.push_back(id);
        }
    }

    ip::udp::socket socket;
    std::vector<std::uint32_t> ids;
    std::set<std::uint16_t> source_ports;
    std::size_t malformed = 0;
};

/// Polls every receiver (poll(2) with a timeout, no sleeping) until each has
/// at least the number of datagrams `want(i)` says, or the deadline passes.
template <typename Want>
bool receive_until(std::vector<Receiver>& receivers, Want&& want) {
    std::vector<pollfd> fds(receivers.size());
    const auto limit = std::chrono::steady_clock::now() + kDeadline;
    for (;;) {
        bool done = true;
        for (std::size_t i = 0; i < receivers.size(); ++i) {
            receivers[i].drain();
            if (receivers[i].ids.size() < static_cast<std::size_t>(want(i))) done = false;
        }
        if (done) return true;
        if (std::chrono::steady_clock::now() > limit) return false;
        for (std::size_t i = 0; i < receivers.size(); ++i) {
            fds[i] = pollfd{receivers[i].socket.native_handle(), POLLIN, 0};
        }
        (void)::poll(fds.data(), fds.size(), 100);
    }
}

std::vector<Receiver> make_receivers(boost::asio::io_context& io, std::size_t n,
                                     const char* address = "127.0.0.1") {
    std::vector<Receiver> receivers;
    receivers.reserve(n);
    for (std::size_t i = 0; i < n; ++i) receivers.emplace_back(io, ip::make_address(address));
    return receivers;
}

std::vector<Destination> destinations_of(const std::vector<Receiver>& receivers, std::size_t first,
                                         std::size_t last) {
    std::vector<Destination> d;
    for (std::size_t i = first; i < last; ++i) d.push_back({receivers[i].endpoint(), 0});
    return d;
}

std::vector<std::uint32_t> iota_ids(std::uint32_t first, std::uint32_t count) {
    std::vector<std::uint32_t> v(count);
    for (std::uint32_t i = 0; i < count; ++i) v[i] = first + i;
    return v;
}

bool ipv6_loopback_available() {
    boost::asio::io_context io;
    try {
        (void)open_udp(io, {ip::make_address("::1"), 0});
        return true;
    } catch (const boost::system::system_error&) {
        return false;
    }
}

// A clock that blocks its caller (a worker, right after sending a packet)
// while the gate is closed: lets a test hold the workers still.
std::atomic<bool> g_gate_closed{false};
std::atomic<std::uint32_t> g_gate_entered{0};

std::int64_t gated_clock() {
    if (g_gate_closed.load()) {
        g_gate_entered.fetch_add(1);
        g_gate_entered.notify_all();
        while (g_gate_closed.load()) g_gate_closed.wait(true);
    }
    return mono_ns();
}

constexpr std::int64_t kFixedNow = 1'000'000'000'000;
std::int64_t fixed_clock() { return kFixedNow; }

}  // namespace

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

TEST_CASE("histogram_buckets_are_log_linear", "[fanout][histogram]") {
    // Exact below 64 us.
    for (std::int64_t v = 0; v < 64; ++v) {
        REQUIRE(MicrosHistogram::bucket_index(v) == static_cast<std::size_t>(v));
        REQUIRE(MicrosHistogram::bucket_upper_edge(MicrosHistogram::bucket_index(v)) == v);
    }
    CHECK(MicrosHistogram::bucket_index(-5) == 0);
    // Above: monotonic, each value inside its bucket, relative width <= 1/16.
    std::mt19937_64 rng(99);
    std::size_t last_bucket = 0;
    for (std::int64_t v = 64; v < 200'000'000; v += 1 + v / 37) {
        const std::size_t b = MicrosHistogram::bucket_index(v);
        REQUIRE(b >= last_bucket);
        last_bucket = b;
        const std::int64_t upper = MicrosHistogram::bucket_upper_edge(b);
        const std::int64_t lower = b == 0 ? 0 : MicrosHistogram::bucket_upper_edge(b - 1) + 1;
        REQUIRE(v <= upper);
        REQUIRE(v >= lower);
        REQUIRE(static_cast<double>(upper - lower + 1) <= static_cast<double>(lower) / 16.0 + 1.0);
    }
    // 100 s is covered without clamping.
    CHECK(MicrosHistogram::bucket_index(100'000'000) < MicrosHistogram::kBuckets - 1);
    CHECK(MicrosHistogram::bucket_index(std::numeric_limits<std::int64_t>::max()) ==
          MicrosHistogram::kBuckets - 1);
    (void)rng;
}

TEST_CASE("histogram_quantiles_and_concurrent_record", "[fanout][histogram]") {
    MicrosHistogram h;
    CHECK(h.count() == 0);
    CHECK(h.quantile(0.99) == 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&h, t] {
            for (std::int64_t v = 1; v <= 1000; ++v) h.record(v * 10 + t);
        });
    }
    for (auto& th : threads) th.join();
    CHECK(h.count() == 4000);
    CHECK(h.max() == 10'003);
    const auto p50 = h.quantile(0.5);
    CHECK(p50 >= 5000);
    CHECK(p50 <= 5000 + 5000 / 16 + 16);
    const auto p99 = h.quantile(0.99);
    CHECK(p99 >= 9900);
    CHECK(p99 <= 10'003);  // never above max
    CHECK(h.quantile(1.0) == 10'003);
    CHECK(h.quantile(0.0) <= 13);
    h.reset();
    CHECK(h.count() == 0);
    CHECK(h.max() == 0);
}
