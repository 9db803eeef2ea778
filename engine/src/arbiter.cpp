// Arbiter: admitted programmes, the full decision (which programme each
// cluster plays) and its preemption bookkeeping; the names of its enums.
// Topology is in topology.cpp, one-cluster changes in arbiter_clusters.cpp.
#include "loa/engine/arbiter.h"

#include <algorithm>
#include <cassert>
#include <numeric>
#include <utility>

#include "arbiter_util.h"

namespace loa::engine {

using arbiter_util::index_of;
using arbiter_util::invalid;

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

}  // namespace loa::engine
