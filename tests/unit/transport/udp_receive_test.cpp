// receive_datagram(): each datagram with its source and whether it was sent
// to this host or to a multicast group, on loopback only (IPv4 multicast on
// the lo interface, TTL 1).

#include <catch2/catch.hpp>

#include <poll.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "loa/transport/udp_receive.h"
#include "loa/transport/udp_socket.h"

using loa::transport::Delivery;
using loa::transport::ReceivedDatagram;
using loa::transport::receive_datagram;
namespace ip = boost::asio::ip;

namespace {

struct Got {
    std::string text;
    ip::udp::endpoint from;
    Delivery delivery;
};

// Waits (poll, generous deadline) for datagrams and takes them until `n`
// arrived or none comes in time.
std::vector<Got> receive_n(ip::udp::socket& s, std::size_t n) {
    std::vector<Got> got;
    std::array<std::uint8_t, 256> buf{};
    ReceivedDatagram d;
    while (got.size() < n) {
        pollfd p{s.native_handle(), POLLIN, 0};
        if (::poll(&p, 1, 5000) <= 0) break;
        while (got.size() < n) {
            const auto ec = receive_datagram(s.native_handle(), buf, d);
            if (ec == boost::asio::error::would_block) break;
            REQUIRE_FALSE(ec);
            CHECK_FALSE(d.truncated);
            got.push_back({std::string(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(d.size)), d.from,
                           d.delivery});
        }
    }
    return got;
}

}  // namespace

TEST_CASE("udp_receive_tells_unicast_from_multicast_destination", "[udp_receive]") {
    const auto group = ip::make_address("239.255.77.81");
    const auto lo = ip::make_address("127.0.0.1");
    boost::asio::io_context io;
    // A speaker joined to a group listens on the wildcard address: a socket
    // bound to 127.0.0.1 gets no group traffic at all. Only loopback traffic
    // is sent to it here.
    loa::transport::UdpOptions rx_options;
    rx_options.reuse_address = true;
    auto rx = loa::transport::open_udp(io, {ip::address_v4::any(), 0}, rx_options);
    loa::transport::enable_destination_info(rx);
    loa::transport::join_multicast(rx, group, lo);
    const auto port = rx.local_endpoint().port();

    loa::transport::UdpOptions tx_options;
    tx_options.multicast_interface = lo;
    tx_options.multicast_loop = true;
    tx_options.multicast_ttl = 1;
    auto tx = loa::transport::open_udp(io, {lo, 0}, tx_options);

    // Nothing queued yet: would_block at once, the socket stays blocking.
    std::array<std::uint8_t, 16> small{};
    ReceivedDatagram d;
    CHECK(receive_datagram(rx.native_handle(), small, d) == boost::asio::error::would_block);

    tx.send_to(boost::asio::buffer(std::string("to-host")), ip::udp::endpoint(lo, port));
    tx.send_to(boost::asio::buffer(std::string("to-group")), ip::udp::endpoint(group, port));
    tx.send_to(boost::asio::buffer(std::string("to-host-again")), ip::udp::endpoint(lo, port));
    const auto got = receive_n(rx, 3);
    REQUIRE(got.size() == 3);
    CHECK(got[0].text == "to-host");
    CHECK(got[0].delivery == Delivery::Unicast);
    CHECK(got[1].text == "to-group");
    CHECK(got[1].delivery == Delivery::Multicast);
    CHECK(got[2].text == "to-host-again");
    CHECK(got[2].delivery == Delivery::Unicast);
    for (const auto& g : got) CHECK(g.from == tx.local_endpoint());

    // A datagram longer than the buffer: cut to the buffer and flagged.
    tx.send_to(boost::asio::buffer(std::string(40, 'x')), ip::udp::endpoint(group, port));
    pollfd p{rx.native_handle(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 5000) == 1);
    REQUIRE_FALSE(receive_datagram(rx.native_handle(), small, d));
    CHECK(d.size == small.size());
    CHECK(d.truncated);
    CHECK(d.delivery == Delivery::Multicast);
    CHECK(receive_datagram(rx.native_handle(), small, d) == boost::asio::error::would_block);
}

TEST_CASE("udp_receive_ipv6_unicast_on_loopback", "[udp_receive]") {
    const auto lo6 = ip::make_address("::1");
    boost::asio::io_context io;
    auto rx = loa::transport::open_udp(io, {lo6, 0});
    loa::transport::enable_destination_info(rx);
    auto tx = loa::transport::open_udp(io, {lo6, 0});
    tx.send_to(boost::asio::buffer(std::string("v6")), rx.local_endpoint());
    const auto got = receive_n(rx, 1);
    REQUIRE(got.size() == 1);
    CHECK(got[0].text == "v6");
    CHECK(got[0].delivery == Delivery::Unicast);
    CHECK(got[0].from == tx.local_endpoint());
}

TEST_CASE("udp_receive_reports_errors_of_a_bad_descriptor", "[udp_receive]") {
    std::array<std::uint8_t, 16> buf{};
    ReceivedDatagram d;
    const auto ec = receive_datagram(-1, buf, d);
    CHECK(ec);
    CHECK(ec != boost::asio::error::would_block);
}
