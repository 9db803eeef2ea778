// Engine: construction (sockets, fan-out, the configured programmes) and the
// run-time programmes the control plane adds and removes. Studios, threads
// and stats are in engine_studios.cpp, engine_threads.cpp and engine_stats.cpp.
#include "loa/engine/engine.h"

#include <algorithm>
#include <stdexcept>

#include "engine_internal.h"
#include "loa/transport/udp_socket.h"

namespace loa::engine {

namespace {

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

}  // namespace loa::engine
