// Store: alerts that have not ended (schema v6), restored when the engine
// starts. Kept apart from store.cpp beside alert_control.cpp.
#include "loa/engine/store.h"
#include "sqlite_db.h"

namespace loa::engine {

std::vector<AlertRow> Store::alerts() const {
    auto& s = db_->cached(
        "SELECT id, name, level, zones, clip_id, studio, attention_tone, repeats, interval_ms, volume_pct, "
        "raised_unix_ms, expires_unix_ms, sequence, created_by FROM alerts ORDER BY id");
    std::vector<AlertRow> out;
    while (s.step()) {
        AlertRow a;
        a.id = static_cast<std::uint64_t>(s.int64(0));
        a.name = s.text(1);
        a.level = static_cast<int>(s.int64(2));
        a.zones = s.text(3);
        a.clip_id = s.int64(4);
        a.studio = s.text(5);
        a.attention_tone = s.int64(6) != 0;
        a.repeats = static_cast<int>(s.int64(7));
        a.interval_ms = static_cast<int>(s.int64(8));
        a.volume_pct = static_cast<int>(s.int64(9));
        a.raised_unix_ms = s.int64(10);
        a.expires_unix_ms = s.int64(11);
        a.sequence = static_cast<std::uint64_t>(s.int64(12));
        a.created_by = s.text(13);
        out.push_back(std::move(a));
    }
    return out;
}

void Store::insert_alert(const AlertRow& a) {
    db_->cached(
           "INSERT INTO alerts(id, name, level, zones, clip_id, studio, attention_tone, repeats, interval_ms, "
           "volume_pct, raised_unix_ms, expires_unix_ms, sequence, created_by) "
           "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)")
        .bind(1, static_cast<std::int64_t>(a.id))
        .bind(2, a.name)
        .bind(3, std::int64_t{a.level})
        .bind(4, a.zones)
        .bind(5, a.clip_id)
        .bind(6, a.studio)
        .bind(7, std::int64_t{a.attention_tone ? 1 : 0})
        .bind(8, std::int64_t{a.repeats})
        .bind(9, std::int64_t{a.interval_ms})
        .bind(10, std::int64_t{a.volume_pct})
        .bind(11, a.raised_unix_ms)
        .bind(12, a.expires_unix_ms)
        .bind(13, static_cast<std::int64_t>(a.sequence))
        .bind(14, a.created_by)
        .run();
}

void Store::delete_alert(std::uint64_t id) {
    db_->cached("DELETE FROM alerts WHERE id = ?1").bind(1, static_cast<std::int64_t>(id)).run();
}

}  // namespace loa::engine
