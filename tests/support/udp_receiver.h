#pragma once
// Test helper: a UDP socket bound to 127.0.0.1:0 (or [::1]:0) that receives
// with a deadline (poll), so tests wait on the condition "a datagram arrived"
// instead of sleeping.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include <boost/asio/ip/udp.hpp>

namespace loa::test {

class UdpReceiver {
public:
    explicit UdpReceiver(bool ipv6 = false) {
        fd_ = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
        if (fd_ < 0) throw std::runtime_error("socket");
        int rcvbuf = 4 << 20;
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        const boost::asio::ip::udp::endpoint bind_ep(
            boost::asio::ip::make_address(ipv6 ? "::1" : "127.0.0.1"), 0);
        if (::bind(fd_, bind_ep.data(), static_cast<socklen_t>(bind_ep.size())) != 0) {
            ::close(fd_);
            throw std::runtime_error("bind");
        }
        boost::asio::ip::udp::endpoint local;
        socklen_t len = static_cast<socklen_t>(local.capacity());
        ::getsockname(fd_, local.data(), &len);
        local.resize(len);
        endpoint_ = local;
    }
    ~UdpReceiver() { ::close(fd_); }
    UdpReceiver(const UdpReceiver&) = delete;
    UdpReceiver& operator=(const UdpReceiver&) = delete;

    const boost::asio::ip::udp::endpoint& endpoint() const { return endpoint_; }
    int fd() const { return fd_; }

    /// Waits up to `timeout_ms` for one datagram; false on timeout.
    bool receive(std::vector<std::uint8_t>& out, int timeout_ms = 5000,
                 boost::asio::ip::udp::endpoint* from = nullptr) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) <= 0) return false;
        out.resize(65536);
        boost::asio::ip::udp::endpoint src;
        socklen_t len = static_cast<socklen_t>(src.capacity());
        const auto n = ::recvfrom(fd_, out.data(), out.size(), 0, src.data(), &len);
        if (n < 0) return false;
        src.resize(len);
        if (from != nullptr) *from = src;
        out.resize(static_cast<std::size_t>(n));
        return true;
    }

private:
    int fd_ = -1;
    boost::asio::ip::udp::endpoint endpoint_;
};

}  // namespace loa::test
