// Store: schedules and their playlist items (schema v8) or studio (v12),
// read when the engine starts. Kept apart from store.cpp beside schedule_control.cpp.
#include <cmath>
#include <map>

#include "loa/engine/store.h"
#include "sqlite_db.h"

namespace loa::engine {

std::vector<ScheduleRow> Store::schedules() const {
    auto& s = db_->cached(
        "SELECT id, name, level, zones, time_zone, recurrence, first_date, start_s, duration_s, until_date, "
        "weekdays, every_days, late_policy, done_start_unix_ms, created_unix_ms, created_by, "
        "COALESCE(ss.studio, '') FROM schedules "
        "LEFT JOIN schedule_studio ss ON ss.schedule_id = schedules.id ORDER BY id");
    std::vector<ScheduleRow> out;
    std::map<std::uint64_t, std::size_t> index;
    while (s.step()) {
        ScheduleRow r;
        r.id = static_cast<std::uint64_t>(s.int64(0));
        r.name = s.text(1);
        r.level = static_cast<int>(s.int64(2));
        r.zones = s.text(3);
        r.time_zone = s.text(4);
        r.recurrence = s.text(5);
        r.first_date = s.text(6);
        r.start_s = s.int64(7);
        r.duration_s = s.int64(8);
        r.until_date = s.text(9);
        r.weekdays = static_cast<int>(s.int64(10));
        r.every_days = static_cast<int>(s.int64(11));
        r.late_policy = s.text(12);
        r.done_start_unix_ms = s.int64(13);
        r.created_unix_ms = s.int64(14);
        r.created_by = s.text(15);
        r.studio = s.text(16);
        index[r.id] = out.size();
        out.push_back(std::move(r));
    }
    auto& items = db_->cached(
        "SELECT schedule_id, clip_id, gain_mdb, gap_ms FROM schedule_items ORDER BY schedule_id, position");
    while (items.step()) {
        const auto it = index.find(static_cast<std::uint64_t>(items.int64(0)));
        if (it == index.end()) continue;
        ScheduleItemRow item;
        item.clip_id = items.is_null(1) ? 0 : items.int64(1);
        item.gain_db = static_cast<double>(items.int64(2)) / 1000.0;
        item.gap_ms = static_cast<int>(items.int64(3));
        out[it->second].items.push_back(item);
    }
    return out;
}

std::uint64_t Store::insert_schedule(const ScheduleRow& r) {
    db_->cached(
           "INSERT INTO schedules(name, level, zones, time_zone, recurrence, first_date, start_s, duration_s, "
           "until_date, weekdays, every_days, late_policy, done_start_unix_ms, created_unix_ms, created_by) "
           "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)")
        .bind(1, r.name)
        .bind(2, std::int64_t{r.level})
        .bind(3, r.zones)
        .bind(4, r.time_zone)
        .bind(5, r.recurrence)
        .bind(6, r.first_date)
        .bind(7, r.start_s)
        .bind(8, r.duration_s)
        .bind(9, r.until_date)
        .bind(10, std::int64_t{r.weekdays})
        .bind(11, std::int64_t{r.every_days})
        .bind(12, r.late_policy)
        .bind(13, r.done_start_unix_ms)
        .bind(14, r.created_unix_ms)
        .bind(15, r.created_by)
        .run();
    const auto id = db_->last_insert_rowid();
    if (!r.studio.empty()) {
        db_->cached("INSERT INTO schedule_studio(schedule_id, studio) VALUES(?1, ?2)")
            .bind(1, id)
            .bind(2, r.studio)
            .run();
    }
    std::int64_t position = 0;
    for (const auto& item : r.items) {
        auto& s = db_->cached(
            "INSERT INTO schedule_items(schedule_id, position, clip_id, gain_mdb, gap_ms) VALUES(?1, ?2, ?3, ?4, ?5)");
        s.bind(1, id).bind(2, position++);
        if (item.clip_id != 0) {
            s.bind(3, item.clip_id);
        } else {
            s.bind_null(3);
        }
        const double g = std::isfinite(item.gain_db) ? item.gain_db : 0.0;
        s.bind(4, static_cast<std::int64_t>(std::llround(g * 1000.0))).bind(5, std::int64_t{item.gap_ms}).run();
    }
    return static_cast<std::uint64_t>(id);
}

void Store::delete_schedule(std::uint64_t id) {
    // Items go too (ON DELETE CASCADE; deleted explicitly as well, so the
    // result does not depend on the foreign-key pragma).
    db_->cached("DELETE FROM schedule_items WHERE schedule_id = ?1").bind(1, static_cast<std::int64_t>(id)).run();
    db_->cached("DELETE FROM schedule_studio WHERE schedule_id = ?1").bind(1, static_cast<std::int64_t>(id)).run();
    db_->cached("DELETE FROM schedules WHERE id = ?1").bind(1, static_cast<std::int64_t>(id)).run();
}

void Store::set_schedule_done(std::uint64_t id, std::int64_t start_unix_ms) {
    db_->cached("UPDATE schedules SET done_start_unix_ms = ?2 WHERE id = ?1")
        .bind(1, static_cast<std::int64_t>(id))
        .bind(2, start_unix_ms)
        .run();
}

}  // namespace loa::engine
