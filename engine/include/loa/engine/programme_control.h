#pragma once
// The control side of run-time programmes: checks a caller's scope, turns the
// zones and clusters of the Store into the ProgrammeManager's topology, and
// starts, stops and lists programmes for the Control service.
//
// Scope: a caller may start a programme only at a level no higher than its
// own and only to zones inside its subtree (PERMISSION_DENIED otherwise), may
// stop only programmes it could have started, and sees only programmes that
// target at least one zone of its subtree. Viewers may only list. A clip by
// file path is for administrators only (until the clip catalogue is wired in).
//
// Persistence: row() gives the Store row of a started programme (the caller
// inserts it in the same transaction as its event); restore() restarts the
// programmes the Store says should be running, with their ids and start
// order.
//
// Threads: the control thread (the one that owns the Store).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "loa/engine/auth.h"
#include "loa/engine/clock.h"
#include "loa/engine/outcome.h"
#include "loa/engine/programme_manager.h"
#include "loa/engine/store.h"

namespace loa::engine {

struct ProgrammeRequest {
    std::string name;
    Priority level = Priority::Scheduled;
    std::vector<std::string> target_zones;
    enum class Source { Tone, ClipPath, Studio } source = Source::Tone;
    double tone_hz = 1000.0;
    std::string clip_path;  // absolute file path (admins only)
    std::string studio;
};

class ProgrammeControl {
public:
    ProgrammeControl(Store& store, ProgrammeManager& manager, const Clock& clock);

    /// Re-reads zones and clusters (enabled ones with a parseable unicast
    /// "host:port" address are reachable) and hands them to the manager.
    /// Call after every committed change of zones or clusters.
    Outcome refresh_topology();

    Result<std::uint64_t> start(const Caller& caller, const ProgrammeRequest& request);
    /// Whether `caller` may stop programme `id` (NOT_FOUND, PERMISSION_DENIED).
    Outcome may_stop(const Caller& caller, std::uint64_t id) const;
    Outcome stop(const Caller& caller, std::uint64_t id);
    /// The Store row of a running programme.
    std::optional<ProgrammeRow> row(std::uint64_t id) const;
    /// Starts every programme of store.programmes(); returns one message per
    /// programme that could not be started (it stays in the Store).
    std::vector<std::string> restore();
    std::vector<ProgrammeInfo> list(const Caller& caller) const;

    /// Parses "a.b.c.d:port" or "[v6]:port"; nullopt otherwise.
    static std::optional<boost::asio::ip::udp::endpoint> parse_endpoint(const std::string& text);

private:
    bool in_scope(const Caller& caller, const std::vector<std::string>& zones) const;
    Result<std::uint64_t> launch(const ProgrammeRequest& request, std::uint64_t id, std::uint64_t sequence);

    Store& store_;
    ProgrammeManager& manager_;
    const Clock& clock_;
    std::uint64_t next_id_ = 1;
    std::map<std::uint64_t, ProgrammeRow> rows_;
};

}  // namespace loa::engine
