#include "loa/transport/udp_receive.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

namespace loa::transport {
namespace {

[[noreturn]] void throw_errno(int err, const char* what) {
    throw boost::system::system_error(boost::system::error_code(err, boost::system::system_category()), what);
}

// 224.0.0.0/4
bool multicast_v4(const std::uint8_t* bytes) noexcept { return (bytes[0] & 0xF0u) == 0xE0u; }

// ff00::/8, or a v4-mapped IPv4 group (IPv4 traffic on a dual-stack socket).
bool multicast_v6(const in6_addr& a) noexcept {
    const std::uint8_t* b = a.s6_addr;
    if (b[0] == 0xFFu) return true;
    constexpr std::uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    return std::memcmp(b, kMappedPrefix, sizeof kMappedPrefix) == 0 && multicast_v4(b + 12);
}

// Room for both kinds of destination report (a dual-stack socket may carry
// either) with some slack for options set elsewhere.
constexpr std::size_t kControlBytes = CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(in_pktinfo)) + 64;

}  // namespace

void enable_destination_info(boost::asio::ip::udp::socket& socket) {
    const int fd = socket.native_handle();
    const int on = 1;
    if (socket.local_endpoint().address().is_v6()) {
        if (::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on) != 0) {
            throw_errno(errno, "setsockopt IPV6_RECVPKTINFO");
        }
        // IPv4 traffic on a dual-stack socket: the IPv4 report as well where
        // the kernel offers it (the IPv6 one already maps it; not required).
        (void)::setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
        return;
    }
    if (::setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on) != 0) throw_errno(errno, "setsockopt IP_PKTINFO");
}

boost::system::error_code receive_datagram(int fd, std::span<std::uint8_t> buffer, ReceivedDatagram& out) noexcept {
    iovec iov{buffer.data(), buffer.size()};
    alignas(cmsghdr) std::uint8_t control[kControlBytes];
    msghdr msg{};
    msg.msg_name = out.from.data();
    msg.msg_namelen = static_cast<socklen_t>(out.from.capacity());
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = -1;
    do {
        n = ::recvmsg(fd, &msg, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return boost::asio::error::would_block;
        return {errno, boost::system::system_category()};
    }
    out.size = static_cast<std::size_t>(n);
    out.truncated = (msg.msg_flags & MSG_TRUNC) != 0;
    out.from.resize(std::min<std::size_t>(msg.msg_namelen, out.from.capacity()));
    out.delivery = Delivery::Unicast;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO && c->cmsg_len >= CMSG_LEN(sizeof(in_pktinfo))) {
            in_pktinfo info{};
            std::memcpy(&info, CMSG_DATA(c), sizeof info);
            std::uint8_t dest[4];
            std::memcpy(dest, &info.ipi_addr.s_addr, sizeof dest);  // network byte order
            if (multicast_v4(dest)) out.delivery = Delivery::Multicast;
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                   c->cmsg_len >= CMSG_LEN(sizeof(in6_pktinfo))) {
            in6_pktinfo info{};
            std::memcpy(&info, CMSG_DATA(c), sizeof info);
            if (multicast_v6(info.ipi6_addr)) out.delivery = Delivery::Multicast;
        }
    }
    return {};
}

}  // namespace loa::transport
