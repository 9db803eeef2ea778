#pragma once
// Live state of every speaker cluster, built from the RTCP reports they send
// (RR + SDES CNAME = cluster id + APP "LOAS" status). A cluster is offline
// until its first report and again after `timeout` without one.
//
// Threads: on_rtcp() and sweep() from the engine's I/O thread; snapshot()
// from any thread (a mutex guards the table; never taken by the media thread).

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/udp.hpp>

#include "loa/engine/config.h"
#include "loa/transport/cluster_status.h"

namespace loa::engine {

struct ClusterSnapshot {
    std::string id;
    boost::asio::ip::udp::endpoint configured_address;
    std::optional<boost::asio::ip::udp::endpoint> report_address;  // source of the last report
    bool online = false;
    std::int64_t last_report_ns = 0;       // monotonic
    std::int64_t last_report_unix_ns = 0;
    std::uint64_t reports = 0;
    // From the RR block about the programme it plays.
    double fraction_lost = 0.0;
    std::int32_t cumulative_lost = 0;
    std::uint32_t jitter_rtp = 0;          // RTP timestamp units (48 kHz)
    bool has_status = false;
    transport::ClusterStatus status;       // from the LOAS APP packet
};

class ClusterRegistry {
public:
    enum class Result { Accepted, Malformed, NoCname, UnknownCluster };

    ClusterRegistry(const std::vector<ClusterConfig>& clusters, std::int64_t timeout_ns);

    /// Handles one RTCP datagram from `from`. On Accepted, `id` names the
    /// cluster and `came_online` says whether it was offline before.
    Result on_rtcp(std::span<const std::uint8_t> datagram, const boost::asio::ip::udp::endpoint& from,
                   std::int64_t now_ns, std::int64_t unix_ns, std::string& id, bool& came_online);

    /// Marks clusters silent for longer than the timeout offline; returns
    /// their ids.
    std::vector<std::string> sweep(std::int64_t now_ns);

    /// Replaces the clusters registered through the control plane (id and
    /// unicast address, unspecified when it has none). Clusters of the config
    /// stay; listed ones that are already known keep their live state; API
    /// clusters no longer listed are forgotten. Control thread.
    void set_registered(const std::vector<std::pair<std::string, boost::asio::ip::udp::endpoint>>& clusters);
    /// Adds one registered cluster (after the others) or updates its address
    /// (keeping its live state). A cluster of the config is left as it is.
    /// Control thread.
    void register_one(const std::string& id, const boost::asio::ip::udp::endpoint& address);
    /// Forgets one registered cluster; a cluster of the config stays.
    /// Control thread.
    void unregister_one(const std::string& id);

    std::vector<ClusterSnapshot> snapshot() const;
    std::optional<ClusterSnapshot> find(const std::string& id) const;
    /// Calls `fn(i, state)` for every `*ids[i]` the registry knows, under one
    /// lock for the whole batch and without copying the state (ListClusters
    /// reads a page at a time). `fn` must be quick and must not call back
    /// into the registry.
    void visit(std::span<const std::string* const> ids,
               const std::function<void(std::size_t, const ClusterSnapshot&)>& fn) const;
    std::size_t online_count() const;
    std::size_t size() const;

private:
    mutable std::mutex mutex_;
    std::unordered_map<std::string, ClusterSnapshot> clusters_;
    std::vector<std::string> order_;  // configuration order, then registration order, for stable listings
    std::size_t configured_ = 0;      // the first configured_ entries of order_ come from the config
    std::size_t online_ = 0;          // entries of clusters_ with online set (kept so GetStatus need not count)
    std::int64_t timeout_ns_;
};

}  // namespace loa::engine
