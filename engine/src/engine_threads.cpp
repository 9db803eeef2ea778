// Engine: start and stop, the I/O thread's receive handlers (cluster
// reports, studio ingest) and the media thread's frame loop.
#include <sys/socket.h>

#include <algorithm>
#include <array>

#include "engine_internal.h"
#include "loa/transport/rtp_packet.h"
#include "loa/transport/thread_priority.h"

namespace loa::engine {

namespace {
// Reads and discards queued socket errors (IP_RECVERR); returns how many.
std::uint64_t drain_error_queue(int fd) {
    std::uint64_t n = 0;
    std::array<char, 512> control{};
    std::array<std::uint8_t, 64> data{};
    for (; n < 1024; ++n) {
        iovec iov{data.data(), data.size()};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        if (::recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) break;
    }
    return n;
}
}  // namespace

void Engine::start() {
    if (running_) return;
    running_ = true;
    started_ns_ = clock_.now_ns();

    // Report clip problems once the decoders have tried to open their files.
    for (const auto& p : programs_) {
        for (const auto& s : p->sources()) {
            const Source* src = s.get();
            if (const auto* studio = dynamic_cast<const StudioSource*>(src)) src = studio->fallback();
            if (const auto* clip = dynamic_cast<const ClipSource*>(src)) {
                while (!clip->ready()) std::this_thread::yield();
                if (!clip->error().empty()) {
                    emit("programme '" + p->config().name + "': " + clip->error() + " (the source stays silent)");
                }
            }
        }
    }

    auto receive = std::make_shared<std::function<void(Receiver&)>>();
    *receive = [this, receive](Receiver& r) {
        r.socket.async_receive_from(asio::buffer(r.buf), r.from, [this, receive, &r](auto ec, std::size_t n) {
            if (ec == asio::error::operation_aborted) return;
            if (ec) {
                // An ICMP refusal of an earlier send surfaced here: count it
                // and clear the socket's error queue, then carry on.
                ingress_.receive_errors.fetch_add(1 + drain_error_queue(r.socket.native_handle()),
                                                  std::memory_order_relaxed);
            } else {
                handle_datagram(std::span<const std::uint8_t>(r.buf.data(), n), r.from);
            }
            if (!stop_.load(std::memory_order_acquire)) (*receive)(r);
        });
    };
    for (auto& r : io_->v4) (*receive)(*r);
    for (auto& r : io_->v6) (*receive)(*r);

    if (io_->ingest) {
        auto ingest = std::make_shared<std::function<void()>>();
        *ingest = [this, ingest] {
            Receiver& r = *io_->ingest;
            r.socket.async_receive_from(asio::buffer(r.buf), r.from, [this, ingest, &r](auto ec, std::size_t n) {
                if (ec == asio::error::operation_aborted) return;
                if (ec) {
                    ingest_.receive_errors.fetch_add(1, std::memory_order_relaxed);
                } else {
                    handle_ingest(std::span<const std::uint8_t>(r.buf.data(), n), r.from);
                }
                if (!stop_.load(std::memory_order_acquire)) (*ingest)();
            });
        };
        (*ingest)();
    }

    io_->sweep_timer.emplace(io_->context);
    auto sweep = std::make_shared<std::function<void()>>();
    *sweep = [this, sweep] {
        io_->sweep_timer->expires_after(std::chrono::seconds(1));
        io_->sweep_timer->async_wait([this, sweep](auto ec) {
            if (ec) return;
            for (const auto& id : registry_.sweep(clock_.now_ns())) {
                emit("cluster '" + id + "' offline: no report for " +
                     std::to_string(config_.engine.cluster_timeout_s) + " s");
            }
            // (Retired fan-out sets are freed on the control thread, by
            // set_programme_destinations() and collect_programmes().)
            (*sweep)();
        });
    };
    (*sweep)();

    io_thread_ = std::thread([this] { io_->context.run(); });
    media_started_.store(false);
    media_thread_ = std::thread([this] {
        const int prio = config_.engine.realtime_priority;
        if (prio > 0 && !transport::set_realtime_priority(prio)) media_realtime_refused_.store(true);
        media_started_.store(true, std::memory_order_release);
        media_started_.notify_all();
        media_loop();
    });
    media_started_.wait(false, std::memory_order_acquire);
}

void Engine::handle_datagram(std::span<const std::uint8_t> d, const udp::endpoint& from) {
    if (!transport::looks_like_rtcp(d)) {
        ingress_.rtp_unexpected.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    ingress_.rtcp_received.fetch_add(1, std::memory_order_relaxed);
    std::string id;
    bool came_online = false;
    switch (registry_.on_rtcp(d, from, clock_.now_ns(), clock_.unix_ns(), id, came_online)) {
        case ClusterRegistry::Result::Accepted:
            if (came_online) {
                emit("cluster '" + id + "' online from " + from.address().to_string() + ":" +
                     std::to_string(from.port()));
            }
            break;
        case ClusterRegistry::Result::Malformed:
            ingress_.rtcp_malformed.fetch_add(1, std::memory_order_relaxed);
            break;
        case ClusterRegistry::Result::NoCname:
            ingress_.rtcp_no_cname.fetch_add(1, std::memory_order_relaxed);
            break;
        case ClusterRegistry::Result::UnknownCluster:
            ingress_.rtcp_unknown_cluster.fetch_add(1, std::memory_order_relaxed);
            break;
    }
}

void Engine::handle_ingest(std::span<const std::uint8_t> d, const udp::endpoint& from) {
    ingest_.received.fetch_add(1, std::memory_order_relaxed);
    switch (io_->router.route(d, from, clock_.now_ns())) {
        case IngestRouter::Result::Accepted:
            ingest_.accepted.fetch_add(1, std::memory_order_relaxed);
            break;
        case IngestRouter::Result::Idle:
            ingest_.idle.fetch_add(1, std::memory_order_relaxed);
            break;
        case IngestRouter::Result::Malformed:
            ingest_.malformed.fetch_add(1, std::memory_order_relaxed);
            break;
        case IngestRouter::Result::Rtcp:
            ingest_.rtcp.fetch_add(1, std::memory_order_relaxed);
            break;
        case IngestRouter::Result::UnknownStudio:
            ingest_.unknown_studio.fetch_add(1, std::memory_order_relaxed);
            break;
        case IngestRouter::Result::ForeignAddress:
            ingest_.foreign_address.fetch_add(1, std::memory_order_relaxed);
            break;
        case IngestRouter::Result::QueueFull:
            ingest_.queue_full.fetch_add(1, std::memory_order_relaxed);
            break;
    }
}

bool Engine::realtime_refused() const noexcept {
    return media_realtime_refused_.load() || fanout_->realtime_refused();
}

void Engine::stop() {
    if (!running_) return;
    stop_.store(true, std::memory_order_release);
    if (media_thread_.joinable()) media_thread_.join();
    io_->context.stop();
    if (io_thread_.joinable()) io_thread_.join();
    drain_ingest();
    running_ = false;
    stopped_ns_ = clock_.now_ns();
}

void Engine::drain_ingest() {
    // Studio datagrams that reached the socket before the stop are still
    // classified and counted, so the exit counters account for all of them
    // (bounded: a flood cannot hold the shutdown up).
    if (!io_->ingest) return;
    Receiver& r = *io_->ingest;
    boost::system::error_code ec;
    r.socket.non_blocking(true, ec);
    for (int i = 0; i < 4096 && !ec; ++i) {
        const std::size_t n = r.socket.receive_from(asio::buffer(r.buf), r.from, 0, ec);
        if (!ec) handle_ingest(std::span<const std::uint8_t>(r.buf.data(), n), r.from);
    }
}

namespace {
// How far behind its deadlines the media thread may fall and still send
// every frame (in a burst); beyond it, frames are skipped and counted late.
constexpr std::int64_t kMaxCatchUpNs = 200'000'000;
}  // namespace

void Engine::media_loop() {
    // Absolute deadlines: programme i's frame n is due at start + n * period_i.
    const std::int64_t start = clock_.now_ns() + 2'000'000;
    std::vector<std::uint64_t> index(programs_.size(), 0);
    // Run-time programmes: each with its own origin (the frame boundary at
    // which the media thread took it). Reserved here, so taking one in never
    // allocates.
    struct Live {
        Program* program;
        std::int64_t origin;
        std::uint64_t index;
    };
    std::vector<Live> live;
    live.reserve(kMaxRuntimeProgrammes);
    auto take_commands = [&](std::int64_t now) noexcept {
        Command c;
        while (commands_.pop(c)) {
            if (c.add) {
                if (live.size() < kMaxRuntimeProgrammes) live.push_back(Live{c.program, now, 0});
                continue;
            }
            for (std::size_t i = 0; i < live.size(); ++i) {
                if (live[i].program != c.program) continue;
                live[i] = live.back();
                live.pop_back();
                break;
            }
            // Never full: at most kMaxRuntimeProgrammes programmes exist.
            [[maybe_unused]] const bool pushed = released_.push(c.program);
        }
    };
    // With no programme at all, look for new ones this often; otherwise new
    // ones are taken at the next frame boundary.
    constexpr std::int64_t kIdlePollNs = 10'000'000;
    while (!stop_.load(std::memory_order_acquire)) {
        take_commands(clock_.now_ns());
        std::int64_t next = programs_.empty() && live.empty() ? clock_.now_ns() + kIdlePollNs : INT64_MAX;
        for (std::size_t i = 0; i < programs_.size(); ++i) {
            next = std::min(next, start + static_cast<std::int64_t>(index[i]) * programs_[i]->period_ns());
        }
        for (const auto& l : live) {
            next = std::min(next, l.origin + static_cast<std::int64_t>(l.index) * l.program->period_ns());
        }
        clock_.sleep_until(next);
        const auto now = clock_.now_ns();
        const auto unix_now = clock_.unix_ns();
        for (auto& l : live) {
            auto& p = *l.program;
            const auto period = p.period_ns();
            auto deadline = l.origin + static_cast<std::int64_t>(l.index) * period;
            if (deadline > now) continue;
            if (now - deadline > kMaxCatchUpNs) {
                const auto skip = static_cast<std::uint64_t>((now - deadline - kMaxCatchUpNs) / period) + 1;
                p.skip_frames(skip);
                l.index += skip;
                deadline = l.origin + static_cast<std::int64_t>(l.index) * period;
            }
            while (deadline <= now) {
                if (now - deadline > period) p.count_late();
                p.produce_frame(deadline, unix_now - (now - deadline), *pool_, *fanout_, clock_);
                ++l.index;
                deadline += period;
            }
        }
        for (std::size_t i = 0; i < programs_.size(); ++i) {
            auto& p = *programs_[i];
            const auto period = p.period_ns();
            auto deadline = start + static_cast<std::int64_t>(index[i]) * period;
            if (deadline > now) continue;
            if (now - deadline > kMaxCatchUpNs) {
                // Stalled for longer than receivers can absorb: skip what can
                // no longer be useful, keep the last kMaxCatchUpNs.
                const auto skip = static_cast<std::uint64_t>((now - deadline - kMaxCatchUpNs) / period) + 1;
                p.skip_frames(skip);
                index[i] += skip;
                deadline = start + static_cast<std::int64_t>(index[i]) * period;
            }
            // Produce every frame that is due; after a short stall (a busy
            // host, a preempted VM) the overdue ones go out back to back and
            // the receivers' jitter buffers absorb the burst.
            while (deadline <= now) {
                if (now - deadline > period) p.count_late();
                p.produce_frame(deadline, unix_now - (now - deadline), *pool_, *fanout_, clock_);
                ++index[i];
                deadline += period;
            }
        }
    }
}

}  // namespace loa::engine
