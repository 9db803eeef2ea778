// Store: studios declared through the control API (schema v7), added to the
// engine when it starts. Kept apart from store.cpp beside studio_control.cpp.
#include "loa/engine/store.h"
#include "sqlite_db.h"

namespace loa::engine {

namespace {

constexpr const char* kStudioCols =
    "SELECT name, zone_id, ssrc, source_address, min_delay_ms, max_delay_ms, fixed_delay_ms, fallback_clip_id, "
    "created_unix_ms, created_by FROM studios";

StudioRow read_studio(const sql::Statement& s) {
    StudioRow r;
    r.name = s.text(0);
    r.zone_id = s.text(1);
    if (!s.is_null(2)) r.ssrc = static_cast<std::uint32_t>(s.int64(2));
    r.source_address = s.text(3);
    r.min_delay_ms = static_cast<int>(s.int64(4));
    r.max_delay_ms = static_cast<int>(s.int64(5));
    r.fixed_delay_ms = static_cast<int>(s.int64(6));
    r.fallback_clip_id = s.is_null(7) ? 0 : s.int64(7);
    r.created_unix_ms = s.int64(8);
    r.created_by = s.text(9);
    return r;
}

}  // namespace

std::optional<StudioRow> Store::studio(const std::string& name) const {
    auto& s = db_->cached(std::string(kStudioCols) + " WHERE name = ?1");
    s.bind(1, name);
    if (!s.step()) return std::nullopt;
    return read_studio(s);
}

std::vector<StudioRow> Store::studios() const {
    auto& s = db_->cached(std::string(kStudioCols) + " ORDER BY name");
    std::vector<StudioRow> out;
    while (s.step()) out.push_back(read_studio(s));
    return out;
}

void Store::insert_studio(const StudioRow& r) {
    auto& s = db_->cached(
        "INSERT INTO studios(name, zone_id, ssrc, source_address, min_delay_ms, max_delay_ms, fixed_delay_ms, "
        "fallback_clip_id, created_unix_ms, created_by) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    s.bind(1, r.name).bind(2, r.zone_id);
    if (r.ssrc) {
        s.bind(3, std::int64_t{*r.ssrc});
    } else {
        s.bind_null(3);
    }
    s.bind_text_or_null(4, r.source_address)
        .bind(5, std::int64_t{r.min_delay_ms})
        .bind(6, std::int64_t{r.max_delay_ms})
        .bind(7, std::int64_t{r.fixed_delay_ms});
    if (r.fallback_clip_id != 0) {
        s.bind(8, r.fallback_clip_id);
    } else {
        s.bind_null(8);
    }
    s.bind(9, r.created_unix_ms).bind(10, r.created_by).run();
}

void Store::delete_studio(const std::string& name) {
    db_->cached("DELETE FROM studios WHERE name = ?1").bind(1, name).run();
}

std::int64_t Store::studio_count_in_zone(const std::string& zone_id) const {
    auto& s = db_->cached("SELECT COUNT(*) FROM studios WHERE zone_id = ?1");
    s.bind(1, zone_id);
    return s.step() ? s.int64(0) : 0;
}

}  // namespace loa::engine
