// `loa-bench control`: unary calls per second and latency over the engine's
// control socket with 1, 8 and 64 concurrent clients, a mutating call with its
// commit cost, and the late media frames of a programme fanned out meanwhile.
#pragma once

namespace CLI {
class App;
}

namespace loa::bench {

// Registers the `control` subcommand; when it runs it stores its exit code.
void add_control_scenario(CLI::App& app, int& exit_code);

}  // namespace loa::bench
