#include "loa/engine/cluster_registry.h"

#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "loa/transport/rtcp_packet.h"

namespace loa::engine {

ClusterRegistry::ClusterRegistry(const std::vector<ClusterConfig>& clusters, std::int64_t timeout_ns)
    : timeout_ns_(timeout_ns) {
    for (const auto& c : clusters) {
        ClusterSnapshot s;
        s.id = c.id;
        s.configured_address = c.address;
        clusters_.emplace(c.id, std::move(s));
        order_.push_back(c.id);
    }
    configured_ = order_.size();
}

void ClusterRegistry::set_registered(
    const std::vector<std::pair<std::string, boost::asio::ip::udp::endpoint>>& clusters) {
    std::lock_guard lock(mutex_);
    std::unordered_map<std::string, boost::asio::ip::udp::endpoint> wanted;
    wanted.reserve(clusters.size());
    for (const auto& [id, address] : clusters) wanted.emplace(id, address);
    std::vector<std::string> order(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(configured_));
    const std::unordered_set<std::string> configured(order.begin(), order.end());
    // Keep the registered clusters still wanted, in their order, with their state.
    for (std::size_t i = configured_; i < order_.size(); ++i) {
        const auto& id = order_[i];
        if (const auto it = wanted.find(id); it != wanted.end()) {
            clusters_.at(id).configured_address = it->second;
            order.push_back(id);
            wanted.erase(it);
        } else {
            if (const auto gone = clusters_.find(id); gone != clusters_.end() && gone->second.online) --online_;
            clusters_.erase(id);
        }
    }
    // New ones, in the order given.
    for (const auto& [id, address] : clusters) {
        if (configured.contains(id) || !wanted.contains(id)) continue;
        ClusterSnapshot s;
        s.id = id;
        s.configured_address = address;
        clusters_.emplace(id, std::move(s));
        order.push_back(id);
        wanted.erase(id);
    }
    order_ = std::move(order);
}

void ClusterRegistry::register_one(const std::string& id, const boost::asio::ip::udp::endpoint& address) {
    std::lock_guard lock(mutex_);
    const auto configured_end = order_.begin() + static_cast<std::ptrdiff_t>(configured_);
    if (std::find(order_.begin(), configured_end, id) != configured_end) return;
    if (const auto it = clusters_.find(id); it != clusters_.end()) {
        it->second.configured_address = address;
        return;
    }
    ClusterSnapshot s;
    s.id = id;
    s.configured_address = address;
    clusters_.emplace(id, std::move(s));
    order_.push_back(id);
}

void ClusterRegistry::unregister_one(const std::string& id) {
    std::lock_guard lock(mutex_);
    const auto registered = order_.begin() + static_cast<std::ptrdiff_t>(configured_);
    const auto it = std::find(registered, order_.end(), id);
    if (it == order_.end()) return;
    order_.erase(it);
    if (const auto gone = clusters_.find(id); gone != clusters_.end()) {
        if (gone->second.online) --online_;
        clusters_.erase(gone);
    }
}

ClusterRegistry::Result ClusterRegistry::on_rtcp(std::span<const std::uint8_t> datagram,
                                                 const boost::asio::ip::udp::endpoint& from, std::int64_t now_ns,
                                                 std::int64_t unix_ns, std::string& id, bool& came_online) {
    transport::RtcpCompound rtcp;
    if (transport::parse_rtcp(datagram, rtcp) != transport::Status::Ok) return Result::Malformed;

    std::string_view cname;
    for (std::size_t i = 0; i < rtcp.sdes_count; ++i) {
        if (rtcp.sdes[i].ssrc == rtcp.sender_ssrc && !rtcp.sdes[i].cname.empty()) {
            cname = rtcp.sdes[i].cname;
            break;
        }
    }
    if (cname.empty()) return Result::NoCname;

    std::lock_guard lock(mutex_);
    auto it = clusters_.find(std::string(cname));
    if (it == clusters_.end()) return Result::UnknownCluster;
    auto& s = it->second;
    id = s.id;
    came_online = !s.online;
    if (came_online) ++online_;
    s.online = true;
    s.last_report_ns = now_ns;
    s.last_report_unix_ns = unix_ns;
    s.report_address = from;
    ++s.reports;

    for (std::size_t i = 0; i < rtcp.app_count; ++i) {
        const auto& app = rtcp.apps[i];
        if (app.subtype == transport::kClusterStatusSubtype &&
            std::memcmp(app.name.data(), transport::kClusterStatusAppName, 4) == 0) {
            transport::ClusterStatus st;
            if (transport::decode_cluster_status(app.data, st) == transport::Status::Ok) {
                s.status = st;
                s.has_status = true;
            }
        }
    }
    // Prefer the report block about the SSRC it says it plays; else the first.
    const transport::RtcpReportBlock* block = nullptr;
    for (std::size_t i = 0; i < rtcp.block_count; ++i) {
        if (block == nullptr || (s.has_status && rtcp.blocks[i].ssrc == s.status.playing_ssrc)) {
            block = &rtcp.blocks[i];
        }
    }
    if (block != nullptr) {
        s.fraction_lost = block->fraction_lost / 256.0;
        s.cumulative_lost = block->cumulative_lost;
        s.jitter_rtp = block->jitter;
    }
    return Result::Accepted;
}

std::vector<std::string> ClusterRegistry::sweep(std::int64_t now_ns) {
    std::vector<std::string> gone;
    std::lock_guard lock(mutex_);
    for (auto& [id, s] : clusters_) {
        if (s.online && now_ns - s.last_report_ns > timeout_ns_) {
            s.online = false;
            --online_;
            gone.push_back(id);
        }
    }
    return gone;
}

std::vector<ClusterSnapshot> ClusterRegistry::snapshot() const {
    std::lock_guard lock(mutex_);
    std::vector<ClusterSnapshot> out;
    out.reserve(order_.size());
    for (const auto& id : order_) out.push_back(clusters_.at(id));
    return out;
}

std::optional<ClusterSnapshot> ClusterRegistry::find(const std::string& id) const {
    std::lock_guard lock(mutex_);
    auto it = clusters_.find(id);
    if (it == clusters_.end()) return std::nullopt;
    return it->second;
}

void ClusterRegistry::visit(std::span<const std::string* const> ids,
                            const std::function<void(std::size_t, const ClusterSnapshot&)>& fn) const {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (const auto it = clusters_.find(*ids[i]); it != clusters_.end()) fn(i, it->second);
    }
}

std::size_t ClusterRegistry::size() const {
    std::lock_guard lock(mutex_);
    return clusters_.size();
}

std::size_t ClusterRegistry::online_count() const {
    std::lock_guard lock(mutex_);
    return online_;
}

}  // namespace loa::engine
