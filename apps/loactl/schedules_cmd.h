#pragma once
// loactl schedules:
//   create --name N --zone Z [--zone Z2 ...] --start HH:MM[:SS] (--item ITEM [--item ITEM ...] | --studio S)
//          [--once | --daily | --weekdays mon,wed,... | --every-days N] [--date YYYY-MM-DD]
//          [--until YYYY-MM-DD] [--duration S | --end HH:MM[:SS]] [--late resume|restart|skip]
//          [--tz IANA] [--level L]                        prints the new schedule's id
//   list [--next N]                                       schedules in your scope with their next windows
//   delete ID
//   next [--hours H]                                      windows of every schedule in your scope, by time
// An ITEM is a catalogue clip "ID" or "ID:GAIN_DB" (e.g. 12:-3), or a gap "gap:MS".
// --studio S plays declared studio S live for each window instead (needs
// --duration or --end).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "loa/control/v1/control.pb.h"
#include "loa/engine/control_client.h"

namespace loactl {

struct SchedulesCommands {
    CLI::App* create = nullptr;
    CLI::App* list = nullptr;
    CLI::App* remove = nullptr;
    CLI::App* next = nullptr;
    std::string name;
    std::vector<std::string> zones;
    std::string level = "scheduled";
    std::string time_zone;
    bool once = false;
    bool daily = false;
    std::string weekdays;  // "mon,wed,fri"
    std::optional<std::uint32_t> every_days;
    std::string date;
    std::string until;
    std::string start;
    std::optional<double> duration_s;
    std::string end;
    std::string late = "resume";
    std::vector<std::string> items;
    std::string studio;
    std::uint32_t next_count = 0;
    double hours = 24.0;
    std::uint64_t id = 0;
    bool parsed() const { return create->parsed() || list->parsed() || remove->parsed() || next->parsed(); }
};

/// Adds the `schedules` subcommand to `app`; the struct must outlive parsing.
void add_schedules_commands(CLI::App& app, SchedulesCommands& cmds);

/// Runs the parsed command; returns loactl's exit status (0 or the gRPC code;
/// 64 for an unreadable item, weekday, level or late policy, or neither
/// items nor a studio). Throws
/// ControlError when the engine cannot be reached.
int run_schedules_command(const SchedulesCommands& cmds, loa::engine::ControlClient& client, const std::string& token,
                          bool json, int timeout_ms);

/// Parses one playlist item ("12", "12:-3.5", "gap:2000"); nullopt when unreadable.
std::optional<loa::control::v1::ScheduleItem> parse_schedule_item(const std::string& text);
/// Parses "mon,tue,..." (three-letter English names or 1..7, Monday = 1) to
/// ISO weekday numbers; nullopt when a name is unknown or the list is empty.
std::optional<std::vector<std::uint32_t>> parse_weekdays(const std::string& text);

}  // namespace loactl
