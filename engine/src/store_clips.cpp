// Store: the clip catalogue table (schema v4). Kept apart from store.cpp so
// the clip code lives beside clip_catalog.cpp.
#include <cmath>

#include "loa/engine/control_status.h"
#include "loa/engine/store.h"
#include "sqlite_db.h"

namespace loa::engine {

namespace {

constexpr const char* kClipCols =
    "SELECT id, name, zone_id, sha256, ext, size_bytes, duration_ms, sample_rate, channels, format, loudness_mlufs, "
    "created_unix_ms, created_by, uses FROM clips";

ClipRow read_clip(const sql::Statement& s) {
    ClipRow c;
    c.id = s.int64(0);
    c.name = s.text(1);
    c.zone_id = s.text(2);
    c.sha256 = s.text(3);
    c.ext = s.text(4);
    c.size_bytes = s.int64(5);
    c.duration_ms = s.int64(6);
    c.sample_rate = static_cast<int>(s.int64(7));
    c.channels = static_cast<int>(s.int64(8));
    c.format = s.text(9);
    c.loudness_lufs = static_cast<double>(s.int64(10)) / 1000.0;
    c.created_unix_ms = s.int64(11);
    c.created_by = s.text(12);
    c.uses = s.int64(13);
    return c;
}

}  // namespace

std::optional<ClipRow> Store::clip(std::int64_t id) const {
    auto& s = db_->cached(std::string(kClipCols) + " WHERE id = ?1");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_clip(s);
}

std::optional<ClipRow> Store::clip_by_sha256(const std::string& zone_id, const std::string& sha256) const {
    auto& s = db_->cached(std::string(kClipCols) + " WHERE IFNULL(zone_id, '') = ?1 AND sha256 = ?2");
    s.bind(1, zone_id).bind(2, sha256);
    if (!s.step()) return std::nullopt;
    return read_clip(s);
}

std::vector<ClipRow> Store::clips() const {
    auto& s = db_->cached(std::string(kClipCols) + " ORDER BY id");
    std::vector<ClipRow> out;
    while (s.step()) out.push_back(read_clip(s));
    return out;
}

std::int64_t Store::insert_clip(const ClipRow& c) {
    const double l = std::isfinite(c.loudness_lufs) ? c.loudness_lufs : -70.0;
    db_->cached(
           "INSERT INTO clips(name, zone_id, sha256, ext, size_bytes, duration_ms, sample_rate, channels, format, "
           "loudness_mlufs, created_unix_ms, created_by, uses) "
           "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)")
        .bind(1, c.name)
        .bind_text_or_null(2, c.zone_id)
        .bind(3, c.sha256)
        .bind(4, c.ext)
        .bind(5, c.size_bytes)
        .bind(6, c.duration_ms)
        .bind(7, std::int64_t{c.sample_rate})
        .bind(8, std::int64_t{c.channels})
        .bind(9, c.format)
        .bind(10, static_cast<std::int64_t>(std::llround(l * 1000.0)))
        .bind(11, c.created_unix_ms)
        .bind(12, c.created_by)
        .bind(13, c.uses)
        .run();
    return db_->last_insert_rowid();
}

void Store::delete_clip(std::int64_t id) { db_->cached("DELETE FROM clips WHERE id = ?1").bind(1, id).run(); }

void Store::add_clip_uses(std::int64_t id, std::int64_t delta) {
    db_->cached("UPDATE clips SET uses = MAX(0, uses + ?2) WHERE id = ?1").bind(1, id).bind(2, delta).run();
}

std::int64_t Store::clip_sha256_refs(const std::string& sha256) const {
    auto& s = db_->cached("SELECT COUNT(*) FROM clips WHERE sha256 = ?1");
    s.bind(1, sha256);
    return s.step() ? s.int64(0) : 0;
}

std::int64_t Store::clip_count_in_zone(const std::string& zone_id) const {
    auto& s = db_->cached("SELECT COUNT(*) FROM clips WHERE zone_id = ?1");
    s.bind(1, zone_id);
    return s.step() ? s.int64(0) : 0;
}

}  // namespace loa::engine
