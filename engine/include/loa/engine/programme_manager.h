#pragma once
// Run-time programmes decided by the arbiter: the control-side owner that
// turns "programme P at level L to zones Z" into what the engine plays.
//
// It keeps the zone tree and the clusters (as registered in the store, with
// their unicast addresses), an Arbiter, and for every started programme an
// engine run-time programme (one encoder, one SSRC, one fan-out group). After
// every change (start, stop, new topology) it asks the arbiter which
// programme each cluster hears and publishes each programme's destination
// set to the fan-out (one swap per group). Sets that lose clusters are
// swapped before sets that gain them, so a moving cluster may miss a frame
// but never hears two programmes at once. A change of one cluster
// (put_cluster, remove_cluster) is decided for that cluster alone and
// republishes only the sets it leaves and joins; a new zone tree
// (set_topology) is decided for every cluster.
//
// Preemption: a clip programme (kind Clip) whose every reachable cluster
// hears another programme is paused in the engine (Engine::
// set_programme_paused: its sources are not pulled and nothing is sent) and
// resumed where it stopped as soon as one cluster comes back; with policy
// Restart its sources are rewound while it is paused (sources that cannot
// rewind, e.g. playlists, resume instead); with policy Drop it is removed
// (ProgrammeObserver::on_stopped). A clip partly preempted plays on for the
// clusters it keeps. A clip starts paused and is resumed by the decision
// that admits it unless that decision holds it (fully preempted from the
// start). Live programmes are never paused: they run on unheard.
//
// Multicast: clusters that listen on the same group (address and port) form
// one arbiter group, which belongs to the smallest zone holding all its
// members. A group whose members lie in different provinces belongs to no
// zone and is not used (its members are served by unicast only). The group
// address is added to the destination set of the programme the group
// carries; members a programme reaches by unicast get their own copy (the
// arbiter decides, see arbiter.h). A change of a grouped cluster re-decides
// every cluster (the group's zone may move).
//
// Threads: the control thread only (the one that owns the Engine's control
// side).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/udp.hpp>

#include "loa/engine/arbiter.h"
#include "loa/engine/config.h"
#include "loa/engine/outcome.h"

namespace loa::engine {

class Engine;

struct RuntimeCluster {
    std::string id;
    std::string zone_id;
    std::optional<boost::asio::ip::udp::endpoint> address;  // unicast; nullopt = none
    std::optional<boost::asio::ip::udp::endpoint> group{};  // multicast group:port it listens on; nullopt = none
};

struct RuntimeProgramme {
    std::uint64_t id = 0;  // non-zero, unique
    std::string name;      // display name; its SSRC is derived from name and id
    Priority level = Priority::Scheduled;
    std::vector<std::string> target_zones;
    std::uint64_t sequence = 0;  // start order (newest wins ties); persist it
    ProgrammeKind kind = ProgrammeKind::Live;
    std::vector<SourceConfig> sources;
    int ptime_ms = 20;
    int bitrate_bps = 64000;
    std::optional<AlertSignal> alert;  // alert programmes: amplifier on, forced volume
    PreemptPolicy policy = PreemptPolicy::Pause;  // clips: what a full preemption does
};

struct ProgrammeInfo {
    std::uint64_t id = 0;
    std::string name;
    Priority level = Priority::Scheduled;
    std::vector<std::string> target_zones;
    std::uint32_t ssrc = 0;
    std::optional<ProgrammeState> state;  // at the last decision
    std::uint32_t listeners = 0;          // clusters hearing it
    std::uint32_t targeted = 0;           // clusters in its target zones
    ProgrammeKind kind = ProgrammeKind::Live;
    PreemptPolicy policy = PreemptPolicy::Pause;
    bool paused = false;                  // held by the engine (a fully preempted clip)
};

/// Told what a ProgrammeManager did, synchronously on its (control) thread;
/// the as-run log (asrun.h) is one. An observer must not call the manager's
/// mutating methods from these.
class ProgrammeObserver {
public:
    virtual ~ProgrammeObserver() = default;
    /// A programme was admitted and built; the decision that places it follows.
    virtual void on_started(const ProgrammeInfo& info) = 0;
    /// A programme left (stop(), or dropped by the arbiter's policy); the
    /// decision without it follows.
    virtual void on_stopped(std::uint64_t id) = 0;
    /// A decision was published; its cluster indices are those of `topology`.
    virtual void on_decided(const Assignment& assignment, const Topology& topology) = 0;
};

class ProgrammeManager {
public:
    explicit ProgrammeManager(Engine& engine);
    /// Removes its programmes from the engine.
    ~ProgrammeManager();
    ProgrammeManager(const ProgrammeManager&) = delete;
    ProgrammeManager& operator=(const ProgrammeManager&) = delete;

    /// Replaces zones and clusters (INVALID_ARGUMENT from Topology::build,
    /// nothing changed) and re-decides.
    Outcome set_topology(std::vector<ZoneSpec> zones, std::vector<RuntimeCluster> clusters);
    /// Adds a cluster, or changes the one with the same id (zone, address;
    /// nullopt address = unreachable, e.g. disabled), and decides again for
    /// it alone (Arbiter::put_cluster): the result is the one set_topology()
    /// with the changed cluster list would give, but only the destination
    /// sets it leaves and joins are republished (the one it leaves first) and
    /// the engine's registry changes for that cluster only. INVALID_ARGUMENT
    /// (empty id, unknown zone), nothing changed.
    Outcome put_cluster(RuntimeCluster cluster);
    /// Removes a cluster, as put_cluster(). NOT_FOUND when unknown.
    Outcome remove_cluster(const std::string& id);
    /// Clusters in topology index order (Arbiter::topology()).
    const std::vector<RuntimeCluster>& clusters() const noexcept { return clusters_; }

    /// Admits the programme (arbiter checks), builds it in the engine and
    /// re-decides. Errors, nothing changed: the arbiter's (INVALID_ARGUMENT,
    /// ALREADY_EXISTS, FAILED_PRECONDITION), RESOURCE_EXHAUSTED when the
    /// engine has no free programme slot or a studio source's studio
    /// already feeds StudioFeed::kMaxReaders others (CapacityError),
    /// INVALID_ARGUMENT when a source cannot be made.
    Result<Reach> start(const RuntimeProgramme& programme);
    /// Ends the programme and re-decides. False when unknown.
    bool stop(std::uint64_t id);

    bool contains(std::uint64_t id) const { return entries_.count(id) != 0; }
    std::optional<ProgrammeInfo> info(std::uint64_t id) const;
    /// Ascending id.
    std::vector<ProgrammeInfo> list() const;
    /// The last decision (nullptr before the first).
    const Assignment* assignment() const noexcept { return current_.get(); }
    /// Engine fan-out group of a programme (tests, stats).
    std::optional<std::uint32_t> group_of(std::uint64_t id) const;
    /// The destination set last published for a programme, sorted (tests,
    /// stats); empty when unknown.
    std::vector<boost::asio::ip::udp::endpoint> destinations(std::uint64_t id) const;
    /// Zone a multicast group belongs to (the smallest one holding all its
    /// members); nullopt when no cluster uses the group or it spans
    /// provinces.
    std::optional<std::string> group_zone(const boost::asio::ip::udp::endpoint& group) const;
    /// Who is told of starts, stops and decisions (nullptr: nobody). Not owned.
    void set_observer(ProgrammeObserver* observer) noexcept { observer_ = observer; }

private:
    struct Entry {
        RuntimeProgramme spec;
        std::uint32_t group = 0;
        std::uint32_t ssrc = 0;
        std::uint32_t targeted = 0;
        std::vector<boost::asio::ip::udp::endpoint> destinations;  // published, sorted
        bool paused = false;                                       // as last told to the engine
    };
    // Where one cluster's packets went before a change and go after it.
    struct Hearing {
        std::uint64_t programme = 0;  // 0 = none
        std::optional<boost::asio::ip::udp::endpoint> address;  // set when it is sent to
    };
    struct ClusterChange {
        std::uint32_t index = kNoIndex;  // after the change; kNoIndex = removed
        Hearing before;
    };
    void apply();
    // Arbiter specs for `clusters`: every multicast group is placed in the
    // smallest zone of `zones` that holds all its members.
    static std::vector<ClusterSpec> specs_for(const std::vector<ZoneSpec>& zones,
                                              const std::vector<RuntimeCluster>& clusters);
    // Publishes a decision: drops, destination sets (all of them, or only
    // those `change` touches), pauses and resumes, then the observer.
    void commit(Decision decision, const ClusterChange* change);
    Hearing hearing(const Assignment* a, std::uint32_t index) const;
    void set_paused(Entry& e, bool paused);
    // Adjusts every programme's targeted count for one cluster leaving
    // (`add` false) or joining zone `zone_id`.
    void count_targeted(const std::string& zone_id, bool add);

    Engine& engine_;
    Arbiter arbiter_;
    std::vector<ZoneSpec> zones_;
    std::vector<RuntimeCluster> clusters_;  // topology index order
    std::vector<boost::asio::ip::udp::endpoint> group_address_;  // by arbiter group index
    std::map<std::uint64_t, Entry> entries_;
    std::unique_ptr<const Assignment> current_;
    ProgrammeObserver* observer_ = nullptr;
};

}  // namespace loa::engine
