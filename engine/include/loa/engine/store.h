#pragma once
// The engine's persistent run-time state (zones, clusters, operators, the
// event log) in one SQLite database: WAL journal, synchronous=FULL, foreign
// keys on, schema versioned in `schema_version` and migrated forward on open.
//
// Every method throws ControlError (see sqlite_db.h for how SQLite errors map
// to codes). Mutations made inside write() are one transaction: write()
// returns only after COMMIT succeeded, so a caller may acknowledge then.
//
// Threads: not thread-safe; one thread at a time (the control thread).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loa/engine/auth.h"
#include "loa/engine/priority.h"

namespace loa::engine {

namespace sql {
class Database;
}

enum class ZoneKind : int { Province = 1, District = 2, Commune = 3, Village = 4 };

struct ZoneRow {
    std::string id;
    std::string name;
    ZoneKind kind = ZoneKind::Province;
    std::string parent_id;  // empty for a province
};

struct ClusterRow {
    std::string id;
    std::string name;
    std::string zone_id;
    std::string address;          // may be empty
    std::string multicast_group;  // may be empty
    bool enabled = true;
};

/// A cluster row as the query yields it, without copies: the views are valid
/// only during the callback that receives it (Store::for_each_cluster).
struct ClusterRowView {
    std::string_view id;
    std::string_view name;
    std::string_view zone_id;
    std::string_view address;
    std::string_view multicast_group;
    bool enabled = true;
};

struct OperatorRow {
    std::string name;
    Role role = Role::Viewer;
    std::string zone_id;  // empty = whole network
    Priority max_level = Priority::Background;
    std::string token_hash;
    std::int64_t created_unix_ms = 0;
    std::string created_by;
};

struct EventRow {
    std::uint64_t seq = 0;
    std::int64_t unix_ms = 0;
    int kind = 0;  // loa.control.v1.EventKind
    std::string subject;
    std::string zone_id;
    std::string message;
};

/// A clip in the catalogue; its file is <state_dir>/clips/<sha256>.<ext> (clip_catalog.h).
struct ClipRow {
    std::int64_t id = 0;  // assigned by insert_clip
    std::string name;
    std::string zone_id;  // owner; empty = global
    std::string sha256;   // lower-case hex
    std::string ext;      // file extension without the dot
    std::int64_t size_bytes = 0;
    std::int64_t duration_ms = 0;
    int sample_rate = 0;
    int channels = 0;
    std::string format;
    double loudness_lufs = -70.0;
    std::int64_t created_unix_ms = 0;
    std::string created_by;
    std::int64_t uses = 0;  // programmes/schedules using the clip (set by them; 0 = deletable)
};

/// A run-time programme that should be running (schema v5); restored on start.
struct ProgrammeRow {
    std::uint64_t id = 0;
    std::string name;
    int level = 0;            // loa::engine::Priority
    std::string zones;        // target zone ids, comma-separated
    int source_kind = 0;      // ProgrammeRequest::Source
    std::string source;       // tone Hz, clip path or studio name
    std::uint64_t sequence = 0;
    std::int64_t created_unix_ms = 0;
    std::string created_by;
    int preempt_policy = 0;   // loa::engine::PreemptPolicy (schema v10)
    std::int64_t background_clip_id = 0;  // catalogue clip looped as a ducked bed, 0 = none (schema v11)
    int duck_centi_db = 0;                // the bed's dip in hundredths of a dB (schema v11)
};

/// An alert that has not ended yet (schema v6); restored on start and
/// deleted when it ends (expiry, last repeat, cancel).
struct AlertRow {
    std::uint64_t id = 0;
    std::string name;
    int level = 0;               // loa::engine::Priority
    std::string zones;           // target zone ids, comma-separated
    std::int64_t clip_id = 0;    // catalogue clip, 0 = none
    std::string studio;          // live studio after the clip, empty = none
    bool attention_tone = true;
    int repeats = 1;
    int interval_ms = 0;
    int volume_pct = 100;
    std::int64_t raised_unix_ms = 0;
    std::int64_t expires_unix_ms = 0;  // 0 = ends after its last repeat
    std::uint64_t sequence = 0;        // arbiter start order
    std::string created_by;
};

/// A studio declared through the control API (schema v7); added to the
/// engine on start. Recognised by its SSRC, its sender's host, or both.
struct StudioRow {
    std::string name;
    std::string zone_id;
    std::optional<std::uint32_t> ssrc;
    std::string source_address;  // IPv4 host; empty = any sender
    int min_delay_ms = 0;
    int max_delay_ms = 500;
    int fixed_delay_ms = 0;             // 0 = adaptive
    std::int64_t fallback_clip_id = 0;  // catalogue clip looped while silent; 0 = silence
    std::int64_t created_unix_ms = 0;
    std::string created_by;
};

/// One entry of a schedule's playlist: a catalogue clip with a gain, or a gap.
struct ScheduleItemRow {
    std::int64_t clip_id = 0;  // 0 = a gap of gap_ms
    double gain_db = 0.0;      // clips: on top of the loudness normalisation (stored in milli-dB)
    int gap_ms = 0;
};

/// A schedule created through the control API (schema v8); its windows
/// start programmes at run time. Fields as in loa/engine/schedule.h.
struct ScheduleRow {
    std::uint64_t id = 0;  // assigned by insert_schedule
    std::string name;
    int level = 1;           // loa::engine::Priority
    std::string zones;       // target zone ids, comma-separated
    std::string time_zone;   // IANA name
    std::string recurrence;  // to_string(Recurrence)
    std::string first_date;  // YYYY-MM-DD, local
    std::int64_t start_s = 0;     // local time of day, seconds
    std::int64_t duration_s = 0;  // window length; 0 = the playlist's length
    std::string until_date;       // YYYY-MM-DD, empty = no last date
    int weekdays = 0;             // bit d = weekday d (0 = Sunday)
    int every_days = 1;
    std::string late_policy;  // to_string(LatePolicy)
    std::vector<ScheduleItemRow> items;  // empty for a studio window
    /// A studio window (schema v12): the studio its windows play live
    /// instead of a playlist. Empty = a playlist.
    std::string studio;
    /// Start (Unix ms) of the last window whose play is over (ended, cut by
    /// its window, skipped): never played again after a restart. 0 = none.
    std::int64_t done_start_unix_ms = 0;
    std::int64_t created_unix_ms = 0;
    std::string created_by;
};

/// One play of a programme in one of its target zones (schema v9, the as-run
/// log; asrun.h writes it).
struct AsRunRow {
    std::int64_t id = 0;  // assigned by insert_asrun
    std::uint64_t programme_id = 0;
    std::string kind;  // "programme", "alert" or "schedule"
    std::string name;
    std::string zone_id;
    int level = 0;  // loa::engine::Priority
    std::uint32_t ssrc = 0;
    std::int64_t start_unix_ms = 0;
    std::optional<std::int64_t> end_unix_ms;  // nullopt while on the air
    std::string end_reason;
    std::string preempted_by;  // names, "; "-separated, in order of first preemption
    std::int64_t preempted_ms = 0;
    std::uint32_t targeted = 0;
    std::uint32_t confirmed = 0;
    std::int64_t last_seen_unix_ms = 0;  // last time the engine wrote it while on the air
};

class Store {
public:
    /// Schema version this build writes; older databases are migrated on open.
    static constexpr int kSchemaVersion = 12;
    /// Events kept for WatchEvents resume; older ones are pruned.
    static constexpr std::int64_t kEventRetention = 10000;

    /// Opens or creates `db_path` (its folder must exist) and migrates it.
    /// Throws ControlError: UNAVAILABLE when it cannot be opened or written,
    /// FAILED_PRECONDITION when it was written by a newer schema.
    explicit Store(const std::filesystem::path& db_path);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    int schema_version() const;
    const std::filesystem::path& path() const noexcept { return path_; }

    /// Runs `body` in one IMMEDIATE transaction and commits; rolls back and
    /// rethrows when `body` or the commit throws.
    void write(const std::function<void()>& body);
    /// Goes up with every write() and every operator inserted or deleted
    /// (even when rolled back), so a cache of what the database says (the
    /// control service's verified tokens) knows when to forget it.
    std::uint64_t change_count() const noexcept { return change_count_; }

    // Zones.
    std::optional<ZoneRow> zone(const std::string& id) const;
    std::vector<ZoneRow> zones() const;  // ordered by id
    /// Goes up with every write of a zone or cluster (even one rolled back),
    /// so readers can tell when the topology may have changed.
    std::uint64_t topology_version() const noexcept { return topology_version_; }
    void insert_zone(const ZoneRow& z);
    void update_zone(const ZoneRow& z);  // name and parent
    void delete_zone(const std::string& id);
    std::int64_t child_zone_count(const std::string& id) const;
    std::int64_t cluster_count_in_zone(const std::string& id) const;
    std::int64_t operator_count_in_zone(const std::string& id) const;
    /// `zone_id` first, then its parent, ... up to its province. Empty when unknown.
    std::vector<std::string> zone_path(const std::string& zone_id) const;
    /// True when `zone_id` is `root` or lies below it; an empty root contains everything.
    bool zone_within(const std::string& zone_id, const std::string& root) const;

    // Clusters.
    std::optional<ClusterRow> cluster(const std::string& id) const;
    /// Clusters in the subtree of `root` (empty = all) with id > after_id, ordered by id.
    std::vector<ClusterRow> clusters(const std::string& root, const std::string& after_id, std::size_t limit) const;
    /// The rows clusters() would return, handed to `fn` one at a time as they
    /// are read (no row is copied; ListClusters builds its page from them).
    void for_each_cluster(const std::string& root, const std::string& after_id, std::size_t limit,
                          const std::function<void(const ClusterRowView&)>& fn) const;
    /// Distinct zones of the clusters listening on multicast group `group`
    /// (as stored), ordered by id.
    std::vector<std::string> multicast_group_zones(const std::string& group) const;
    void insert_cluster(const ClusterRow& c);
    void update_cluster(const ClusterRow& c);
    void delete_cluster(const std::string& id);

    // Operators.
    std::optional<OperatorRow> operator_by_name(const std::string& name) const;
    std::optional<OperatorRow> operator_by_token_hash(const std::string& hash) const;
    std::vector<OperatorRow> operators() const;  // ordered by name
    void insert_operator(const OperatorRow& o);
    void delete_operator(const std::string& name);

    // Events.
    /// Appends an event (inside write()) and returns its seq; prunes the oldest.
    std::uint64_t append_event(const EventRow& e);
    std::vector<EventRow> events_after(std::uint64_t seq, std::size_t limit) const;
    std::uint64_t last_event_seq() const;

    // Running programmes (defined in store_programmes.cpp).
    std::vector<ProgrammeRow> programmes() const;  // ordered by id
    void insert_programme(const ProgrammeRow& p);
    void delete_programme(std::uint64_t id);

    // Alerts that have not ended (defined in store_alerts.cpp).
    std::vector<AlertRow> alerts() const;  // ordered by id
    void insert_alert(const AlertRow& a);
    void delete_alert(std::uint64_t id);

    // Studios (defined in store_studios.cpp).
    std::optional<StudioRow> studio(const std::string& name) const;
    std::vector<StudioRow> studios() const;  // ordered by name
    void insert_studio(const StudioRow& s);
    void delete_studio(const std::string& name);
    std::int64_t studio_count_in_zone(const std::string& zone_id) const;

    // Schedules and their playlist items (defined in store_schedules.cpp).
    std::vector<ScheduleRow> schedules() const;  // ordered by id, with their items
    /// Inserts the schedule and its items (inside write()); returns the new id.
    std::uint64_t insert_schedule(const ScheduleRow& s);
    void delete_schedule(std::uint64_t id);  // and its items
    void set_schedule_done(std::uint64_t id, std::int64_t start_unix_ms);

    // As-run log (defined in store_asrun.cpp).
    /// Inserts (inside write()) and returns the new id.
    std::int64_t insert_asrun(const AsRunRow& r);
    /// Rewrites what changes during a play (end, reason, preemption, counts,
    /// last seen) of row r.id.
    void update_asrun(const AsRunRow& r);
    /// Marks every open row as seen at `unix_ms` (inside write()).
    void touch_open_asrun(std::int64_t unix_ms);
    /// Closes every open row at its last seen time (never before its start)
    /// with `reason`; returns how many (inside write()).
    std::int64_t close_open_asrun(const std::string& reason);
    /// Rows whose play overlaps [from_unix_ms, to_unix_ms) (an open row counts
    /// as going on), in the subtree of zone `root` (empty = every row), with
    /// id > after_id, by id, at most `limit`.
    std::vector<AsRunRow> asrun(std::int64_t from_unix_ms, std::int64_t to_unix_ms, const std::string& root,
                                std::int64_t after_id, std::size_t limit) const;
    /// Deletes closed rows that ended before `unix_ms`; returns how many (inside write()).
    std::int64_t prune_asrun(std::int64_t before_unix_ms);

    // Clips (defined in store_clips.cpp).
    std::optional<ClipRow> clip(std::int64_t id) const;
    /// The clip of `zone_id` (empty = global) with this content, if any.
    std::optional<ClipRow> clip_by_sha256(const std::string& zone_id, const std::string& sha256) const;
    std::vector<ClipRow> clips() const;  // ordered by id
    /// Inserts (inside write()) and returns the new id.
    std::int64_t insert_clip(const ClipRow& c);
    void delete_clip(std::int64_t id);
    /// Adds `delta` to a clip's use count (inside write()); never below 0.
    void add_clip_uses(std::int64_t id, std::int64_t delta);
    /// Catalogue rows that share this content file.
    std::int64_t clip_sha256_refs(const std::string& sha256) const;
    std::int64_t clip_count_in_zone(const std::string& zone_id) const;

    // Engine facts kept beside the data (e.g. "seed_imported").
    std::optional<std::string> meta(const std::string& key) const;
    void set_meta(const std::string& key, const std::string& value);  // inside write()
    /// Zones plus clusters: 0 for a database nobody has filled yet.
    std::int64_t object_count() const;

    /// Caps the database at `pages` pages (PRAGMA max_page_count) on this
    /// connection: a write that needs more fails with RESOURCE_EXHAUSTED, as
    /// on a full disk (tests use it to simulate one). A cap below the pages
    /// in use is raised to them by SQLite.
    void set_max_pages(std::int64_t pages);
    /// Refuses every write on this connection as a read-only file system
    /// would (SQLITE_READONLY → UNAVAILABLE); tests use it to simulate a
    /// state directory that became read-only.
    void set_read_only(bool read_only);

    /// PRAGMA integrity_check result ("ok" when sound).
    std::string integrity_check() const;

private:
    void migrate();
    std::uint64_t topology_version_ = 0;
    std::uint64_t change_count_ = 0;

    std::filesystem::path path_;
    std::unique_ptr<sql::Database> db_;
};

}  // namespace loa::engine
