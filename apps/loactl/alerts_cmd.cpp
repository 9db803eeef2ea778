#include "alerts_cmd.h"

#include "output.h"

#include <sysexits.h>

#include <cstdio>
#include <ctime>
#include <iostream>
#include <regex>

#include "loa/control/v1/control.pb.h"

namespace pb = loa::control::v1;

namespace loactl {

namespace {

std::string local_time(std::int64_t unix_ms) {
    const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    if (localtime_r(&t, &tm) == nullptr) return std::to_string(unix_ms);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

std::string join(const google::protobuf::RepeatedPtrField<std::string>& ids) {
    const auto out = joined(ids, ", ");
    return out.empty() ? "-" : out;
}

std::string play_text(const pb::Alert& a) {
    if (a.studio_live()) return "live";  // the studio is heard
    return (a.play() == 0 ? std::string("-") : std::to_string(a.play())) + "/" + std::to_string(a.repeats());
}

std::string confirmed_text(const pb::Alert& a) {
    return std::to_string(a.clusters_confirmed()) + "/" + std::to_string(a.clusters_targeted());
}

}  // namespace

std::optional<std::int64_t> parse_iso8601_ms(const std::string& text) {
    static const std::regex re(
        R"(^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3})\d*)?)?(Z|[+-]\d{2}:?\d{2})?$)");
    std::smatch m;
    if (!std::regex_match(text, m, re)) return std::nullopt;
    std::tm tm{};
    tm.tm_year = std::stoi(m[1]) - 1900;
    tm.tm_mon = std::stoi(m[2]) - 1;
    tm.tm_mday = std::stoi(m[3]);
    tm.tm_hour = std::stoi(m[4]);
    tm.tm_min = std::stoi(m[5]);
    tm.tm_sec = m[6].matched ? std::stoi(m[6]) : 0;
    if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
        return std::nullopt;
    }
    std::int64_t ms = 0;
    if (m[7].matched) {
        std::string frac = m[7];
        while (frac.size() < 3) frac += '0';
        ms = std::stoi(frac);
    }
    std::time_t t = 0;
    if (!m[8].matched) {
        tm.tm_isdst = -1;  // local time of this machine
        t = std::mktime(&tm);
        if (t == static_cast<std::time_t>(-1)) return std::nullopt;
    } else {
        t = timegm(&tm);
        const std::string off = m[8];
        if (off != "Z") {
            const int sign = off[0] == '-' ? -1 : 1;
            const std::string digits = off.substr(1);
            const int hh = std::stoi(digits.substr(0, 2));
            const int mm = std::stoi(digits.substr(digits.size() - 2));
            if (hh > 23 || mm > 59) return std::nullopt;
            t -= static_cast<std::time_t>(sign * (hh * 3600 + mm * 60));
        }
    }
    return static_cast<std::int64_t>(t) * 1000 + ms;
}

void add_alerts_commands(CLI::App& app, AlertsCommands& cmds) {
    auto* a = app.add_subcommand("alerts",
                                 "emergency alerts: attention chime + clip and/or a live studio, forced volume, "
                                 "confirmation");
    a->require_subcommand(1);
    cmds.raise = a->add_subcommand("raise", "raise an alert to zones; prints its id");
    cmds.raise->add_option("--zone", cmds.zones, "target zone (repeat for several)")->required();
    cmds.raise->add_option("--clip-id", cmds.clip_id, "the message: a catalogue clip (loactl clips list)");
    cmds.raise->add_option("--studio", cmds.studio,
                           "a live studio heard after chime and clip until the alert ends (needs --duration or "
                           "--expires)");
    cmds.raise->add_option("--level", cmds.level,
                           "emergency (default), province, district, commune, scheduled or background");
    cmds.raise->add_option("--name", cmds.name, "display name");
    cmds.raise->add_option("--repeats", cmds.repeats, "plays of chime + clip (default 1)");
    cmds.raise->add_option("--interval", cmds.interval_s, "seconds of silence between plays");
    auto* duration = cmds.raise->add_option("--duration", cmds.duration_s, "expire after SECONDS");
    cmds.raise->add_option("--expires", cmds.expires, "expire at this time (ISO 8601; no offset = local time)")
        ->excludes(duration);
    cmds.raise->add_option("--volume", cmds.volume_pct, "forced speaker volume in percent (default 100)");
    cmds.raise->add_flag("--no-tone", cmds.no_tone, "no attention chime before the clip");
    cmds.cancel = a->add_subcommand("cancel", "end an alert now");
    cmds.cancel->add_option("id", cmds.id, "alert id")->required();
    cmds.list = a->add_subcommand("list", "alerts in your scope with their confirmation");
    cmds.status = a->add_subcommand("status", "which targeted clusters confirmed, which did not, which are offline");
    cmds.status->add_option("id", cmds.id, "alert id")->required();
}

int run_alerts_command(const AlertsCommands& cmds, loa::engine::ControlClient& client, const std::string& token,
                       bool json, int timeout_ms) {
    client.set_token(token);
    if (cmds.raise->parsed()) {
        pb::RaiseAlertRequest req;
        req.set_name(cmds.name);
        const auto level = parse_level(cmds.level);
        if (!level) return EX_USAGE;
        req.set_level(*level);
        for (const auto& z : cmds.zones) req.add_zone_ids(z);
        req.set_clip_id(cmds.clip_id);
        req.set_studio(cmds.studio);
        req.set_attention_tone(!cmds.no_tone);
        if (cmds.repeats) req.set_repeats(*cmds.repeats);
        req.set_interval_s(cmds.interval_s);
        req.set_duration_s(cmds.duration_s);
        if (!cmds.expires.empty()) {
            const auto at = parse_iso8601_ms(cmds.expires);
            if (!at) {
                std::cerr << "loactl: --expires '" << cmds.expires
                          << "' is not an ISO 8601 time (e.g. 2025-06-01T14:30:00+07:00)\n";
                return EX_USAGE;
            }
            req.set_expires_unix_ms(*at);
        }
        if (cmds.volume_pct) req.set_volume_pct(*cmds.volume_pct);
        pb::RaiseAlertResponse r;
        if (const int rc = call(client, "RaiseAlert", req, r, timeout_ms); rc != 0) return rc;
        if (json) std::cout << json_of(r) << "\n";
        else std::cout << r.id() << "\n";
        return 0;
    }
    if (cmds.cancel->parsed()) {
        pb::CancelAlertRequest req;
        req.set_id(cmds.id);
        pb::CancelAlertResponse r;
        if (const int rc = call(client, "CancelAlert", req, r, timeout_ms); rc != 0) return rc;
        if (json) std::cout << json_of(r) << "\n";
        else std::cout << "alert " << cmds.id << " cancelled\n";
        return 0;
    }
    if (cmds.status->parsed()) {
        pb::GetAlertStatusRequest req;
        req.set_id(cmds.id);
        pb::GetAlertStatusResponse r;
        if (const int rc = call(client, "GetAlertStatus", req, r, timeout_ms); rc != 0) return rc;
        if (json) {
            std::cout << json_of(r) << "\n";
            return 0;
        }
        const auto& a = r.alert();
        std::cout << "alert " << a.id() << " '" << a.name() << "' (" << level_text(a.level()) << ") to "
                  << joined(a.zone_ids(), ",") << "\n";
        std::cout << "raised:        " << local_time(a.raised_unix_ms()) << " by " << a.raised_by() << "\n";
        std::cout << "expires:       " << (a.expires_unix_ms() == 0 ? std::string("after its last play")
                                                                    : local_time(a.expires_unix_ms()))
                  << "\n";
        std::cout << "play:          " << play_text(a) << ", volume " << a.volume_pct() << " %, ssrc " << a.ssrc()
                  << "\n";
        if (!a.studio().empty()) {
            std::cout << "studio:        " << a.studio() << (a.studio_live() ? " (heard now)" : " (after the plays)")
                      << "\n";
        }
        std::cout << "targeted:      " << a.clusters_targeted() << "\n";
        std::cout << "confirmed:     " << a.clusters_confirmed() << "  " << join(r.confirmed()) << "\n";
        std::cout << "not confirmed: " << a.clusters_not_confirmed() << "  " << join(r.not_confirmed()) << "\n";
        std::cout << "offline:       " << a.clusters_offline() << "  " << join(r.offline()) << "\n";
        return 0;
    }
    pb::ListAlertsResponse r;
    if (const int rc = call(client, "ListAlerts", pb::ListAlertsRequest(), r, timeout_ms); rc != 0) return rc;
    if (json) {
        std::cout << json_of(r) << "\n";
        return 0;
    }
    Table t({"ID", "NAME", "LEVEL", "PLAY", "EXPIRES", "CONFIRMED", "OFFLINE", "ZONES"});
    for (const auto& a : r.alerts()) {
        t.add({std::to_string(a.id()), a.name(), level_text(a.level()), play_text(a),
               a.expires_unix_ms() == 0 ? std::string("after last play") : local_time(a.expires_unix_ms()),
               confirmed_text(a), std::to_string(a.clusters_offline()), joined(a.zone_ids(), ",")});
    }
    t.print();
    return 0;
}

}  // namespace loactl
