#include "loa/engine/control_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "loa/engine/control_service.h"
#include "loa/engine/control_status.h"

namespace loa::engine {

namespace pb = loa::control::v1;

ControlClient::ControlClient(const std::filesystem::path& socket_path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.native().size() >= sizeof addr.sun_path) {
        throw ControlError(RpcCode::InvalidArgument, "socket path too long: " + socket_path.string());
    }
    std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.native().size());
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw ControlError(RpcCode::Unavailable, std::string("socket: ") + std::strerror(errno));
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        const int err = errno;
        ::close(fd_);
        fd_ = -1;
        throw ControlError(RpcCode::Unavailable,
                           "cannot connect to " + socket_path.string() + ": " + std::strerror(err));
    }
}

ControlClient::ControlClient(const TcpAddress& address) {
    const std::string& text = address.host_port;
    std::string host;
    std::string port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            throw ControlError(RpcCode::InvalidArgument, "TCP address '" + text + "' must be [ADDRESS]:PORT");
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string::npos || text.find(':') != colon) {
            throw ControlError(RpcCode::InvalidArgument, "TCP address '" + text + "' must be HOST:PORT");
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    if (host.empty() || port.empty()) {
        throw ControlError(RpcCode::InvalidArgument, "TCP address '" + text + "' must be HOST:PORT");
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* list = nullptr;
    if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &list); rc != 0) {
        throw ControlError(RpcCode::Unavailable, "cannot resolve " + text + ": " + ::gai_strerror(rc));
    }
    std::string last_error = "no address";
    for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
        const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_error = std::strerror(errno);
            continue;
        }
        if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            const int one = 1;
            (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            fd_ = fd;
            break;
        }
        last_error = std::strerror(errno);
        ::close(fd);
    }
    ::freeaddrinfo(list);
    if (fd_ < 0) throw ControlError(RpcCode::Unavailable, "cannot connect to " + text + ": " + last_error);
}

ControlClient::~ControlClient() {
    if (fd_ >= 0) ::close(fd_);
}

std::uint64_t ControlClient::send(const std::string& method, const google::protobuf::MessageLite& request,
                                  std::int64_t deadline_unix_ms) {
    pb::Envelope env;
    env.set_request_id(next_id_++);
    env.set_method(method);
    env.set_deadline_unix_ms(deadline_unix_ms);
    env.set_token(token_);
    env.set_payload(request.SerializeAsString());
    send_envelope(env);
    return env.request_id();
}

void ControlClient::send_envelope(const pb::Envelope& envelope) {
    const auto frame = encode_frame(envelope);
    send_raw(std::span(reinterpret_cast<const std::uint8_t*>(frame.data()), frame.size()));
}

void ControlClient::send_raw(std::span<const std::uint8_t> bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
        const auto n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw ControlError(RpcCode::Unavailable, std::string("send: ") + std::strerror(errno));
        }
        off += static_cast<std::size_t>(n);
    }
}

std::optional<pb::Response> ControlClient::read(int timeout_ms) {
    for (;;) {
        std::size_t hlen = 0;
        std::size_t blen = 0;
        const auto view = std::span(reinterpret_cast<const std::uint8_t*>(inbuf_.data()), inbuf_.size());
        const auto st = peek_frame(view, 64u << 20, hlen, blen);
        if (st == FrameStatus::Complete) {
            pb::Response r;
            if (!r.ParseFromArray(inbuf_.data() + hlen, static_cast<int>(blen))) {
                throw ControlError(RpcCode::Internal, "malformed response frame from the engine");
            }
            inbuf_.erase(0, hlen + blen);
            return r;
        }
        if (st != FrameStatus::NeedMore) throw ControlError(RpcCode::Internal, "malformed response frame from the engine");
        if (eof_) return std::nullopt;
        pollfd p{fd_, POLLIN, 0};
        const int pr = ::poll(&p, 1, timeout_ms);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) return std::nullopt;
        char buf[65536];
        const auto n = ::recv(fd_, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            eof_ = true;
            continue;
        }
        inbuf_.append(buf, static_cast<std::size_t>(n));
    }
}

pb::Response ControlClient::call(const std::string& method, const google::protobuf::MessageLite& request,
                                 int timeout_ms) {
    const auto id = send(method, request);
    for (;;) {
        auto r = read(timeout_ms);
        if (!r) {
            throw ControlError(RpcCode::Unavailable,
                               eof_ ? "the engine closed the connection" : "no answer from the engine in time");
        }
        if (r->request_id() == id && !r->more()) return *r;
    }
}

}  // namespace loa::engine
