// loa-bench: the benchmarking harness. One subcommand per scenario.
#include <CLI/CLI.hpp>

#include "control_bench.h"
#include "fanout.h"
#include "impair.h"
#include "jitter.h"
#include "latency.h"
#include "preempt.h"

int main(int argc, char** argv) {
  CLI::App app{"loa-bench: Loa's benchmarking harness (fan-out, jitter, latency; against the limit and GStreamer)"};
  app.require_subcommand(1);
  int exit_code = 0;
  loa::bench::add_fanout_scenario(app, exit_code);
  loa::bench::add_control_scenario(app, exit_code);
  loa::bench::add_impair_command(app, exit_code);
  loa::bench::add_jitter_scenario(app, exit_code);
  loa::bench::add_latency_scenario(app, exit_code);
  loa::bench::add_preempt_scenario(app, exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
