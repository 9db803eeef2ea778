#pragma once
// The control side of run-time studios: checks DeclareStudio and RemoveStudio
// requests and the caller's scope, keeps the Engine's studio table in step
// with the Store's `studios` table, and reports each studio's live state.
//
// Scope: declaring and removing a studio need role operator or admin and the
// studio's zone inside the caller's subtree (PERMISSION_DENIED otherwise);
// every caller sees the studios of its subtree. A studio may feed any
// run-time programme or alert raised by a caller whose scope contains the
// studio's zone (checked by ProgrammeControl and AlertControl), several at
// once up to StudioFeed::kMaxReaders (bounded by the engine). A studio with
// a fallback clip holds one `uses` reference on the clip, taken and released
// by the caller in the same transaction as the studio row.
//
// Order of a declaration: check_declare(), add() (the engine recognises the
// studio at once), then the caller commits the row; if the commit fails it
// calls remove(). A removal: check_remove(), commit, remove().
//
// Threads: the control thread (the one that owns the Store and drives the
// Engine's control side).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "loa/engine/auth.h"
#include "loa/engine/config.h"
#include "loa/engine/engine.h"
#include "loa/engine/outcome.h"
#include "loa/engine/store.h"
#include "loa/engine/v1/stats.pb.h"

namespace loa::engine {

/// A DeclareStudio request, before validation.
struct StudioRequest {
    std::string name;
    std::string zone_id;
    std::optional<std::uint32_t> ssrc;
    std::optional<std::string> source_address;  // IPv4 host, no port
    int min_delay_ms = 0;                       // 0..2000
    int max_delay_ms = 0;                       // 10..5000; 0 = 500
    int fixed_delay_ms = 0;                     // 1..max_delay_ms; 0 = adaptive
    std::int64_t fallback_clip_id = 0;          // 0 = silence
};

/// A studio of the Store with what the engine knows of it.
struct StudioView {
    StudioRow row;
    std::optional<StudioStatus> status;  // nullopt: not in the engine (e.g. it could not be added)
    loa::engine::v1::StudioStats stats;  // latched address, ingest and playout counters
    std::uint64_t programme_id = 0;      // first run-time programme (Store row) playing it; 0 = none
    std::string config_program;          // a studio of the config file: the programme it feeds
};

class StudioControl {
public:
    StudioControl(Store& store, Engine& engine);

    /// Validates a declaration and checks the caller's scope. Returns the
    /// row to insert (created_* left empty) or: PERMISSION_DENIED (viewer,
    /// zone outside the caller's subtree), INVALID_ARGUMENT (bad name, no
    /// zone, neither ssrc nor source address, bad address, delays out of
    /// range), NOT_FOUND (zone, or a fallback clip the caller cannot see),
    /// ALREADY_EXISTS (the name is taken, also by a studio of the config, or
    /// another studio has the same ssrc and source address).
    Result<StudioRow> check_declare(const Caller& caller, const StudioRequest& request) const;
    /// Adds a checked studio to the engine. ALREADY_EXISTS when the engine
    /// refuses its name or criteria, UNAVAILABLE when the engine has no
    /// ingest socket.
    Outcome add(const StudioRow& row);
    /// Whether `caller` may remove studio `name` now; returns its row.
    /// NOT_FOUND, PERMISSION_DENIED (viewer, outside the subtree),
    /// FAILED_PRECONDITION while a programme or an alert plays it or a
    /// schedule names it (a studio window).
    Result<StudioRow> check_remove(const Caller& caller, const std::string& name) const;
    /// Takes the studio out of the engine (after its row was deleted, or
    /// when the row's commit failed). Unknown names are ignored.
    void remove(const std::string& name);

    /// The studios of the caller's subtree, ordered by name, with live state;
    /// for a caller whose scope is a whole tree (no zone, or a zone without
    /// a parent) also the config file's studios bound to a config programme.
    std::vector<StudioView> list(const Caller& caller) const;
    /// One studio with its live state (no scope check).
    std::optional<StudioView> view(const std::string& name) const;
    /// Adds every studio of the Store to the engine; returns one message per
    /// studio that could not be added (it stays in the Store). Call before
    /// ProgrammeControl::restore(): programmes may play these studios.
    std::vector<std::string> restore();

    /// The engine's view of a row (its playout settings; no programme).
    static StudioConfig to_config(const StudioRow& row);
    /// Ids of the run-time programmes the Store says play `name`, ascending.
    std::vector<std::uint64_t> programmes_playing(const std::string& name) const;

private:
    StudioView make_view(const StudioRow& row) const;

    Store& store_;
    Engine& engine_;
};

}  // namespace loa::engine
