#pragma once
// loactl alerts:
//   raise --zone Z [--zone Z2 ...] --clip-id ID [--repeats N] [--interval S]
//         [--duration S | --expires ISO-8601] [--volume PCT] [--no-tone]
//         [--level L] [--name N]            prints the new alert's id
//   cancel ID
//   list                                    alerts in your scope
//   status ID                               confirmed / not confirmed / offline clusters

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "loa/engine/control_client.h"

namespace loactl {

struct AlertsCommands {
    CLI::App* raise = nullptr;
    CLI::App* cancel = nullptr;
    CLI::App* list = nullptr;
    CLI::App* status = nullptr;
    std::vector<std::string> zones;
    std::string name;
    std::string level = "emergency";
    std::uint64_t clip_id = 0;
    std::string studio;
    std::optional<int> repeats;
    double interval_s = 0;
    double duration_s = 0;
    std::string expires;  // ISO 8601
    std::optional<int> volume_pct;
    bool no_tone = false;
    std::uint64_t id = 0;
    bool parsed() const { return raise->parsed() || cancel->parsed() || list->parsed() || status->parsed(); }
};

/// Adds the `alerts` subcommand to `app`; the struct must outlive parsing.
void add_alerts_commands(CLI::App& app, AlertsCommands& cmds);

/// Runs the parsed command; returns loactl's exit status (0 or the gRPC code;
/// 64 for an unreadable --expires). Throws ControlError when the engine
/// cannot be reached.
int run_alerts_command(const AlertsCommands& cmds, loa::engine::ControlClient& client, const std::string& token,
                       bool json, int timeout_ms);

/// Parses "YYYY-MM-DDTHH:MM[:SS][.fff][Z|+HH:MM|-HH:MM]" (a space may stand
/// for the T) to Unix ms; without an offset the time is local to this
/// machine. nullopt when unreadable.
std::optional<std::int64_t> parse_iso8601_ms(const std::string& text);

}  // namespace loactl
