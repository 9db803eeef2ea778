#include "loa/transport/impair_proxy.h"

#include <algorithm>
#include <chrono>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#pragma GCC diagnostic pop

namespace loa::transport {
namespace {

namespace asio = boost::asio;
using udp = asio::ip::udp;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxDatagram = 65536;

struct Held {
    std::int64_t release_ns;
    std::uint64_t order;  // decision order: ties leave first-decided first
    std::uint32_t slot;
    bool reverse;
};

/// Heap comparator: the earliest (release, order) ends up at the front.
struct LeavesLater {
    bool operator()(const Held& a, const Held& b) const {
        if (a.release_ns != b.release_ns) return a.release_ns > b.release_ns;
        return a.order > b.order;
    }
};

struct DirectionCounters {
    std::atomic<std::uint64_t> received{0};
    std::atomic<std::uint64_t> forwarded{0};
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint64_t> duplicated{0};
    std::atomic<std::uint64_t> reordered{0};
};

void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
    c.fetch_add(n, std::memory_order_relaxed);
}

udp::endpoint any_of_family(const udp::endpoint& like) {
    if (like.address().is_v6()) return udp::endpoint(asio::ip::address_v6::any(), 0);
    return udp::endpoint(asio::ip::address_v4::any(), 0);
}

}  // namespace

struct ImpairProxy::Impl {
    explicit Impl(ImpairProxyConfig c)
        : config(std::move(c)),
          listen_socket(open_udp(io, config.listen, config.socket_options)),
          upstream_socket(open_udp(io, any_of_family(config.target), config.socket_options)),
          timer(io),
          forward_model(config.forward),
          rx_client(kMaxDatagram),
          rx_target(kMaxDatagram) {
        if (config.reverse) reverse_model.emplace(*config.reverse);
        local = listen_socket.local_endpoint();
        upstream = upstream_socket.local_endpoint();
        heap.reserve(std::min<std::size_t>(config.max_held, 4096));
    }

    // ---- io thread only below this line (after start()) ----

    std::int64_t now_ns() const {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_time).count();
    }

    void receive_client() {
        listen_socket.async_receive_from(asio::buffer(rx_client), rx_client_from,
                                         [this](const boost::system::error_code& ec, std::size_t n) {
                                             on_client(ec, n);
                                         });
    }

    void receive_target() {
        upstream_socket.async_receive_from(asio::buffer(rx_target), rx_target_from,
                                           [this](const boost::system::error_code& ec, std::size_t n) {
                                               on_target(ec, n);
                                           });
    }

    void on_client(const boost::system::error_code& ec, std::size_t n) {
        if (stopping || ec == asio::error::operation_aborted) return;
        if (!ec) {
            bump(fwd.received);
            last_client = rx_client_from;
            const std::int64_t now = now_ns();
            const ImpairDecision d = forward_model.decide(forward_index++, now);
            admit(d, fwd, std::span<const std::uint8_t>(rx_client.data(), n), false);
            release_due(now);
            rearm();
        }
        // Other errors (e.g. a late ICMP report) lose nothing of ours: keep receiving.
        receive_client();
    }

    void on_target(const boost::system::error_code& ec, std::size_t n) {
        if (stopping || ec == asio::error::operation_aborted) return;
        if (!ec) {
            bump(rev.received);
            const std::int64_t now = now_ns();
            const std::span<const std::uint8_t> bytes(rx_target.data(), n);
            if (!last_client) {
                bump(rev.dropped);
            } else if (reverse_model) {
                const ImpairDecision d = reverse_model->decide(reverse_index++, now);
                admit(d, rev, bytes, true);
            } else {
                ImpairDecision d;
                d.copies = 1;
                d.release_ns[0] = now;
                admit(d, rev, bytes, true);
            }
            release_due(now);
            rearm();
        }
        receive_target();
    }

    void admit(const ImpairDecision& d, DirectionCounters& counters, std::span<const std::uint8_t> bytes,
               bool reverse) {
        if (d.dropped()) {
            bump(counters.dropped);
            return;
        }
        if (d.reordered) bump(counters.reordered);
        if (d.duplicated()) bump(counters.duplicated);
        for (std::uint32_t i = 0; i < d.copies; ++i) {
            if (heap.size() >= config.max_held) {
                bump(overflow);
                continue;
            }
            std::uint32_t slot = 0;
            if (!free_slots.empty()) {
                slot = free_slots.back();
                free_slots.pop_back();
            } else {
                slot = static_cast<std::uint32_t>(slots.size());
                slots.emplace_back();
            }
            slots[slot].assign(bytes.begin(), bytes.end());
            heap.push_back(Held{d.release_ns[i], next_order++, slot, reverse});
            std::push_heap(heap.begin(), heap.end(), LeavesLater{});
        }
        held.store(heap.size(), std::memory_order_relaxed);
    }

    void release_due(std::int64_t now) {
        while (!heap.empty() && heap.front().release_ns <= now) {
            std::pop_heap(heap.begin(), heap.end(), LeavesLater{});
            const Held h = heap.back();
            heap.pop_back();
            send(h);
            free_slots.push_back(h.slot);
        }
        held.store(heap.size(), std::memory_order_relaxed);
    }

    void send(const Held& h) {
        const auto& bytes = slots[h.slot];
        boost::system::error_code ec;
        if (h.reverse) {
            listen_socket.send_to(asio::buffer(bytes), *last_client, 0, ec);
            if (!ec) bump(rev.forwarded);
        } else {
            upstream_socket.send_to(asio::buffer(bytes), config.target, 0, ec);
            if (!ec) bump(fwd.forwarded);
        }
        if (ec) bump(send_errors);
    }

    void rearm() {
        if (heap.empty()) return;
        const std::int64_t head = heap.front().release_ns;
        if (timer_armed && armed_ns <= head) return;
        timer.expires_at(start_time + std::chrono::nanoseconds(head));
        armed_ns = head;
        timer_armed = true;
        timer.async_wait([this](const boost::system::error_code& ec) {
            // Aborted: rearm() or stop() replaced this wait; nothing to do.
            if (stopping || ec == asio::error::operation_aborted) return;
            timer_armed = false;
            release_due(now_ns());
            rearm();
        });
    }

    void shutdown() {
        stopping = true;
        boost::system::error_code ec;
        timer.cancel();
        listen_socket.close(ec);
        upstream_socket.close(ec);
        heap.clear();
        held.store(0, std::memory_order_relaxed);
    }

    ImpairProxyConfig config;
    asio::io_context io;
    udp::socket listen_socket;
    udp::socket upstream_socket;
    asio::steady_timer timer;
    ImpairmentModel forward_model;
    std::optional<ImpairmentModel> reverse_model;
    Clock::time_point start_time{};

    std::vector<std::uint8_t> rx_client;
    std::vector<std::uint8_t> rx_target;
    udp::endpoint rx_client_from;
    udp::endpoint rx_target_from;
    std::optional<udp::endpoint> last_client;
    udp::endpoint local;     // immutable after construction
    udp::endpoint upstream;  // immutable after construction

    std::vector<std::vector<std::uint8_t>> slots;  // datagram bytes, recycled through free_slots
    std::vector<std::uint32_t> free_slots;
    std::vector<Held> heap;
    std::uint64_t next_order = 0;
    std::uint64_t forward_index = 0;
    std::uint64_t reverse_index = 0;
    bool timer_armed = false;
    std::int64_t armed_ns = 0;
    bool stopping = false;

    DirectionCounters fwd;
    DirectionCounters rev;
    std::atomic<std::uint64_t> overflow{0};
    std::atomic<std::uint64_t> send_errors{0};
    std::atomic<std::uint64_t> held{0};

    // Control thread.
    std::thread thread;
    bool started = false;
};

ImpairProxy::ImpairProxy(ImpairProxyConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

ImpairProxy::~ImpairProxy() { stop(); }

void ImpairProxy::start() {
    if (impl_->started) return;
    impl_->started = true;
    impl_->start_time = Clock::now();
    impl_->receive_client();
    impl_->receive_target();
    impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

void ImpairProxy::stop() {
    if (!impl_->thread.joinable()) return;
    asio::post(impl_->io, [impl = impl_.get()] { impl->shutdown(); });
    impl_->thread.join();
}

boost::asio::ip::udp::endpoint ImpairProxy::local_endpoint() const { return impl_->local; }

boost::asio::ip::udp::endpoint ImpairProxy::upstream_endpoint() const { return impl_->upstream; }

ImpairProxyStats ImpairProxy::stats() const {
    const auto load = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    ImpairProxyStats s;
    s.received = load(impl_->fwd.received);
    s.forwarded = load(impl_->fwd.forwarded);
    s.dropped = load(impl_->fwd.dropped);
    s.duplicated = load(impl_->fwd.duplicated);
    s.reordered = load(impl_->fwd.reordered);
    s.reverse_received = load(impl_->rev.received);
    s.reverse_forwarded = load(impl_->rev.forwarded);
    s.reverse_dropped = load(impl_->rev.dropped);
    s.reverse_duplicated = load(impl_->rev.duplicated);
    s.reverse_reordered = load(impl_->rev.reordered);
    s.overflow = load(impl_->overflow);
    s.send_errors = load(impl_->send_errors);
    s.held = load(impl_->held);
    return s;
}

}  // namespace loa::transport
