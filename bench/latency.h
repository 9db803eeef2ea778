// `loa-bench latency`: mouth-to-speaker latency through the product's path,
// loa-studio --clicks -> [impairment proxy] -> loa-engine (ingest, mix, encode
// once) -> loa-speaker with a zero-buffer timestamped click sink, all on
// CLOCK_MONOTONIC.
#pragma once

#include <CLI/CLI.hpp>

namespace loa::bench {

void add_latency_scenario(CLI::App& app, int& exit_code);

}  // namespace loa::bench
