#pragma once
// Test helper: a UDP socket on 127.0.0.1:0 standing for a speaker. Waits on
// "a datagram arrived" (poll with a deadline), never sleeps; tells RTP from
// the engine's RTCP (payload types 72..76 = SR .. APP) by its second byte.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/ip/udp.hpp>

namespace loa::test {

class RtpListener {
public:
    RtpListener() {
        fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
        if (fd_ < 0) throw std::runtime_error("socket");
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ::close(fd_);
            throw std::runtime_error("bind");
        }
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
    }
    /// A listener on a multicast group (e.g. "239.255.12.1"): bound to the
    /// group on a free port and joined on the loopback interface, so that
    /// only packets sent to group:port over 127.0.0.1 reach it.
    explicit RtpListener(const std::string& group) {
        fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
        if (fd_ < 0) throw std::runtime_error("socket");
        group_ = boost::asio::ip::make_address_v4(group);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(group_.to_uint());
        ip_mreq m{};
        m.imr_multiaddr.s_addr = htonl(group_.to_uint());
        m.imr_interface.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::setsockopt(fd_, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) != 0) {
            ::close(fd_);
            throw std::runtime_error("bind or join " + group);
        }
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
    }
    ~RtpListener() { ::close(fd_); }
    RtpListener(const RtpListener&) = delete;
    RtpListener& operator=(const RtpListener&) = delete;

    boost::asio::ip::udp::endpoint endpoint() const { return {group_, port_}; }
    /// "127.0.0.1:PORT" (or "GROUP:PORT"), as a cluster's registered address.
    std::string address() const { return group_.to_string() + ":" + std::to_string(port_); }

    /// The next datagram (RTP or RTCP), or an empty vector when none came
    /// within 50 ms.
    std::vector<std::uint8_t> receive() {
        std::vector<std::uint8_t> buf(2048);
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) return {};
        const auto n = ::recv(fd_, buf.data(), buf.size(), 0);
        buf.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        return buf;
    }

    /// SSRC of the next RTP packet, waiting at most `limit`; nullopt on timeout.
    std::optional<std::uint32_t> next_rtp(std::chrono::milliseconds limit = std::chrono::seconds(10)) {
        const auto until = std::chrono::steady_clock::now() + limit;
        std::array<std::uint8_t, 2048> buf{};
        do {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, limit.count() == 0 ? 0 : 50) <= 0) continue;
            const auto n = ::recv(fd_, buf.data(), buf.size(), 0);
            if (n < 12) continue;
            const auto pt = buf[1] & 0x7F;
            if (pt >= 72 && pt <= 76) continue;  // RTCP
            return (std::uint32_t{buf[8]} << 24) | (std::uint32_t{buf[9]} << 16) | (std::uint32_t{buf[10]} << 8) |
                   buf[11];
        } while (std::chrono::steady_clock::now() < until);
        return std::nullopt;
    }

    /// Waits until an RTP packet of `ssrc` arrives; false after 10 s.
    bool hears(std::uint32_t ssrc) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < until) {
            const auto s = next_rtp(std::chrono::milliseconds(200));
            if (s && *s == ssrc) return true;
        }
        return false;
    }

    /// RTP packets already queued, read without waiting.
    std::size_t drain() {
        std::size_t n = 0;
        while (next_rtp(std::chrono::milliseconds(0))) ++n;
        return n;
    }

private:
    int fd_ = -1;
    boost::asio::ip::address_v4 group_ = boost::asio::ip::address_v4::loopback();
    std::uint16_t port_ = 0;
};

}  // namespace loa::test
