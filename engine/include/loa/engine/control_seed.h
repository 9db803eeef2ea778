#pragma once
// The config's seed: [[zone]] tables and the [[cluster]] and [[studio]]
// tables that name a zone. It is imported once, into an empty state database, on the engine's
// first start with a state_dir; from then on the database (changed only
// through the control API) is the source of truth, and a restart with an
// edited seed changes nothing.
//
// Threads: the thread that owns the Store, before the control server starts.

#include <cstddef>
#include <string>
#include <vector>

#include "loa/engine/clock.h"
#include "loa/engine/config.h"
#include "loa/engine/store.h"

namespace loa::engine {

struct SeedResult {
    bool imported = false;
    std::size_t zones = 0;
    std::size_t clusters = 0;
    std::size_t studios = 0;
    std::string summary;  // one line for the log: what was done and why
};

/// The seed of `config` as database rows, parents before children. Throws
/// ControlError(INVALID_ARGUMENT) for a cluster id the API would refuse.
void seed_rows(const EngineConfig& config, std::vector<ZoneRow>& zones, std::vector<ClusterRow>& clusters);

/// The seed's studios ([[studio]] tables with a zone) as database rows,
/// created at `now_unix_ms` by "seed". Throws ControlError(INVALID_ARGUMENT)
/// for a studio name the API would refuse.
std::vector<StudioRow> seed_studio_rows(const EngineConfig& config, std::int64_t now_unix_ms);

/// Imports the seed in one transaction when the database was never seeded,
/// holds no zone and no cluster, and the seed is not empty; records a
/// CONFIG_CHANGED event and marks the database seeded. A database that already
/// holds zones or clusters is marked seeded without importing anything.
/// Throws ControlError (the database's codes; INVALID_ARGUMENT for a bad seed).
SeedResult import_seed(Store& store, const EngineConfig& config, const Clock& clock);

}  // namespace loa::engine
