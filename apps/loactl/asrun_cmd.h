#pragma once
// loactl asrun: the as-run log (every play of every programme per zone).
//   list   [--from T] [--to T] [--zone Z] [--tz IANA]        a table (--json: one JSON array)
//   export [--from T] [--to T] [--zone Z] [--tz IANA] [--format csv|json] [-o FILE]
// Both page through every entry of the range (plays overlapping [from, to)).
// A time T is "now", a Unix time in ms, a span back from now ("-24h", "-30m",
// "-7d", "-90s"), an ISO 8601 time with an offset ("2026-03-10T06:00:00+07:00",
// "...Z"), or a local date or date and time ("2026-03-10", "2026-03-10 06:00[:SS]")
// read in --tz (default Asia/Ho_Chi_Minh, the engine's default, as schedules).
// Defaults: --from -24h, --to now. Times are printed in --tz: the table as
// "YYYY-MM-DD HH:MM:SS", CSV as ISO 8601 with the offset plus Unix ms.
//
// CSV (RFC 4180: CRLF line ends, fields with a comma, quote or line break
// quoted, quotes doubled), one header row then one row per entry:
//   id,programme_id,kind,name,zone_id,level,ssrc,start,start_unix_ms,end,end_unix_ms,
//   duration_ms,on_air,end_reason,preempted_by,preempted_ms,clusters_targeted,clusters_confirmed
// (end, end_unix_ms and duration_ms are empty while on the air; preempted_by
// names are "; "-separated). JSON: one array of AsRunEntry objects as
// protobuf's JSON printer writes them (proto field names, zero values
// included; 64-bit integers as strings, as proto3 JSON has them).

#include <cstdint>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "loa/control/v1/control.pb.h"
#include "loa/engine/control_client.h"

namespace loactl {

struct AsRunCommands {
    CLI::App* list = nullptr;
    CLI::App* exp = nullptr;
    std::string from = "-24h";
    std::string to = "now";
    std::string zone;
    std::string time_zone = "Asia/Ho_Chi_Minh";
    std::string format = "csv";
    std::string output;  // empty = stdout
    bool parsed() const { return list->parsed() || exp->parsed(); }
};

/// Adds the `asrun` subcommand to `app`; the struct must outlive parsing.
void add_asrun_commands(CLI::App& app, AsRunCommands& cmds);

/// Runs the parsed command; returns loactl's exit status (0 or the gRPC code
/// of a failed call; 64 for an unreadable time, time zone or format; 73 when
/// the output file cannot be written). Throws ControlError when the engine
/// cannot be reached.
int run_asrun_command(const AsRunCommands& cmds, loa::engine::ControlClient& client, const std::string& token,
                      bool json, int timeout_ms);

/// Reads a time as the commands accept it (see above) to Unix ms;
/// nullopt when unreadable or the time zone is unknown.
std::optional<std::int64_t> parse_asrun_time(const std::string& text, const std::string& time_zone,
                                             std::int64_t now_unix_ms);
/// "2026-03-10T06:00:00.000+07:00" in `time_zone` (which must exist).
std::string iso8601_in(std::int64_t unix_ms, const std::string& time_zone);
/// One CSV field, quoted when RFC 4180 asks for it.
std::string csv_field(const std::string& text);

}  // namespace loactl
