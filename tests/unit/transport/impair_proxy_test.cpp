#include <catch2/catch.hpp>

#include "loa/transport/impair_proxy.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

using loa::transport::ImpairmentConfig;
using loa::transport::ImpairmentModel;
using loa::transport::ImpairProxy;
using loa::transport::ImpairProxyConfig;
using loa::transport::ImpairProxyStats;
using loa::transport::LossModel;
namespace asio = boost::asio;
using udp = asio::ip::udp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kDeadline = std::chrono::seconds(10);

const udp::endpoint kLoopback(asio::ip::make_address("127.0.0.1"), 0);

/// A blocking loopback socket whose receives give up after 100 ms, so that
/// waits poll a condition against a generous deadline.
struct Peer {
    asio::io_context io;
    udp::socket socket{io, kLoopback};

    Peer() {
        timeval tv{0, 100'000};
        REQUIRE(::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    }

    udp::endpoint endpoint() const { return socket.local_endpoint(); }

    void send(std::uint32_t value, const udp::endpoint& to) {
        std::array<std::uint8_t, 4> b{static_cast<std::uint8_t>(value >> 24), static_cast<std::uint8_t>(value >> 16),
                                      static_cast<std::uint8_t>(value >> 8), static_cast<std::uint8_t>(value)};
        socket.send_to(asio::buffer(b), to);
    }

    /// Next datagram's value and sender, or nullopt at the deadline.
    std::optional<std::pair<std::uint32_t, udp::endpoint>> receive(Clock::time_point deadline) {
        std::array<std::uint8_t, 64> b{};
        udp::endpoint from;
        while (Clock::now() < deadline) {
            boost::system::error_code ec;
            const std::size_t n = socket.receive_from(asio::buffer(b), from, 0, ec);
            if (ec) continue;  // timeout: poll again
            REQUIRE(n == 4);
            const std::uint32_t v = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                                    (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
            return std::make_pair(v, from);
        }
        return std::nullopt;
    }

    std::vector<std::uint32_t> receive_n(std::size_t n) {
        std::vector<std::uint32_t> out;
        const auto deadline = Clock::now() + kDeadline;
        while (out.size() < n) {
            auto got = receive(deadline);
            if (!got) break;
            out.push_back(got->first);
        }
        return out;
    }

    std::size_t pending() { return socket.available(); }
};

udp::endpoint to_proxy(const ImpairProxy& proxy) {
    return udp::endpoint(asio::ip::make_address("127.0.0.1"), proxy.local_port());
}

bool wait_for(const std::function<bool()>& condition) {
    const auto deadline = Clock::now() + kDeadline;
    while (!condition()) {
        if (Clock::now() >= deadline) return false;
        std::this_thread::yield();
    }
    return true;
}

}  // namespace

TEST_CASE("proxy_applies_fixed_pattern_loss_and_duplication", "[impair_proxy]") {
    Peer client;
    Peer receiver;
    ImpairProxyConfig config;
    config.listen = kLoopback;
    config.target = receiver.endpoint();
    config.forward.drop_indices = {5, 6, 7};
    config.forward.duplicate_indices = {10};
    ImpairProxy proxy(config);
    REQUIRE(proxy.local_port() != 0);
    proxy.start();

    for (std::uint32_t i = 0; i < 20; ++i) client.send(i, to_proxy(proxy));

    const std::vector<std::uint32_t> want = {0, 1, 2, 3, 4, 8, 9, 10, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
    CHECK(receiver.receive_n(want.size()) == want);
    // Counters move just after the send the receiver already saw.
    REQUIRE(wait_for([&] { return proxy.stats().forwarded == 18 && proxy.stats().held == 0; }));
    const ImpairProxyStats s = proxy.stats();
    CHECK(s.received == 20);
    CHECK(s.dropped == 3);
    CHECK(s.duplicated == 1);
    CHECK(s.reordered == 0);
    CHECK(s.held == 0);
    CHECK(s.send_errors == 0);
    CHECK(receiver.pending() == 0);  // nothing beyond what the pattern allows
    proxy.stop();
}

TEST_CASE("proxy_forwards_replies_to_the_last_client", "[impair_proxy]") {
    Peer client;
    Peer receiver;
    ImpairProxyConfig config;
    config.listen = kLoopback;
    config.target = receiver.endpoint();
    config.forward.uniform_loss = 0.0;
    ImpairProxy proxy(config);
    proxy.start();

    client.send(1, to_proxy(proxy));
    const auto got = receiver.receive(Clock::now() + kDeadline);
    REQUIRE(got);
    CHECK(got->first == 1);
    CHECK(got->second.port() == proxy.upstream_endpoint().port());

    receiver.send(100, got->second);  // reply to where it came from, like RTCP
    receiver.send(101, got->second);
    CHECK(client.receive_n(2) == std::vector<std::uint32_t>{100, 101});
    REQUIRE(wait_for([&] { return proxy.stats().reverse_forwarded == 2; }));
    const auto s = proxy.stats();
    CHECK(s.reverse_received == 2);
    CHECK(s.reverse_forwarded == 2);
    CHECK(s.reverse_dropped == 0);

    // A second client takes over the reply path.
    Peer other;
    other.send(2, to_proxy(proxy));
    REQUIRE(receiver.receive_n(1) == std::vector<std::uint32_t>{2});
    receiver.send(102, got->second);
    CHECK(other.receive_n(1) == std::vector<std::uint32_t>{102});
    CHECK(client.pending() == 0);
}

TEST_CASE("proxy_reverse_direction_can_be_impaired", "[impair_proxy]") {
    Peer client;
    Peer receiver;
    ImpairProxyConfig config;
    config.listen = kLoopback;
    config.target = receiver.endpoint();
    ImpairmentConfig reverse;
    reverse.drop_indices = {0, 2};
    config.reverse = reverse;
    ImpairProxy proxy(config);
    proxy.start();

    client.send(1, to_proxy(proxy));
    const auto got = receiver.receive(Clock::now() + kDeadline);
    REQUIRE(got);
    for (std::uint32_t v = 200; v < 205; ++v) receiver.send(v, got->second);
    CHECK(client.receive_n(3) == std::vector<std::uint32_t>{201, 203, 204});
    REQUIRE(wait_for([&] { return proxy.stats().reverse_forwarded == 3; }));
    CHECK(proxy.stats().reverse_received == 5);
    CHECK(proxy.stats().reverse_dropped == 2);
}

TEST_CASE("proxy_reply_before_any_client_is_dropped_and_counted", "[impair_proxy]") {
    Peer receiver;
    ImpairProxyConfig config;
    config.listen = kLoopback;
    config.target = receiver.endpoint();
    ImpairProxy proxy(config);
    proxy.start();
    const udp::endpoint upstream(asio::ip::make_address("127.0.0.1"), proxy.upstream_endpoint().port());
    receiver.send(7, upstream);
    CHECK(wait_for([&] { return proxy.stats().reverse_dropped == 1; }));
    CHECK(proxy.stats().reverse_forwarded == 0);
}

TEST_CASE("proxy_holds_packets_for_the_fixed_delay", "[impair_proxy]") {
    Peer client;
    Peer receiver;
    ImpairProxyConfig config;
    config.listen = kLoopback;
    config.target = receiver.endpoint();
    config.forward.delay_ns = 40'000'000;
    ImpairProxy proxy(config);
    proxy.start();

    const auto sent = Clock::now();
    client.send(1, to_proxy(proxy));
    client.send(2, to_proxy(proxy));
    CHECK(receiver.receive_n(2) == std::vector<std::uint32_t>{1, 2});
    // A lower bound only: late wake-ups on a loaded machine cannot fail it.
    CHECK(Clock::now() - sent >= std::chrono::milliseconds(40));
}

TEST_CASE("proxy_held_back_packet_is_overtaken", "[impair_proxy]") {
    Peer client;
    Peer receiver;
    ImpairProxyConfig config;
    config.listen = kLoopback;
    config.target = receiver.endpoint();
    config.forward.reorder_probability = 0.5;
    config.forward.reorder_delay_ns = 300'000'000;  // margin for the second send to arrive
    // The first seed whose model holds back packet 0 but not packet 1.
    for (config.forward.seed = 1;; ++config.forward.seed) {
        ImpairmentModel model(config.forward);
        const bool first_held = model.decide(0, 0).reordered;
        if (first_held && !model.decide(1, 0).reordered) break;
    }
    ImpairProxy proxy(config);
    proxy.start();

    client.send(1, to_proxy(proxy));
    client.send(2, to_proxy(proxy));
    CHECK(receiver.receive_n(2) == std::vector<std::uint32_t>{2, 1});
    REQUIRE(wait_for([&] { return proxy.stats().forwarded == 2; }));
    CHECK(proxy.stats().reordered == 1);
}

TEST_CASE("proxy_drops_match_the_model_for_the_same_seed", "[impair_proxy]") {
    Peer client;
    Peer receiver;
    ImpairProxyConfig config;
    config.listen = kLoopback;
    config.target = receiver.endpoint();
    config.forward.seed = 2024;
    config.forward.loss = LossModel::Uniform;
    config.forward.uniform_loss = 0.3;
    ImpairProxy proxy(config);
    proxy.start();

    // Loss depends only on the packet index, not on arrival times.
    ImpairmentModel model(config.forward);
    std::vector<std::uint32_t> want;
    for (std::uint32_t i = 0; i < 200; ++i) {
        if (!model.decide(i, 0).dropped()) want.push_back(i);
    }
    REQUIRE(want.size() > 100);
    REQUIRE(want.size() < 180);

    for (std::uint32_t i = 0; i < 200; ++i) client.send(i, to_proxy(proxy));
    CHECK(receiver.receive_n(want.size()) == want);
    REQUIRE(wait_for([&] { return proxy.stats().forwarded == want.size(); }));
    CHECK(proxy.stats().received == 200);
    CHECK(proxy.stats().dropped == 200 - want.size());
    CHECK(receiver.pending() == 0);
}
