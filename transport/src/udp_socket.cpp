#include "loa/transport/udp_socket.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <boost/asio/ip/multicast.hpp>
#include <boost/system/system_error.hpp>

namespace loa::transport {
namespace {

namespace ip = boost::asio::ip;

[[noreturn]] void throw_errno(int err, const char* what) {
    throw boost::system::system_error(
        boost::system::error_code(err, boost::system::system_category()), what);
}

/// Interface index for an IPv6 interface address: its scope id, else the
/// interface that holds it. Throws system_error(ENODEV) when none does.
unsigned int interface_index_v6(const ip::address_v6& address) {
    if (address.scope_id() != 0) return static_cast<unsigned int>(address.scope_id());
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) throw_errno(errno, "getifaddrs");
    unsigned int index = 0;
    const auto wanted = address.to_bytes();
    for (const ifaddrs* it = list; it != nullptr && index == 0; it = it->ifa_next) {
        if (it->ifa_addr == nullptr || it->ifa_addr->sa_family != AF_INET6) continue;
        sockaddr_in6 sa{};
        std::memcpy(&sa, it->ifa_addr, sizeof sa);
        if (std::memcmp(&sa.sin6_addr, wanted.data(), wanted.size()) == 0) {
            index = ::if_nametoindex(it->ifa_name);
        }
    }
    ::freeifaddrs(list);
    if (index == 0) throw_errno(ENODEV, "no interface holds this IPv6 multicast interface address");
    return index;
}

std::uint16_t parse_port(const std::string& text, std::string_view port) {
    if (port.empty()) throw std::invalid_argument("endpoint '" + text + "': missing port");
    unsigned long value = 0;
    const auto* first = port.data();
    const auto* last = port.data() + port.size();
    const auto [end, ec] = std::from_chars(first, last, value);
    if (ec == std::errc::result_out_of_range || (ec == std::errc() && end == last && value > 65535)) {
        throw std::invalid_argument("endpoint '" + text + "': port '" + std::string(port) +
                                    "' out of range 0..65535");
    }
    if (ec != std::errc() || end != last) {
        throw std::invalid_argument("endpoint '" + text + "': port '" + std::string(port) +
                                    "' is not a decimal number");
    }
    return static_cast<std::uint16_t>(value);
}

ip::address parse_host(const std::string& text, const std::string& host) {
    if (host.empty()) throw std::invalid_argument("endpoint '" + text + "': missing address");
    boost::system::error_code ec;
    const auto address = ip::make_address(host, ec);
    if (ec) {
        throw std::invalid_argument("endpoint '" + text + "': '" + host +
                                    "' is not a numeric IPv4 or IPv6 address");
    }
    return address;
}

}  // namespace

ip::udp::socket open_udp(boost::asio::io_context& io, const ip::udp::endpoint& bind,
                         const UdpOptions& options) {
    ip::udp::socket socket(io);
    socket.open(bind.protocol());
    const int fd = socket.native_handle();
    const bool v6 = bind.address().is_v6();
    if (options.reuse_address) socket.set_option(ip::udp::socket::reuse_address(true));
    if (options.reuse_port) {
        const int on = 1;
        if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
            throw_errno(errno, "setsockopt SO_REUSEPORT");
        }
    }
    if (options.send_buffer_bytes > 0) {
        socket.set_option(boost::asio::socket_base::send_buffer_size(options.send_buffer_bytes));
    }
    if (options.receive_buffer_bytes > 0) {
        socket.set_option(
            boost::asio::socket_base::receive_buffer_size(options.receive_buffer_bytes));
    }
    socket.set_option(ip::multicast::hops(options.multicast_ttl));
    socket.set_option(ip::multicast::enable_loopback(options.multicast_loop));
    if (options.multicast_interface) {
        const auto& itf = *options.multicast_interface;
        if (v6) {
            if (!itf.is_v6()) {
                throw std::invalid_argument("open_udp: IPv4 multicast interface on an IPv6 socket");
            }
            socket.set_option(ip::multicast::outbound_interface(interface_index_v6(itf.to_v6())));
        } else {
            if (!itf.is_v4()) {
                throw std::invalid_argument("open_udp: IPv6 multicast interface on an IPv4 socket");
            }
            socket.set_option(ip::multicast::outbound_interface(itf.to_v4()));
        }
    }
    if (options.receive_errors) {
        const int on = 1;
        const int rc = v6 ? ::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on)
                          : ::setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
        if (rc != 0) throw_errno(errno, "setsockopt IP_RECVERR");
    }
    socket.bind(bind);
    return socket;
}

void join_multicast(ip::udp::socket& socket, const ip::address& group,
                    const std::optional<ip::address>& interface_address) {
    if (!group.is_multicast()) {
        throw std::invalid_argument("join_multicast: " + group.to_string() +
                                    " is not a multicast address");
    }
    if (group.is_v4()) {
        if (interface_address && !interface_address->is_v4()) {
            throw std::invalid_argument("join_multicast: IPv6 interface for an IPv4 group");
        }
        socket.set_option(interface_address
                              ? ip::multicast::join_group(group.to_v4(), interface_address->to_v4())
                              : ip::multicast::join_group(group.to_v4()));
        return;
    }
    if (interface_address && !interface_address->is_v6()) {
        throw std::invalid_argument("join_multicast: IPv4 interface for an IPv6 group");
    }
    const unsigned long index =
        interface_address ? interface_index_v6(interface_address->to_v6()) : 0UL;
    socket.set_option(ip::multicast::join_group(group.to_v6(), index));
}

ip::udp::endpoint parse_endpoint(const std::string& text, const std::string& default_host) {
    if (text.empty()) throw std::invalid_argument("endpoint '': empty");
    std::string host;
    std::string_view port;
    const std::string_view view(text);
    if (view.front() == '[') {
        const auto close = view.find(']');
        if (close == std::string_view::npos) {
            throw std::invalid_argument("endpoint '" + text + "': missing ']'");
        }
        host = std::string(view.substr(1, close - 1));
        if (close + 1 >= view.size() || view[close + 1] != ':') {
            throw std::invalid_argument("endpoint '" + text + "': expected ':port' after ']'");
        }
        port = view.substr(close + 2);
        const auto address = parse_host(text, host);
        if (!address.is_v6()) {
            throw std::invalid_argument("endpoint '" + text + "': brackets need an IPv6 address");
        }
        return {address, parse_port(text, port)};
    }
    const auto colon = view.rfind(':');
    if (colon == std::string_view::npos) {
        // "port" alone.
        return {parse_host(text, default_host), parse_port(text, view)};
    }
    if (view.find(':') != colon) {
        throw std::invalid_argument("endpoint '" + text +
                                    "': IPv6 addresses need brackets, as in [::1]:5004");
    }
    host = std::string(view.substr(0, colon));
    port = view.substr(colon + 1);
    const auto address = parse_host(text, host);
    return {address, parse_port(text, port)};
}

}  // namespace loa::transport
