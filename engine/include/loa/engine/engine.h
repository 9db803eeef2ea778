#pragma once
// The engine: owns the RTP/RTCP sockets, the fan-out workers, the programmes
// and the media thread that ticks them on absolute deadlines, plus an I/O
// thread that receives cluster reports and keeps the cluster registry and,
// when studios are declared (or the control plane may declare them), receives
// their live feeds on the ingest socket and routes them to the studio
// sources' queues.
//
// Studios come from the config (each bound to its configured programme) or
// are added and removed at run time (add_studio, remove_studio) and then
// feed run-time programmes (and alerts), up to StudioFeed::kMaxReaders at
// once, each through its own reader queue. The I/O thread routes with an
// immutable studio table published by atomic pointer swap (IngestRouter); a
// removed studio is freed only once neither the I/O thread nor a programme
// can still reach it.
//
// Threads: construct, start(), stop(), join() and the read-only accessors
// from one control thread (the program's main). The media thread and the I/O
// thread are internal.

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/udp.hpp>

#include "loa/engine/clock.h"
#include "loa/engine/cluster_registry.h"
#include "loa/engine/config.h"
#include "loa/engine/program.h"
#include "loa/transport/spsc_queue.h"

namespace loa::engine::v1 {
class EngineStats;
class StudioStats;
}

namespace loa::engine {

struct IngressCounters {
    std::atomic<std::uint64_t> rtcp_received{0};
    std::atomic<std::uint64_t> rtcp_malformed{0};
    std::atomic<std::uint64_t> rtcp_unknown_cluster{0};
    std::atomic<std::uint64_t> rtcp_no_cname{0};
    std::atomic<std::uint64_t> rtp_unexpected{0};  // media sent to the engine (no ingest yet)
    std::atomic<std::uint64_t> receive_errors{0};  // e.g. ICMP port unreachable surfaced on the socket
};

/// Datagrams on the studio ingest socket (see IngestCounters in stats.proto).
struct IngestCounters {
    std::atomic<std::uint64_t> received{0};
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> malformed{0};
    std::atomic<std::uint64_t> rtcp{0};
    std::atomic<std::uint64_t> unknown_studio{0};
    std::atomic<std::uint64_t> foreign_address{0};
    std::atomic<std::uint64_t> queue_full{0};
    std::atomic<std::uint64_t> receive_errors{0};
    std::atomic<std::uint64_t> idle{0};  // a known studio no programme takes yet: dropped
};

/// What the engine knows of one studio (Engine::studio_status).
struct StudioStatus {
    bool runtime = false;    // added by add_studio() (else declared in the config)
    bool receiving = false;  // a valid packet arrived within StudioSource::kSilentAfterNs
    std::optional<std::uint32_t> programme_group;  // the first run-time programme its feed goes to
    std::vector<std::uint32_t> programme_groups;   // every one, in the order they took it
};

/// A fixed limit of the engine is reached (run-time programme slots, a
/// studio's readers); the control plane answers RESOURCE_EXHAUSTED.
class CapacityError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Something the operator should see (cluster online/offline, clip errors).
/// Called from the I/O or control thread, never the media thread.
using EventSink = std::function<void(const std::string& message)>;

/// Programmes that can be added at run time besides the configured ones (each
/// holds one fan-out group and a share of the packet pool).
inline constexpr std::size_t kMaxRuntimeProgrammes = 32;

class Engine {
public:
    /// Opens the sockets and builds every programme. Throws std::exception
    /// (with a clear message) when a socket cannot be bound or an encoder
    /// cannot be made; nothing is left running in that case.
    Engine(const EngineConfig& config, Clock& clock, EventSink events = {});
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    /// Starts the media and I/O threads.
    void start();
    /// Asks both threads to stop and waits for them. Idempotent.
    void stop();

    /// Local address of the IPv4 RTP/RTCP socket (the port speakers report to).
    boost::asio::ip::udp::endpoint local_endpoint() const;
    /// Local address of the studio ingest socket. It is opened when the
    /// config declares a studio, or when engine.state_dir is set (the control
    /// plane may add studios; failing to bind it is then only reported);
    /// nullopt otherwise.
    std::optional<boost::asio::ip::udp::endpoint> ingest_endpoint() const;
    const EngineConfig& config() const noexcept { return config_; }
    const std::vector<std::unique_ptr<Program>>& programs() const noexcept { return programs_; }
    const ClusterRegistry& clusters() const noexcept { return registry_; }
    /// Control thread. The clusters registered through the control plane,
    /// so their reports are accepted and their live state kept
    /// (ClusterRegistry::set_registered).
    void set_registered_clusters(const std::vector<std::pair<std::string, boost::asio::ip::udp::endpoint>>& clusters) {
        registry_.set_registered(clusters);
    }
    /// Control thread. Adds or updates one of them (ClusterRegistry::register_one).
    void set_registered_cluster(const std::string& id, const boost::asio::ip::udp::endpoint& address) {
        registry_.register_one(id, address);
    }
    /// Control thread. Forgets one of them (ClusterRegistry::unregister_one).
    void unregister_cluster(const std::string& id) { registry_.unregister_one(id); }
    const IngressCounters& ingress() const noexcept { return ingress_; }
    const IngestCounters& ingest() const noexcept { return ingest_; }
    transport::FanoutStats fanout_stats() const noexcept;
    std::size_t destination_count(const Program& program) const noexcept;
    const transport::MicrosHistogram& fanout_spread() const noexcept;
    /// True once the media thread or a fan-out shard was refused the
    /// configured real-time priority (they then run with normal scheduling).
    bool realtime_refused() const noexcept;

    /// Control thread. Builds a programme (encoder, sources) with its own
    /// fan-out group (initially without destinations) and hands it to the
    /// media thread, which starts producing it at its next frame boundary
    /// (before start(): from the first). Returns its group. A studio source
    /// must name a run-time studio (add_studio); it attaches a reader of the
    /// studio's feed, so the studio feeds this programme besides the others
    /// it feeds, until the programme is removed. Throws CapacityError when
    /// all kMaxRuntimeProgrammes groups are taken or a studio already has
    /// StudioFeed::kMaxReaders readers, std::runtime_error when a source
    /// cannot be made (unknown studio, a studio of the config), codecs::Error
    /// on an encoder it cannot make. `paused`: it starts paused
    /// (set_programme_paused), so no frame is pulled before it is resumed.
    std::uint32_t add_programme(const ProgramConfig& config, bool paused = false);
    /// Control thread. Pauses or resumes a run-time programme at the media
    /// thread's next frame (Program::set_paused: nothing pulled or sent while
    /// paused; it resumes where it stopped). False when `group` is not a
    /// run-time programme.
    bool set_programme_paused(std::uint32_t group, bool paused);
    /// Control thread. Asks a run-time programme's sources to play from
    /// their start again (Program::rewind). False when `group` is not a
    /// run-time programme or none of its sources can.
    bool rewind_programme(std::uint32_t group);
    /// Control thread. Clears the programme's destinations and asks the media
    /// thread to drop it at its next frame boundary; the programme is freed
    /// by the control thread later (collect_programmes()). False when `group`
    /// is not a run-time programme.
    bool remove_programme(std::uint32_t group);
    /// Control thread. Publishes the destination set of a run-time programme
    /// (FanoutSender::set_destinations: one swap, no lock on the senders).
    /// Returns how many destinations were skipped (no socket of their family).
    std::size_t set_programme_destinations(std::uint32_t group,
                                           std::span<const transport::Destination> destinations);
    /// Control thread. Frees the run-time programmes the media thread has let
    /// go of and recycles their groups; returns how many. Also called by
    /// add_programme() and remove_programme().
    std::size_t collect_programmes();
    /// Control thread. The run-time programme of `group`, nullptr when none
    /// (or already removed).
    const Program* runtime_programme(std::uint32_t group) const noexcept;
    /// Control thread. Run-time programmes alive (including removed ones the
    /// media thread has not let go of yet).
    std::size_t runtime_programme_count() const noexcept { return runtime_.size(); }

    /// Control thread. Adds a run-time studio, recognised on the ingest socket
    /// from the I/O thread's next datagram on (after the config's studios:
    /// the first match takes a packet). Its `program` and `zone` are not
    /// used. Until a programme takes it, its packets latch and are counted,
    /// then dropped (idle). Throws std::invalid_argument when the name is
    /// taken (by a config or run-time studio), it has neither ssrc nor
    /// source address, or another studio has the very same ssrc and source
    /// address; std::runtime_error when the engine has no ingest socket.
    void add_studio(const StudioConfig& config);
    enum class StudioRemoval { Removed, NotFound, Busy };
    /// Control thread. Takes a run-time studio off the ingest table: its
    /// packets are then unknown. NotFound for an unknown name (or a studio of
    /// the config), Busy while it feeds a run-time programme (remove those first).
    StudioRemoval remove_studio(const std::string& name);
    /// Control thread. Names of the run-time studios, in the order added.
    std::vector<std::string> runtime_studios() const;
    /// Control thread. Status of the studio named so (config or run-time),
    /// nullopt when none; fills `stats` (latched address, ingest and playout
    /// counters) when given.
    std::optional<StudioStatus> studio_status(const std::string& name,
                                              loa::engine::v1::StudioStats* stats = nullptr) const;

    /// Counters and cluster state as one JSON object (the EngineStats
    /// message of proto/loa/engine/v1/stats.proto, snake_case names).
    std::string stats_json() const;
    /// The same counters as a message (no JSON round trip). Control thread.
    /// `with_clusters` false leaves out the per-cluster list (counts stay).
    void stats(loa::engine::v1::EngineStats& out, bool with_clusters = true) const;

private:
    struct Io;
    struct Studio;
    void media_loop();
    void handle_datagram(std::span<const std::uint8_t> datagram, const boost::asio::ip::udp::endpoint& from);
    void handle_ingest(std::span<const std::uint8_t> datagram, const boost::asio::ip::udp::endpoint& from);
    void drain_ingest();
    void emit(const std::string& message) const;
    Studio* find_studio(const std::string& name) const noexcept;
    // Publishes the routing table (config studios with a consumer, then the
    // run-time ones); returns the router's ticket.
    std::uint64_t publish_studios();
    // Frees removed studios nobody can reach any more; returns how many.
    std::size_t collect_studios();
    void fill_studio_stats(const Studio& studio, loa::engine::v1::StudioStats& out) const;

    EngineConfig config_;
    Clock& clock_;
    EventSink events_;
    std::unique_ptr<Io> io_;
    std::unique_ptr<transport::PacketPool> pool_;
    std::unique_ptr<transport::FanoutSender> fanout_;
    std::vector<std::unique_ptr<Studio>> studios_;  // before programs_: their sources consume the feeds
    // Run-time studios (control thread), in the order added; removed ones
    // wait in retired_studios_ until the I/O thread and every programme that
    // read them have let go. Before runtime_: programmes go first.
    std::vector<std::unique_ptr<Studio>> runtime_studios_;
    std::vector<std::unique_ptr<Studio>> retired_studios_;
    std::vector<std::unique_ptr<Program>> programs_;
    // Run-time programmes. Owned by the control thread in runtime_ (by
    // group); the media thread only sees raw pointers handed over through
    // commands_ (ordered add/remove) and hands removed ones back through
    // released_, after which the control thread frees them.
    struct Command {
        Program* program = nullptr;
        bool add = true;
    };
    SourceContext source_context_;
    std::unordered_map<std::uint32_t, std::unique_ptr<Program>> runtime_;
    std::unordered_map<std::uint32_t, bool> runtime_removed_;  // group -> remove requested
    std::unordered_map<std::uint32_t, std::vector<Studio*>> runtime_studio_users_;  // group -> studios it reads
    std::vector<std::uint32_t> free_groups_;
    transport::SpscQueue<Command> commands_{kMaxRuntimeProgrammes * 2};
    transport::SpscQueue<Program*> released_{kMaxRuntimeProgrammes * 2};
    ClusterRegistry registry_;
    IngressCounters ingress_;
    IngestCounters ingest_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> media_realtime_refused_{false};
    std::atomic<bool> media_started_{false};
    std::thread media_thread_;
    std::thread io_thread_;
    std::int64_t started_ns_ = 0;
    std::int64_t stopped_ns_ = 0;
    bool running_ = false;
};

}  // namespace loa::engine
