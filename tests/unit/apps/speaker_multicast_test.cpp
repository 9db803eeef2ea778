// The whole Speaker on its socket, joined to a multicast group on the
// loopback interface: it reads each datagram's destination, so a group's
// programme sent by multicast does not take over from the cluster's own
// programme of the same level sent by unicast. Loopback traffic only.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>

#include "loa-speaker/speaker.h"
#include "loa/transport/udp_socket.h"
#include "preemption_rig.h"

using namespace loa;
using namespace loa::test::preempt;
namespace ip = boost::asio::ip;

namespace {

// Runs `io` on this thread until `done()` holds (generous deadline).
bool run_until(boost::asio::io_context& io, const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        io.run_one_for(std::chrono::milliseconds(100));
    }
    return true;
}

}  // namespace

TEST_CASE("speaker_multicast_equal_level_refused_while_unicast_plays", "[speaker][preempt][multicast][loopback]") {
    const auto group = ip::make_address("239.255.77.82");
    const auto lo = ip::make_address("127.0.0.1");
    const auto own = engine_packets(programme(0x0001, engine::Priority::Commune, 880.0), 3);
    const auto other = engine_packets(programme(0x6001, engine::Priority::Commune, 440.0), 3);

    boost::asio::io_context io;
    transport::UdpOptions engine_options;
    engine_options.multicast_interface = lo;
    engine_options.multicast_loop = true;
    engine_options.multicast_ttl = 1;
    auto engine = transport::open_udp(io, {lo, 0}, engine_options);

    auto cfg = config();
    cfg.engines = {speaker::parse_engine_address("127.0.0.1:" + std::to_string(engine.local_endpoint().port()))};
    // The unicast stream stays "alive" for 2 s after its packet: far longer
    // than the two datagrams below take on loopback.
    cfg.jitter_ms = 2000;
    cfg.max_delay_ms = 2000;
    cfg.preempt_hold_ms = 60000;
    // Joined to the group, a speaker listens on the wildcard address (a socket
    // bound to 127.0.0.1 gets no group traffic); only loopback sends to it.
    speaker::Speaker spk(io, cfg, ip::udp::endpoint(ip::address_v4::any(), 0), group, lo);
    const auto port = spk.local_endpoint().port();
    spk.start();

    // The cluster's own programme by unicast, then an equally ranked, newer
    // programme by multicast to the group: refused.
    engine.send_to(boost::asio::buffer(own[0]), ip::udp::endpoint(lo, port));
    engine.send_to(boost::asio::buffer(other[0]), ip::udp::endpoint(group, port));
    REQUIRE(run_until(io, [&] {
        const auto c = spk.counters().snapshot();
        return c.received + c.outranked == 2;
    }));
    auto c = spk.counters().snapshot();
    CHECK(c.outranked == 1);
    CHECK(c.received == 1);
    CHECK(c.playing_ssrc == 0x0001u);

    // The same programme by unicast is the newest of equals and takes over.
    engine.send_to(boost::asio::buffer(other[1]), ip::udp::endpoint(lo, port));
    REQUIRE(run_until(io, [&] { return spk.counters().snapshot().received == 2; }));
    c = spk.counters().snapshot();
    CHECK(c.outranked == 1);
    CHECK(c.playing_ssrc == 0x6001u);
    CHECK(c.ssrc_changes == 2);
    CHECK(c.foreign == 0);
    CHECK(c.malformed == 0);
    spk.stop();
}
