#pragma once
// loactl clips: upload FILE [--name N] [--zone Z], list, delete ID.

#include <string>

#include <CLI/CLI.hpp>

#include "loa/engine/control_client.h"

namespace loactl {

struct ClipsCommands {
    CLI::App* upload = nullptr;
    CLI::App* list = nullptr;
    CLI::App* remove = nullptr;
    std::string file, name, zone;
    std::uint64_t id = 0;
    bool parsed() const { return upload->parsed() || list->parsed() || remove->parsed(); }
};

/// Adds the `clips` subcommand to `app`; the returned struct must outlive parsing.
void add_clips_commands(CLI::App& app, ClipsCommands& cmds);

/// Runs the parsed clips command; returns loactl's exit status (0 or the gRPC code).
/// Throws ControlError when the engine cannot be reached.
int run_clips_command(const ClipsCommands& cmds, loa::engine::ControlClient& client, const std::string& token,
                      bool json, int timeout_ms);

}  // namespace loactl
