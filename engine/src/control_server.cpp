#include "loa/engine/control_server.h"

#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "loa/engine/control_service.h"
#include "loa/transport/udp_socket.h"

namespace loa::engine {

namespace asio = boost::asio;
using unix_socket = asio::local::stream_protocol;
// Both listeners hand out generic stream sockets, so one Session serves both.
using stream = asio::generic::stream_protocol;
using stream_acceptor = asio::basic_socket_acceptor<stream>;
namespace pb = loa::control::v1;

namespace {
class Session;
}  // namespace

// Everything the control thread owns; Sessions refer to it.
struct ServerCore {
    ServerCore(ControlService& s, ControlServerOptions o)
        : service(s), options(std::move(o)), acceptor(io), tcp_acceptor(io), tick_timer(io) {}

    void accept(stream_acceptor& a, bool tcp);
    void schedule_tick();
    void remove(const std::shared_ptr<Session>& s);
    void on_event(std::uint64_t seq);

    ControlService& service;
    ControlServerOptions options;
    asio::io_context io;
    stream_acceptor acceptor;      // the Unix socket
    stream_acceptor tcp_acceptor;  // open only with options.tcp_listen
    std::string tcp_endpoint;       // bound "HOST:PORT"
    asio::steady_timer tick_timer;  // ControlService::tick()
    std::set<std::shared_ptr<Session>> sessions;
    std::atomic<std::size_t> session_count{0};
    std::thread thread;
    bool started = false;
    bool stopped = false;
};

struct ControlServer::Impl : ServerCore {
    using ServerCore::ServerCore;
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
public:
    Session(ServerCore& server, stream::socket socket, bool tcp)
        : server_(server), socket_(std::move(socket)) {
        if (tcp) {
            // A TCP peer is never trusted by who it is: every request needs a token.
            peer_.unix_socket = false;
            const int one = 1;
            (void)::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            sockaddr_storage addr{};
            socklen_t alen = sizeof addr;
            if (::getpeername(socket_.native_handle(), reinterpret_cast<sockaddr*>(&addr), &alen) == 0) {
                asio::ip::tcp::endpoint ep;
                std::memcpy(ep.data(), &addr, std::min<std::size_t>(alen, ep.capacity()));
                name_ = "tcp " + ep.address().to_string() + ":" + std::to_string(ep.port());
            } else {
                name_ = "tcp peer";
            }
            return;
        }
        ucred cred{};
        socklen_t len = sizeof cred;
        peer_.unix_socket = true;
        if (::getsockopt(socket_.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            peer_.has_credentials = true;
            peer_.uid = cred.uid;
        }
        name_ = "uid " + std::to_string(peer_.uid);
    }

    void start() { read(); }

    void close() {
        if (closed_) return;
        closed_ = true;
        boost::system::error_code ec;
        socket_.shutdown(stream::socket::shutdown_both, ec);
        socket_.close(ec);
        server_.remove(shared_from_this());
    }

    void pump_watches() {
        if (closed_ || closing_) return;
        const std::size_t room_limit = server_.options.max_queued_frames / 2;
        for (auto& w : watches_) {
            while (queue_.size() < room_limit) {
                std::uint64_t cursor = w.cursor;
                std::vector<pb::Event> events;
                try {
                    events = server_.service.events_for(w.caller, w.cursor, 64, cursor);
                } catch (const std::exception& e) {
                    spdlog::warn("control: event log read failed: {}", e.what());
                    return;
                }
                const bool scanned = cursor != w.cursor;
                w.cursor = cursor;
                for (const auto& ev : events) {
                    pb::Response r;
                    r.set_request_id(w.request_id);
                    r.set_code(pb::OK);
                    r.set_more(true);
                    r.set_payload(ev.SerializeAsString());
                    enqueue(encode_frame(r));
                }
                if (!scanned) break;
            }
        }
    }

private:
    struct Watch {
        std::uint64_t request_id;
        Caller caller;
        std::uint64_t cursor;
    };

    void read() {
        if (closed_ || closing_) return;
        if (inbuf_.size() - used_ < 65536) inbuf_.resize(used_ + 65536);
        socket_.async_read_some(asio::buffer(inbuf_.data() + used_, inbuf_.size() - used_),
                                [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                                    self->on_read(ec, n);
                                });
    }

    void on_read(const boost::system::error_code& ec, std::size_t n) {
        if (closed_) return;
        if (ec) {
            if (queue_.empty()) close();
            else closing_ = true;  // flush what is queued, then close
            return;
        }
        used_ += n;
        std::size_t offset = 0;
        while (!closing_) {
            std::size_t hlen = 0;
            std::size_t blen = 0;
            const auto view = std::span<const std::uint8_t>(inbuf_.data() + offset, used_ - offset);
            const auto st = peek_frame(view, server_.options.max_frame_bytes, hlen, blen);
            if (st == FrameStatus::NeedMore) break;
            if (st == FrameStatus::TooLarge || st == FrameStatus::Malformed) {
                pb::Response r;
                r.set_code(st == FrameStatus::TooLarge ? pb::RESOURCE_EXHAUSTED : pb::INVALID_ARGUMENT);
                r.set_message(st == FrameStatus::TooLarge
                                  ? "frame exceeds the limit of " + std::to_string(server_.options.max_frame_bytes) +
                                        " bytes"
                                  : "frame length prefix is not a valid varint");
                enqueue(encode_frame(r));
                finish();
                return;
            }
            auto outcome = server_.service.handle_frame(view.subspan(hlen, blen), peer_);
            offset += hlen + blen;
            if (outcome.watch) {
                watches_.push_back(Watch{outcome.response.request_id(), outcome.watch->caller, outcome.watch->after_seq});
            } else {
                enqueue(encode_frame(outcome.response));
            }
            if (closed_) return;
            if (outcome.close_connection) {
                finish();
                return;
            }
        }
        if (offset > 0) {
            std::copy(inbuf_.begin() + static_cast<std::ptrdiff_t>(offset),
                      inbuf_.begin() + static_cast<std::ptrdiff_t>(used_), inbuf_.begin());
            used_ -= offset;
        }
        pump_watches();
        read();
    }

    // Stop reading; close once the queue has been written.
    void finish() {
        closing_ = true;
        if (queue_.empty() && !writing_) close();
    }

    void enqueue(std::string frame) {
        if (closed_) return;
        if (queue_.size() >= server_.options.max_queued_frames) {
            spdlog::warn("control: client ({}) is not reading its responses; disconnecting", name_);
            close();
            return;
        }
        queue_.push_back(std::move(frame));
        if (!writing_) write();
    }

    void write() {
        writing_ = true;
        asio::async_write(socket_, asio::buffer(queue_.front()),
                          [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                              self->on_write(ec);
                          });
    }

    void on_write(const boost::system::error_code& ec) {
        writing_ = false;
        if (closed_) return;
        if (ec) {
            close();
            return;
        }
        queue_.pop_front();
        if (!closing_) pump_watches();
        if (closed_) return;
        if (!queue_.empty()) {
            write();
        } else if (closing_) {
            close();
        }
    }

    ServerCore& server_;
    stream::socket socket_;
    PeerInfo peer_;
    std::string name_;  // for logs
    std::vector<std::uint8_t> inbuf_;
    std::size_t used_ = 0;
    std::deque<std::string> queue_;
    std::vector<Watch> watches_;
    bool writing_ = false;
    bool closing_ = false;
    bool closed_ = false;
};

}  // namespace

void ServerCore::accept(stream_acceptor& a, bool tcp) {
    a.async_accept([this, &a, tcp](const boost::system::error_code& ec, stream::socket socket) {
        if (ec) {
            if (ec == asio::error::operation_aborted || !a.is_open()) return;
            spdlog::warn("control: accept failed: {}", ec.message());
        } else {
            auto s = std::make_shared<Session>(*this, std::move(socket), tcp);
            sessions.insert(s);
            session_count = sessions.size();
            s->start();
        }
        accept(a, tcp);
    });
}

namespace {

std::string to_text(const asio::ip::tcp::endpoint& ep) {
    const auto a = ep.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

// Binds the TCP listener of `core`; throws std::runtime_error.
void open_tcp(ServerCore& core) {
    asio::ip::tcp::endpoint want;
    try {
        const auto ep = transport::parse_endpoint(core.options.tcp_listen, "127.0.0.1");
        want = asio::ip::tcp::endpoint(ep.address(), ep.port());
    } catch (const std::exception& e) {
        throw std::runtime_error("control TCP listener '" + core.options.tcp_listen + "': " + e.what());
    }
    boost::system::error_code ec;
    const stream::endpoint generic(want);
    core.tcp_acceptor.open(generic.protocol(), ec);
    if (!ec) core.tcp_acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) core.tcp_acceptor.bind(generic, ec);
    if (!ec) core.tcp_acceptor.listen(asio::socket_base::max_listen_connections, ec);
    stream::endpoint bound;
    if (!ec) bound = core.tcp_acceptor.local_endpoint(ec);
    if (ec) throw std::runtime_error("cannot listen on control TCP address " + to_text(want) + ": " + ec.message());
    asio::ip::tcp::endpoint got;
    std::memcpy(got.data(), bound.data(), std::min<std::size_t>(bound.size(), got.capacity()));
    core.tcp_endpoint = to_text(got);
    if (!want.address().is_loopback()) {
        spdlog::warn("control: TCP listener {} is reachable from other hosts; requests carry tokens in clear text "
                     "until TLS arrives", core.tcp_endpoint);
    }
}

}  // namespace

void ServerCore::schedule_tick() {
    if (options.tick_interval_ms == 0) return;
    // Absolute deadlines, so ticks do not drift; after a stall the missed
    // ones are skipped rather than run back to back.
    const auto period = std::chrono::milliseconds(options.tick_interval_ms);
    auto next = tick_timer.expiry() + period;
    if (const auto now = std::chrono::steady_clock::now(); next < now) next = now + period;
    tick_timer.expires_at(next);
    tick_timer.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;  // cancelled by stop()
        service.tick();  // never throws
        schedule_tick();
    });
}

void ServerCore::remove(const std::shared_ptr<Session>& s) {
    sessions.erase(s);
    session_count = sessions.size();
}

void ServerCore::on_event(std::uint64_t) {
    // Copy: pumping may close (and erase) a session.
    const auto all = std::vector<std::shared_ptr<Session>>(sessions.begin(), sessions.end());
    for (const auto& s : all) s->pump_watches();
}

ControlServer::ControlServer(ControlService& service, ControlServerOptions options)
    : impl_(std::make_unique<Impl>(service, std::move(options))) {
    const auto& path = impl_->options.socket_path;
    if (path.native().size() >= sizeof(sockaddr_un{}.sun_path)) {
        throw std::runtime_error("control socket path " + path.string() + " is too long for a Unix socket");
    }
    std::error_code fec;
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), fec);
    if (std::filesystem::is_socket(path, fec)) std::filesystem::remove(path, fec);
    boost::system::error_code ec;
    const stream::endpoint unix_ep(unix_socket::endpoint(path.string()));
    impl_->acceptor.open(unix_ep.protocol(), ec);
    if (!ec) impl_->acceptor.bind(unix_ep, ec);
    if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("cannot listen on control socket " + path.string() + ": " + ec.message());
    if (::chmod(path.c_str(), static_cast<mode_t>(impl_->options.socket_mode)) != 0) {
        spdlog::warn("control: cannot set mode of {}", path.string());
    }
    if (!impl_->options.socket_group.empty()) {
        if (const group* g = ::getgrnam(impl_->options.socket_group.c_str())) {
            if (::chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
                spdlog::warn("control: cannot give {} to group {}", path.string(), impl_->options.socket_group);
            }
        }
    }
    if (!impl_->options.tcp_listen.empty()) {
        try {
            open_tcp(*impl_);
        } catch (...) {
            std::filesystem::remove(path, fec);
            throw;
        }
    }
    service.set_event_listener([impl = impl_.get()](std::uint64_t seq) { impl->on_event(seq); });
}

ControlServer::~ControlServer() { stop(); }

void ControlServer::start() {
    if (impl_->started) return;
    impl_->started = true;
    impl_->accept(impl_->acceptor, false);
    if (impl_->tcp_acceptor.is_open()) impl_->accept(impl_->tcp_acceptor, true);
    impl_->tick_timer.expires_at(std::chrono::steady_clock::now());
    impl_->schedule_tick();
    impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

void ControlServer::stop() {
    if (impl_->stopped) return;
    impl_->stopped = true;
    asio::post(impl_->io, [impl = impl_.get()] {
        boost::system::error_code ec;
        impl->acceptor.close(ec);
        impl->tcp_acceptor.close(ec);
        impl->tick_timer.cancel();
        const auto all = std::vector<std::shared_ptr<Session>>(impl->sessions.begin(), impl->sessions.end());
        for (const auto& s : all) s->close();
        impl->io.stop();
    });
    if (impl_->thread.joinable()) {
        impl_->thread.join();
    } else {
        impl_->io.run();
    }
    impl_->sessions.clear();
    impl_->session_count = 0;
    impl_->service.set_event_listener({});
    std::error_code fec;
    std::filesystem::remove(impl_->options.socket_path, fec);
}

void ControlServer::post_engine_message(std::string message) {
    asio::post(impl_->io, [impl = impl_.get(), m = std::move(message)] {
        try {
            impl->service.record_engine_message(m);
        } catch (const std::exception& e) {
            spdlog::warn("control: cannot record event: {}", e.what());
        }
    });
}

const std::filesystem::path& ControlServer::socket_path() const noexcept { return impl_->options.socket_path; }

const std::string& ControlServer::tcp_endpoint() const noexcept { return impl_->tcp_endpoint; }

std::size_t ControlServer::connection_count() const noexcept { return impl_->session_count.load(); }

}  // namespace loa::engine
