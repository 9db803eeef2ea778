#include "schedules_cmd.h"

#include "output.h"

#include <sysexits.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <regex>


namespace pb = loa::control::v1;

namespace loactl {

namespace {

// The local end of a window, from its start and length, "HH:MM:SS".
std::string end_text(const pb::ScheduleOccurrence& o) {
    if (o.end_unix_ms() == 0) return "-";
    // local_start is "YYYY-MM-DD HH:MM:SS"; the end is start + length in the same zone offset
    // (a DST change inside the window is rare enough to show the plain sum).
    static const std::regex re(R"(^\d{4}-\d{2}-\d{2} (\d{2}):(\d{2}):(\d{2})$)");
    std::smatch m;
    const std::string start = o.local_start();
    if (!std::regex_match(start, m, re)) return "-";
    const std::int64_t s = std::stoll(m[1]) * 3600 + std::stoll(m[2]) * 60 + std::stoll(m[3]);
    const std::int64_t len = (o.end_unix_ms() - o.start_unix_ms()) / 1000;
    const std::int64_t e = s + len;
    char buf[32];
    const auto days = e / 86400;
    std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", static_cast<long long>(e / 3600 % 24),
                  static_cast<long long>(e / 60 % 60), static_cast<long long>(e % 60));
    return std::string(buf) + (days > 0 ? " (+" + std::to_string(days) + "d)" : "");
}

std::string when_text(const pb::Schedule& s) {
    static const char* const kNames[] = {"", "mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    std::string out;
    switch (s.recurrence()) {
        case pb::RECURRENCE_DAILY: out = "daily"; break;
        case pb::RECURRENCE_WEEKDAYS:
            for (const auto d : s.weekdays()) out += (out.empty() ? "" : ",") + std::string(d <= 7 ? kNames[d] : "?");
            break;
        case pb::RECURRENCE_EVERY_N_DAYS: out = "every " + std::to_string(s.every_days()) + " days"; break;
        default: out = "once " + s.first_date(); break;
    }
    out += " " + s.start_time();
    return out;
}

std::string window_text(const pb::Schedule& s) {
    const double d = s.duration_s() > 0 ? s.duration_s() : static_cast<double>(s.playlist_ms()) / 1000.0;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f s%s", d, s.duration_s() > 0 ? "" : " (playlist)");
    return buf;
}

}  // namespace

std::optional<pb::ScheduleItem> parse_schedule_item(const std::string& text) {
    static const std::regex gap(R"(^gap:(\d{1,10})$)");
    static const std::regex clip(R"(^(?:clip:)?(\d{1,19})(?::([+-]?\d+(?:\.\d+)?)(?:dB|db)?)?$)");
    std::smatch m;
    pb::ScheduleItem item;
    try {
        if (std::regex_match(text, m, gap)) {
            const auto ms = std::stoull(m[1]);
            if (ms > 0xFFFFFFFFull) return std::nullopt;
            item.set_gap_ms(static_cast<std::uint32_t>(ms));
            return item;
        }
        if (std::regex_match(text, m, clip)) {
            item.set_clip_id(std::stoull(m[1]));
            if (m[2].matched) item.set_gain_db(std::stod(m[2]));
            return item;
        }
    } catch (const std::exception&) {
    }
    return std::nullopt;
}

std::optional<std::vector<std::uint32_t>> parse_weekdays(const std::string& text) {
    static const char* const kNames[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    std::vector<std::uint32_t> out;
    std::size_t at = 0;
    while (at <= text.size()) {
        const auto comma = std::min(text.find(',', at), text.size());
        const auto word = lower(text.substr(at, comma - at));
        at = comma + 1;
        if (word.empty()) continue;
        std::uint32_t day = 0;
        for (std::uint32_t i = 0; i < 7; ++i) {
            if (word == kNames[i] || word == std::to_string(i + 1)) day = i + 1;
        }
        if (day == 0) return std::nullopt;
        out.push_back(day);
    }
    if (out.empty()) return std::nullopt;
    return out;
}

void add_schedules_commands(CLI::App& app, SchedulesCommands& cmds) {
    auto* s = app.add_subcommand(
        "schedules", "schedules: playlists of clips, or a studio live, played to zones in local-time windows");
    s->require_subcommand(1);
    cmds.create = s->add_subcommand("create", "create a schedule; prints its id");
    auto* c = cmds.create;
    c->add_option("--name", cmds.name, "display name")->required();
    c->add_option("--zone", cmds.zones, "target zone (repeat for several)")->required();
    c->add_option("--level", cmds.level, "scheduled (default), background, commune, district, province or emergency");
    c->add_option("--tz", cmds.time_zone, "IANA time zone (default: the engine's, Asia/Ho_Chi_Minh)");
    auto* once = c->add_flag("--once", cmds.once, "one window, on --date (the default)");
    auto* daily = c->add_flag("--daily", cmds.daily, "every day from --date");
    auto* weekdays = c->add_option("--weekdays", cmds.weekdays, "on these weekdays, e.g. mon,wed,fri");
    auto* every = c->add_option("--every-days", cmds.every_days, "every N days from --date (1..366)");
    once->excludes(daily)->excludes(weekdays)->excludes(every);
    daily->excludes(weekdays)->excludes(every);
    weekdays->excludes(every);
    c->add_option("--date", cmds.date, "YYYY-MM-DD: the one-shot's date or the first date (default today)");
    c->add_option("--until", cmds.until, "YYYY-MM-DD: the last date a window may start");
    c->add_option("--start", cmds.start, "local start time HH:MM[:SS]")->required();
    auto* duration = c->add_option("--duration", cmds.duration_s, "window length in seconds");
    c->add_option("--end", cmds.end, "local end time HH:MM[:SS] (at or before --start: the next day)")
        ->excludes(duration);
    c->add_option("--late", cmds.late, "a window found running late: resume (default), restart or skip");
    auto* items =
        c->add_option("--item", cmds.items, "playlist item in order: clip ID, ID:GAIN_DB, or gap:MS (repeat)");
    c->add_option("--studio", cmds.studio, "instead of --item: play this studio live for the window (needs --duration "
                                           "or --end)")
        ->excludes(items);
    cmds.list = s->add_subcommand("list", "schedules in your scope with their next windows");
    cmds.list->add_option("--next", cmds.next_count, "next windows per schedule (default 3)");
    cmds.remove = s->add_subcommand("delete", "delete a schedule (stops a window on air)");
    cmds.remove->add_option("id", cmds.id, "schedule id")->required();
    cmds.next = s->add_subcommand("next", "windows of the schedules in your scope, by start time");
    cmds.next->add_option("--hours", cmds.hours, "how far ahead (default 24, at most 744)");
}

int run_schedules_command(const SchedulesCommands& cmds, loa::engine::ControlClient& client, const std::string& token,
                          bool json, int timeout_ms) {
    client.set_token(token);
    if (cmds.create->parsed()) {
        pb::CreateScheduleRequest req;
        req.set_name(cmds.name);
        for (const auto& z : cmds.zones) req.add_zone_ids(z);
        const auto level = parse_level(cmds.level);
        if (!level) return EX_USAGE;
        req.set_level(*level);
        req.set_time_zone(cmds.time_zone);
        if (cmds.daily) {
            req.set_recurrence(pb::RECURRENCE_DAILY);
        } else if (!cmds.weekdays.empty()) {
            const auto days = parse_weekdays(cmds.weekdays);
            if (!days) {
                std::cerr << "loactl: --weekdays '" << cmds.weekdays << "' is not a list like mon,wed,fri\n";
                return EX_USAGE;
            }
            req.set_recurrence(pb::RECURRENCE_WEEKDAYS);
            for (const auto d : *days) req.add_weekdays(d);
        } else if (cmds.every_days) {
            req.set_recurrence(pb::RECURRENCE_EVERY_N_DAYS);
            req.set_every_days(*cmds.every_days);
        } else {
            req.set_recurrence(pb::RECURRENCE_ONCE);
        }
        req.set_first_date(cmds.date);
        req.set_until_date(cmds.until);
        req.set_start_time(cmds.start);
        if (cmds.duration_s) req.set_duration_s(*cmds.duration_s);
        if (!cmds.end.empty()) req.set_end_time(cmds.end);
        const auto late = lower(cmds.late);
        if (late == "resume") {
            req.set_late_policy(pb::LATE_RESUME);
        } else if (late == "restart") {
            req.set_late_policy(pb::LATE_RESTART);
        } else if (late == "skip") {
            req.set_late_policy(pb::LATE_SKIP);
        } else {
            std::cerr << "loactl: --late must be resume, restart or skip\n";
            return EX_USAGE;
        }
        for (const auto& text : cmds.items) {
            const auto item = parse_schedule_item(text);
            if (!item) {
                std::cerr << "loactl: --item '" << text << "' is not a clip id (ID or ID:GAIN_DB) or gap:MS\n";
                return EX_USAGE;
            }
            *req.add_items() = *item;
        }
        if (cmds.items.empty() && cmds.studio.empty()) {
            std::cerr << "loactl: give the playlist (--item ...) or a studio (--studio NAME)\n";
            return EX_USAGE;
        }
        req.set_studio(cmds.studio);
        pb::CreateScheduleResponse r;
        if (const int rc = call(client, "CreateSchedule", req, r, timeout_ms); rc != 0) return rc;
        if (json) std::cout << json_of(r) << "\n";
        else std::cout << r.id() << "\n";
        return 0;
    }
    if (cmds.remove->parsed()) {
        pb::DeleteScheduleRequest req;
        req.set_id(cmds.id);
        pb::DeleteScheduleResponse r;
        if (const int rc = call(client, "DeleteSchedule", req, r, timeout_ms); rc != 0) return rc;
        if (json) std::cout << json_of(r) << "\n";
        else std::cout << "schedule " << cmds.id << " deleted\n";
        return 0;
    }
    if (cmds.next->parsed()) {
        pb::NextOccurrencesRequest req;
        req.set_hours(cmds.hours);
        pb::NextOccurrencesResponse r;
        if (const int rc = call(client, "NextOccurrences", req, r, timeout_ms); rc != 0) return rc;
        if (json) {
            std::cout << json_of(r) << "\n";
            return 0;
        }
        Table t({"START", "END", "TZ", "ID", "SCHEDULE", "LEVEL", "ON AIR", "ZONES"});
        for (const auto& o : r.occurrences()) {
            t.add({o.local_start(), end_text(o), o.time_zone(), std::to_string(o.schedule_id()),
                   o.schedule_name(), level_text(o.level()), o.on_air() ? "yes" : "-",
                   joined(o.zone_ids(), ",")});
        }
        t.print();
        return 0;
    }
    pb::ListSchedulesRequest req;
    req.set_next_count(cmds.next_count);
    pb::ListSchedulesResponse r;
    if (const int rc = call(client, "ListSchedules", req, r, timeout_ms); rc != 0) return rc;
    if (json) {
        std::cout << json_of(r) << "\n";
        return 0;
    }
    Table t({"ID", "NAME", "LEVEL", "WHEN", "WINDOW", "PLAYS", "STATE", "NEXT", "ZONES"});
    for (const auto& s : r.schedules()) {
        std::string state = "-";
        if (!s.problem().empty()) {
            state = "broken: " + s.problem();
        } else if (s.programme_id() != 0 && !s.studio().empty()) {
            state = "on air (live)";
        } else if (s.programme_id() != 0) {
            state = "on air (" + std::to_string(s.position_ms() / 1000) + " s in)";
        }
        const auto plays =
            s.studio().empty() ? std::to_string(s.items_size()) + " item(s)" : "studio " + s.studio();
        std::string next = "-";
        for (const auto& o : s.next()) {
            if (o.on_air()) continue;
            next = o.local_start();
            break;
        }
        t.add({std::to_string(s.id()), s.name(), level_text(s.level()), when_text(s) + " " + s.time_zone(),
               window_text(s), plays, state, next, joined(s.zone_ids(), ",")});
    }
    t.print();
    return 0;
}

}  // namespace loactl
