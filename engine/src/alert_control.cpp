#include "loa/engine/alert_control.h"

#include <algorithm>
#include <exception>
#include <set>

namespace loa::engine {

namespace {

std::int64_t unix_ms(const Clock& clock) { return clock.unix_ns() / 1'000'000; }

std::string join(const std::vector<std::string>& zones) {
    std::string out;
    for (const auto& z : zones) out += (out.empty() ? "" : ",") + z;
    return out;
}

std::string who_is(const Caller& c) { return c.is_local_admin() ? std::string("local admin") : c.operator_name; }

std::int64_t chime_ms() {
    std::int64_t total = 0;
    for (const auto& s : attention_chime()) total += s.duration_ms;
    return total;
}

}  // namespace

std::string_view to_string(AlertEnd e) noexcept {
    switch (e) {
        case AlertEnd::Expired: return "expired";
        case AlertEnd::Completed: return "completed";
        case AlertEnd::Cancelled: return "cancelled";
        case AlertEnd::Lost: return "lost";
    }
    return "?";
}

AlertControl::AlertControl(Store& store, ProgrammeManager& manager, const Clock& clock)
    : store_(store), manager_(manager), clock_(clock) {}

std::vector<std::string> AlertControl::zones_of(const AlertRow& row) const {
    std::vector<std::string> out;
    for (std::size_t at = 0; at <= row.zones.size();) {
        const auto comma = std::min(row.zones.find(',', at), row.zones.size());
        if (comma > at) out.push_back(row.zones.substr(at, comma - at));
        at = comma + 1;
    }
    return out;
}

bool AlertControl::in_scope(const Caller& caller, const std::vector<std::string>& zones) const {
    if (caller.zone_id.empty()) return true;
    return std::all_of(zones.begin(), zones.end(),
                       [&](const std::string& z) { return store_.zone_within(z, caller.zone_id); });
}

Result<std::uint64_t> AlertControl::raise(const Caller& caller, const AlertRequest& r) {
    using enum RpcCode;
    if (caller.role < Role::Operator) return Outcome::failure(PermissionDenied, "viewers cannot raise alerts");
    if (r.target_zones.empty()) return Outcome::failure(InvalidArgument, "an alert needs a target zone");
    for (const auto& z : r.target_zones) {
        if (!store_.zone(z)) return Outcome::failure(InvalidArgument, "unknown zone '" + z + "'");
    }
    if (r.name.empty() || r.name.size() > 200) {
        return Outcome::failure(InvalidArgument, "an alert's name must be 1 to 200 bytes");
    }
    if (r.repeats < 1 || r.repeats > kMaxRepeats) {
        return Outcome::failure(InvalidArgument, "repeats must be 1 .. " + std::to_string(kMaxRepeats));
    }
    if (r.interval_ms < 0 || r.interval_ms > kMaxIntervalMs) {
        return Outcome::failure(InvalidArgument, "interval must be 0 .. " + std::to_string(kMaxIntervalMs / 1000) + " s");
    }
    if (r.volume_pct < 0 || r.volume_pct > 100) return Outcome::failure(InvalidArgument, "volume must be 0 .. 100 %");
    if (r.clip_id < 0) return Outcome::failure(InvalidArgument, "clip id must be positive");
    if (r.clip_id == 0 && r.studio.empty()) {
        return Outcome::failure(InvalidArgument, "an alert needs audio: a clip, a studio or both");
    }
    const auto now = unix_ms(clock_);
    if (r.expires_unix_ms) {
        if (*r.expires_unix_ms <= now) return Outcome::failure(InvalidArgument, "the expiry is not in the future");
        if (*r.expires_unix_ms - now > kMaxLifetimeMs) {
            return Outcome::failure(InvalidArgument, "the expiry is more than 7 days ahead");
        }
    }
    if (static_cast<int>(r.level) > static_cast<int>(caller.max_level)) {
        return Outcome::failure(PermissionDenied, "level " + std::string(to_string(r.level)) +
                                                      " is above the caller's " +
                                                      std::string(to_string(caller.max_level)));
    }
    if (!in_scope(caller, r.target_zones)) {
        return Outcome::failure(PermissionDenied,
                                "a target zone is outside the caller's zone '" + caller.zone_id + "'");
    }
    if (r.clip_id != 0) {
        const auto clip = store_.clip(r.clip_id);
        // A clip the caller cannot see is as unknown as a missing one.
        if (!clip || !(clip->zone_id.empty() || caller.zone_id.empty() ||
                       store_.zone_within(clip->zone_id, caller.zone_id))) {
            return Outcome::failure(InvalidArgument, "unknown clip " + std::to_string(r.clip_id));
        }
    }
    if (!r.studio.empty()) {
        return Outcome::failure(Unimplemented,
                                "alerts with a live studio after the clip are not available yet (give a clip)");
    }
    if (r.clip_id != 0 && !clip_dir_) return Outcome::failure(Unavailable, "this engine has no clip catalogue");

    Entry e;
    e.row.id = next_id_;
    e.row.name = r.name;
    e.row.level = static_cast<int>(r.level);
    e.row.zones = join(r.target_zones);
    e.row.clip_id = r.clip_id;
    e.row.studio = r.studio;
    e.row.attention_tone = r.attention_tone;
    e.row.repeats = r.repeats;
    e.row.interval_ms = r.interval_ms;
    e.row.volume_pct = r.volume_pct;
    e.row.raised_unix_ms = now;
    e.row.expires_unix_ms = r.expires_unix_ms.value_or(0);
    e.row.sequence = static_cast<std::uint64_t>(now) * 1000 + (e.row.id % 1000);
    e.row.created_by = who_is(caller);
    if (auto o = launch(e, 0); !o.ok()) return o;
    const auto id = e.row.id;
    entries_.emplace(id, std::move(e));
    next_id_ = id + 1;
    return id;
}

Outcome AlertControl::launch(Entry& e, int first_play) {
    const AlertRow& row = e.row;
    auto spec = std::make_shared<PlaylistSpec>();
    if (row.attention_tone) spec->items.push_back(PlaylistItem::tone_sequence(attention_chime(), kAttentionChimeLevelDb));
    if (row.clip_id != 0) {
        if (!clip_dir_) return Outcome::failure(RpcCode::Unavailable, "this engine has no clip catalogue");
        const auto clip = store_.clip(row.clip_id);
        if (!clip) return Outcome::failure(RpcCode::InvalidArgument, "unknown clip " + std::to_string(row.clip_id));
        const double gain = std::clamp(kLoudnessTargetLufs - clip->loudness_lufs, -20.0, 12.0);
        spec->items.push_back(PlaylistItem::clip(*clip_dir_ / (clip->sha256 + "." + clip->ext), gain));
    }
    spec->repeats = std::max(1, row.repeats - first_play);
    spec->interval_ms = row.interval_ms;
    spec->progress = std::make_shared<PlaylistProgress>();

    SourceConfig source;
    source.type = SourceConfig::Type::Playlist;
    source.playlist = spec;
    RuntimeProgramme p;
    p.id = kProgrammeIdBase + row.id;
    p.name = "alert:" + row.name;
    p.level = static_cast<Priority>(row.level);
    p.target_zones = zones_of(row);
    p.sequence = row.sequence;
    p.kind = ProgrammeKind::Clip;
    p.sources.push_back(std::move(source));
    p.alert = AlertSignal{static_cast<std::uint8_t>(std::clamp(row.volume_pct, 0, 100))};
    auto started = manager_.start(p);
    if (!started) return started.error();
    e.progress = spec->progress;
    e.first_play = row.repeats - spec->repeats;
    e.on_air = true;
    if (const auto info = manager_.info(p.id)) e.ssrc = info->ssrc;
    e.last_check_ms = unix_ms(clock_);
    e.announced = confirm(e, Caller::local_admin());
    return Outcome::success();
}

Outcome AlertControl::may_cancel(const Caller& caller, std::uint64_t id) const {
    const auto it = entries_.find(id);
    if (it == entries_.end()) return Outcome::failure(RpcCode::NotFound, "no alert " + std::to_string(id));
    const auto& row = it->second.row;
    if (caller.role < Role::Operator || row.level > static_cast<int>(caller.max_level) ||
        !in_scope(caller, zones_of(row))) {
        return Outcome::failure(RpcCode::PermissionDenied,
                                "alert " + std::to_string(id) + " is outside the caller's scope");
    }
    return Outcome::success();
}

bool AlertControl::visible(const Caller& caller, std::uint64_t id) const {
    const auto it = entries_.find(id);
    if (it == entries_.end()) return false;
    if (caller.zone_id.empty()) return true;
    const auto zones = zones_of(it->second.row);
    return std::any_of(zones.begin(), zones.end(), [&](const std::string& z) {
        return store_.zone_within(z, caller.zone_id) || store_.zone_within(caller.zone_id, z);
    });
}

bool AlertControl::take_off_air(std::uint64_t id, AlertEnd reason, std::string detail) {
    const auto it = entries_.find(id);
    if (it == entries_.end()) return false;
    Entry& e = it->second;
    if (e.on_air) {
        (void)manager_.stop(kProgrammeIdBase + id);
        e.on_air = false;
        e.reason = reason;
        e.detail = std::move(detail);
    }
    return true;
}

void AlertControl::forget(std::uint64_t id) {
    (void)take_off_air(id, AlertEnd::Lost);
    entries_.erase(id);
}

std::optional<AlertRow> AlertControl::row(std::uint64_t id) const {
    const auto it = entries_.find(id);
    if (it == entries_.end()) return std::nullopt;
    return it->second.row;
}

std::optional<AlertState> AlertControl::state(std::uint64_t id) const {
    const auto it = entries_.find(id);
    if (it == entries_.end()) return std::nullopt;
    const Entry& e = it->second;
    AlertState s;
    s.row = e.row;
    s.ssrc = e.ssrc;
    s.on_air = e.on_air;
    if (e.progress && e.progress->frames.load(std::memory_order_relaxed) > 0) {
        s.play = static_cast<std::uint32_t>(e.first_play) + e.progress->play.load(std::memory_order_relaxed) + 1;
    }
    return s;
}

std::vector<AlertState> AlertControl::list(const Caller& caller) const {
    std::vector<AlertState> out;
    for (const auto& [id, e] : entries_) {
        if (visible(caller, id)) out.push_back(*state(id));
    }
    return out;
}

std::vector<AlertDue> AlertControl::due(std::int64_t now_unix_ms) const {
    std::vector<AlertDue> out;
    for (const auto& [id, e] : entries_) {
        if (!e.on_air) {
            out.push_back({id, e.reason, e.detail});
        } else if (e.row.expires_unix_ms != 0 && now_unix_ms >= e.row.expires_unix_ms) {
            out.push_back({id, AlertEnd::Expired, {}});
        } else if (e.progress && e.progress->finished.load(std::memory_order_acquire)) {
            out.push_back({id, AlertEnd::Completed, {}});
        } else if (!manager_.contains(kProgrammeIdBase + id)) {
            out.push_back({id, AlertEnd::Lost, "its programme was stopped"});
        }
    }
    return out;
}

std::vector<std::string> AlertControl::targeted_clusters(const std::vector<std::string>& zones,
                                                         const Caller& caller) const {
    std::set<std::string> ids;
    for (const auto& zone : zones) {
        // The caller sees only its subtree: the zone itself, or its own zone below it.
        std::string root = zone;
        if (!caller.zone_id.empty() && !store_.zone_within(zone, caller.zone_id)) {
            if (!store_.zone_within(caller.zone_id, zone)) continue;
            root = caller.zone_id;
        }
        std::string after;
        for (;;) {
            const auto page = store_.clusters(root, after, 1000);
            for (const auto& c : page) {
                if (c.enabled) ids.insert(c.id);
            }
            if (page.size() < 1000) break;
            after = page.back().id;
        }
    }
    return {ids.begin(), ids.end()};
}

AlertConfirmation AlertControl::confirm(const Entry& e, const Caller& caller) const {
    AlertConfirmation out;
    for (auto& id : targeted_clusters(zones_of(e.row), caller)) {
        const auto live = live_ ? live_(id) : std::nullopt;
        if (!live || !live->online) {
            out.offline.push_back(std::move(id));
        } else if (e.on_air && e.ssrc != 0 && live->playing_ssrc == e.ssrc && live->amplifier_on) {
            out.confirmed.push_back(std::move(id));
        } else {
            out.not_confirmed.push_back(std::move(id));
        }
    }
    return out;
}

AlertConfirmation AlertControl::confirmation(std::uint64_t id, const Caller& caller) const {
    const auto it = entries_.find(id);
    if (it == entries_.end()) return {};
    return confirm(it->second, caller);
}

std::vector<std::pair<std::uint64_t, AlertConfirmation>> AlertControl::confirmation_changes(std::int64_t now_unix_ms) {
    std::vector<std::pair<std::uint64_t, AlertConfirmation>> out;
    for (auto& [id, e] : entries_) {
        if (!e.on_air || now_unix_ms - e.last_check_ms < kConfirmCheckMs) continue;
        e.last_check_ms = now_unix_ms;
        auto c = confirm(e, Caller::local_admin());
        if (e.announced && e.announced->same_counts(c)) continue;
        if (now_unix_ms - e.last_announce_ms < kConfirmEventMinMs) continue;  // announced at the next check
        e.last_announce_ms = now_unix_ms;
        e.announced = c;
        out.emplace_back(id, std::move(c));
    }
    return out;
}

std::int64_t AlertControl::play_length_ms(const AlertRow& row) const {
    std::int64_t ms = row.attention_tone ? chime_ms() : 0;
    if (row.clip_id != 0) {
        if (const auto clip = store_.clip(row.clip_id)) ms += clip->duration_ms;
    }
    return ms;
}

std::vector<std::string> AlertControl::restore() {
    std::vector<std::string> problems;
    if (const auto last = store_.meta("last_alert_id")) {
        try {
            next_id_ = std::max<std::uint64_t>(next_id_, std::stoull(*last) + 1);
        } catch (const std::exception&) {
            problems.push_back("meta last_alert_id is not a number: '" + *last + "'");
        }
    }
    const auto now = unix_ms(clock_);
    for (const auto& row : store_.alerts()) {
        next_id_ = std::max(next_id_, row.id + 1);
        if (entries_.count(row.id) != 0) continue;
        Entry e;
        e.row = row;
        if (row.expires_unix_ms != 0 && now >= row.expires_unix_ms) {
            e.reason = AlertEnd::Expired;
            entries_.emplace(row.id, std::move(e));
            continue;
        }
        // Plays that were over before the restart are not repeated; the one
        // that was interrupted plays again from its start.
        int done = 0;
        const auto cycle = play_length_ms(row) + row.interval_ms;
        if (cycle > 0 && now > row.raised_unix_ms) {
            done = static_cast<int>(std::min<std::int64_t>((now - row.raised_unix_ms) / cycle, row.repeats - 1));
        }
        if (auto o = launch(e, done); !o.ok()) {
            problems.push_back("alert " + std::to_string(row.id) + " not restored: " + o.message);
            e.reason = AlertEnd::Lost;
            e.detail = "could not be restored: " + o.message;
            e.on_air = false;
        }
        entries_.emplace(row.id, std::move(e));
    }
    return problems;
}

}  // namespace loa::engine
