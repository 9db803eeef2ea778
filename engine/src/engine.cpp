#include "loa/engine/engine.h"

#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <google/protobuf/util/json_util.h>

#include "loa/engine/ingest.h"
#include "loa/engine/studio_source.h"
#include "loa/engine/v1/stats.pb.h"
#include "loa/transport/rtp_packet.h"
#include "loa/transport/thread_priority.h"
#include "loa/transport/udp_socket.h"

namespace loa::engine {

namespace asio = boost::asio;
using asio::ip::udp;

// One bound socket of the engine's RTP/RTCP port. Every fan-out shard sends
// through its own socket (SO_REUSEPORT on one port, so clusters see one
// source); reports arriving on any of them are read by the I/O thread.
struct Receiver {
    explicit Receiver(udp::socket s) : socket(std::move(s)) {}
    udp::socket socket;
    std::array<std::uint8_t, 2048> buf{};
    udp::endpoint from;
};

struct Engine::Io {
    asio::io_context context;
    std::vector<std::unique_ptr<Receiver>> v4;
    std::vector<std::unique_ptr<Receiver>> v6;
    std::unique_ptr<Receiver> ingest;  // studios' RTP (when studios are declared or may be added)
    IngestRouter router;               // I/O thread
    std::optional<asio::steady_timer> sweep_timer;
};

// A studio: its ingest feed and the sources that read it. Fields other
// than the feed belong to the control thread.
struct Engine::Studio {
    // A run-time programme (not being removed) reading the feed.
    struct Feeding {
        std::uint32_t group;
        const StudioSource* source;
    };
    Studio(const StudioConfig& c, bool rt)
        : config(c), feed(StudioMatch{c.name, c.ssrc, c.source_address}), runtime(rt) {}
    StudioConfig config;
    StudioFeed feed;
    bool runtime = false;                  // added by add_studio()
    const StudioSource* source = nullptr;  // config studios: the source of their programme (nullptr: none)
    // Run-time studios only:
    std::vector<Feeding> feeding;      // in the order they took it (at most StudioFeed::kMaxReaders)
    std::size_t holders = 0;           // studio sources of run-time programmes alive (removed ones too)
    std::uint64_t removed_ticket = 0;  // IngestRouter ticket of the table that left it out
    // The source whose playout the studio's stats show.
    const StudioSource* shown() const noexcept { return feeding.empty() ? source : feeding.front().source; }
};

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

transport::UdpOptions socket_options(const EngineSettings& s) {
    transport::UdpOptions o;
    o.send_buffer_bytes = 8 << 20;
    o.reuse_port = true;       // one socket per fan-out shard, all on the same port
    o.receive_errors = true;   // ICMP refusals are reported (and counted), not silently lost
    o.multicast_ttl = s.multicast_ttl;
    o.multicast_loop = s.multicast_loop;
    o.multicast_interface = s.multicast_interface;
    return o;
}

}  // namespace

Engine::Engine(const EngineConfig& config, Clock& clock, EventSink events)
    : config_(config),
      clock_(clock),
      events_(std::move(events)),
      io_(std::make_unique<Io>()),
      registry_(config.clusters, static_cast<std::int64_t>(config.engine.cluster_timeout_s) * 1'000'000'000) {
    const auto opts = socket_options(config_.engine);
    const auto shards = std::max<std::size_t>(config_.engine.fanout_threads, 1);
    // Opens `shards` sockets on one port: the first may pick an ephemeral
    // port, the rest join it.
    auto open_all = [&](udp::endpoint ep, std::vector<std::unique_ptr<Receiver>>& out, const char* what) {
        try {
            for (std::size_t i = 0; i < shards; ++i) {
                out.push_back(std::make_unique<Receiver>(transport::open_udp(io_->context, ep, opts)));
                if (i == 0) ep.port(out.front()->socket.local_endpoint().port());
            }
        } catch (const std::exception& e) {
            throw std::runtime_error(std::string("cannot open ") + what + " socket on " + ep.address().to_string() +
                                     ":" + std::to_string(ep.port()) + ": " + e.what());
        }
    };
    open_all(config_.engine.listen, io_->v4, "RTP");
    if (config_.engine.listen_v6) open_all(*config_.engine.listen_v6, io_->v6, "IPv6 RTP");
    // The ingest socket: for the config's studios, and for the ones the
    // control plane (present with a state_dir) may add at run time.
    if (!config_.studios.empty() || config_.engine.state_dir) {
        const auto& ep = config_.engine.ingest_listen;
        try {
            transport::UdpOptions ingest_opts;
            ingest_opts.receive_buffer_bytes = 1 << 20;
            io_->ingest = std::make_unique<Receiver>(transport::open_udp(io_->context, ep, ingest_opts));
        } catch (const std::exception& e) {
            const std::string what = "cannot open the ingest socket on " + ep.address().to_string() + ":" +
                                     std::to_string(ep.port()) + ": " + e.what();
            if (!config_.studios.empty()) throw std::runtime_error(what);
            emit(what + " (studios cannot be added; set engine.ingest_listen)");
        }
        for (const auto& sc : config_.studios) studios_.push_back(std::make_unique<Studio>(sc, false));
    }

    std::int64_t min_period = 60'000'000;
    for (const auto& p : config_.programs) min_period = std::min<std::int64_t>(min_period, p.ptime_ms * 1'000'000LL);

    transport::FanoutConfig fc;
    fc.threads = config_.engine.fanout_threads;
    fc.max_batch = config_.engine.fanout_batch;
    fc.max_groups = config_.programs.size() + kMaxRuntimeProgrammes;
    fc.miss_after_ns = min_period;
    fc.realtime_priority = config_.engine.realtime_priority;
    std::vector<int> fds4, fds6;
    for (const auto& r : io_->v4) fds4.push_back(r->socket.native_handle());
    for (const auto& r : io_->v6) fds6.push_back(r->socket.native_handle());
    fanout_ = std::make_unique<transport::FanoutSender>(fc, fds4, fds6);
    // Every programme may hold a frame in each shard queue plus one being built.
    pool_ = std::make_unique<transport::PacketPool>((config_.programs.size() + kMaxRuntimeProgrammes) * 160);
    // Run-time programmes take the groups after the configured ones.
    for (std::size_t i = kMaxRuntimeProgrammes; i-- > 0;) {
        free_groups_.push_back(static_cast<std::uint32_t>(config_.programs.size() + i));
    }

    SourceContext& context = source_context_;
    context.clock = &clock_;
    context.find_studio = [this](const std::string& name) -> std::optional<StudioLink> {
        Studio* st = find_studio(name);
        if (st == nullptr) return std::nullopt;
        StudioLink link;
        link.feed = &st->feed;
        link.playout.min_delay_ms = st->config.min_delay_ms;
        link.playout.max_delay_ms = st->config.max_delay_ms;
        link.playout.fixed_delay_ms = st->config.fixed_delay_ms;
        return link;
    };

    std::uint32_t group = 0;
    for (const auto& p : config_.programs) {
        programs_.push_back(std::make_unique<Program>(p, group, config_.engine.cname, context, config_.engine.ducking));
        std::vector<transport::Destination> dests;
        for (const auto& ep : config_.destinations_of(p)) dests.push_back({ep, 0});
        const auto skipped = fanout_->set_destinations(group, dests);
        if (skipped > 0) {
            emit("programme '" + p.name + "': " + std::to_string(skipped) +
                 " destination(s) skipped: no socket of their address family (set engine.listen_v6)");
        }
        ++group;
    }

    // Route a studio's packets only to a source that consumes them.
    for (auto& st : studios_) {
        for (const auto& p : programs_) {
            for (const auto& src : p->sources()) {
                const auto* ss = dynamic_cast<const StudioSource*>(src.get());
                if (ss != nullptr && &ss->feed() == &st->feed) st->source = ss;
            }
        }
        if (st->source == nullptr) {
            emit("studio '" + st->config.name + "' is not a source of programme '" + st->config.program +
                 "': its packets are dropped");
        }
    }
    (void)publish_studios();
}

Engine::Studio* Engine::find_studio(const std::string& name) const noexcept {
    for (const auto& st : studios_) {
        if (st->config.name == name) return st.get();
    }
    for (const auto& st : runtime_studios_) {
        if (st->config.name == name) return st.get();
    }
    return nullptr;
}

std::uint64_t Engine::publish_studios() {
    std::vector<StudioFeed*> feeds;
    feeds.reserve(studios_.size() + runtime_studios_.size());
    // Config studios route only to the source that consumes them.
    for (const auto& st : studios_) {
        if (st->source != nullptr) feeds.push_back(&st->feed);
    }
    for (const auto& st : runtime_studios_) feeds.push_back(&st->feed);
    return io_->router.publish(std::move(feeds));
}

std::size_t Engine::collect_studios() {
    const auto before = retired_studios_.size();
    std::erase_if(retired_studios_, [&](const std::unique_ptr<Studio>& st) {
        return st->holders == 0 && io_->router.released(st->removed_ticket);
    });
    io_->router.collect_garbage();
    return before - retired_studios_.size();
}

void Engine::add_studio(const StudioConfig& config) {
    collect_studios();
    if (!io_->ingest) throw std::runtime_error("the engine has no ingest socket: studios cannot be added");
    if (!config.ssrc && !config.source_address) {
        throw std::invalid_argument("studio '" + config.name + "' needs an ssrc, a source address or both");
    }
    if (const Studio* other = find_studio(config.name)) {
        throw std::invalid_argument("studio '" + config.name + "' already exists" +
                                    (other->runtime ? std::string() : std::string(" (declared in the config)")));
    }
    for (const auto* list : {&studios_, &runtime_studios_}) {
        for (const auto& o : *list) {
            if (o->config.ssrc == config.ssrc && o->config.source_address == config.source_address) {
                throw std::invalid_argument("studios '" + o->config.name + "' and '" + config.name +
                                            "' cannot be told apart (same ssrc and source address)");
            }
        }
    }
    // Idle (packets counted and dropped) until a programme attaches a reader.
    runtime_studios_.push_back(std::make_unique<Studio>(config, true));
    try {
        (void)publish_studios();
    } catch (...) {
        runtime_studios_.pop_back();
        throw;
    }
}

Engine::StudioRemoval Engine::remove_studio(const std::string& name) {
    collect_programmes();
    auto it = std::find_if(runtime_studios_.begin(), runtime_studios_.end(),
                           [&](const std::unique_ptr<Studio>& st) { return st->config.name == name; });
    if (it == runtime_studios_.end()) return StudioRemoval::NotFound;
    if (!(*it)->feeding.empty()) return StudioRemoval::Busy;
    retired_studios_.reserve(retired_studios_.size() + 1);
    const auto at = it - runtime_studios_.begin();
    std::unique_ptr<Studio> st = std::move(*it);
    runtime_studios_.erase(it);
    std::uint64_t ticket = 0;
    try {
        ticket = publish_studios();
    } catch (...) {
        runtime_studios_.insert(runtime_studios_.begin() + at, std::move(st));
        throw;
    }
    // Out of the table: freed once the I/O thread has finished with the old one.
    st->removed_ticket = ticket;
    retired_studios_.push_back(std::move(st));
    collect_studios();
    return StudioRemoval::Removed;
}

std::vector<std::string> Engine::runtime_studios() const {
    std::vector<std::string> out;
    for (const auto& st : runtime_studios_) out.push_back(st->config.name);
    return out;
}

std::optional<StudioStatus> Engine::studio_status(const std::string& name, loa::engine::v1::StudioStats* stats) const {
    const Studio* st = find_studio(name);
    if (st == nullptr) return std::nullopt;
    StudioStatus out;
    out.runtime = st->runtime;
    for (const auto& f : st->feeding) out.programme_groups.push_back(f.group);
    if (!st->feeding.empty()) out.programme_group = st->feeding.front().group;
    if (const auto last = st->feed.last_packet_ns()) {
        out.receiving = clock_.now_ns() - *last < StudioSource::kSilentAfterNs;
    }
    if (stats != nullptr) fill_studio_stats(*st, *stats);
    return out;
}

Engine::~Engine() {
    stop();
    // The media thread is gone: every run-time programme is ours again.
    Command c;
    while (commands_.pop(c)) {}
    Program* p = nullptr;
    while (released_.pop(p)) {}
    for (auto& [group, program] : runtime_) fanout_->clear(group);
}

std::uint32_t Engine::add_programme(const ProgramConfig& config, bool paused) {
    collect_programmes();
    if (free_groups_.empty()) {
        throw CapacityError("programme '" + config.name + "': all " + std::to_string(kMaxRuntimeProgrammes) +
                            " run-time programme slots are in use");
    }
    // Studio sources: run-time studios, each read by at most
    // StudioFeed::kMaxReaders sources at once (programmes and alerts).
    std::vector<Studio*> wanted;
    for (const auto& src : config.sources) {
        if (src.type != SourceConfig::Type::Studio) continue;
        Studio* st = find_studio(src.studio);
        if (st == nullptr) throw std::runtime_error("programme '" + config.name + "': no studio '" + src.studio + "'");
        if (!st->runtime) {
            throw std::runtime_error("programme '" + config.name + "': studio '" + src.studio +
                                     "' is declared in the config for programme '" + st->config.program + "'");
        }
        wanted.push_back(st);
        const auto n = static_cast<std::size_t>(std::count(wanted.begin(), wanted.end(), st));
        if (st->feed.readers() + n > StudioFeed::kMaxReaders) {
            throw CapacityError("programme '" + config.name + "': studio '" + src.studio + "' already feeds " +
                                std::to_string(st->feed.readers()) + " programme(s) or alert(s); one studio feeds " +
                                "at most " + std::to_string(StudioFeed::kMaxReaders) +
                                " at once (stop one of them first)");
        }
    }
    const auto group = free_groups_.back();
    // Its studio sources attach their readers here (and detach if it throws).
    auto program = std::make_unique<Program>(config, group, config_.engine.cname, source_context_,
                                             config_.engine.ducking);
    program->set_paused(paused);
    fanout_->clear(group);
    std::vector<Studio*> users;
    for (const auto& src : program->sources()) {
        const auto* ss = dynamic_cast<const StudioSource*>(src.get());
        if (ss == nullptr) continue;
        for (const auto& st : runtime_studios_) {
            if (&ss->feed() != &st->feed) continue;
            st->feeding.push_back({group, ss});
            ++st->holders;
            users.push_back(st.get());
        }
    }
    if (!users.empty()) runtime_studio_users_[group] = std::move(users);
    Program* raw = program.get();
    runtime_.emplace(group, std::move(program));
    runtime_removed_[group] = false;
    free_groups_.pop_back();
    // Never full: each live programme has at most an add and a remove queued.
    [[maybe_unused]] const bool pushed = commands_.push(Command{raw, true});
    return group;
}

bool Engine::remove_programme(std::uint32_t group) {
    auto it = runtime_.find(group);
    if (it == runtime_.end() || runtime_removed_[group]) return false;
    fanout_->clear(group);
    runtime_removed_[group] = true;
    // Its studio readers are free for another programme at once: their
    // slots take no more packets for it (the media thread renders
    // programmes one after the other, and drops this one first).
    if (auto users = runtime_studio_users_.find(group); users != runtime_studio_users_.end()) {
        for (Studio* st : users->second) {
            std::erase_if(st->feeding, [&](const Studio::Feeding& f) {
                if (f.group != group) return false;
                (void)st->feed.detach(f.source->attachment());
                return true;
            });
        }
    }
    [[maybe_unused]] const bool pushed = commands_.push(Command{it->second.get(), false});
    collect_programmes();
    return true;
}

bool Engine::set_programme_paused(std::uint32_t group, bool paused) {
    auto it = runtime_.find(group);
    if (it == runtime_.end() || runtime_removed_[group]) return false;
    it->second->set_paused(paused);
    return true;
}

bool Engine::rewind_programme(std::uint32_t group) {
    auto it = runtime_.find(group);
    if (it == runtime_.end() || runtime_removed_[group]) return false;
    return it->second->rewind();
}

std::size_t Engine::set_programme_destinations(std::uint32_t group,
                                               std::span<const transport::Destination> destinations) {
    auto it = runtime_.find(group);
    if (it == runtime_.end() || runtime_removed_[group]) return 0;
    return fanout_->set_destinations(group, destinations);
}

std::size_t Engine::collect_programmes() {
    std::size_t n = 0;
    auto free_one = [&](std::uint32_t group) {
        runtime_.erase(group);
        runtime_removed_.erase(group);
        if (auto users = runtime_studio_users_.find(group); users != runtime_studio_users_.end()) {
            for (Studio* st : users->second) --st->holders;
            runtime_studio_users_.erase(users);
        }
        free_groups_.push_back(group);
        ++n;
    };
    if (media_thread_.joinable()) {
        Program* p = nullptr;
        while (released_.pop(p)) free_one(p->group());
    } else {
        // No media thread: nothing holds the removed programmes but the queue.
        std::vector<Command> keep;
        Command c;
        while (commands_.pop(c)) {
            if (!c.add) {
                std::erase_if(keep, [&](const Command& k) { return k.program == c.program; });
                free_one(c.program->group());
            } else {
                keep.push_back(c);
            }
        }
        for (const auto& k : keep) (void)commands_.push(k);
    }
    fanout_->collect_garbage();
    collect_studios();
    return n;
}

const Program* Engine::runtime_programme(std::uint32_t group) const noexcept {
    auto it = runtime_.find(group);
    if (it == runtime_.end()) return nullptr;
    auto r = runtime_removed_.find(group);
    if (r != runtime_removed_.end() && r->second) return nullptr;
    return it->second.get();
}

void Engine::emit(const std::string& message) const {
    if (events_) events_(message);
}

udp::endpoint Engine::local_endpoint() const { return io_->v4.front()->socket.local_endpoint(); }

std::optional<udp::endpoint> Engine::ingest_endpoint() const {
    if (!io_->ingest) return std::nullopt;
    return io_->ingest->socket.local_endpoint();
}

transport::FanoutStats Engine::fanout_stats() const noexcept { return fanout_->stats(); }
std::size_t Engine::destination_count(const Program& program) const noexcept {
    return fanout_->destination_count(program.group());
}
const transport::MicrosHistogram& Engine::fanout_spread() const noexcept { return fanout_->spread(); }

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

namespace {
std::string endpoint_text(const std::optional<udp::endpoint>& ep) {
    if (!ep) return {};
    return ep->address().to_string() + ":" + std::to_string(ep->port());
}
}  // namespace

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

std::string Engine::stats_json() const {
    loa::engine::v1::EngineStats s;
    stats(s);
    std::string out;
    google::protobuf::util::JsonPrintOptions opts;
    opts.preserve_proto_field_names = true;
    opts.always_print_primitive_fields = true;
    (void)google::protobuf::util::MessageToJsonString(s, &out, opts);
    return out;
}

void Engine::stats(loa::engine::v1::EngineStats& s, bool with_clusters) const {
    namespace pb = loa::engine::v1;
    s.Clear();
    s.set_uptime_ms(((running_ ? clock_.now_ns() : stopped_ns_) - started_ns_) / 1'000'000);
    const auto fs = fanout_->stats();
    auto* f = s.mutable_fanout();
    f->set_packets_submitted(fs.packets_submitted);
    f->set_datagrams_sent(fs.datagrams_sent);
    f->set_send_errors(fs.send_errors);
    f->set_frames_dropped(fs.frames_dropped);
    f->set_frames_missed(fs.frames_missed);
    f->set_sendmmsg_calls(fs.sendmmsg_calls);
    f->set_datagrams_dropped(fs.datagrams_dropped);
    f->set_threads(static_cast<std::uint32_t>(config_.engine.fanout_threads));
    const auto& spread = fanout_->spread();
    auto* sd = f->mutable_spread_us();
    sd->set_count(spread.count());
    sd->set_p50(spread.quantile(0.5));
    sd->set_p99(spread.quantile(0.99));
    sd->set_max(spread.max());

    std::vector<const Program*> all;
    for (const auto& p : programs_) all.push_back(p.get());
    for (const auto& [group, p] : runtime_) {
        if (!runtime_removed_.at(group)) all.push_back(p.get());
    }
    for (const Program* p : all) {
        auto* ps = s.add_programs();
        const auto& c = p->counters();
        ps->set_name(p->config().name);
        ps->set_ssrc(p->ssrc());
        ps->set_frames_encoded(c.frames_encoded.load());
        ps->set_encode_errors(c.encode_errors.load());
        ps->set_frames_late(c.frames_late.load());
        ps->set_frames_skipped(c.frames_skipped.load());
        ps->set_frames_dropped(c.frames_dropped.load());
        ps->set_sr_sent(c.sr_sent.load());
        std::uint64_t underruns = 0;
        for (const auto& src : p->sources()) underruns += src->counters().underruns.load();
        ps->set_source_underruns(underruns);
        ps->set_destinations(static_cast<std::uint32_t>(fanout_->destination_count(p->group())));
        auto* e = ps->mutable_encode_us();
        e->set_count(c.encode_us.count());
        e->set_p50(c.encode_us.quantile(0.5));
        e->set_p99(c.encode_us.quantile(0.99));
        e->set_max(c.encode_us.max());
    }

    s.set_clusters_known(registry_.size());
    s.set_clusters_online(registry_.online_count());
    for (const auto& c : with_clusters ? registry_.snapshot() : std::vector<ClusterSnapshot>{}) {
        auto* cs = s.add_clusters();
        cs->set_id(c.id);
        const auto& addr = c.report_address ? *c.report_address : c.configured_address;
        cs->set_address(addr.address().to_string() + ":" + std::to_string(addr.port()));
        cs->set_online(c.online);
        cs->set_last_report_unix_ms(c.last_report_unix_ns / 1'000'000);
        cs->set_reports(c.reports);
        cs->set_fraction_lost(c.fraction_lost);
        cs->set_cumulative_lost(static_cast<std::uint32_t>(std::max(0, c.cumulative_lost)));
        cs->set_jitter_ms(c.jitter_rtp / 48);
        if (c.has_status) {
            cs->set_playing_ssrc(c.status.playing_ssrc);
            cs->set_volume_pct(c.status.volume_pct);
            cs->set_amplifier_on(c.status.amplifier_on);
            cs->set_buffer_delay_ms(c.status.buffer_delay_ms);
            cs->set_packets_received(c.status.packets_received);
            cs->set_packets_late(c.status.packets_late);
            cs->set_packets_malformed(c.status.packets_malformed);
            cs->set_frames_concealed(c.status.frames_concealed);
        }
    }

    auto* in = s.mutable_ingress();
    in->set_rtcp_received(ingress_.rtcp_received.load());
    in->set_rtcp_malformed(ingress_.rtcp_malformed.load());
    in->set_rtcp_unknown_cluster(ingress_.rtcp_unknown_cluster.load());
    in->set_rtcp_no_cname(ingress_.rtcp_no_cname.load());
    in->set_rtp_unexpected(ingress_.rtp_unexpected.load());
    in->set_receive_errors(ingress_.receive_errors.load());

    auto* ig = s.mutable_ingest();
    ig->set_received(ingest_.received.load());
    ig->set_accepted(ingest_.accepted.load());
    ig->set_malformed(ingest_.malformed.load());
    ig->set_rtcp(ingest_.rtcp.load());
    ig->set_unknown_studio(ingest_.unknown_studio.load());
    ig->set_foreign_address(ingest_.foreign_address.load());
    ig->set_queue_full(ingest_.queue_full.load());
    ig->set_receive_errors(ingest_.receive_errors.load());
    ig->set_idle(ingest_.idle.load());

    for (const auto* list : {&studios_, &runtime_studios_}) {
        for (const auto& st : *list) fill_studio_stats(*st, *s.add_studios());
    }

    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    s.set_max_rss_kib(static_cast<std::uint64_t>(ru.ru_maxrss));
    s.set_cpu_user_s(static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6);
    s.set_cpu_system_s(static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6);
}

void Engine::fill_studio_stats(const Studio& st, loa::engine::v1::StudioStats& ss) const {
    ss.Clear();
    ss.set_name(st.config.name);
    if (!st.runtime) {
        ss.set_program(st.config.program);
    } else if (!st.feeding.empty()) {
        // The first programme that took it (its playout is the one shown).
        const auto group = st.feeding.front().group;
        if (auto it = runtime_.find(group); it != runtime_.end()) ss.set_program(it->second->config().name);
    }
    ss.set_readers(static_cast<std::uint32_t>(st.feed.readers()));
    ss.set_latched_address(endpoint_text(st.feed.latched_address()));
    const auto& fc = st.feed.counters();
    ss.set_accepted(fc.accepted.load());
    ss.set_foreign_address(fc.foreign_address.load());
    ss.set_queue_full(fc.queue_full.load());
    ss.set_relatched(fc.relatched.load());
    const StudioSource* shown = st.shown();
    if (shown == nullptr) return;
    ss.set_live(shown->live());
    const auto& ps = shown->playout_stats();
    ss.set_received(ps.received.load());
    ss.set_lost(ps.lost.load());
    ss.set_recovered_fec(ps.recovered_fec.load());
    ss.set_concealed(ps.concealed.load());
    ss.set_late(ps.late.load());
    ss.set_duplicate(ps.duplicate.load());
    ss.set_reordered(ps.reordered.load());
    ss.set_underruns(ps.underruns.load());
    ss.set_overflows(ps.overflows.load());
    ss.set_current_delay_ms(ps.current_delay_ms.load());
    ss.set_target_delay_ms(ps.target_delay_ms.load());
    ss.set_drift_ppm(ps.drift_ppm.load());
    ss.set_playing_ssrc(ps.ssrc.load());
    const auto& sc = shown->studio_counters();
    ss.set_fallback_frames(sc.fallback_frames.load());
    ss.set_went_silent(sc.went_silent.load());
}

}  // namespace loa::engine
