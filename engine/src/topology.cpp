// Topology: the zone tree and the clusters (with their multicast groups)
// that the arbiter decides over; built whole, or changed one cluster at a time.
#include <algorithm>
#include <numeric>
#include <utility>

#include "arbiter_util.h"
#include "loa/engine/arbiter.h"

namespace loa::engine {

using arbiter_util::index_of;
using arbiter_util::invalid;

Result<Topology> Topology::build(std::vector<ZoneSpec> zones, std::vector<ClusterSpec> clusters) {
    if (zones.size() >= kNoIndex || clusters.size() >= kNoIndex) return invalid("too many zones or clusters");
    Topology t;
    t.zones_ = std::move(zones);
    t.clusters_ = std::move(clusters);
    const std::size_t nz = t.zones_.size();

    t.zone_by_id_.reserve(nz);
    for (std::size_t i = 0; i < nz; ++i) {
        const auto& z = t.zones_[i];
        if (z.id.empty()) return invalid("a zone has an empty id");
        if (!t.zone_by_id_.emplace(z.id, index_of(i)).second) return invalid("duplicate zone '" + z.id + "'");
    }
    t.zone_parent_.assign(nz, kNoIndex);
    for (std::size_t i = 0; i < nz; ++i) {
        const auto& z = t.zones_[i];
        if (z.parent_id.empty()) continue;
        const auto it = t.zone_by_id_.find(z.parent_id);
        if (it == t.zone_by_id_.end()) {
            return invalid("zone '" + z.id + "' has unknown parent '" + z.parent_id + "'");
        }
        t.zone_parent_[i] = it->second;
    }
    // Depths; a walk longer than the zone count is a cycle.
    t.zone_depth_.assign(nz, 0);
    for (std::size_t i = 0; i < nz; ++i) {
        std::uint32_t depth = 0;
        for (auto p = t.zone_parent_[i]; p != kNoIndex; p = t.zone_parent_[p]) {
            if (++depth > nz) return invalid("zone '" + t.zones_[i].id + "' is its own ancestor");
        }
        t.zone_depth_[i] = depth;
    }
    t.top_down_.resize(nz);
    std::iota(t.top_down_.begin(), t.top_down_.end(), 0u);
    std::stable_sort(t.top_down_.begin(), t.top_down_.end(),
                     [&](std::uint32_t a, std::uint32_t b) { return t.zone_depth_[a] < t.zone_depth_[b]; });

    const std::size_t nc = t.clusters_.size();
    t.cluster_by_id_.reserve(nc);
    t.cluster_zone_.assign(nc, kNoIndex);
    t.cluster_group_.assign(nc, kNoIndex);
    std::unordered_map<std::string, std::uint32_t> group_by_key;
    for (std::size_t i = 0; i < nc; ++i) {
        const auto& c = t.clusters_[i];
        if (c.id.empty()) return invalid("a cluster has an empty id");
        if (!t.cluster_by_id_.emplace(c.id, index_of(i)).second) return invalid("duplicate cluster '" + c.id + "'");
        const auto zone = t.zone_index(c.zone_id);
        if (!zone) return invalid("cluster '" + c.id + "' is in unknown zone '" + c.zone_id + "'");
        t.cluster_zone_[i] = *zone;
        if (c.multicast_zone.empty()) continue;
        const auto mzone = t.zone_index(c.multicast_zone);
        if (!mzone) return invalid("cluster '" + c.id + "' joins the group of unknown zone '" + c.multicast_zone + "'");
        if (!t.zone_contains(*mzone, *zone)) {
            return invalid("cluster '" + c.id + "' in zone '" + c.zone_id + "' cannot join the multicast group of zone '" +
                           c.multicast_zone + "', which does not contain it");
        }
        const std::string& key = c.multicast_group.empty() ? c.multicast_zone : c.multicast_group;
        auto [it, added] = group_by_key.emplace(key, index_of(t.groups_.size()));
        if (added) {
            t.groups_.push_back(Group{*mzone, {}, {}});
        } else if (t.groups_[it->second].zone != *mzone) {
            return invalid("cluster '" + c.id + "' puts multicast group '" + key + "' in zone '" + c.multicast_zone +
                           "', but it belongs to zone '" + t.zone_id(t.groups_[it->second].zone) + "'");
        }
        t.cluster_group_[i] = it->second;
        t.groups_[it->second].members.push_back(index_of(i));
        t.groups_[it->second].member_zones.push_back(*zone);
    }
    t.unicast_below_.assign(nz, 0);
    for (std::size_t i = 0; i < nc; ++i) {
        if (t.clusters_[i].has_unicast) ++t.unicast_below_[t.cluster_zone_[i]];
    }
    for (auto it = t.top_down_.rbegin(); it != t.top_down_.rend(); ++it) {
        const auto p = t.zone_parent_[*it];
        if (p != kNoIndex) t.unicast_below_[p] += t.unicast_below_[*it];
    }
    for (auto& g : t.groups_) {
        std::sort(g.member_zones.begin(), g.member_zones.end());
        g.member_zones.erase(std::unique(g.member_zones.begin(), g.member_zones.end()), g.member_zones.end());
    }
    return t;
}

std::optional<std::uint32_t> Topology::zone_index(std::string_view id) const {
    const auto it = zone_by_id_.find(std::string(id));
    if (it == zone_by_id_.end()) return std::nullopt;
    return it->second;
}

std::optional<std::uint32_t> Topology::cluster_index(std::string_view id) const {
    const auto it = cluster_by_id_.find(std::string(id));
    if (it == cluster_by_id_.end()) return std::nullopt;
    return it->second;
}

void Topology::add_unicast_below(std::uint32_t zone, bool add) noexcept {
    for (auto z = zone; z != kNoIndex; z = zone_parent_[z]) {
        if (add) {
            ++unicast_below_[z];
        } else {
            --unicast_below_[z];
        }
    }
}

Result<std::uint32_t> Topology::put_cluster(ClusterSpec spec) {
    if (spec.id.empty()) return invalid("a cluster has an empty id");
    const auto zone = zone_index(spec.zone_id);
    if (!zone) return invalid("cluster '" + spec.id + "' is in unknown zone '" + spec.zone_id + "'");
    const auto old = cluster_index(spec.id);
    if (!old && clusters_.size() + 1 >= kNoIndex) return invalid("too many zones or clusters");
    if (!spec.multicast_zone.empty() || (old && cluster_group_[*old] != kNoIndex)) {
        // Group membership changes: build the groups again (validates the rest).
        const std::string id = spec.id;
        auto clusters = clusters_;
        if (old) {
            clusters[*old] = std::move(spec);
        } else {
            clusters.push_back(std::move(spec));
        }
        auto rebuilt = build(zones_, std::move(clusters));
        if (!rebuilt) return rebuilt.error();
        *this = std::move(rebuilt).value();
        return *cluster_index(id);
    }
    std::uint32_t c = 0;
    if (old) {
        c = *old;
        if (clusters_[c].has_unicast) add_unicast_below(cluster_zone_[c], false);
        clusters_[c] = std::move(spec);
        cluster_zone_[c] = *zone;
    } else {
        c = index_of(clusters_.size());
        cluster_by_id_.emplace(spec.id, c);
        clusters_.push_back(std::move(spec));
        cluster_zone_.push_back(*zone);
        cluster_group_.push_back(kNoIndex);
    }
    if (clusters_[c].has_unicast) add_unicast_below(*zone, true);
    return c;
}

std::optional<std::uint32_t> Topology::erase_cluster(std::string_view id) {
    const auto found = cluster_index(id);
    if (!found) return std::nullopt;
    const auto c = *found;
    const auto last = index_of(clusters_.size() - 1);
    if (cluster_group_[c] != kNoIndex) {
        auto clusters = clusters_;
        clusters[c] = std::move(clusters[last]);
        clusters.pop_back();
        // A subset of a valid topology is valid.
        *this = build(zones_, std::move(clusters)).value();
        return c;
    }
    if (clusters_[c].has_unicast) add_unicast_below(cluster_zone_[c], false);
    cluster_by_id_.erase(clusters_[c].id);
    if (c != last) {
        clusters_[c] = std::move(clusters_[last]);
        cluster_zone_[c] = cluster_zone_[last];
        cluster_group_[c] = cluster_group_[last];
        cluster_by_id_[clusters_[c].id] = c;
        if (const auto g = cluster_group_[c]; g != kNoIndex) {
            auto& members = groups_[g].members;
            std::replace(members.begin(), members.end(), last, c);
            std::sort(members.begin(), members.end());
        }
    }
    clusters_.pop_back();
    cluster_zone_.pop_back();
    cluster_group_.pop_back();
    return c;
}

bool Topology::zone_contains(std::uint32_t outer, std::uint32_t inner) const noexcept {
    const auto depth = zone_depth_[outer];
    while (inner != kNoIndex && zone_depth_[inner] > depth) inner = zone_parent_[inner];
    return inner == outer;
}

}  // namespace loa::engine
