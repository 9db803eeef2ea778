#include "asrun_cmd.h"

#include "alerts_cmd.h"
#include "output.h"

#include <sysexits.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <regex>
#include <sstream>

#include <date/tz.h>
#include <google/protobuf/util/json_util.h>

#include "loa/engine/schedule_control.h"

namespace pb = loa::control::v1;

namespace loactl {

namespace {

const date::time_zone* find_zone(const std::string& name) {
    if (name.empty()) return nullptr;
    try {
        return date::locate_zone(name);
    } catch (const std::exception&) {
        return nullptr;
    }
}

std::int64_t wall_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// "2026-03-10 06:00:00" in the zone (the table's form).
std::string local_text(std::int64_t unix_ms, const date::time_zone& tz) {
    const auto iso = iso8601_in(unix_ms, tz.name());
    return iso.substr(0, 10) + " " + iso.substr(11, 8);
}

// An entry as protobuf's JSON printer writes it, zero fields included so that
// every object of an export has the same keys.
std::string entry_json(const pb::AsRunEntry& e) {
    std::string out;
    google::protobuf::util::JsonPrintOptions o;
    o.preserve_proto_field_names = true;
    o.always_print_primitive_fields = true;
    (void)google::protobuf::util::MessageToJsonString(e, &out, o);
    return out;
}

std::string csv_row(const pb::AsRunEntry& e, const std::string& tz) {
    std::vector<std::string> f{std::to_string(e.id()),
                               std::to_string(e.programme_id()),
                               e.kind(),
                               e.name(),
                               e.zone_id(),
                               level_text(e.level()),
                               std::to_string(e.ssrc()),
                               iso8601_in(e.start_unix_ms(), tz),
                               std::to_string(e.start_unix_ms()),
                               e.on_air() ? "" : iso8601_in(e.end_unix_ms(), tz),
                               e.on_air() ? "" : std::to_string(e.end_unix_ms()),
                               e.on_air() ? "" : std::to_string(e.end_unix_ms() - e.start_unix_ms()),
                               e.on_air() ? "true" : "false",
                               e.end_reason(),
                               joined(e.preempted_by(), "; "),
                               std::to_string(e.preempted_ms()),
                               std::to_string(e.clusters_targeted()),
                               std::to_string(e.clusters_confirmed())};
    std::string out;
    for (std::size_t i = 0; i < f.size(); ++i) out += (i == 0 ? "" : ",") + csv_field(f[i]);
    return out + "\r\n";
}

constexpr const char* kCsvHeader =
    "id,programme_id,kind,name,zone_id,level,ssrc,start,start_unix_ms,end,end_unix_ms,duration_ms,on_air,"
    "end_reason,preempted_by,preempted_ms,clusters_targeted,clusters_confirmed\r\n";

// Calls ListAsRun page after page; `each` gets every entry in order.
int for_each_entry(loa::engine::ControlClient& client, pb::ListAsRunRequest req, int timeout_ms,
                   const std::function<void(const pb::AsRunEntry&)>& each) {
    for (;;) {
        pb::ListAsRunResponse r;
        if (const int rc = call(client, "ListAsRun", req, r, timeout_ms); rc != 0) return rc;
        for (const auto& e : r.entries()) each(e);
        if (r.next_page_token().empty()) return 0;
        req.set_page_token(r.next_page_token());
    }
}

}  // namespace

std::optional<std::int64_t> parse_asrun_time(const std::string& text, const std::string& time_zone,
                                             std::int64_t now_unix_ms) {
    if (text == "now") return now_unix_ms;
    static const std::regex ago(R"(^-(\d{1,9})([smhd])$)");
    static const std::regex digits(R"(^\d{1,16}$)");
    static const std::regex offset(R"((Z|[+-]\d{2}:?\d{2})$)");
    static const std::regex local(R"(^(\d{4}-\d{2}-\d{2})(?:[T ](\d{1,2}:\d{2}(?::\d{2})?))?$)");
    std::smatch m;
    if (std::regex_match(text, m, ago)) {
        const std::int64_t n = std::stoll(m[1]);
        const char unit = m[2].str()[0];
        const std::int64_t ms = unit == 's' ? 1000 : unit == 'm' ? 60'000 : unit == 'h' ? 3'600'000 : 86'400'000;
        return now_unix_ms - n * ms;
    }
    if (std::regex_match(text, digits)) return std::stoll(text);
    // With an offset the time zone plays no part.
    if (text.size() > 10 && std::regex_search(text, offset)) return parse_iso8601_ms(text);
    if (!std::regex_match(text, m, local)) return std::nullopt;
    const auto* tz = find_zone(time_zone);
    const auto day = loa::engine::parse_local_date(m[1]);
    if (tz == nullptr || !day) return std::nullopt;
    std::chrono::seconds tod{0};
    if (m[2].matched) {
        const auto t = loa::engine::parse_time_of_day(m[2]);
        if (!t) return std::nullopt;
        tod = *t;
    }
    // As schedules read local times: a skipped time takes the offset before the jump.
    const date::local_seconds l(std::chrono::sys_days(*day).time_since_epoch() + tod);
    const auto info = tz->get_info(l);
    const auto sys = l.time_since_epoch() - info.first.offset;
    return std::chrono::duration_cast<std::chrono::milliseconds>(sys).count();
}

std::string iso8601_in(std::int64_t unix_ms, const std::string& time_zone) {
    const auto* tz = find_zone(time_zone);
    const date::sys_time<std::chrono::milliseconds> t{std::chrono::milliseconds(unix_ms)};
    const auto offset = tz != nullptr ? tz->get_info(t).offset : std::chrono::seconds(0);
    const auto local = t.time_since_epoch() + offset;
    const auto day = std::chrono::floor<std::chrono::days>(local);
    const std::chrono::year_month_day ymd{std::chrono::sys_days(day)};
    const auto in_day = local - day;
    const auto h = std::chrono::duration_cast<std::chrono::hours>(in_day).count();
    const auto mi = std::chrono::duration_cast<std::chrono::minutes>(in_day).count() % 60;
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(in_day).count() % 60;
    const auto ms = in_day.count() % 1000;
    const auto off_min = offset.count() / 60;
    const char sign = off_min < 0 ? '-' : '+';
    const auto abs_min = off_min < 0 ? -off_min : off_min;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lld.%03lld%c%02lld:%02lld",
                  static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<long long>(h), static_cast<long long>(mi), static_cast<long long>(s),
                  static_cast<long long>(ms), sign, static_cast<long long>(abs_min / 60),
                  static_cast<long long>(abs_min % 60));
    return buf;
}

std::string csv_field(const std::string& text) {
    if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

void add_asrun_commands(CLI::App& app, AsRunCommands& cmds) {
    auto* a = app.add_subcommand("asrun", "the as-run log: every play of every programme per zone");
    a->require_subcommand(1);
    const auto common = [&](CLI::App* c) {
        c->add_option("--from", cmds.from,
                      "start of the range: now, -24h/-30m/-7d, Unix ms, ISO 8601 with offset, or local "
                      "YYYY-MM-DD[ HH:MM[:SS]] (default -24h)");
        c->add_option("--to", cmds.to, "end of the range, same forms (default now)");
        c->add_option("--zone", cmds.zone, "only this zone and the zones below it");
        c->add_option("--tz", cmds.time_zone, "IANA time zone of local times in and out (default Asia/Ho_Chi_Minh)");
    };
    cmds.list = a->add_subcommand("list", "plays overlapping the range, as a table");
    common(cmds.list);
    cmds.exp = a->add_subcommand("export", "plays overlapping the range, as CSV or JSON");
    common(cmds.exp);
    cmds.exp->add_option("--format", cmds.format, "csv (default) or json");
    cmds.exp->add_option("-o,--output", cmds.output, "write to FILE instead of standard output");
}

int run_asrun_command(const AsRunCommands& cmds, loa::engine::ControlClient& client, const std::string& token,
                      bool json, int timeout_ms) {
    client.set_token(token);
    const auto* tz = find_zone(cmds.time_zone);
    if (tz == nullptr) {
        std::cerr << "loactl: --tz '" << cmds.time_zone << "' is not a known IANA time zone\n";
        return EX_USAGE;
    }
    const auto now = wall_now_ms();
    const auto from = parse_asrun_time(cmds.from, cmds.time_zone, now);
    const auto to = parse_asrun_time(cmds.to, cmds.time_zone, now);
    for (const auto& [name, text, value] : {std::tuple{"--from", cmds.from, from}, std::tuple{"--to", cmds.to, to}}) {
        if (!value || *value < 0) {
            std::cerr << "loactl: " << name << " '" << text
                      << "' is not a time (now, -24h, Unix ms, 2026-03-10T06:00:00+07:00 or 2026-03-10 06:00)\n";
            return EX_USAGE;
        }
    }
    pb::ListAsRunRequest req;
    req.set_from_unix_ms(*from);
    // "now" is the engine's now, so a play starting this instant is not missed.
    req.set_to_unix_ms(cmds.to == "now" ? 0 : *to);
    req.set_zone_id(cmds.zone);

    const bool as_json = cmds.exp->parsed() ? cmds.format == "json" : json;
    if (cmds.exp->parsed() && cmds.format != "csv" && cmds.format != "json") {
        std::cerr << "loactl: --format must be csv or json\n";
        return EX_USAGE;
    }
    if (cmds.exp->parsed()) req.set_page_size(10000);

    // Everything is gathered before anything is written: a failed call
    // leaves no half-written file.
    std::ostringstream out;
    std::size_t n = 0;
    Table table({"ID", "START", "END", "ZONE", "KIND", "NAME", "LEVEL", "CONFIRMED", "PREEMPTED BY", "END REASON"});
    if (as_json) out << "[";
    if (cmds.exp->parsed() && !as_json) out << kCsvHeader;
    const int rc = for_each_entry(client, req, timeout_ms, [&](const pb::AsRunEntry& e) {
        if (as_json) {
            out << (n == 0 ? "\n" : ",\n") << entry_json(e);
        } else if (cmds.exp->parsed()) {
            out << csv_row(e, cmds.time_zone);
        } else {
            table.add({std::to_string(e.id()), local_text(e.start_unix_ms(), *tz),
                       e.on_air() ? "on air" : local_text(e.end_unix_ms(), *tz), e.zone_id(), e.kind(), e.name(),
                       level_text(e.level()),
                       std::to_string(e.clusters_confirmed()) + "/" + std::to_string(e.clusters_targeted()),
                       e.preempted_by_size() == 0 ? "-" : joined(e.preempted_by(), "; "),
                       e.end_reason().empty() ? "-" : e.end_reason()});
        }
        ++n;
    });
    if (rc != 0) return rc;
    if (as_json) out << (n == 0 ? "]\n" : "\n]\n");
    if (!as_json && !cmds.exp->parsed()) table.print(out);

    if (cmds.output.empty()) {
        std::cout << out.str() << std::flush;
        return 0;
    }
    std::ofstream file(cmds.output, std::ios::binary | std::ios::trunc);
    file << out.str();
    file.close();
    if (!file) {
        std::cerr << "loactl: cannot write " << cmds.output << "\n";
        return EX_CANTCREAT;
    }
    std::cerr << n << " entr" << (n == 1 ? "y" : "ies") << " written to " << cmds.output << "\n";
    return 0;
}

}  // namespace loactl
