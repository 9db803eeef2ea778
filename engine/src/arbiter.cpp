#include "loa/engine/arbiter.h"

#include <algorithm>
#include <cassert>
#include <numeric>
#include <utility>

namespace loa::engine {

namespace {

Outcome invalid(std::string message) { return Outcome::failure(RpcCode::InvalidArgument, std::move(message)); }

std::uint32_t index_of(std::size_t i) noexcept { return static_cast<std::uint32_t>(i); }

}  // namespace

// ---------------------------------------------------------------------------
// Topology

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

// ---------------------------------------------------------------------------
// Names

std::string_view to_string(ProgrammeKind k) noexcept {
    switch (k) {
        case ProgrammeKind::Live: return "live";
        case ProgrammeKind::Clip: return "clip";
    }
    return "unknown";
}

std::string_view to_string(PreemptPolicy p) noexcept {
    switch (p) {
        case PreemptPolicy::Pause: return "pause";
        case PreemptPolicy::Restart: return "restart";
        case PreemptPolicy::Drop: return "drop";
    }
    return "unknown";
}

std::string_view to_string(ProgrammeState s) noexcept {
    switch (s) {
        case ProgrammeState::Audible: return "audible";
        case ProgrammeState::Unheard: return "unheard";
        case ProgrammeState::Preempted: return "preempted";
    }
    return "unknown";
}

std::string_view to_string(ProgrammeEvent e) noexcept {
    switch (e) {
        case ProgrammeEvent::Started: return "started";
        case ProgrammeEvent::Held: return "held";
        case ProgrammeEvent::Preempted: return "preempted";
        case ProgrammeEvent::Resumed: return "resumed";
        case ProgrammeEvent::Restarted: return "restarted";
        case ProgrammeEvent::Dropped: return "dropped";
    }
    return "unknown";
}

// ---------------------------------------------------------------------------
// Arbiter

Arbiter::Arbiter(Topology topology)
    : topology_(std::move(topology)), last_cluster_programme_(topology_.cluster_count(), 0) {}

void Arbiter::set_topology(Topology topology) {
    std::vector<std::uint64_t> last(topology.cluster_count(), 0);
    for (std::uint32_t c = 0; c < topology.cluster_count(); ++c) {
        if (const auto old = topology_.cluster_index(topology.cluster_id(c))) last[c] = last_cluster_programme_[*old];
    }
    topology_ = std::move(topology);
    last_cluster_programme_ = std::move(last);
    stale_ = true;
    for (auto& [id, e] : programmes_) {
        e.targets.clear();
        for (const auto& z : e.spec.target_zones) {
            if (const auto i = topology_.zone_index(z)) e.targets.push_back(*i);
        }
        std::sort(e.targets.begin(), e.targets.end());
        e.targets.erase(std::unique(e.targets.begin(), e.targets.end()), e.targets.end());
    }
}

Result<std::vector<std::uint32_t>> Arbiter::resolve(const ProgrammeSpec& spec) const {
    if (spec.id == 0) return invalid("programme id 0 is reserved");
    if (spec.target_zones.empty()) return invalid("programme " + std::to_string(spec.id) + " has no target zone");
    std::vector<std::uint32_t> targets;
    targets.reserve(spec.target_zones.size());
    for (const auto& z : spec.target_zones) {
        const auto i = topology_.zone_index(z);
        if (!i) return invalid("programme " + std::to_string(spec.id) + " targets unknown zone '" + z + "'");
        targets.push_back(*i);
    }
    std::sort(targets.begin(), targets.end());
    targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
    return targets;
}

bool Arbiter::covers(const std::vector<std::uint32_t>& targets, std::uint32_t zone) const noexcept {
    for (auto z = zone; z != kNoIndex; z = topology_.zone_parent(z)) {
        if (std::binary_search(targets.begin(), targets.end(), z)) return true;
    }
    return false;
}

bool Arbiter::covers_group(const std::vector<std::uint32_t>& targets, std::uint32_t group) const noexcept {
    for (const auto z : topology_.group_member_zones(group)) {
        if (!covers(targets, z)) return false;
    }
    return true;
}

bool Arbiter::reaches_any(const std::vector<std::uint32_t>& targets) const noexcept {
    for (const auto z : targets) {
        if (topology_.unicast_below(z) > 0) return true;
    }
    for (std::uint32_t g = 0; g < topology_.group_count(); ++g) {
        if (covers_group(targets, g)) return true;  // a group has at least one member
    }
    return false;
}

Reach Arbiter::reach_of(const std::vector<std::uint32_t>& targets, Outcome* refusal, std::uint64_t id) const {
    const auto& t = topology_;
    Reach r;
    std::vector<std::uint32_t> in_group(t.group_count(), 0);
    std::vector<std::uint32_t> unicast_in_group(t.group_count(), 0);
    std::vector<char> targeted(t.cluster_count(), 0);
    for (std::uint32_t c = 0; c < t.cluster_count(); ++c) {
        if (!covers(targets, t.cluster_zone(c))) continue;
        targeted[c] = 1;
        ++r.targeted;
        const auto g = t.cluster_group(c);
        if (g == kNoIndex) continue;
        ++in_group[g];
        if (t.cluster_has_unicast(c)) ++unicast_in_group[g];
    }
    for (std::uint32_t c = 0; c < t.cluster_count(); ++c) {
        if (!targeted[c]) continue;
        const auto g = t.cluster_group(c);
        const bool whole_group = g != kNoIndex && in_group[g] == t.group_members(g).size();
        if (t.cluster_has_unicast(c) || whole_group) {
            ++r.reachable;
        } else {
            r.unreachable.push_back(c);
        }
    }
    if (refusal != nullptr) {
        for (std::uint32_t g = 0; g < t.group_count(); ++g) {
            const auto members = t.group_members(g).size();
            if (in_group[g] == 0 || in_group[g] == members || unicast_in_group[g] != 0) continue;
            *refusal = Outcome::failure(
                RpcCode::FailedPrecondition,
                "programme " + std::to_string(id) + " is aimed at part of the multicast group of zone '" +
                    t.zone_id(t.group_zone(g)) + "' (" + std::to_string(in_group[g]) + " of " + std::to_string(members) +
                    " clusters) and none of the targeted clusters there has a unicast address");
            break;
        }
    }
    return r;
}

Result<Reach> Arbiter::check(const ProgrammeSpec& spec) const {
    auto targets = resolve(spec);
    if (!targets) return targets.error();
    if (programmes_.count(spec.id) != 0) {
        return Outcome::failure(RpcCode::AlreadyExists, "programme " + std::to_string(spec.id) + " already exists");
    }
    Outcome refusal;
    auto reach = reach_of(targets.value(), &refusal, spec.id);
    if (!refusal.ok()) return refusal;
    return reach;
}

std::optional<Reach> Arbiter::reach(std::uint64_t id) const {
    const auto it = programmes_.find(id);
    if (it == programmes_.end()) return std::nullopt;
    return reach_of(it->second.targets, nullptr, id);
}

Result<Reach> Arbiter::add(const ProgrammeSpec& spec) {
    auto reach = check(spec);
    if (!reach) return reach;
    Entry e;
    e.spec = spec;
    e.targets = std::move(resolve(spec).value());
    programmes_.emplace(spec.id, std::move(e));
    stale_ = true;
    return reach;
}

bool Arbiter::remove(std::uint64_t id) {
    if (programmes_.erase(id) == 0) return false;
    stale_ = true;
    return true;
}

bool Arbiter::aims_at(std::uint64_t id, std::uint32_t zone) const {
    const auto it = programmes_.find(id);
    return it != programmes_.end() && zone < topology_.zone_count() && covers(it->second.targets, zone);
}

std::optional<ProgrammeState> Arbiter::state(std::uint64_t id) const {
    const auto it = programmes_.find(id);
    if (it == programmes_.end()) return std::nullopt;
    return it->second.last;
}

Decision Arbiter::decide() {
    const auto& t = topology_;
    const auto nz = t.zone_count();
    const auto nc = t.cluster_count();
    const auto ng = t.group_count();

    // Rank: level, then newest sequence, then highest id (a total order).
    std::vector<Entry*> ranked;
    ranked.reserve(programmes_.size());
    for (auto& [id, e] : programmes_) ranked.push_back(&e);
    std::sort(ranked.begin(), ranked.end(), [](const Entry* a, const Entry* b) {
        if (a->spec.level != b->spec.level) return a->spec.level > b->spec.level;
        if (a->spec.sequence != b->spec.sequence) return a->spec.sequence > b->spec.sequence;
        return a->spec.id > b->spec.id;
    });
    const auto np = ranked.size();

    // Best programme per zone: the best aimed at it or at any ancestor.
    std::vector<std::uint32_t> best(nz, kNoIndex);
    for (std::size_t r = 0; r < np; ++r) {
        for (const auto z : ranked[r]->targets) best[z] = std::min(best[z], index_of(r));
    }
    for (const auto z : t.zones_top_down()) {
        const auto p = t.zone_parent(z);
        if (p != kNoIndex) best[z] = std::min(best[z], best[p]);
    }

    // Best programme covering each whole multicast group.
    std::vector<std::uint32_t> group_best(ng, kNoIndex);
    for (std::uint32_t g = 0; g < ng; ++g) {
        for (std::size_t r = 0; r < np; ++r) {
            if (covers_group(ranked[r]->targets, g)) {
                group_best[g] = index_of(r);
                break;
            }
        }
    }

    auto a = std::unique_ptr<Assignment>(new Assignment());
    a->version_ = ++version_;
    a->cluster_programme_.assign(nc, kNoIndex);
    a->cluster_delivery_.assign(nc, Delivery::None);
    a->group_programme_.assign(ng, kNoIndex);
    auto& prog = a->cluster_programme_;
    for (std::uint32_t c = 0; c < nc; ++c) {
        const auto g = t.cluster_group(c);
        if (t.cluster_has_unicast(c)) {
            prog[c] = best[t.cluster_zone(c)];
        } else if (g != kNoIndex) {
            prog[c] = group_best[g];
        }
    }
    // A group carries its best whole-group programme when some member hears it.
    for (std::uint32_t c = 0; c < nc; ++c) {
        const auto g = t.cluster_group(c);
        if (g != kNoIndex && prog[c] != kNoIndex && prog[c] == group_best[g]) a->group_programme_[g] = prog[c];
    }

    std::vector<std::uint32_t> unicast_count(np, 0);
    std::vector<std::uint32_t> multicast_count(np, 0);
    std::vector<std::uint32_t> listeners(np, 0);
    for (std::uint32_t c = 0; c < nc; ++c) {
        if (prog[c] == kNoIndex) continue;
        const auto g = t.cluster_group(c);
        ++listeners[prog[c]];
        if (g != kNoIndex && a->group_programme_[g] == prog[c]) {
            a->cluster_delivery_[c] = Delivery::Multicast;
        } else {
            a->cluster_delivery_[c] = Delivery::Unicast;
            ++unicast_count[prog[c]];
        }
    }
    for (std::uint32_t g = 0; g < ng; ++g) {
        if (a->group_programme_[g] != kNoIndex) ++multicast_count[a->group_programme_[g]];
    }

    a->programmes_.resize(np);
    std::uint32_t ubegin = 0;
    std::uint32_t mbegin = 0;
    for (std::size_t r = 0; r < np; ++r) {
        auto& f = a->programmes_[r];
        f.id = ranked[r]->spec.id;
        f.level = ranked[r]->spec.level;
        f.listeners = listeners[r];
        f.unicast_begin = f.unicast_end = ubegin;
        f.multicast_begin = f.multicast_end = mbegin;
        ubegin += unicast_count[r];
        mbegin += multicast_count[r];
    }
    a->unicast_.resize(ubegin);
    a->multicast_.resize(mbegin);
    for (std::uint32_t c = 0; c < nc; ++c) {
        if (a->cluster_delivery_[c] == Delivery::Unicast) a->unicast_[a->programmes_[prog[c]].unicast_end++] = c;
    }
    for (std::uint32_t g = 0; g < ng; ++g) {
        const auto p = a->group_programme_[g];
        if (p != kNoIndex) a->multicast_[a->programmes_[p].multicast_end++] = g;
    }

    Decision d;
    // Cluster moves.
    for (std::uint32_t c = 0; c < nc; ++c) {
        const auto now_id = a->programme_id_of(c);
        if (now_id != last_cluster_programme_[c]) d.moves.push_back({c, last_cluster_programme_[c], now_id});
        last_cluster_programme_[c] = now_id;
    }

    last_ = std::make_unique<Assignment>(*a);
    ranked_ = ranked;
    stale_ = false;
    settle(ranked, *a, d);
    d.assignment = std::move(a);
    return d;
}

void Arbiter::settle(const std::vector<Entry*>& ranked, const Assignment& a, Decision& d) {
    // Programme states and events.
    std::vector<std::uint64_t> dropped;
    for (std::size_t r = 0; r < ranked.size(); ++r) {
        auto& e = *ranked[r];
        ProgrammeState now = ProgrammeState::Audible;
        if (a.programme(r).listeners == 0) {
            now = reaches_any(e.targets) ? ProgrammeState::Preempted : ProgrammeState::Unheard;
        }
        const bool clip = e.spec.kind == ProgrammeKind::Clip;
        const bool was_preempted = e.last == ProgrammeState::Preempted;
        const bool is_preempted = now == ProgrammeState::Preempted;
        std::optional<ProgrammeEvent> ev;
        if (!e.last) {
            ev = is_preempted ? ProgrammeEvent::Held : ProgrammeEvent::Started;
        } else if (!was_preempted && is_preempted) {
            ev = ProgrammeEvent::Preempted;
        } else if (was_preempted && !is_preempted) {
            ev = clip && e.spec.policy == PreemptPolicy::Restart ? ProgrammeEvent::Restarted : ProgrammeEvent::Resumed;
        }
        if (is_preempted && clip && e.spec.policy == PreemptPolicy::Drop) {
            ev = ProgrammeEvent::Dropped;
            dropped.push_back(e.spec.id);
        }
        if (ev) d.changes.push_back({e.spec.id, *ev});
        e.last = now;
    }
    for (const auto id : dropped) programmes_.erase(id);
    // The slots of the dropped ones point nowhere now.
    if (!dropped.empty()) stale_ = true;
}

// ---------------------------------------------------------------------------
// One cluster at a time

namespace {

// Shifts the unicast ranges of the slots after `slot` by one.
void shift_after(std::vector<ProgrammeFanout>& programmes, std::size_t slot, bool grow) noexcept {
    for (std::size_t r = slot + 1; r < programmes.size(); ++r) {
        if (grow) {
            ++programmes[r].unicast_begin;
            ++programmes[r].unicast_end;
        } else {
            --programmes[r].unicast_begin;
            --programmes[r].unicast_end;
        }
    }
}

}  // namespace

// Takes a cluster out of the programme it hears in `a`.
void Arbiter::detach_cluster(Assignment& a, std::uint32_t c) {
    const auto s = a.cluster_programme_[c];
    if (s == kNoIndex) return;
    auto& p = a.programmes_[s];
    --p.listeners;
    if (a.cluster_delivery_[c] == Delivery::Unicast) {
        const auto first = a.unicast_.begin() + p.unicast_begin;
        const auto last = a.unicast_.begin() + p.unicast_end;
        const auto it = std::lower_bound(first, last, c);
        assert(it != last && *it == c);
        a.unicast_.erase(it);
        --p.unicast_end;
        shift_after(a.programmes_, s, false);
    }
    a.cluster_programme_[c] = kNoIndex;
    a.cluster_delivery_[c] = Delivery::None;
}

// Gives a cluster slot `s` by unicast in `a` (kNoIndex: nothing).
void Arbiter::attach_cluster(Assignment& a, std::uint32_t c, std::uint32_t s) {
    if (s == kNoIndex) return;
    auto& p = a.programmes_[s];
    ++p.listeners;
    const auto first = a.unicast_.begin() + p.unicast_begin;
    const auto last = a.unicast_.begin() + p.unicast_end;
    a.unicast_.insert(std::lower_bound(first, last, c), c);
    ++p.unicast_end;
    shift_after(a.programmes_, s, true);
    a.cluster_programme_[c] = s;
    a.cluster_delivery_[c] = Delivery::Unicast;
}

// Cluster `from` takes index `to` in `a` (same programme and delivery).
void Arbiter::renumber_cluster(Assignment& a, std::uint32_t from, std::uint32_t to) {
    const auto s = a.cluster_programme_[from];
    if (s != kNoIndex && a.cluster_delivery_[from] == Delivery::Unicast) {
        const auto& p = a.programmes_[s];
        const auto first = a.unicast_.begin() + p.unicast_begin;
        const auto last = a.unicast_.begin() + p.unicast_end;
        auto it = std::lower_bound(first, last, from);
        assert(it != last && *it == from);
        *it = to;
        std::sort(first, last);
    }
    a.cluster_programme_[to] = s;
    a.cluster_delivery_[to] = a.cluster_delivery_[from];
}

std::uint32_t Arbiter::best_slot(std::uint32_t cluster) const noexcept {
    if (!topology_.cluster_has_unicast(cluster)) return kNoIndex;
    const auto zone = topology_.cluster_zone(cluster);
    for (std::size_t r = 0; r < ranked_.size(); ++r) {
        if (covers(ranked_[r]->targets, zone)) return index_of(r);
    }
    return kNoIndex;
}

Decision Arbiter::finish_incremental(std::uint32_t cluster) {
    last_->version_ = ++version_;
    Decision d;
    if (cluster != kNoIndex) {
        const auto now_id = last_->programme_id_of(cluster);
        if (now_id != last_cluster_programme_[cluster]) {
            d.moves.push_back({cluster, last_cluster_programme_[cluster], now_id});
        }
        last_cluster_programme_[cluster] = now_id;
    }
    auto out = std::unique_ptr<Assignment>(new Assignment(*last_));
    settle(ranked_, *out, d);
    d.assignment = std::move(out);
    return d;
}

Result<Decision> Arbiter::put_cluster(ClusterSpec spec) {
    const auto old = topology_.cluster_index(spec.id);
    const bool grouped = !spec.multicast_zone.empty() || (old && topology_.cluster_group(*old) != kNoIndex);
    if (stale_ || !last_ || grouped) {
        Topology next = topology_;
        if (auto put = next.put_cluster(std::move(spec)); !put) return put.error();
        set_topology(std::move(next));
        return decide();
    }
    const auto put = topology_.put_cluster(std::move(spec));
    if (!put) return put.error();
    const auto c = put.value();
    Assignment& a = *last_;
    if (c == a.cluster_programme_.size()) {
        a.cluster_programme_.push_back(kNoIndex);
        a.cluster_delivery_.push_back(Delivery::None);
        last_cluster_programme_.push_back(0);
    }
    detach_cluster(a, c);
    attach_cluster(a, c, best_slot(c));
    return finish_incremental(c);
}

Result<Decision> Arbiter::erase_cluster(std::string_view id) {
    const auto found = topology_.cluster_index(id);
    if (!found) return Outcome::failure(RpcCode::NotFound, "no cluster '" + std::string(id) + "'");
    const auto c = *found;
    if (stale_ || !last_ || topology_.cluster_group(c) != kNoIndex) {
        Topology next = topology_;
        (void)next.erase_cluster(id);
        set_topology(std::move(next));
        return decide();
    }
    const auto last = index_of(topology_.cluster_count() - 1);
    (void)topology_.erase_cluster(id);
    Assignment& a = *last_;
    detach_cluster(a, c);
    if (c != last) {
        renumber_cluster(a, last, c);
        last_cluster_programme_[c] = last_cluster_programme_[last];
    }
    a.cluster_programme_.pop_back();
    a.cluster_delivery_.pop_back();
    last_cluster_programme_.pop_back();
    return finish_incremental(kNoIndex);
}

}  // namespace loa::engine
