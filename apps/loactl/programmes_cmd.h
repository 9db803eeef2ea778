#pragma once
// loactl programmes: start --zone Z [--zone Z2] --level L (--tone HZ | --clip-id ID | --clip PATH | --studio NAME)
// [--loop] [--on-preempt resume|restart|drop] [--name N],
// stop ID, list.

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "loa/engine/control_client.h"

namespace loactl {

struct ProgrammesCommands {
    CLI::App* start = nullptr;
    CLI::App* stop = nullptr;
    CLI::App* list = nullptr;
    std::vector<std::string> zones;
    std::string level = "scheduled";
    std::string name;
    double tone_hz = 0;
    std::int64_t clip_id = 0;
    std::string clip;
    bool loop = false;
    std::string on_preempt = "resume";
    std::int64_t background_clip_id = 0;
    double duck_db = 0.0;
    std::string studio;
    std::uint64_t id = 0;
    bool parsed() const { return start->parsed() || stop->parsed() || list->parsed(); }
};

/// Adds the `programmes` subcommand to `app`; the struct must outlive parsing.
void add_programmes_commands(CLI::App& app, ProgrammesCommands& cmds);

/// Runs the parsed command; returns loactl's exit status (0 or the gRPC code).
/// Throws ControlError when the engine cannot be reached.
int run_programmes_command(const ProgrammesCommands& cmds, loa::engine::ControlClient& client,
                           const std::string& token, bool json, int timeout_ms);

}  // namespace loactl
