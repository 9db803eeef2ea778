#include "loa/engine/alert_control.h"

#include <algorithm>
#include <exception>

#include "loa/engine/programme_control.h"

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
                       [&](const std::string& z) { return zone_within(z, caller.zone_id); });
}

const AlertControl::TopologyIndex& AlertControl::index() const {
    const auto version = store_.topology_version();
    if (index_.version == version) return index_;
    TopologyIndex ix;
    const auto zones = store_.zones();
    ix.zone_parent.assign(zones.size(), kNoZone);
    for (std::uint32_t i = 0; i < zones.size(); ++i) ix.zone_by_id.emplace(zones[i].id, i);
    for (std::uint32_t i = 0; i < zones.size(); ++i) {
        if (zones[i].parent_id.empty()) continue;
        if (const auto it = ix.zone_by_id.find(zones[i].parent_id); it != ix.zone_by_id.end()) {
            ix.zone_parent[i] = it->second;
        }
    }
    std::string after;
    for (;;) {
        const auto page = store_.clusters({}, after, 1000);  // ascending id
        for (const auto& c : page) {
            if (!c.enabled) continue;
            const auto z = ix.zone_by_id.find(c.zone_id);
            if (z == ix.zone_by_id.end()) continue;
            ix.cluster_id.push_back(c.id);
            ix.cluster_zone.push_back(z->second);
        }
        if (page.size() < 1000) break;
        after = page.back().id;
    }
    ix.version = version;
    index_ = std::move(ix);
    return index_;
}

bool AlertControl::zone_within(std::uint32_t zone, std::uint32_t root) const noexcept {
    // Bounded by the zone count, should the tree ever hold a cycle.
    for (std::size_t steps = 0; zone != kNoZone && steps <= index_.zone_parent.size(); ++steps) {
        if (zone == root) return true;
        zone = index_.zone_parent[zone];
    }
    return false;
}

bool AlertControl::zone_within(const std::string& zone_id, const std::string& root) const {
    if (root.empty()) return true;
    const auto& ix = index();
    const auto z = ix.zone_by_id.find(zone_id);
    const auto r = ix.zone_by_id.find(root);
    if (z == ix.zone_by_id.end() || r == ix.zone_by_id.end()) return false;
    return zone_within(z->second, r->second);
}

const std::vector<std::uint32_t>& AlertControl::targets_of(const Entry& e) const {
    const auto& ix = index();
    if (e.targets_version == ix.version) return e.targets;
    std::vector<std::uint32_t> roots;
    for (const auto& z : zones_of(e.row)) {
        if (const auto it = ix.zone_by_id.find(z); it != ix.zone_by_id.end()) roots.push_back(it->second);
    }
    // Whether each zone lies in a target zone's subtree.
    std::vector<std::uint8_t> covered(ix.zone_parent.size(), 0);
    for (std::uint32_t z = 0; z < covered.size(); ++z) {
        covered[z] = std::any_of(roots.begin(), roots.end(), [&](std::uint32_t r) { return zone_within(z, r); });
    }
    e.targets.clear();
    for (std::uint32_t c = 0; c < ix.cluster_id.size(); ++c) {
        if (covered[ix.cluster_zone[c]] != 0) e.targets.push_back(c);
    }
    e.targets_version = ix.version;
    return e.targets;
}

template <typename F>
void AlertControl::for_each_target(const Entry& e, const Caller& caller, F&& f) const {
    const auto& targets = targets_of(e);
    if (caller.zone_id.empty()) {
        for (const auto c : targets) f(c);
        return;
    }
    // The caller sees only its subtree.
    const auto root = index_.zone_by_id.find(caller.zone_id);
    if (root == index_.zone_by_id.end()) return;
    std::vector<std::int8_t> inside(index_.zone_parent.size(), -1);  // per zone: unknown, no, yes
    for (const auto c : targets) {
        auto& in = inside[index_.cluster_zone[c]];
        if (in < 0) in = zone_within(index_.cluster_zone[c], root->second) ? 1 : 0;
        if (in == 1) f(c);
    }
}

AlertControl::Standing AlertControl::standing(const Entry& e, const std::string& cluster_id) const {
    const auto live = live_ ? live_(cluster_id) : std::nullopt;
    if (!live || !live->online) return Standing::Offline;
    if (e.on_air && e.ssrc != 0 && live->playing_ssrc == e.ssrc && live->amplifier_on) return Standing::Confirmed;
    return Standing::NotConfirmed;
}

Outcome AlertControl::studio_check(const Caller& caller, const std::string& name) const {
    using enum RpcCode;
    // As StartProgramme: a studio of the Store, in the caller's subtree. It
    // may be on the air elsewhere: the engine gives the alert its own reader.
    const auto studio = store_.studio(name);
    if (!studio) return Outcome::failure(NotFound, "no studio '" + name + "'");
    if (!store_.zone_within(studio->zone_id, caller.zone_id)) {
        return Outcome::failure(PermissionDenied, "studio '" + name + "' of zone '" + studio->zone_id +
                                                      "' is outside the caller's zone '" + caller.zone_id + "'");
    }
    return Outcome::success();
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
    } else if (!r.studio.empty()) {
        return Outcome::failure(InvalidArgument,
                                "an alert with a live studio needs an expiry (duration or expiry time): the studio "
                                "plays until then or until the alert is cancelled");
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
        if (auto o = studio_check(caller, r.studio); !o.ok()) return o;
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
    spec->interval_ms = row.interval_ms;
    spec->progress = std::make_shared<PlaylistProgress>();

    SourceConfig source;
    ProgrammeKind kind = ProgrammeKind::Clip;
    if (row.studio.empty()) {
        spec->repeats = std::max(1, row.repeats - first_play);
        source.type = SourceConfig::Type::Playlist;
        source.playlist = spec;
    } else {
        // The plays left (none after a restart past them, or without chime
        // and clip) lead in to the live studio.
        spec->repeats = std::clamp(row.repeats - first_play, 0, row.repeats);
        source.type = SourceConfig::Type::Studio;
        source.studio = row.studio;
        if (!spec->items.empty() && spec->repeats > 0) source.playlist = spec;
        kind = ProgrammeKind::Live;
    }
    RuntimeProgramme p;
    p.id = kProgrammeIdBase + row.id;
    p.name = "alert:" + row.name;
    p.level = static_cast<Priority>(row.level);
    p.target_zones = zones_of(row);
    p.sequence = row.sequence;
    p.kind = kind;
    const bool plays = source.type == SourceConfig::Type::Playlist || source.playlist != nullptr;  // chime/clip to play
    p.sources.push_back(std::move(source));
    p.alert = AlertSignal{static_cast<std::uint8_t>(std::clamp(row.volume_pct, 0, 100))};
    auto started = manager_.start(p);
    if (!started) return started.error();  // e.g. a studio with all its readers taken: RESOURCE_EXHAUSTED
    e.progress = plays ? spec->progress : nullptr;
    e.first_play = plays ? row.repeats - spec->repeats : (spec->items.empty() ? 0 : row.repeats);
    e.on_air = true;
    if (const auto info = manager_.info(p.id)) e.ssrc = info->ssrc;
    e.last_check_ms = unix_ms(clock_);
    e.announced = count(e, Caller::local_admin());
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
        return zone_within(z, caller.zone_id) || zone_within(caller.zone_id, z);
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
    } else if (!e.progress) {
        s.play = static_cast<std::uint32_t>(e.first_play);  // a studio after its plays (or without any)
    }
    s.studio_live = e.on_air && !e.row.studio.empty() &&
                    (!e.progress || e.progress->finished.load(std::memory_order_acquire));
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
        } else if (e.row.studio.empty() && e.progress && e.progress->finished.load(std::memory_order_acquire)) {
            out.push_back({id, AlertEnd::Completed, {}});
        } else if (!manager_.contains(kProgrammeIdBase + id)) {
            out.push_back({id, AlertEnd::Lost, "its programme was stopped"});
        }
    }
    return out;
}

AlertCounts AlertControl::count(const Entry& e, const Caller& caller) const {
    AlertCounts out;
    for_each_target(e, caller, [&](std::uint32_t c) {
        switch (standing(e, index_.cluster_id[c])) {
            case Standing::Confirmed: ++out.confirmed; break;
            case Standing::NotConfirmed: ++out.not_confirmed; break;
            case Standing::Offline: ++out.offline; break;
        }
    });
    return out;
}

AlertConfirmation AlertControl::confirmation(std::uint64_t id, const Caller& caller) const {
    const auto it = entries_.find(id);
    if (it == entries_.end()) return {};
    const Entry& e = it->second;
    AlertConfirmation out;
    for_each_target(e, caller, [&](std::uint32_t c) {
        const auto& cluster = index_.cluster_id[c];
        switch (standing(e, cluster)) {
            case Standing::Confirmed: out.confirmed.push_back(cluster); break;
            case Standing::NotConfirmed: out.not_confirmed.push_back(cluster); break;
            case Standing::Offline: out.offline.push_back(cluster); break;
        }
    });
    return out;
}

AlertCounts AlertControl::counts(std::uint64_t id, const Caller& caller) const {
    const auto it = entries_.find(id);
    return it == entries_.end() ? AlertCounts{} : count(it->second, caller);
}

std::size_t AlertControl::targeted(std::uint64_t id, const Caller& caller) const {
    const auto it = entries_.find(id);
    if (it == entries_.end()) return 0;
    std::size_t n = 0;
    for_each_target(it->second, caller, [&](std::uint32_t) { ++n; });
    return n;
}

std::vector<std::pair<std::uint64_t, AlertCounts>> AlertControl::confirmation_changes(std::int64_t now_unix_ms) {
    std::vector<std::pair<std::uint64_t, AlertCounts>> out;
    for (auto& [id, e] : entries_) {
        if (!e.on_air || now_unix_ms - e.last_check_ms < kConfirmCheckMs) continue;
        e.last_check_ms = now_unix_ms;
        const auto c = count(e, Caller::local_admin());
        if (e.announced && *e.announced == c) continue;
        if (now_unix_ms - e.last_announce_ms < kConfirmEventMinMs) continue;  // announced at the next check
        e.last_announce_ms = now_unix_ms;
        e.announced = c;
        out.emplace_back(id, c);
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
        // that was interrupted plays again from its start. An alert with a
        // studio whose last play was over goes back to the studio.
        int done = 0;
        const auto length = play_length_ms(row);
        const auto cycle = length + row.interval_ms;
        if (cycle > 0 && now > row.raised_unix_ms) {
            const auto elapsed = now - row.raised_unix_ms;
            done = static_cast<int>(std::min<std::int64_t>(elapsed / cycle, row.repeats - 1));
            if (!row.studio.empty() && length > 0 && elapsed >= row.repeats * cycle - row.interval_ms) {
                done = row.repeats;
            }
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
