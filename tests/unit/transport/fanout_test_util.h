#pragma once
// Shared by the fan-out sender tests (fanout_sender_test,
// fanout_sender_delivery_test): test packets whose bytes tell their id,
// loopback receivers that check them, and clocks that hold the workers still
// or fix "now".

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
#include <set>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

namespace loa::test {

namespace ip = boost::asio::ip;
using transport::Destination;
using transport::FanoutSender;
using transport::PacketPool;
using transport::PacketSlot;
using transport::Status;
using transport::open_udp;

inline constexpr std::size_t kPayload = 160;
inline constexpr auto kDeadline = std::chrono::seconds(20);

inline std::int64_t mono_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// Bytes of test packet `id`: id big-endian, then a pattern depending on id.
inline std::array<std::uint8_t, kPayload> packet_bytes(std::uint32_t id) {
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
inline PacketSlot* make_packet(PacketPool& pool, std::uint32_t id) {
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
inline Status submit_packet(FanoutSender& fan, PacketPool& pool, std::uint32_t group, std::uint32_t id) {
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

inline std::vector<Receiver> make_receivers(boost::asio::io_context& io, std::size_t n,
                                     const char* address = "127.0.0.1") {
    std::vector<Receiver> receivers;
    receivers.reserve(n);
    for (std::size_t i = 0; i < n; ++i) receivers.emplace_back(io, ip::make_address(address));
    return receivers;
}

inline std::vector<Destination> destinations_of(const std::vector<Receiver>& receivers, std::size_t first,
                                         std::size_t last) {
    std::vector<Destination> d;
    for (std::size_t i = first; i < last; ++i) d.push_back({receivers[i].endpoint(), 0});
    return d;
}

inline std::vector<std::uint32_t> iota_ids(std::uint32_t first, std::uint32_t count) {
    std::vector<std::uint32_t> v(count);
    for (std::uint32_t i = 0; i < count; ++i) v[i] = first + i;
    return v;
}

inline bool ipv6_loopback_available() {
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
inline std::atomic<bool> g_gate_closed{false};
inline std::atomic<std::uint32_t> g_gate_entered{0};

inline std::int64_t gated_clock() {
    if (g_gate_closed.load()) {
        g_gate_entered.fetch_add(1);
        g_gate_entered.notify_all();
        while (g_gate_closed.load()) g_gate_closed.wait(true);
    }
    return mono_ns();
}

inline constexpr std::int64_t kFixedNow = 1'000'000'000'000;
inline std::int64_t fixed_clock() { return kFixedNow; }

}  // namespace loa::test
