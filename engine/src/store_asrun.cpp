// Store: the as-run log (schema v9), written by AsRunRecorder (asrun.cpp)
// and read by ListAsRun (control_asrun.cpp).
#include "loa/engine/store.h"
#include "sqlite_db.h"

namespace loa::engine {

namespace {

constexpr const char* kAsRunCols =
    "SELECT id, programme_id, kind, name, zone_id, level, ssrc, start_unix_ms, end_unix_ms, end_reason, "
    "preempted_by, preempted_ms, targeted, confirmed, last_seen_unix_ms FROM asrun";

AsRunRow read_asrun(const sql::Statement& s) {
    AsRunRow r;
    r.id = s.int64(0);
    r.programme_id = static_cast<std::uint64_t>(s.int64(1));
    r.kind = s.text(2);
    r.name = s.text(3);
    r.zone_id = s.text(4);
    r.level = static_cast<int>(s.int64(5));
    r.ssrc = static_cast<std::uint32_t>(s.int64(6));
    r.start_unix_ms = s.int64(7);
    if (!s.is_null(8)) r.end_unix_ms = s.int64(8);
    r.end_reason = s.text(9);
    r.preempted_by = s.text(10);
    r.preempted_ms = s.int64(11);
    r.targeted = static_cast<std::uint32_t>(s.int64(12));
    r.confirmed = static_cast<std::uint32_t>(s.int64(13));
    r.last_seen_unix_ms = s.int64(14);
    return r;
}

void bind_end(sql::Statement& s, int index, const std::optional<std::int64_t>& end) {
    if (end) {
        s.bind(index, *end);
    } else {
        s.bind_null(index);
    }
}

}  // namespace

std::int64_t Store::insert_asrun(const AsRunRow& r) {
    auto& s = db_->cached(
        "INSERT INTO asrun(programme_id, kind, name, zone_id, level, ssrc, start_unix_ms, end_unix_ms, end_reason, "
        "preempted_by, preempted_ms, targeted, confirmed, last_seen_unix_ms) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)");
    s.bind(1, static_cast<std::int64_t>(r.programme_id))
        .bind(2, r.kind)
        .bind(3, r.name)
        .bind(4, r.zone_id)
        .bind(5, std::int64_t{r.level})
        .bind(6, std::int64_t{r.ssrc})
        .bind(7, r.start_unix_ms);
    bind_end(s, 8, r.end_unix_ms);
    s.bind(9, r.end_reason)
        .bind(10, r.preempted_by)
        .bind(11, r.preempted_ms)
        .bind(12, std::int64_t{r.targeted})
        .bind(13, std::int64_t{r.confirmed})
        .bind(14, r.last_seen_unix_ms)
        .run();
    return db_->last_insert_rowid();
}

void Store::update_asrun(const AsRunRow& r) {
    auto& s = db_->cached(
        "UPDATE asrun SET end_unix_ms = ?2, end_reason = ?3, preempted_by = ?4, preempted_ms = ?5, targeted = ?6, "
        "confirmed = ?7, last_seen_unix_ms = ?8 WHERE id = ?1");
    s.bind(1, r.id);
    bind_end(s, 2, r.end_unix_ms);
    s.bind(3, r.end_reason)
        .bind(4, r.preempted_by)
        .bind(5, r.preempted_ms)
        .bind(6, std::int64_t{r.targeted})
        .bind(7, std::int64_t{r.confirmed})
        .bind(8, r.last_seen_unix_ms)
        .run();
}

void Store::touch_open_asrun(std::int64_t unix_ms) {
    db_->cached("UPDATE asrun SET last_seen_unix_ms = ?1 WHERE end_unix_ms IS NULL").bind(1, unix_ms).run();
}

std::int64_t Store::close_open_asrun(const std::string& reason) {
    db_->cached(
           "UPDATE asrun SET end_unix_ms = MAX(start_unix_ms, last_seen_unix_ms), end_reason = ?1 "
           "WHERE end_unix_ms IS NULL")
        .bind(1, reason)
        .run();
    return db_->changes();
}

std::vector<AsRunRow> Store::asrun(std::int64_t from_unix_ms, std::int64_t to_unix_ms, const std::string& root,
                                   std::int64_t after_id, std::size_t limit) const {
    // Overlap with [from, to): starts before `to` and has not ended by `from`
    // (a play of no length at or after `from` counts). ?1 = root (an
    // unused slot without one), ?2 = after, ?3 = from, ?4 = to, ?5 = limit.
    const std::string where =
        " id > ?2 AND start_unix_ms < ?4 AND (end_unix_ms IS NULL OR end_unix_ms > ?3 OR start_unix_ms >= ?3)"
        " ORDER BY id LIMIT ?5";
    const std::string sql =
        root.empty() ? std::string(kAsRunCols) + " WHERE" + where
                     : "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL SELECT z.id FROM zones z JOIN sub ON "
                       "z.parent_id = sub.id) " +
                           std::string(kAsRunCols) + " WHERE zone_id IN sub AND" + where;
    auto& s = db_->cached(sql);
    s.bind(1, root)
        .bind(2, after_id)
        .bind(3, from_unix_ms)
        .bind(4, to_unix_ms)
        .bind(5, static_cast<std::int64_t>(limit));
    std::vector<AsRunRow> out;
    while (s.step()) out.push_back(read_asrun(s));
    return out;
}

std::int64_t Store::prune_asrun(std::int64_t before_unix_ms) {
    db_->cached("DELETE FROM asrun WHERE end_unix_ms IS NOT NULL AND end_unix_ms < ?1").bind(1, before_unix_ms).run();
    return db_->changes();
}

}  // namespace loa::engine
