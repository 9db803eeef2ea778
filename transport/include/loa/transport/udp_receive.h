#pragma once
// Receiving a UDP datagram together with how it was addressed: to one of this
// host's own addresses (unicast) or to a multicast group the socket joined.
// The destination comes from IP_PKTINFO / IPV6_PKTINFO control messages read
// with recvmsg(); nothing is allocated per datagram.

#include <cstddef>
#include <cstdint>
#include <span>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/ip/udp.hpp>
#pragma GCC diagnostic pop
#include <boost/system/error_code.hpp>

namespace loa::transport {

/// How a datagram reached the socket.
enum class Delivery : std::uint8_t {
    Unicast,    // sent to an address of this host (also: destination not reported)
    Multicast,  // sent to a multicast group
};

/// Start-up: asks the kernel to report each received datagram's destination
/// address (IP_PKTINFO on an IPv4 socket; IPV6_RECVPKTINFO on an IPv6 one,
/// which also covers IPv4 traffic on a dual-stack socket as v4-mapped
/// addresses). Throws boost::system::system_error.
void enable_destination_info(boost::asio::ip::udp::socket& socket);

/// One received datagram (see receive_datagram()).
struct ReceivedDatagram {
    std::size_t size = 0;       // bytes written to the buffer
    bool truncated = false;     // the datagram was longer than the buffer (size == buffer size)
    Delivery delivery = Delivery::Unicast;
    boost::asio::ip::udp::endpoint from;  // source address and port
};

/// The thread that reads `fd`. Takes one queued datagram off the socket
/// without blocking (MSG_DONTWAIT; the socket's own blocking mode is left
/// alone) into `buffer` and fills `out`. Returns no error on success,
/// boost::asio::error::would_block when nothing is queued, else the errno of
/// recvmsg() (EINTR is retried). Without a destination report (see
/// enable_destination_info()) the delivery is Unicast. No allocation, no
/// exception.
boost::system::error_code receive_datagram(int fd, std::span<std::uint8_t> buffer, ReceivedDatagram& out) noexcept;

}  // namespace loa::transport
