#pragma once
// Helpers to open and configure Boost.Asio UDP sockets the way Loa needs them:
// large buffers, multicast TTL/interface/loop, group membership.
// Start-up / control-thread code: throws boost::system::system_error.

#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

namespace loa::transport {

struct UdpOptions {
    int send_buffer_bytes = 4 << 20;
    int receive_buffer_bytes = 1 << 20;
    bool reuse_address = false;
    int multicast_ttl = 8;                    // hops for multicast sends
    bool multicast_loop = true;               // deliver own multicast locally
    std::optional<boost::asio::ip::address> multicast_interface;  // outgoing interface address
};

/// Opens and binds a UDP socket (port 0 = ephemeral) with `options` applied.
boost::asio::ip::udp::socket open_udp(boost::asio::io_context& io,
                                      const boost::asio::ip::udp::endpoint& bind,
                                      const UdpOptions& options = {});

/// Joins multicast `group` on `socket` (optionally on the interface with
/// address `interface_address`).
void join_multicast(boost::asio::ip::udp::socket& socket, const boost::asio::ip::address& group,
                    const std::optional<boost::asio::ip::address>& interface_address = {});

/// Parses "host:port", "[v6]:port" or "port" into an endpoint (numeric
/// addresses only; no DNS on the media path). Throws std::invalid_argument.
boost::asio::ip::udp::endpoint parse_endpoint(const std::string& text,
                                              const std::string& default_host = "0.0.0.0");

}  // namespace loa::transport
