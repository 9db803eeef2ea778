#include "loa/engine/store.h"

#include <algorithm>

#include "loa/engine/control_status.h"
#include "sqlite_db.h"

namespace loa::engine {

namespace {

// Migration N brings the schema from version N-1 to N. Never edit a released
// migration; append a new one and bump Store::kSchemaVersion.
const char* const kMigrations[] = {
    // 1: zones, clusters, operators.
    R"sql(
CREATE TABLE zones(
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  kind INTEGER NOT NULL,
  parent_id TEXT REFERENCES zones(id));
CREATE INDEX zones_parent ON zones(parent_id);
CREATE TABLE clusters(
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  zone_id TEXT NOT NULL REFERENCES zones(id),
  address TEXT,
  enabled INTEGER NOT NULL DEFAULT 1);
CREATE INDEX clusters_zone ON clusters(zone_id);
CREATE TABLE operators(
  name TEXT PRIMARY KEY,
  role INTEGER NOT NULL,
  zone_id TEXT REFERENCES zones(id),
  max_level INTEGER NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  created_unix_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL DEFAULT '');
)sql",
    // 2: multicast groups for clusters, event log for WatchEvents.
    R"sql(
ALTER TABLE clusters ADD COLUMN multicast_group TEXT;
CREATE TABLE events(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  unix_ms INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  subject TEXT NOT NULL,
  zone_id TEXT,
  message TEXT NOT NULL);
)sql",
    // 3: engine facts (whether the config's seed was imported).
    R"sql(
CREATE TABLE meta(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL);
)sql",
    // 4: clip catalogue (files under <state_dir>/clips/<sha256>.<ext>).
    R"sql(
CREATE TABLE clips(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  zone_id TEXT REFERENCES zones(id),
  sha256 TEXT NOT NULL,
  ext TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  sample_rate INTEGER NOT NULL,
  channels INTEGER NOT NULL,
  format TEXT NOT NULL,
  loudness_mlufs INTEGER NOT NULL,
  created_unix_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL DEFAULT '',
  uses INTEGER NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX clips_zone_sha256 ON clips(IFNULL(zone_id, ''), sha256);
CREATE INDEX clips_sha256 ON clips(sha256);
)sql",
    // 5: run-time programmes that should be running (restored on start).
    R"sql(
CREATE TABLE programmes(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  level INTEGER NOT NULL,
  zones TEXT NOT NULL,
  source_kind INTEGER NOT NULL,
  source TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  created_unix_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL DEFAULT '');
)sql",
    // 6: emergency alerts that have not ended (restored on start).
    R"sql(
CREATE TABLE alerts(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  level INTEGER NOT NULL,
  zones TEXT NOT NULL,
  clip_id INTEGER NOT NULL DEFAULT 0,
  studio TEXT NOT NULL DEFAULT '',
  attention_tone INTEGER NOT NULL,
  repeats INTEGER NOT NULL,
  interval_ms INTEGER NOT NULL,
  volume_pct INTEGER NOT NULL,
  raised_unix_ms INTEGER NOT NULL,
  expires_unix_ms INTEGER NOT NULL DEFAULT 0,
  sequence INTEGER NOT NULL,
  created_by TEXT NOT NULL DEFAULT '');
)sql",
    // 7: studios declared through the control API (added to the engine on start).
    R"sql(
CREATE TABLE studios(
  name TEXT PRIMARY KEY,
  zone_id TEXT NOT NULL REFERENCES zones(id),
  ssrc INTEGER,
  source_address TEXT,
  min_delay_ms INTEGER NOT NULL,
  max_delay_ms INTEGER NOT NULL,
  fixed_delay_ms INTEGER NOT NULL DEFAULT 0,
  fallback_clip_id INTEGER REFERENCES clips(id),
  created_unix_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL DEFAULT '');
CREATE INDEX studios_zone ON studios(zone_id);
)sql",
    // 8: schedules (when a playlist of clips plays to zones) and their items.
    // IF NOT EXISTS: a database taken back to an older version by hand (as
    // tests do) may still hold them.
    R"sql(
CREATE TABLE IF NOT EXISTS schedules(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  level INTEGER NOT NULL,
  zones TEXT NOT NULL,
  time_zone TEXT NOT NULL,
  recurrence TEXT NOT NULL,
  first_date TEXT NOT NULL,
  start_s INTEGER NOT NULL,
  duration_s INTEGER NOT NULL DEFAULT 0,
  until_date TEXT NOT NULL DEFAULT '',
  weekdays INTEGER NOT NULL DEFAULT 0,
  every_days INTEGER NOT NULL DEFAULT 1,
  late_policy TEXT NOT NULL,
  done_start_unix_ms INTEGER NOT NULL DEFAULT 0,
  created_unix_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS schedule_items(
  schedule_id INTEGER NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  clip_id INTEGER REFERENCES clips(id),
  gain_mdb INTEGER NOT NULL DEFAULT 0,
  gap_ms INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(schedule_id, position));
)sql",
    // 9: the as-run log, one row per play of a programme per target zone.
    // IF NOT EXISTS, as in 8.
    R"sql(
CREATE TABLE IF NOT EXISTS asrun(
  id INTEGER PRIMARY KEY,
  programme_id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  zone_id TEXT NOT NULL,
  level INTEGER NOT NULL,
  ssrc INTEGER NOT NULL,
  start_unix_ms INTEGER NOT NULL,
  end_unix_ms INTEGER,
  end_reason TEXT NOT NULL DEFAULT '',
  preempted_by TEXT NOT NULL DEFAULT '',
  preempted_ms INTEGER NOT NULL DEFAULT 0,
  targeted INTEGER NOT NULL DEFAULT 0,
  confirmed INTEGER NOT NULL DEFAULT 0,
  last_seen_unix_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS asrun_start ON asrun(start_unix_ms);
CREATE INDEX IF NOT EXISTS asrun_end ON asrun(end_unix_ms);
)sql",
    // 10: what a run-time clip programme does when fully preempted
    // (loa::engine::PreemptPolicy: 0 pause and resume, 1 restart, 2 drop);
    // a programme without a row here has 0. A table of its own, with IF NOT
    // EXISTS, as in 8.
    R"sql(
CREATE TABLE IF NOT EXISTS programme_preempt(
  programme_id INTEGER PRIMARY KEY REFERENCES programmes(id) ON DELETE CASCADE,
  policy INTEGER NOT NULL DEFAULT 0);
)sql",
    // 11: a run-time programme's background bed: a catalogue clip looped
    // under its source, dipping by duck_centi_db / 100 dB under voice. A
    // programme without a row here has none.
    R"sql(
CREATE TABLE IF NOT EXISTS programme_background(
  programme_id INTEGER PRIMARY KEY REFERENCES programmes(id) ON DELETE CASCADE,
  clip_id INTEGER NOT NULL,
  duck_centi_db INTEGER NOT NULL DEFAULT 0);
)sql",
    // 12: a schedule whose windows play a studio live instead of a playlist
    // (then it has no items). A schedule without a row here plays its
    // playlist. A table of its own, with IF NOT EXISTS, as in 8.
    R"sql(
CREATE TABLE IF NOT EXISTS schedule_studio(
  schedule_id INTEGER PRIMARY KEY REFERENCES schedules(id) ON DELETE CASCADE,
  studio TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS schedule_studio_name ON schedule_studio(studio);
)sql",
};
static_assert(std::size(kMigrations) == Store::kSchemaVersion);

ZoneRow read_zone(const sql::Statement& s) {
    return ZoneRow{s.text(0), s.text(1), static_cast<ZoneKind>(s.int64(2)), s.text(3)};
}

ClusterRow read_cluster(const sql::Statement& s) {
    return ClusterRow{s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.int64(5) != 0};
}

OperatorRow read_operator(const sql::Statement& s) {
    OperatorRow o;
    o.name = s.text(0);
    o.role = static_cast<Role>(s.int64(1));
    o.zone_id = s.text(2);
    o.max_level = static_cast<Priority>(s.int64(3));
    o.token_hash = s.text(4);
    o.created_unix_ms = s.int64(5);
    o.created_by = s.text(6);
    return o;
}

constexpr const char* kZoneCols = "SELECT id, name, kind, parent_id FROM zones";
constexpr const char* kClusterCols = "SELECT id, name, zone_id, address, multicast_group, enabled FROM clusters";
constexpr const char* kOperatorCols =
    "SELECT name, role, zone_id, max_level, token_hash, created_unix_ms, created_by FROM operators";

}  // namespace

Store::Store(const std::filesystem::path& db_path) : path_(db_path), db_(std::make_unique<sql::Database>(db_path)) {
    db_->exec("PRAGMA journal_mode=WAL");
    db_->exec("PRAGMA synchronous=FULL");
    db_->exec("PRAGMA foreign_keys=ON");
    migrate();
}

Store::~Store() = default;

void Store::migrate() {
    db_->exec("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)");
    int version = schema_version();
    if (version > kSchemaVersion) {
        throw ControlError(RpcCode::FailedPrecondition,
                           "state database " + path_.string() + " has schema version " + std::to_string(version) +
                               ", newer than this engine's " + std::to_string(kSchemaVersion));
    }
    while (version < kSchemaVersion) {
        sql::Transaction tx(*db_);
        db_->exec(kMigrations[version]);
        db_->exec("DELETE FROM schema_version");
        db_->cached("INSERT INTO schema_version(version) VALUES(?1)").bind(1, std::int64_t{version + 1}).run();
        tx.commit();
        ++version;
    }
}

int Store::schema_version() const {
    auto& s = db_->cached("SELECT version FROM schema_version");
    return s.step() ? static_cast<int>(s.int64(0)) : 0;
}

void Store::write(const std::function<void()>& body) {
    ++change_count_;
    sql::Transaction tx(*db_);
    body();
    tx.commit();
}

std::optional<ZoneRow> Store::zone(const std::string& id) const {
    auto& s = db_->cached(std::string(kZoneCols) + " WHERE id = ?1");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_zone(s);
}

std::vector<ZoneRow> Store::zones() const {
    auto& s = db_->cached(std::string(kZoneCols) + " ORDER BY id");
    std::vector<ZoneRow> out;
    while (s.step()) out.push_back(read_zone(s));
    return out;
}

void Store::insert_zone(const ZoneRow& z) {
    ++topology_version_;
    db_->cached("INSERT INTO zones(id, name, kind, parent_id) VALUES(?1, ?2, ?3, ?4)")
        .bind(1, z.id)
        .bind(2, z.name)
        .bind(3, std::int64_t{static_cast<int>(z.kind)})
        .bind_text_or_null(4, z.parent_id)
        .run();
}

void Store::update_zone(const ZoneRow& z) {
    ++topology_version_;
    db_->cached("UPDATE zones SET name = ?2, parent_id = ?3 WHERE id = ?1")
        .bind(1, z.id)
        .bind(2, z.name)
        .bind_text_or_null(3, z.parent_id)
        .run();
}

void Store::delete_zone(const std::string& id) {
    ++topology_version_;
    db_->cached("DELETE FROM zones WHERE id = ?1").bind(1, id).run();
}

std::int64_t Store::child_zone_count(const std::string& id) const {
    auto& s = db_->cached("SELECT COUNT(*) FROM zones WHERE parent_id = ?1");
    s.bind(1, id);
    return s.step() ? s.int64(0) : 0;
}

std::int64_t Store::cluster_count_in_zone(const std::string& id) const {
    auto& s = db_->cached("SELECT COUNT(*) FROM clusters WHERE zone_id = ?1");
    s.bind(1, id);
    return s.step() ? s.int64(0) : 0;
}

std::vector<std::string> Store::multicast_group_zones(const std::string& group) const {
    auto& s = db_->cached("SELECT DISTINCT zone_id FROM clusters WHERE multicast_group = ?1 ORDER BY zone_id");
    s.bind(1, group);
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
}

std::int64_t Store::operator_count_in_zone(const std::string& id) const {
    auto& s = db_->cached("SELECT COUNT(*) FROM operators WHERE zone_id = ?1");
    s.bind(1, id);
    return s.step() ? s.int64(0) : 0;
}

std::vector<std::string> Store::zone_path(const std::string& zone_id) const {
    std::vector<std::string> out;
    std::string cur = zone_id;
    // Depth is bounded by the four zone kinds; the bound also stops a cycle.
    while (!cur.empty() && out.size() < 8) {
        auto& s = db_->cached("SELECT parent_id FROM zones WHERE id = ?1");
        s.bind(1, cur);
        if (!s.step()) break;
        out.push_back(cur);
        cur = s.text(0);
    }
    return out;
}

bool Store::zone_within(const std::string& zone_id, const std::string& root) const {
    if (root.empty()) return true;
    const auto p = zone_path(zone_id);
    return std::find(p.begin(), p.end(), root) != p.end();
}

std::optional<ClusterRow> Store::cluster(const std::string& id) const {
    auto& s = db_->cached(std::string(kClusterCols) + " WHERE id = ?1");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_cluster(s);
}

std::vector<ClusterRow> Store::clusters(const std::string& root, const std::string& after_id,
                                        std::size_t limit) const {
    std::vector<ClusterRow> out;
    out.reserve(std::min<std::size_t>(limit, 1024));
    for_each_cluster(root, after_id, limit, [&](const ClusterRowView& c) {
        out.push_back(ClusterRow{std::string(c.id), std::string(c.name), std::string(c.zone_id), std::string(c.address),
                                 std::string(c.multicast_group), c.enabled});
    });
    return out;
}

void Store::for_each_cluster(const std::string& root, const std::string& after_id, std::size_t limit,
                             const std::function<void(const ClusterRowView&)>& fn) const {
    const auto lim = static_cast<std::int64_t>(limit);
    sql::Statement* s = nullptr;
    if (root.empty()) {
        static const std::string kAll = std::string(kClusterCols) + " WHERE id > ?1 ORDER BY id LIMIT ?2";
        s = &db_->cached(kAll);
        s->bind(1, after_id).bind(2, lim);
    } else {
        static const std::string kSubtree =
            "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL SELECT z.id FROM zones z JOIN sub ON z.parent_id = sub.id) " +
            std::string(kClusterCols) + " WHERE zone_id IN sub AND id > ?2 ORDER BY id LIMIT ?3";
        s = &db_->cached(kSubtree);
        s->bind(1, root).bind(2, after_id).bind(3, lim);
    }
    while (s->step()) {
        fn(ClusterRowView{s->text_view(0), s->text_view(1), s->text_view(2), s->text_view(3), s->text_view(4),
                          s->int64(5) != 0});
    }
}

void Store::insert_cluster(const ClusterRow& c) {
    ++topology_version_;
    db_->cached(
           "INSERT INTO clusters(id, name, zone_id, address, multicast_group, enabled) "
           "VALUES(?1, ?2, ?3, ?4, ?5, ?6)")
        .bind(1, c.id)
        .bind(2, c.name)
        .bind(3, c.zone_id)
        .bind_text_or_null(4, c.address)
        .bind_text_or_null(5, c.multicast_group)
        .bind(6, std::int64_t{c.enabled ? 1 : 0})
        .run();
}

void Store::update_cluster(const ClusterRow& c) {
    ++topology_version_;
    db_->cached(
           "UPDATE clusters SET name = ?2, zone_id = ?3, address = ?4, multicast_group = ?5, enabled = ?6 "
           "WHERE id = ?1")
        .bind(1, c.id)
        .bind(2, c.name)
        .bind(3, c.zone_id)
        .bind_text_or_null(4, c.address)
        .bind_text_or_null(5, c.multicast_group)
        .bind(6, std::int64_t{c.enabled ? 1 : 0})
        .run();
}

void Store::delete_cluster(const std::string& id) {
    ++topology_version_;
    db_->cached("DELETE FROM clusters WHERE id = ?1").bind(1, id).run();
}

std::optional<OperatorRow> Store::operator_by_name(const std::string& name) const {
    auto& s = db_->cached(std::string(kOperatorCols) + " WHERE name = ?1");
    s.bind(1, name);
    if (!s.step()) return std::nullopt;
    return read_operator(s);
}

std::optional<OperatorRow> Store::operator_by_token_hash(const std::string& hash) const {
    auto& s = db_->cached(std::string(kOperatorCols) + " WHERE token_hash = ?1");
    s.bind(1, hash);
    if (!s.step()) return std::nullopt;
    return read_operator(s);
}

std::vector<OperatorRow> Store::operators() const {
    auto& s = db_->cached(std::string(kOperatorCols) + " ORDER BY name");
    std::vector<OperatorRow> out;
    while (s.step()) out.push_back(read_operator(s));
    return out;
}

void Store::insert_operator(const OperatorRow& o) {
    ++change_count_;
    db_->cached(
           "INSERT INTO operators(name, role, zone_id, max_level, token_hash, created_unix_ms, created_by) "
           "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)")
        .bind(1, o.name)
        .bind(2, std::int64_t{static_cast<int>(o.role)})
        .bind_text_or_null(3, o.zone_id)
        .bind(4, std::int64_t{static_cast<int>(o.max_level)})
        .bind(5, o.token_hash)
        .bind(6, o.created_unix_ms)
        .bind(7, o.created_by)
        .run();
}

void Store::delete_operator(const std::string& name) {
    ++change_count_;
    db_->cached("DELETE FROM operators WHERE name = ?1").bind(1, name).run();
}

std::uint64_t Store::append_event(const EventRow& e) {
    db_->cached("INSERT INTO events(unix_ms, kind, subject, zone_id, message) VALUES(?1, ?2, ?3, ?4, ?5)")
        .bind(1, e.unix_ms)
        .bind(2, std::int64_t{e.kind})
        .bind(3, e.subject)
        .bind_text_or_null(4, e.zone_id)
        .bind(5, e.message)
        .run();
    const auto seq = db_->last_insert_rowid();
    db_->cached("DELETE FROM events WHERE seq <= ?1").bind(1, seq - kEventRetention).run();
    return static_cast<std::uint64_t>(seq);
}

std::vector<EventRow> Store::events_after(std::uint64_t seq, std::size_t limit) const {
    auto& s = db_->cached(
        "SELECT seq, unix_ms, kind, subject, zone_id, message FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2");
    s.bind(1, static_cast<std::int64_t>(seq)).bind(2, static_cast<std::int64_t>(limit));
    std::vector<EventRow> out;
    while (s.step()) {
        out.push_back(EventRow{static_cast<std::uint64_t>(s.int64(0)), s.int64(1), static_cast<int>(s.int64(2)),
                               s.text(3), s.text(4), s.text(5)});
    }
    return out;
}

std::uint64_t Store::last_event_seq() const {
    // sqlite_sequence keeps the AUTOINCREMENT high-water mark even after pruning.
    auto& s = db_->cached("SELECT seq FROM sqlite_sequence WHERE name = 'events'");
    return s.step() ? static_cast<std::uint64_t>(s.int64(0)) : 0;
}

std::optional<std::string> Store::meta(const std::string& key) const {
    auto& s = db_->cached("SELECT value FROM meta WHERE key = ?1");
    s.bind(1, key);
    if (!s.step()) return std::nullopt;
    return s.text(0);
}

void Store::set_meta(const std::string& key, const std::string& value) {
    db_->cached("INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        .bind(1, key)
        .bind(2, value)
        .run();
}

std::int64_t Store::object_count() const {
    auto& s = db_->cached("SELECT (SELECT COUNT(*) FROM zones) + (SELECT COUNT(*) FROM clusters)");
    return s.step() ? s.int64(0) : 0;
}

void Store::set_max_pages(std::int64_t pages) {
    auto& s = db_->cached("PRAGMA max_page_count = " + std::to_string(pages));
    s.run();
}

void Store::set_read_only(bool read_only) {
    auto& s = db_->cached(read_only ? "PRAGMA query_only = ON" : "PRAGMA query_only = OFF");
    s.run();
}

std::string Store::integrity_check() const {
    auto& s = db_->cached("PRAGMA integrity_check");
    std::string out;
    while (s.step()) {
        if (!out.empty()) out += "; ";
        out += s.text(0);
    }
    return out;
}

}  // namespace loa::engine
