#pragma once
// loactl studios:
//   declare NAME --zone Z (--ssrc N | --source-address IP) [--min-delay-ms MS]
//           [--max-delay-ms MS] [--delay-ms MS] [--fallback-clip ID]
//   list                                  studios in your scope with their live state
//   remove NAME

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "loa/engine/control_client.h"

namespace loactl {

struct StudiosCommands {
    CLI::App* declare = nullptr;
    CLI::App* list = nullptr;
    CLI::App* remove = nullptr;
    CLI::Option* ssrc_opt = nullptr;
    CLI::Option* address_opt = nullptr;
    CLI::Option* fallback_opt = nullptr;
    std::string name;
    std::string zone;
    std::uint32_t ssrc = 0;
    std::string source_address;
    int min_delay_ms = 0;
    int max_delay_ms = 0;
    int delay_ms = 0;
    std::uint64_t fallback_clip = 0;
    bool parsed() const { return declare->parsed() || list->parsed() || remove->parsed(); }
};

/// Adds the `studios` subcommand to `app`; the struct must outlive parsing.
void add_studios_commands(CLI::App& app, StudiosCommands& cmds);

/// Runs the parsed command; returns loactl's exit status (0 or the gRPC code).
/// Throws ControlError when the engine cannot be reached.
int run_studios_command(const StudiosCommands& cmds, loa::engine::ControlClient& client, const std::string& token,
                        bool json, int timeout_ms);

}  // namespace loactl
