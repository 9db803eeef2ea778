// Store: running programmes (schema v5; their preemption policy v10, background bed v11), restored when the engine starts.
// Kept apart from store.cpp beside programme_control.cpp.
#include "loa/engine/store.h"
#include "sqlite_db.h"

namespace loa::engine {

std::vector<ProgrammeRow> Store::programmes() const {
    auto& s = db_->cached(
        "SELECT id, name, level, zones, source_kind, source, sequence, created_unix_ms, created_by, "
        "COALESCE(pp.policy, 0), COALESCE(pb.clip_id, 0), COALESCE(pb.duck_centi_db, 0) FROM programmes "
        "LEFT JOIN programme_preempt pp ON pp.programme_id = programmes.id "
        "LEFT JOIN programme_background pb ON pb.programme_id = programmes.id ORDER BY id");
    std::vector<ProgrammeRow> out;
    while (s.step()) {
        ProgrammeRow p;
        p.id = static_cast<std::uint64_t>(s.int64(0));
        p.name = s.text(1);
        p.level = static_cast<int>(s.int64(2));
        p.zones = s.text(3);
        p.source_kind = static_cast<int>(s.int64(4));
        p.source = s.text(5);
        p.sequence = static_cast<std::uint64_t>(s.int64(6));
        p.created_unix_ms = s.int64(7);
        p.created_by = s.text(8);
        p.preempt_policy = static_cast<int>(s.int64(9));
        p.background_clip_id = s.int64(10);
        p.duck_centi_db = static_cast<int>(s.int64(11));
        out.push_back(std::move(p));
    }
    return out;
}

void Store::insert_programme(const ProgrammeRow& p) {
    db_->cached(
           "INSERT INTO programmes(id, name, level, zones, source_kind, source, sequence, created_unix_ms, created_by) "
           "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")
        .bind(1, static_cast<std::int64_t>(p.id))
        .bind(2, p.name)
        .bind(3, std::int64_t{p.level})
        .bind(4, p.zones)
        .bind(5, std::int64_t{p.source_kind})
        .bind(6, p.source)
        .bind(7, static_cast<std::int64_t>(p.sequence))
        .bind(8, p.created_unix_ms)
        .bind(9, p.created_by)
        .run();
    if (p.preempt_policy != 0) {
        db_->cached("INSERT OR REPLACE INTO programme_preempt(programme_id, policy) VALUES(?1, ?2)")
            .bind(1, static_cast<std::int64_t>(p.id))
            .bind(2, std::int64_t{p.preempt_policy})
            .run();
    }
    if (p.background_clip_id != 0) {
        db_->cached(
               "INSERT OR REPLACE INTO programme_background(programme_id, clip_id, duck_centi_db) VALUES(?1, ?2, ?3)")
            .bind(1, static_cast<std::int64_t>(p.id))
            .bind(2, p.background_clip_id)
            .bind(3, std::int64_t{p.duck_centi_db})
            .run();
    }
}

void Store::delete_programme(std::uint64_t id) {
    db_->cached("DELETE FROM programme_preempt WHERE programme_id = ?1").bind(1, static_cast<std::int64_t>(id)).run();
    db_->cached("DELETE FROM programme_background WHERE programme_id = ?1")
        .bind(1, static_cast<std::int64_t>(id))
        .run();
    db_->cached("DELETE FROM programmes WHERE id = ?1").bind(1, static_cast<std::int64_t>(id)).run();
}

}  // namespace loa::engine
