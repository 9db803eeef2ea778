#include <catch2/catch.hpp>

#include "loa/transport/udp_socket.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <stdexcept>
#include <string>

#include <optional>

using loa::transport::join_multicast;
using loa::transport::open_udp;
using loa::transport::parse_endpoint;
using loa::transport::UdpOptions;
namespace ip = boost::asio::ip;

namespace {

std::string invalid_message(const std::string& text) {
    try {
        (void)parse_endpoint(text);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "<no exception>";
}

int int_option(int fd, int level, int name) {
    int value = 0;
    socklen_t len = sizeof value;
    REQUIRE(::getsockopt(fd, level, name, &value, &len) == 0);
    return value;
}

}  // namespace

TEST_CASE("parse_endpoint_accepts_numeric_forms", "[udp_socket]") {
    const auto v4 = parse_endpoint("127.2.3.4:5004");
    CHECK(v4.address() == ip::make_address("127.2.3.4"));
    CHECK(v4.port() == 5004);

    const auto v6 = parse_endpoint("[::1]:5004");
    CHECK(v6.address() == ip::make_address("::1"));
    CHECK(v6.port() == 5004);

    const auto port_only = parse_endpoint("5004");
    CHECK(port_only.address() == ip::make_address("0.0.0.0"));
    CHECK(port_only.port() == 5004);

    const auto port_only_v6 = parse_endpoint("6000", "::");
    CHECK(port_only_v6.address().is_v6());
    CHECK(port_only_v6.port() == 6000);

    CHECK(parse_endpoint("239.255.0.1:0").port() == 0);
    CHECK(parse_endpoint("127.0.0.1:65535").port() == 65535);
    CHECK(parse_endpoint("[ff02::1]:7000").address().is_multicast());
}

TEST_CASE("parse_endpoint_rejects_bad_input_with_clear_message", "[udp_socket]") {
    CHECK_THAT(invalid_message(""), Catch::Contains("empty"));
    CHECK_THAT(invalid_message("127.2.3.4:65536"), Catch::Contains("out of range"));
    CHECK_THAT(invalid_message("70000"), Catch::Contains("out of range"));
    CHECK_THAT(invalid_message("127.2.3.4:99999999999999999999"), Catch::Contains("out of range"));
    CHECK_THAT(invalid_message("127.2.3.4:"), Catch::Contains("missing port"));
    CHECK_THAT(invalid_message("127.2.3.4:50a"), Catch::Contains("not a decimal"));
    CHECK_THAT(invalid_message("127.2.3.4:-1"), Catch::Contains("not a decimal"));
    CHECK_THAT(invalid_message(":5004"), Catch::Contains("missing address"));
    CHECK_THAT(invalid_message("example.com:5004"), Catch::Contains("not a numeric"));
    CHECK_THAT(invalid_message("1.2.3:5004"), Catch::Contains("not a numeric"));
    CHECK_THAT(invalid_message("::1:5004"), Catch::Contains("brackets"));
    CHECK_THAT(invalid_message("[::1]"), Catch::Contains("':port'"));
    CHECK_THAT(invalid_message("[::1:5004"), Catch::Contains("missing ']'"));
    CHECK_THAT(invalid_message("[127.2.3.4]:5004"), Catch::Contains("IPv6"));
    CHECK_THAT(invalid_message("abc"), Catch::Contains("not a decimal"));
    // The message names the offending input.
    CHECK_THAT(invalid_message("127.2.3.4:65536"), Catch::Contains("127.2.3.4:65536"));
}

TEST_CASE("open_udp_binds_ephemeral_loopback_with_options", "[udp_socket]") {
    boost::asio::io_context io;
    UdpOptions options;
    options.send_buffer_bytes = 64 * 1024;
    options.receive_buffer_bytes = 32 * 1024;
    options.reuse_address = true;
    options.reuse_port = true;
    options.multicast_ttl = 3;
    options.multicast_loop = false;
    options.multicast_interface = ip::make_address("127.0.0.1");
    options.receive_errors = true;
    auto socket = open_udp(io, {ip::make_address("127.0.0.1"), 0}, options);
    const auto local = socket.local_endpoint();
    CHECK(local.address() == ip::make_address("127.0.0.1"));
    CHECK(local.port() != 0);
    const int fd = socket.native_handle();
    CHECK(int_option(fd, SOL_SOCKET, SO_SNDBUF) >= 64 * 1024);  // Linux doubles it
    CHECK(int_option(fd, SOL_SOCKET, SO_RCVBUF) >= 32 * 1024);
    CHECK(int_option(fd, SOL_SOCKET, SO_REUSEADDR) != 0);
    CHECK(int_option(fd, SOL_SOCKET, SO_REUSEPORT) != 0);
    CHECK(int_option(fd, IPPROTO_IP, IP_MULTICAST_TTL) == 3);
    CHECK(int_option(fd, IPPROTO_IP, IP_MULTICAST_LOOP) == 0);
    CHECK(int_option(fd, IPPROTO_IP, IP_RECVERR) == 1);
    in_addr itf{};
    socklen_t len = sizeof itf;
    REQUIRE(::getsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &itf, &len) == 0);
    CHECK(ntohl(itf.s_addr) == INADDR_LOOPBACK);
}

TEST_CASE("open_udp_ipv6_sets_hops_and_loop", "[udp_socket]") {
    boost::asio::io_context io;
    UdpOptions options;
    options.multicast_ttl = 5;
    options.multicast_loop = true;
    options.multicast_interface = ip::make_address("::1");
    std::optional<ip::udp::socket> socket;
    try {
        socket.emplace(open_udp(io, {ip::make_address("::1"), 0}, options));
    } catch (const boost::system::system_error& e) {
        WARN("no IPv6 loopback here: " << e.what());
        return;
    }
    const int fd = socket->native_handle();
    CHECK(socket->local_endpoint().port() != 0);
    CHECK(int_option(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS) == 5);
    CHECK(int_option(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP) == 1);
    CHECK(int_option(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF) > 0);  // index of lo
}

TEST_CASE("open_udp_rejects_mismatched_multicast_interface", "[udp_socket]") {
    boost::asio::io_context io;
    UdpOptions options;
    options.multicast_interface = ip::make_address("::1");
    CHECK_THROWS_AS(open_udp(io, {ip::make_address("127.0.0.1"), 0}, options),
                    std::invalid_argument);
}

TEST_CASE("join_multicast_v4_on_loopback", "[udp_socket]") {
    boost::asio::io_context io;
    UdpOptions options;
    options.reuse_address = true;
    auto socket = open_udp(io, {ip::make_address("239.255.42.1"), 0}, options);
    REQUIRE_NOTHROW(join_multicast(socket, ip::make_address("239.255.42.1"),
                                   ip::make_address("127.0.0.1")));
    // Joining twice is an error from the kernel, not silently accepted.
    CHECK_THROWS_AS(join_multicast(socket, ip::make_address("239.255.42.1"),
                                   ip::make_address("127.0.0.1")),
                    boost::system::system_error);
}

TEST_CASE("join_multicast_rejects_unicast_group", "[udp_socket]") {
    boost::asio::io_context io;
    auto socket = open_udp(io, {ip::make_address("127.0.0.1"), 0});
    CHECK_THROWS_AS(join_multicast(socket, ip::make_address("127.0.0.1")), std::invalid_argument);
    CHECK_THROWS_AS(join_multicast(socket, ip::make_address("239.255.42.2"),
                                   ip::make_address("::1")),
                    std::invalid_argument);
}
