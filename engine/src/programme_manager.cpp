#include "loa/engine/programme_manager.h"

#include <algorithm>
#include <exception>
#include <iterator>

#include "loa/engine/engine.h"

namespace loa::engine {

namespace {
using Endpoints = std::vector<boost::asio::ip::udp::endpoint>;

void publish(Engine& engine, std::uint32_t group, const Endpoints& endpoints) {
    std::vector<transport::Destination> dests;
    dests.reserve(endpoints.size());
    for (const auto& ep : endpoints) dests.push_back({ep, 0});
    engine.set_programme_destinations(group, dests);
}
}  // namespace

ProgrammeManager::ProgrammeManager(Engine& engine) : engine_(engine) {}

ProgrammeManager::~ProgrammeManager() {
    for (const auto& [id, e] : entries_) engine_.remove_programme(e.group);
}

Outcome ProgrammeManager::set_topology(std::vector<ZoneSpec> zones, std::vector<RuntimeCluster> clusters) {
    std::vector<ClusterSpec> specs;
    specs.reserve(clusters.size());
    for (const auto& c : clusters) specs.push_back(ClusterSpec{c.id, c.zone_id, c.address.has_value(), {}});
    auto topology = Topology::build(std::move(zones), std::move(specs));
    if (!topology) return topology.error();
    arbiter_.set_topology(std::move(topology).value());
    // The engine accepts these clusters' reports and keeps their live state.
    std::vector<std::pair<std::string, boost::asio::ip::udp::endpoint>> known;
    known.reserve(clusters.size());
    for (const auto& c : clusters) known.emplace_back(c.id, c.address.value_or(boost::asio::ip::udp::endpoint{}));
    engine_.set_registered_clusters(known);
    clusters_ = std::move(clusters);
    for (auto& [id, e] : entries_) {
        if (const auto reach = arbiter_.reach(id)) e.targeted = reach->targeted;
    }
    apply();
    return Outcome::success();
}

Result<Reach> ProgrammeManager::start(const RuntimeProgramme& p) {
    ProgrammeSpec spec;
    spec.id = p.id;
    spec.level = p.level;
    spec.target_zones = p.target_zones;
    spec.sequence = p.sequence;
    spec.kind = p.kind;
    spec.policy = PreemptPolicy::Pause;
    auto reach = arbiter_.check(spec);
    if (!reach) return reach;

    ProgramConfig config;
    config.name = p.name.empty() ? "programme-" + std::to_string(p.id) : p.name;
    config.ssrc = ssrc_for_name(config.name + "#" + std::to_string(p.id));
    config.ptime_ms = p.ptime_ms;
    config.bitrate_bps = p.bitrate_bps;
    config.priority = p.level;
    config.sources = p.sources;
    config.alert = p.alert;
    std::uint32_t group = 0;
    try {
        group = engine_.add_programme(config);
    } catch (const std::exception& ex) {
        const std::string what = ex.what();
        const bool full = what.find("slots are in use") != std::string::npos;
        return Outcome::failure(full ? RpcCode::ResourceExhausted : RpcCode::InvalidArgument, what);
    }
    auto added = arbiter_.add(spec);
    if (!added) {
        engine_.remove_programme(group);
        return added;
    }
    Entry e;
    e.spec = p;
    e.group = group;
    e.ssrc = config.ssrc;
    e.targeted = added.value().targeted;
    entries_.emplace(p.id, std::move(e));
    apply();
    return added;
}

bool ProgrammeManager::stop(std::uint64_t id) {
    auto it = entries_.find(id);
    if (it == entries_.end()) return false;
    arbiter_.remove(id);
    engine_.remove_programme(it->second.group);
    entries_.erase(it);
    apply();
    return true;
}

void ProgrammeManager::apply() {
    auto decision = arbiter_.decide();
    const Assignment& a = *decision.assignment;

    // New destination set of every programme still admitted.
    std::map<std::uint64_t, Endpoints> next;
    for (auto& [id, e] : entries_) next[id];
    for (std::size_t slot = 0; slot < a.programme_count(); ++slot) {
        auto it = next.find(a.programme(slot).id);
        if (it == next.end()) continue;
        for (const auto c : a.unicast_clusters(slot)) {
            if (c < clusters_.size() && clusters_[c].address) it->second.push_back(*clusters_[c].address);
        }
        std::sort(it->second.begin(), it->second.end());
    }

    // Programmes the arbiter dropped (policy Drop) leave the engine.
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (arbiter_.contains(it->first)) {
            ++it;
            continue;
        }
        engine_.remove_programme(it->second.group);
        next.erase(it->first);
        it = entries_.erase(it);
    }

    // Pass 1: sets that lose destinations shrink first (to what they keep),
    // so that no destination is in two sets at once. Pass 2: the new sets.
    for (auto& [id, e] : entries_) {
        const auto& want = next[id];
        Endpoints kept;
        std::set_intersection(e.destinations.begin(), e.destinations.end(), want.begin(), want.end(),
                              std::back_inserter(kept));
        if (kept.size() != e.destinations.size()) {
            publish(engine_, e.group, kept);
            e.destinations = std::move(kept);
        }
    }
    for (auto& [id, e] : entries_) {
        auto& want = next[id];
        if (want != e.destinations) {
            publish(engine_, e.group, want);
            e.destinations = std::move(want);
        }
    }
    current_ = std::move(decision.assignment);
}

std::optional<ProgrammeInfo> ProgrammeManager::info(std::uint64_t id) const {
    auto it = entries_.find(id);
    if (it == entries_.end()) return std::nullopt;
    const Entry& e = it->second;
    ProgrammeInfo info;
    info.id = id;
    info.name = e.spec.name;
    info.level = e.spec.level;
    info.target_zones = e.spec.target_zones;
    info.ssrc = e.ssrc;
    info.state = arbiter_.state(id);
    info.targeted = e.targeted;
    if (current_) {
        const auto slot = current_->find(id);
        if (slot != kNoIndex) info.listeners = current_->programme(slot).listeners;
    }
    return info;
}

std::vector<ProgrammeInfo> ProgrammeManager::list() const {
    std::vector<ProgrammeInfo> out;
    for (const auto& [id, e] : entries_) out.push_back(*info(id));
    return out;
}

std::optional<std::uint32_t> ProgrammeManager::group_of(std::uint64_t id) const {
    auto it = entries_.find(id);
    if (it == entries_.end()) return std::nullopt;
    return it->second.group;
}

}  // namespace loa::engine
