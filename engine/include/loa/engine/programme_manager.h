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
// but never hears two programmes at once.
//
// Not yet: multicast delivery (clusters are served by unicast only; a cluster
// without an address is unreachable), pausing a clip that is fully preempted
// (it plays on unheard), studio sources (Engine::add_programme refuses them).
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
    std::optional<boost::asio::ip::udp::endpoint> address;  // unicast; nullopt = unreachable for now
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

    /// Admits the programme (arbiter checks), builds it in the engine and
    /// re-decides. Errors, nothing changed: the arbiter's (INVALID_ARGUMENT,
    /// ALREADY_EXISTS, FAILED_PRECONDITION), RESOURCE_EXHAUSTED when the
    /// engine has no free programme slot, INVALID_ARGUMENT when a source
    /// cannot be made.
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

private:
    struct Entry {
        RuntimeProgramme spec;
        std::uint32_t group = 0;
        std::uint32_t ssrc = 0;
        std::uint32_t targeted = 0;
        std::vector<boost::asio::ip::udp::endpoint> destinations;  // published, sorted
    };
    void apply();

    Engine& engine_;
    Arbiter arbiter_;
    std::vector<RuntimeCluster> clusters_;  // topology index order
    std::map<std::uint64_t, Entry> entries_;
    std::unique_ptr<const Assignment> current_;
};

}  // namespace loa::engine
