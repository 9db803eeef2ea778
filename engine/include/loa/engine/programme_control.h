#pragma once
// The control side of run-time programmes: checks a caller's scope, turns the
// zones and clusters of the Store into the ProgrammeManager's topology, and
// starts, stops and lists programmes for the Control service.
//
// Scope: a caller may start a programme only at a level no higher than its
// own and only to zones inside its subtree (PERMISSION_DENIED otherwise), may
// stop only programmes it could have started, and sees only programmes that
// target at least one zone of its subtree. Viewers may only list. A
// catalogue clip must be global or belong to the caller's subtree; a clip by
// file path is for administrators only. A programme playing a catalogue clip
// holds one `uses` reference on it (taken and released by the caller in the
// same transaction as the programme row), so the clip cannot be deleted.
// A studio source names a studio of the Store (NOT_FOUND otherwise) whose
// zone lies in the caller's subtree (PERMISSION_DENIED); it may feed other
// programmes and alerts at the same time, up to StudioFeed::kMaxReaders in
// all (RESOURCE_EXHAUSTED beyond). Its fallback clip plays while it is
// silent.
//
// Persistence: row() gives the Store row of a started programme (the caller
// inserts it in the same transaction as its event); restore() restarts the
// programmes the Store says should be running, with their ids and start
// order.
//
// Threads: the control thread (the one that owns the Store).

#include <cstdint>
#include <filesystem>
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
    // Stored as an int in the programmes table: append only.
    enum class Source { Tone, ClipPath, Studio, ClipId } source = Source::Tone;
    double tone_hz = 1000.0;
    std::string clip_path;  // absolute file path (admins only)
    std::string studio;
    std::int64_t clip_id = 0;  // catalogue clip
    bool loop = false;          // clips: false = play once, then silence until stopped
    /// Clips: what happens while every cluster it reaches hears a higher
    /// programme (pause and resume, pause and restart, drop). Live sources
    /// run on unheard whatever it says.
    PreemptPolicy on_preempt = PreemptPolicy::Pause;
    /// Optional catalogue clip looped under the source as a background bed
    /// (0 = none), dipping by duck_db (-60..0) while the source carries voice.
    std::int64_t background_clip_id = 0;
    double duck_db = 0.0;
};

class ProgrammeControl {
public:
    ProgrammeControl(Store& store, ProgrammeManager& manager, const Clock& clock);
    /// Where catalogue clips live (ClipCatalog::dir()); unset = clip ids are
    /// refused with UNAVAILABLE. Set before restore().
    void set_clip_dir(std::filesystem::path dir) { clip_dir_ = std::move(dir); }

    /// Re-reads zones and clusters (enabled ones with a parseable unicast
    /// "host:port" address are reachable) and hands them to the manager.
    /// Call after every committed change of zones or clusters; a call when
    /// no zone or cluster was written since the last one does nothing.
    Outcome refresh_topology();
    /// Call instead of refresh_topology() after a committed change of one
    /// cluster (registered, enabled, disabled, re-addressed, removed): when
    /// that was the only zone or cluster write since the last refresh
    /// (Store::topology_version() one above the one applied), only this
    /// cluster is re-read and handed over (ProgrammeManager::put_cluster /
    /// remove_cluster); otherwise, or if that fails, it is refresh_topology().
    Outcome refresh_cluster(const std::string& id);

    Result<std::uint64_t> start(const Caller& caller, const ProgrammeRequest& request);
    /// Whether `caller` may stop programme `id` (NOT_FOUND, PERMISSION_DENIED).
    Outcome may_stop(const Caller& caller, std::uint64_t id) const;
    Outcome stop(const Caller& caller, std::uint64_t id);
    /// Rows of programmes started here that the arbiter dropped (policy
    /// Drop, fully preempted); each stays listed until forget(). The caller
    /// deletes its Store row (and its clip reference) and then forgets it.
    std::vector<ProgrammeRow> dropped() const;
    void forget(std::uint64_t id) { rows_.erase(id); }
    /// The Store row of a running programme.
    std::optional<ProgrammeRow> row(std::uint64_t id) const;
    /// The catalogue clip a programme row plays, if any.
    static std::optional<std::int64_t> clip_of(const ProgrammeRow& row);
    /// Starts every programme of store.programmes(); returns one message per
    /// programme that could not be started (it stays in the Store).
    std::vector<std::string> restore();
    std::vector<ProgrammeInfo> list(const Caller& caller) const;

    /// Parses "a.b.c.d:port" or "[v6]:port"; nullopt otherwise.
    static std::optional<boost::asio::ip::udp::endpoint> parse_endpoint(const std::string& text);
    /// Parses a multicast "group:port" (port non-zero); nullopt otherwise.
    static std::optional<boost::asio::ip::udp::endpoint> parse_group(const std::string& text);

private:
    bool in_scope(const Caller& caller, const std::vector<std::string>& zones) const;
    Result<std::uint64_t> launch(const ProgrammeRequest& request, std::uint64_t id, std::uint64_t sequence);

    Store& store_;
    ProgrammeManager& manager_;
    const Clock& clock_;
    std::optional<std::filesystem::path> clip_dir_;
    std::optional<std::uint64_t> applied_topology_;  // Store::topology_version() last handed to the manager
    std::uint64_t next_id_ = 1;
    std::map<std::uint64_t, ProgrammeRow> rows_;
};

}  // namespace loa::engine
