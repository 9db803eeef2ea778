#pragma once
// The engine: owns the RTP/RTCP sockets, the fan-out workers, the programmes
// and the media thread that ticks them on absolute deadlines, plus an I/O
// thread that receives cluster reports and keeps the cluster registry and,
// when studios are declared, receives their live feeds on the ingest socket
// and routes them to the studio sources' queues.
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
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/udp.hpp>

#include "loa/engine/clock.h"
#include "loa/engine/cluster_registry.h"
#include "loa/engine/config.h"
#include "loa/engine/program.h"

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
};

/// Something the operator should see (cluster online/offline, clip errors).
/// Called from the I/O or control thread, never the media thread.
using EventSink = std::function<void(const std::string& message)>;

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
    /// Local address of the studio ingest socket; nullopt when no studio is
    /// declared (the socket is then not opened).
    std::optional<boost::asio::ip::udp::endpoint> ingest_endpoint() const;
    const EngineConfig& config() const noexcept { return config_; }
    const std::vector<std::unique_ptr<Program>>& programs() const noexcept { return programs_; }
    const ClusterRegistry& clusters() const noexcept { return registry_; }
    const IngressCounters& ingress() const noexcept { return ingress_; }
    const IngestCounters& ingest() const noexcept { return ingest_; }
    transport::FanoutStats fanout_stats() const noexcept;
    std::size_t destination_count(const Program& program) const noexcept;
    const transport::MicrosHistogram& fanout_spread() const noexcept;
    /// True once the media thread or a fan-out shard was refused the
    /// configured real-time priority (they then run with normal scheduling).
    bool realtime_refused() const noexcept;

    /// Counters and cluster state as one JSON object (the EngineStats
    /// message of proto/loa/engine/v1/stats.proto, snake_case names).
    std::string stats_json() const;

private:
    struct Io;
    struct Studio;
    void media_loop();
    void handle_datagram(std::span<const std::uint8_t> datagram, const boost::asio::ip::udp::endpoint& from);
    void handle_ingest(std::span<const std::uint8_t> datagram, const boost::asio::ip::udp::endpoint& from);
    void emit(const std::string& message) const;

    EngineConfig config_;
    Clock& clock_;
    EventSink events_;
    std::unique_ptr<Io> io_;
    std::unique_ptr<transport::PacketPool> pool_;
    std::unique_ptr<transport::FanoutSender> fanout_;
    std::vector<std::unique_ptr<Studio>> studios_;  // before programs_: their sources consume the feeds
    std::vector<std::unique_ptr<Program>> programs_;
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
