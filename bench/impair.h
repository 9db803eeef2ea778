// `loa-bench impair`: runs Loa's UDP impairment proxy in the foreground
// (seeded loss, delay, jitter, reordering, duplication) and prints its
// counters at exit.
#pragma once

namespace CLI {
class App;
}

namespace loa::bench {

// Registers the `impair` subcommand; when it runs it stores its exit code.
void add_impair_command(CLI::App& app, int& exit_code);

}  // namespace loa::bench
