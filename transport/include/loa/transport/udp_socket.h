#pragma once
// Helpers to open and configure Boost.Asio UDP sockets the way Loa needs them:
// large buffers, multicast TTL/interface/loop, group membership.
// Start-up / control-thread code: throws boost::system::system_error.

#include <cstdint>
#include <optional>
#include <string>

// GCC 12 reports -Wnull-dereference inside Asio's scheduler once it is
// inlined (a false positive in a system header); silence it for Asio only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#pragma GCC diagnostic pop

namespace loa::transport {

struct UdpOptions {
    int send_buffer_bytes = 4 << 20;       // SO_SNDBUF; <= 0 keeps the kernel default
    int receive_buffer_bytes = 1 << 20;    // SO_RCVBUF; <= 0 keeps the kernel default
    bool reuse_address = false;
    /// SO_REUSEPORT: several sockets on one port (one per fan-out shard).
    /// Datagrams arriving on that port are spread over them by the kernel.
    bool reuse_port = false;
    int multicast_ttl = 8;                    // hops for multicast sends
    bool multicast_loop = true;               // deliver own multicast locally
    std::optional<boost::asio::ip::address> multicast_interface;  // outgoing interface address
    /// IP_RECVERR / IPV6_RECVERR: ICMP errors (port/host unreachable) for
    /// unconnected sends surface as send errors and on the error queue. Off by
    /// default: a fan-out socket should not pay for other clusters' ICMP.
    bool receive_errors = false;
};

/// Opens and binds a UDP socket (port 0 = ephemeral) with `options` applied.
/// Multicast options follow the family of `bind`; an IPv6 multicast interface
/// given as an address is turned into its interface index (its scope id if it
/// has one, else the interface holding that address).
boost::asio::ip::udp::socket open_udp(boost::asio::io_context& io,
                                      const boost::asio::ip::udp::endpoint& bind,
                                      const UdpOptions& options = {});

/// Joins multicast `group` on `socket` (optionally on the interface with
/// address `interface_address`; for IPv6 the address is turned into an
/// interface index as in open_udp()). Throws std::invalid_argument when
/// `group` is not a multicast address.
void join_multicast(boost::asio::ip::udp::socket& socket, const boost::asio::ip::address& group,
                    const std::optional<boost::asio::ip::address>& interface_address = {});

/// Parses "host:port", "[v6]:port" or "port" into an endpoint (numeric
/// addresses only; no DNS on the media path). `default_host` (a bare numeric
/// address, v4 or v6) is used for the "port" form. Ports are decimal 0..65535.
/// Throws std::invalid_argument naming the input and what is wrong with it.
boost::asio::ip::udp::endpoint parse_endpoint(const std::string& text,
                                              const std::string& default_host = "0.0.0.0");

}  // namespace loa::transport
