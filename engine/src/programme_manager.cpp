#include "loa/engine/programme_manager.h"

#include <algorithm>
#include <cassert>
#include <exception>
#include <iterator>
#include <sstream>
#include <unordered_map>

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

// Sets hold one entry per cluster sent to (two clusters may share an address).
void insert_one(Endpoints& set, const boost::asio::ip::udp::endpoint& ep) {
    set.insert(std::upper_bound(set.begin(), set.end(), ep), ep);
}

void erase_one(Endpoints& set, const boost::asio::ip::udp::endpoint& ep) {
    const auto it = std::lower_bound(set.begin(), set.end(), ep);
    if (it != set.end() && *it == ep) set.erase(it);
}
}  // namespace

ProgrammeManager::ProgrammeManager(Engine& engine) : engine_(engine) {}

ProgrammeManager::~ProgrammeManager() {
    for (const auto& [id, e] : entries_) engine_.remove_programme(e.group);
}

std::vector<ClusterSpec> ProgrammeManager::specs_for(const std::vector<ZoneSpec>& zones,
                                                     const std::vector<RuntimeCluster>& clusters) {
    std::vector<ClusterSpec> specs;
    specs.reserve(clusters.size());
    std::map<boost::asio::ip::udp::endpoint, std::vector<std::size_t>> groups;
    for (std::size_t i = 0; i < clusters.size(); ++i) {
        const auto& c = clusters[i];
        specs.push_back(ClusterSpec{c.id, c.zone_id, c.address.has_value(), {}, {}});
        if (c.group) groups[*c.group].push_back(i);
    }
    if (groups.empty()) return specs;
    std::unordered_map<std::string, const std::string*> parent;
    for (const auto& z : zones) parent.emplace(z.id, &z.parent_id);
    const auto parent_of = [&](const std::string& zone) -> std::string {
        const auto it = parent.find(zone);
        return it == parent.end() ? std::string() : *it->second;
    };
    // True when `zone` is `outer` or below it (a walk longer than the tree is
    // a cycle, which Topology::build refuses anyway).
    const auto within = [&](std::string zone, const std::string& outer) {
        for (std::size_t steps = 0; !zone.empty() && steps <= zones.size(); ++steps) {
            if (zone == outer) return true;
            zone = parent_of(zone);
        }
        return false;
    };
    for (const auto& [address, members] : groups) {
        std::string owner = clusters[members.front()].zone_id;
        for (const auto m : members) {
            while (!owner.empty() && !within(clusters[m].zone_id, owner)) owner = parent_of(owner);
        }
        if (owner.empty()) continue;  // spans provinces: no zone owns it
        std::ostringstream name;
        name << address;
        for (const auto m : members) {
            specs[m].multicast_zone = owner;
            specs[m].multicast_group = name.str();
        }
    }
    return specs;
}

Outcome ProgrammeManager::set_topology(std::vector<ZoneSpec> zones, std::vector<RuntimeCluster> clusters) {
    auto topology = Topology::build(zones, specs_for(zones, clusters));
    if (!topology) return topology.error();
    zones_ = std::move(zones);
    arbiter_.set_topology(std::move(topology).value());
    const Topology& t = arbiter_.topology();
    group_address_.assign(t.group_count(), {});
    for (std::uint32_t g = 0; g < t.group_count(); ++g) group_address_[g] = *clusters[t.group_members(g).front()].group;
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

Outcome ProgrammeManager::put_cluster(RuntimeCluster cluster) {
    const auto old = arbiter_.topology().cluster_index(cluster.id);
    if (cluster.group || (old && clusters_[*old].group)) {
        // Its group's zone may move with it: decide everything again.
        auto clusters = clusters_;
        if (old) {
            clusters[*old] = std::move(cluster);
        } else {
            clusters.push_back(std::move(cluster));
        }
        return set_topology(zones_, std::move(clusters));
    }
    ClusterChange change;
    std::string old_zone;
    if (old) {
        change.before = hearing(current_.get(), *old);
        old_zone = clusters_[*old].zone_id;
    }
    auto decided = arbiter_.put_cluster(ClusterSpec{cluster.id, cluster.zone_id, cluster.address.has_value(), {}, {}});
    if (!decided) return decided.error();
    change.index = arbiter_.topology().cluster_index(cluster.id).value();
    if (old) count_targeted(old_zone, false);
    count_targeted(cluster.zone_id, true);
    engine_.set_registered_cluster(cluster.id, cluster.address.value_or(boost::asio::ip::udp::endpoint{}));
    if (change.index < clusters_.size()) {
        clusters_[change.index] = std::move(cluster);
    } else {
        clusters_.push_back(std::move(cluster));
    }
    assert(clusters_.size() == arbiter_.topology().cluster_count());
    commit(std::move(decided).value(), &change);
    return Outcome::success();
}

Outcome ProgrammeManager::remove_cluster(const std::string& id) {
    const auto old = arbiter_.topology().cluster_index(id);
    if (!old) return Outcome::failure(RpcCode::NotFound, "no cluster '" + id + "'");
    if (clusters_[*old].group) {
        auto clusters = clusters_;
        clusters.erase(clusters.begin() + *old);
        engine_.unregister_cluster(id);
        return set_topology(zones_, std::move(clusters));
    }
    ClusterChange change;
    change.before = hearing(current_.get(), *old);
    const std::string zone = clusters_[*old].zone_id;
    auto decided = arbiter_.erase_cluster(id);
    if (!decided) return decided.error();
    count_targeted(zone, false);
    engine_.unregister_cluster(id);
    // The arbiter's topology moved its last cluster into the gap: so do we.
    if (*old + 1 != clusters_.size()) clusters_[*old] = std::move(clusters_.back());
    clusters_.pop_back();
    assert(clusters_.size() == arbiter_.topology().cluster_count());
    commit(std::move(decided).value(), &change);
    return Outcome::success();
}

std::optional<std::string> ProgrammeManager::group_zone(const boost::asio::ip::udp::endpoint& group) const {
    const Topology& t = arbiter_.topology();
    for (std::uint32_t g = 0; g < group_address_.size(); ++g) {
        if (group_address_[g] == group) return t.zone_id(t.group_zone(g));
    }
    return std::nullopt;
}

void ProgrammeManager::count_targeted(const std::string& zone_id, bool add) {
    const auto zone = arbiter_.topology().zone_index(zone_id);
    if (!zone) return;
    for (auto& [id, e] : entries_) {
        if (!arbiter_.aims_at(id, *zone)) continue;
        if (add) {
            ++e.targeted;
        } else if (e.targeted > 0) {
            --e.targeted;
        }
    }
}

Result<Reach> ProgrammeManager::start(const RuntimeProgramme& p) {
    ProgrammeSpec spec;
    spec.id = p.id;
    spec.level = p.level;
    spec.target_zones = p.target_zones;
    spec.sequence = p.sequence;
    spec.kind = p.kind;
    spec.policy = p.policy;
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
    // A clip waits, unpulled, until the decision that admits it lets it play.
    const bool clip = p.kind == ProgrammeKind::Clip;
    std::uint32_t group = 0;
    try {
        group = engine_.add_programme(config, clip);
    } catch (const CapacityError& ex) {
        // No programme slot left, or a studio that already has all its readers.
        return Outcome::failure(RpcCode::ResourceExhausted, ex.what());
    } catch (const std::exception& ex) {
        return Outcome::failure(RpcCode::InvalidArgument, ex.what());
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
    e.paused = clip;
    entries_.emplace(p.id, std::move(e));
    if (observer_ != nullptr) observer_->on_started(*info(p.id));
    apply();
    return added;
}

bool ProgrammeManager::stop(std::uint64_t id) {
    auto it = entries_.find(id);
    if (it == entries_.end()) return false;
    arbiter_.remove(id);
    engine_.remove_programme(it->second.group);
    entries_.erase(it);
    if (observer_ != nullptr) observer_->on_stopped(id);
    apply();
    return true;
}

void ProgrammeManager::apply() { commit(arbiter_.decide(), nullptr); }

ProgrammeManager::Hearing ProgrammeManager::hearing(const Assignment* a, std::uint32_t index) const {
    Hearing h;
    if (a == nullptr || index >= a->cluster_count()) return h;
    h.programme = a->programme_id_of(index);
    if (h.programme != 0 && a->delivery_of(index) == Delivery::Unicast && index < clusters_.size()) {
        h.address = clusters_[index].address;
    }
    return h;
}

void ProgrammeManager::set_paused(Entry& e, bool paused) {
    if (e.paused == paused) return;
    (void)engine_.set_programme_paused(e.group, paused);
    e.paused = paused;
}

void ProgrammeManager::commit(Decision decision, const ClusterChange* change) {
    const Assignment& a = *decision.assignment;

    // New destination sets: with one cluster changed (and no multicast group
    // whose delivery could shift others) only the sets it leaves and joins;
    // otherwise those of every programme still admitted.
    const bool one_cluster =
        change != nullptr && arbiter_.topology().group_count() == 0 &&
        std::all_of(decision.moves.begin(), decision.moves.end(),
                    [&](const ClusterMove& m) { return m.cluster == change->index; });
    std::map<std::uint64_t, Endpoints> next;
    if (one_cluster) {
        const Hearing& before = change->before;
        const Hearing after = change->index == kNoIndex ? Hearing{} : hearing(&a, change->index);
        if (before.programme != after.programme || before.address != after.address) {
            if (before.programme != 0 && before.address) {
                if (const auto it = entries_.find(before.programme); it != entries_.end()) {
                    erase_one(next.try_emplace(it->first, it->second.destinations).first->second, *before.address);
                }
            }
            if (after.programme != 0 && after.address) {
                if (const auto it = entries_.find(after.programme); it != entries_.end()) {
                    insert_one(next.try_emplace(it->first, it->second.destinations).first->second, *after.address);
                }
            }
        }
    } else {
        for (auto& [id, e] : entries_) next[id];
        for (std::size_t slot = 0; slot < a.programme_count(); ++slot) {
            auto it = next.find(a.programme(slot).id);
            if (it == next.end()) continue;
            for (const auto c : a.unicast_clusters(slot)) {
                if (c < clusters_.size() && clusters_[c].address) it->second.push_back(*clusters_[c].address);
            }
            for (const auto g : a.multicast_groups(slot)) {
                if (g < group_address_.size()) it->second.push_back(group_address_[g]);
            }
            std::sort(it->second.begin(), it->second.end());
        }
    }

    // Programmes the arbiter dropped (policy Drop) leave the engine.
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (arbiter_.contains(it->first)) {
            ++it;
            continue;
        }
        engine_.remove_programme(it->second.group);
        next.erase(it->first);
        if (observer_ != nullptr) observer_->on_stopped(it->first);
        it = entries_.erase(it);
    }

    // Pass 1: sets that lose destinations shrink first (to what they keep),
    // so that no destination is in two sets at once.
    for (const auto& [id, want] : next) {
        Entry& e = entries_.at(id);
        Endpoints kept;
        std::set_intersection(e.destinations.begin(), e.destinations.end(), want.begin(), want.end(),
                              std::back_inserter(kept));
        if (kept.size() != e.destinations.size()) {
            publish(engine_, e.group, kept);
            e.destinations = std::move(kept);
        }
    }
    // Clips nobody can hear any more pause where they are (a Restart one
    // goes back to its start meanwhile); those heard again resume once their
    // new set is in place, so their next frame goes to the clusters that
    // rejoin them.
    std::vector<Entry*> resume;
    for (const auto& c : decision.changes) {
        const auto it = entries_.find(c.id);
        if (it == entries_.end() || it->second.spec.kind != ProgrammeKind::Clip) continue;
        Entry& e = it->second;
        switch (c.event) {
            case ProgrammeEvent::Held: set_paused(e, true); break;
            case ProgrammeEvent::Preempted:
                set_paused(e, true);
                if (e.spec.policy == PreemptPolicy::Restart) (void)engine_.rewind_programme(e.group);
                break;
            case ProgrammeEvent::Started:
            case ProgrammeEvent::Resumed:
            case ProgrammeEvent::Restarted: resume.push_back(&e); break;
            case ProgrammeEvent::Dropped: break;
        }
    }
    // Pass 2: the new sets.
    for (auto& [id, want] : next) {
        Entry& e = entries_.at(id);
        if (want != e.destinations) {
            publish(engine_, e.group, want);
            e.destinations = std::move(want);
        }
    }
    for (Entry* e : resume) set_paused(*e, false);
    current_ = std::move(decision.assignment);
    if (observer_ != nullptr) observer_->on_decided(*current_, arbiter_.topology());
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
    info.kind = e.spec.kind;
    info.policy = e.spec.policy;
    info.paused = e.paused;
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

std::vector<boost::asio::ip::udp::endpoint> ProgrammeManager::destinations(std::uint64_t id) const {
    auto it = entries_.find(id);
    if (it == entries_.end()) return {};
    return it->second.destinations;
}

}  // namespace loa::engine
