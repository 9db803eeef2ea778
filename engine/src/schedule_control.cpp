#include "loa/engine/schedule_control.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <regex>

#include <date/tz.h>

namespace loa::engine {

namespace {

using std::chrono::days;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::chrono::milliseconds kGrace{2000};

std::int64_t ms_of(Instant t) { return t.time_since_epoch().count(); }

std::string join(const std::vector<std::string>& zones) {
    std::string out;
    for (const auto& z : zones) out += (out.empty() ? "" : ",") + z;
    return out;
}

/// Length of `ms` once padded to whole packets (a playlist pads every item).
std::int64_t padded_ms(std::int64_t ms) {
    constexpr std::int64_t p = ScheduleControl::kPtimeMs;
    return ms <= 0 ? 0 : (ms + p - 1) / p * p;
}

/// Today's local date in `tz` at `now`; nullopt for an unknown zone.
std::optional<std::chrono::year_month_day> today_in(const std::string& tz, Instant now) {
    try {
        const auto* zone = date::locate_zone(tz);
        const date::sys_seconds s(std::chrono::floor<seconds>(now.time_since_epoch()));
        const auto local = s.time_since_epoch() + zone->get_info(s).offset;
        return std::chrono::year_month_day(std::chrono::sys_days(std::chrono::floor<days>(local)));
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace

std::optional<std::chrono::year_month_day> parse_local_date(const std::string& text) {
    static const std::regex re(R"(^(\d{4})-(\d{2})-(\d{2})$)");
    std::smatch m;
    if (!std::regex_match(text, m, re)) return std::nullopt;
    const std::chrono::year_month_day d{std::chrono::year(std::stoi(m[1])),
                                        std::chrono::month(static_cast<unsigned>(std::stoi(m[2]))),
                                        std::chrono::day(static_cast<unsigned>(std::stoi(m[3])))};
    if (!d.ok()) return std::nullopt;
    return d;
}

std::optional<std::chrono::seconds> parse_time_of_day(const std::string& text) {
    static const std::regex re(R"(^(\d{1,2}):(\d{2})(?::(\d{2}))?$)");
    std::smatch m;
    if (!std::regex_match(text, m, re)) return std::nullopt;
    const int h = std::stoi(m[1]);
    const int min = std::stoi(m[2]);
    const int s = m[3].matched ? std::stoi(m[3]) : 0;
    if (h > 23 || min > 59 || s > 59) return std::nullopt;
    return seconds(h * 3600 + min * 60 + s);
}

std::string format_local_date(const std::chrono::year_month_day& d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(d.year()), static_cast<unsigned>(d.month()),
                  static_cast<unsigned>(d.day()));
    return buf;
}

std::string format_time_of_day(std::chrono::seconds s) {
    const auto v = ((s.count() % 86400) + 86400) % 86400;
    char buf[16];
    std::snprintf(buf, sizeof buf, "%02d:%02d:%02d", static_cast<int>(v / 3600), static_cast<int>(v / 60 % 60),
                  static_cast<int>(v % 60));
    return buf;
}

std::string format_local_time(std::chrono::local_seconds t) {
    const auto day = std::chrono::floor<days>(t);
    return format_local_date(std::chrono::year_month_day(std::chrono::sys_days(day.time_since_epoch()))) + " " +
           format_time_of_day(t - day);
}

ScheduleControl::ScheduleControl(Store& store, ProgrammeManager& manager, const Clock& clock)
    : store_(store), manager_(manager), clock_(clock) {}

std::vector<std::string> ScheduleControl::zones_of(const ScheduleRow& row) {
    std::vector<std::string> out;
    for (std::size_t at = 0; at <= row.zones.size();) {
        const auto comma = std::min(row.zones.find(',', at), row.zones.size());
        if (comma > at) out.push_back(row.zones.substr(at, comma - at));
        at = comma + 1;
    }
    return out;
}

std::optional<ScheduleSpec> ScheduleControl::spec_of(const ScheduleRow& row) {
    ScheduleSpec s;
    s.time_zone = row.time_zone;
    const auto rec = parse_recurrence(row.recurrence);
    const auto late = parse_late_policy(row.late_policy);
    const auto first = parse_local_date(row.first_date);
    if (!rec || !late || !first) return std::nullopt;
    s.recurrence = *rec;
    s.late_policy = *late;
    s.first_date = *first;
    s.start_time = seconds(row.start_s);
    if (row.duration_s > 0) s.duration = seconds(row.duration_s);
    if (!row.until_date.empty()) {
        const auto until = parse_local_date(row.until_date);
        if (!until) return std::nullopt;
        s.until = *until;
    }
    s.weekdays = std::bitset<7>(static_cast<unsigned long>(row.weekdays & 0x7F));
    s.every_days = static_cast<std::uint32_t>(std::max(0, row.every_days));
    s.grace = kGrace;
    return s;
}

bool ScheduleControl::in_scope(const Caller& caller, const std::vector<std::string>& zones) const {
    if (caller.zone_id.empty()) return true;
    return std::all_of(zones.begin(), zones.end(),
                       [&](const std::string& z) { return store_.zone_within(z, caller.zone_id); });
}

std::int64_t ScheduleControl::playlist_length_ms(const ScheduleRow& row) const {
    std::int64_t total = 0;
    for (const auto& item : row.items) {
        if (item.clip_id != 0) {
            if (const auto clip = store_.clip(item.clip_id)) total += padded_ms(clip->duration_ms);
        } else {
            total += padded_ms(item.gap_ms);
        }
    }
    return total;
}

Result<ScheduleRow> ScheduleControl::check_create(const Caller& caller, const ScheduleRequest& r) const {
    using enum RpcCode;
    if (caller.role < Role::Operator) return Outcome::failure(PermissionDenied, "viewers cannot create schedules");
    if (r.name.empty() || r.name.size() > 200) {
        return Outcome::failure(InvalidArgument, "a schedule's name must be 1 to 200 bytes");
    }
    if (r.target_zones.empty()) return Outcome::failure(InvalidArgument, "a schedule needs a target zone");
    for (const auto& z : r.target_zones) {
        if (z.find(',') != std::string::npos || !store_.zone(z)) {
            return Outcome::failure(InvalidArgument, "unknown zone '" + z + "'");
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
    const bool live = !r.studio.empty();
    if (live && !r.items.empty()) {
        return Outcome::failure(InvalidArgument, "a schedule plays either a playlist (items) or a studio, not both");
    }
    if (live) {
        if (!r.spec.duration && !r.end_time) {
            return Outcome::failure(InvalidArgument, "a studio window needs an end (a duration or an end time): a "
                                                     "live feed has no end of its own");
        }
        if (auto o = studio_check(caller, r.studio); !o.ok()) return o;
    } else if (r.items.empty() || r.items.size() > kMaxItems) {
        return Outcome::failure(InvalidArgument, "a schedule's playlist needs 1 to " + std::to_string(kMaxItems) +
                                                     " item(s), or give a studio instead");
    }
    bool has_clip = live;
    for (std::size_t i = 0; i < r.items.size(); ++i) {
        const auto& item = r.items[i];
        const auto which = "item " + std::to_string(i + 1) + ": ";
        if (item.clip_id < 0) return Outcome::failure(InvalidArgument, which + "clip id out of range");
        if (item.clip_id != 0) {
            const auto clip = store_.clip(item.clip_id);
            // A clip the caller cannot see is as unknown as a missing one.
            if (!clip || !(clip->zone_id.empty() || caller.zone_id.empty() ||
                           store_.zone_within(clip->zone_id, caller.zone_id))) {
                return Outcome::failure(InvalidArgument, which + "unknown clip " + std::to_string(item.clip_id));
            }
            if (!std::isfinite(item.gain_db) || item.gain_db < kMinItemGainDb || item.gain_db > kMaxItemGainDb) {
                return Outcome::failure(InvalidArgument, which + "gain must be -30 .. +12 dB");
            }
            has_clip = true;
        } else if (item.gap_ms < 1 || item.gap_ms > kMaxGapMs) {
            return Outcome::failure(InvalidArgument, which + "a gap must last 1 ms .. 1 h");
        }
    }
    if (!has_clip) return Outcome::failure(InvalidArgument, "a schedule's playlist needs at least one clip");
    if (!live && !clip_dir_) return Outcome::failure(Unavailable, "this engine has no clip catalogue");

    ScheduleSpec spec = r.spec;
    if (spec.time_zone.empty()) spec.time_zone = default_tz_;
    spec.grace = kGrace;
    spec.end.reset();
    if (r.from_today) {
        // An unknown zone keeps an invalid date; make() names the zone first.
        if (const auto today = today_in(spec.time_zone, Instant(milliseconds(clock_.unix_ns() / 1'000'000)))) {
            spec.first_date = *today;
        }
    }
    if (r.end_time) {
        if (spec.duration) return Outcome::failure(InvalidArgument, "give either an end time or a duration, not both");
        if (*r.end_time < seconds(0) || *r.end_time >= days(1)) {
            return Outcome::failure(InvalidArgument, "end time must lie within a day (00:00:00 to 23:59:59)");
        }
        if (spec.first_date.ok()) {
            auto end = std::chrono::local_days(std::chrono::sys_days(spec.first_date).time_since_epoch()) + *r.end_time;
            if (*r.end_time <= spec.start_time) end += days(1);
            spec.end = end;
        }
    }
    auto made = Schedule::make(spec);
    if (!made) return made.error();
    const auto& checked = made.value().spec();

    ScheduleRow row;
    row.name = r.name;
    row.level = static_cast<int>(r.level);
    row.zones = join(r.target_zones);
    row.time_zone = checked.time_zone;
    row.recurrence = std::string(to_string(checked.recurrence));
    row.first_date = format_local_date(checked.first_date);
    row.start_s = checked.start_time.count();
    row.duration_s = checked.duration ? checked.duration->count() : 0;
    row.until_date = checked.until ? format_local_date(*checked.until) : std::string();
    row.weekdays = static_cast<int>(checked.weekdays.to_ulong());
    row.every_days = static_cast<int>(checked.every_days);
    row.late_policy = std::string(to_string(checked.late_policy));
    row.items = r.items;
    row.studio = r.studio;
    for (auto& item : row.items) {
        if (item.clip_id != 0) item.gap_ms = 0;
        if (item.clip_id == 0) item.gain_db = 0.0;
    }
    // Without a window the playlist is the window: it must end before the next one starts.
    if (row.duration_s == 0) {
        auto probe = checked;
        probe.duration = seconds(std::max<std::int64_t>(1, (playlist_length_ms(row) + 999) / 1000));
        if (auto o = Schedule::make(probe); !o) {
            return Outcome::failure(InvalidArgument, "the playlist is the window (no duration or end time given): " +
                                                         o.error().message);
        }
    }
    return row;
}

Outcome ScheduleControl::studio_check(const Caller& caller, const std::string& name) const {
    // As StartProgramme: a studio of the Store whose zone is in the caller's
    // subtree. Others may read it at the same time (the engine bounds them).
    const auto studio = store_.studio(name);
    if (!studio) return Outcome::failure(RpcCode::NotFound, "no studio '" + name + "'");
    if (!store_.zone_within(studio->zone_id, caller.zone_id)) {
        return Outcome::failure(RpcCode::PermissionDenied, "studio '" + name + "' of zone '" + studio->zone_id +
                                                               "' is outside the caller's zone '" + caller.zone_id +
                                                               "'");
    }
    return Outcome::success();
}

ScheduleControl::Entry ScheduleControl::make_entry(const ScheduleRow& row) const {
    Entry e;
    e.row = row;
    e.playlist_ms = playlist_length_ms(row);
    const auto spec = spec_of(row);
    if (!spec) {
        e.problem = "its stored recurrence, dates or late policy are unreadable";
        return e;
    }
    auto made = Schedule::make(*spec);
    if (!made) {
        e.problem = made.error().message;
        return e;
    }
    e.schedule.emplace(std::move(made).value());
    return e;
}

void ScheduleControl::add(const ScheduleRow& row) { entries_.insert_or_assign(row.id, make_entry(row)); }

Outcome ScheduleControl::may_delete(const Caller& caller, std::uint64_t id) const {
    const auto it = entries_.find(id);
    if (it == entries_.end() || !visible(caller, id)) {
        return Outcome::failure(RpcCode::NotFound, "no schedule " + std::to_string(id));
    }
    const auto& row = it->second.row;
    if (caller.role < Role::Operator || row.level > static_cast<int>(caller.max_level) ||
        !in_scope(caller, zones_of(row))) {
        return Outcome::failure(RpcCode::PermissionDenied,
                                "schedule " + std::to_string(id) + " is outside the caller's scope");
    }
    return Outcome::success();
}

bool ScheduleControl::remove(std::uint64_t id) {
    const auto it = entries_.find(id);
    if (it == entries_.end()) return false;
    const bool on_air = it->second.on_air;
    if (manager_.contains(kProgrammeIdBase + id)) (void)manager_.stop(kProgrammeIdBase + id);
    entries_.erase(it);
    return on_air;
}

bool ScheduleControl::visible(const Caller& caller, std::uint64_t id) const {
    const auto it = entries_.find(id);
    if (it == entries_.end()) return false;
    if (caller.zone_id.empty()) return true;
    const auto zones = zones_of(it->second.row);
    return std::any_of(zones.begin(), zones.end(), [&](const std::string& z) {
        return store_.zone_within(z, caller.zone_id) || store_.zone_within(caller.zone_id, z);
    });
}

std::optional<ScheduleView> ScheduleControl::view(std::uint64_t id) const {
    const auto it = entries_.find(id);
    if (it == entries_.end()) return std::nullopt;
    const Entry& e = it->second;
    ScheduleView v;
    v.row = e.row;
    v.playlist_ms = e.playlist_ms;
    v.problem = e.problem;
    if (e.on_air) {
        v.programme_id = kProgrammeIdBase + id;
        const auto frames = e.progress ? e.progress->frames.load(std::memory_order_relaxed) : 0;
        v.position_ms = e.offset_ms + static_cast<std::int64_t>(frames) * kPtimeMs;
    }
    return v;
}

std::vector<ScheduleView> ScheduleControl::list(const Caller& caller) const {
    std::vector<ScheduleView> out;
    for (const auto& [id, e] : entries_) {
        if (visible(caller, id)) out.push_back(*view(id));
    }
    return out;
}

std::vector<ScheduleWindow> ScheduleControl::next_windows(std::uint64_t id, Instant now, std::size_t count) const {
    std::vector<ScheduleWindow> out;
    const auto it = entries_.find(id);
    if (it == entries_.end() || !it->second.schedule) return out;
    const Entry& e = it->second;
    const auto length = milliseconds(e.playlist_ms);
    if (e.on_air) {
        out.push_back({id, e.window, true});
    } else if (auto running = e.schedule->active_at(now, length)) {
        out.push_back({id, *running, false});
    }
    auto t = now;
    if (!out.empty()) t = std::max(t, out.back().occurrence.start);
    for (std::size_t n = 0; n < count; ++n) {
        auto o = e.schedule->next_after(t);
        if (!o) break;
        if (!o->end) o->end = o->start + length;
        t = o->start;
        out.push_back({id, *o, false});
    }
    return out;
}

std::vector<ScheduleWindow> ScheduleControl::windows(const Caller& caller, Instant now, Instant until,
                                                     std::size_t limit) const {
    std::vector<ScheduleWindow> out;
    for (const auto& [id, e] : entries_) {
        if (!e.schedule || !visible(caller, id)) continue;
        const auto length = milliseconds(e.playlist_ms);
        std::optional<std::int64_t> running_start;
        if (e.on_air) {
            out.push_back({id, e.window, true});
            running_start = ms_of(e.window.start);
        } else if (auto running = e.schedule->active_at(now, length)) {
            out.push_back({id, *running, false});
            running_start = ms_of(running->start);
        }
        for (auto& o : e.schedule->occurrences_between(now, until, limit)) {
            if (running_start && ms_of(o.start) == *running_start) continue;
            if (!o.end) o.end = o.start + length;
            out.push_back({id, o, false});
        }
    }
    std::sort(out.begin(), out.end(), [](const ScheduleWindow& a, const ScheduleWindow& b) {
        if (a.occurrence.start != b.occurrence.start) return a.occurrence.start < b.occurrence.start;
        return a.schedule_id < b.schedule_id;
    });
    if (out.size() > limit) out.resize(limit);
    return out;
}

Outcome ScheduleControl::launch(Entry& e, const Occurrence& window, std::int64_t offset_ms) {
    const auto& row = e.row;
    RuntimeProgramme p;
    p.id = kProgrammeIdBase + row.id;
    p.name = "schedule:" + row.name;
    p.level = static_cast<Priority>(row.level);
    p.target_zones = zones_of(row);
    // Newest wins ties: a later window beats an earlier one.
    p.sequence = static_cast<std::uint64_t>(std::max<std::int64_t>(0, ms_of(window.start))) * 1000 + (row.id % 1000);
    p.ptime_ms = kPtimeMs;
    std::shared_ptr<PlaylistProgress> progress;
    if (!row.studio.empty()) {
        // Live: no offset into a feed, it joins the studio as it is now.
        const auto studio = store_.studio(row.studio);
        if (!studio) {
            return Outcome::failure(RpcCode::FailedPrecondition, "studio '" + row.studio + "' is gone");
        }
        SourceConfig source;
        source.type = SourceConfig::Type::Studio;
        source.studio = row.studio;
        // The studio's fallback clip loops while it is silent (silence without one).
        if (studio->fallback_clip_id != 0 && clip_dir_) {
            if (const auto clip = store_.clip(studio->fallback_clip_id)) {
                source.fallback = *clip_dir_ / (clip->sha256 + "." + clip->ext);
            }
        }
        p.kind = ProgrammeKind::Live;
        p.sources.push_back(std::move(source));
        offset_ms = 0;
    } else {
        auto spec = playlist_of(row, offset_ms);
        if (!spec) return spec.error();
        progress = spec.value()->progress;
        SourceConfig source;
        source.type = SourceConfig::Type::Playlist;
        source.playlist = std::move(spec).value();
        p.kind = ProgrammeKind::Clip;
        p.sources.push_back(std::move(source));
    }
    // Left over from an inconsistent state: never two programmes for one schedule.
    if (manager_.contains(p.id)) (void)manager_.stop(p.id);
    auto started = manager_.start(p);
    if (!started) return started.error();  // e.g. a studio with all its readers taken: RESOURCE_EXHAUSTED
    e.on_air = true;
    e.window = window;
    e.offset_ms = std::max<std::int64_t>(0, offset_ms);
    e.progress = std::move(progress);
    return Outcome::success();
}

Result<std::shared_ptr<PlaylistSpec>> ScheduleControl::playlist_of(const ScheduleRow& row,
                                                                   std::int64_t offset_ms) const {
    if (!clip_dir_) return Outcome::failure(RpcCode::Unavailable, "this engine has no clip catalogue");
    auto spec = std::make_shared<PlaylistSpec>();
    for (const auto& item : row.items) {
        if (item.clip_id == 0) {
            spec->items.push_back(PlaylistItem::gap(item.gap_ms));
            continue;
        }
        const auto clip = store_.clip(item.clip_id);
        if (!clip) {
            return Outcome::failure(RpcCode::FailedPrecondition, "clip " + std::to_string(item.clip_id) + " is gone");
        }
        const double gain = std::clamp(kLoudnessTargetLufs - clip->loudness_lufs, -20.0, 12.0) + item.gain_db;
        spec->items.push_back(PlaylistItem::clip(*clip_dir_ / (clip->sha256 + "." + clip->ext), gain));
    }
    spec->repeats = 1;
    spec->start_offset_ms = std::max<std::int64_t>(0, offset_ms);
    spec->progress = std::make_shared<PlaylistProgress>();
    return spec;
}

void ScheduleControl::poll(Instant now) {
    const auto now_ms = ms_of(now);
    for (auto& [id, e] : entries_) {
        if (!e.schedule) continue;
        const auto pid = kProgrammeIdBase + id;
        auto change = [&](ScheduleChange::Kind kind, const Occurrence& w) {
            ScheduleChange c;
            c.kind = kind;
            c.schedule_id = id;
            c.programme_id = pid;
            c.window_start_unix_ms = ms_of(w.start);
            c.name = e.row.name;
            c.level = static_cast<Priority>(e.row.level);
            c.zones = e.row.zones;
            c.window_local = format_local_time(w.local_start) + " " + e.row.time_zone;
            c.studio = e.row.studio;
            return c;
        };
        if (e.on_air) {
            std::string why;
            if (e.window.end && now >= *e.window.end) {
                why = "its window closed";
            } else if (e.progress && e.progress->finished.load(std::memory_order_acquire)) {
                why = "its playlist ended";
            } else if (!manager_.contains(pid)) {
                why = "its programme was stopped";
            }
            if (why.empty()) continue;
            if (manager_.contains(pid)) (void)manager_.stop(pid);
            e.on_air = false;
            e.progress.reset();
            e.row.done_start_unix_ms = ms_of(e.window.start);
            auto c = change(ScheduleChange::Kind::Stopped, e.window);
            c.detail = std::move(why);
            outbox_.push_back(std::move(c));
        }
        if (now_ms < e.retry_at_ms) continue;
        // A studio window always has an end; a live feed has no length to resume within.
        const auto content = e.row.studio.empty() ? std::optional<milliseconds>(milliseconds(e.playlist_ms))
                                                  : std::nullopt;
        const auto d = e.schedule->decide_start(now, content);
        if (d.action == StartDecision::Action::Idle || !d.occurrence) continue;
        auto window = *d.occurrence;
        if (!window.end) window.end = window.start + milliseconds(e.playlist_ms);
        const auto start_ms = ms_of(window.start);
        if (start_ms == e.row.done_start_unix_ms) continue;
        if (d.action == StartDecision::Action::Skip) {
            e.row.done_start_unix_ms = start_ms;
            auto c = change(ScheduleChange::Kind::Skipped, window);
            c.lateness_ms = d.lateness.count();
            outbox_.push_back(std::move(c));
            continue;
        }
        if (auto o = launch(e, window, d.offset.count()); !o.ok()) {
            e.retry_at_ms = now_ms + kRetryMs;
            if (e.failed_start_ms != start_ms) {
                e.failed_start_ms = start_ms;
                auto c = change(ScheduleChange::Kind::Failed, window);
                c.detail = o.message;
                outbox_.push_back(std::move(c));
            }
            continue;
        }
        e.retry_at_ms = 0;
        auto c = change(ScheduleChange::Kind::Started, window);
        c.lateness_ms = d.lateness.count();
        c.offset_ms = e.offset_ms;
        outbox_.push_back(std::move(c));
    }
}

std::vector<std::string> ScheduleControl::restore() {
    std::vector<std::string> problems;
    for (const auto& row : store_.schedules()) {
        if (entries_.count(row.id) != 0) continue;
        auto e = make_entry(row);
        if (!e.problem.empty()) {
            problems.push_back("schedule " + std::to_string(row.id) + " ('" + row.name + "') cannot run: " + e.problem);
        }
        entries_.emplace(row.id, std::move(e));
    }
    return problems;
}

}  // namespace loa::engine
