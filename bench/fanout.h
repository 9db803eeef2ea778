// `loa-bench fanout`: one 64 kb/s, 20 ms Opus programme fanned out to N
// destinations by the raw sendmmsg limit, loa-engine and GStreamer.
#pragma once

namespace CLI {
class App;
}

namespace loa::bench {

// Registers the `fanout` subcommand; when it runs it stores its exit code.
void add_fanout_scenario(CLI::App& app, int& exit_code);

}  // namespace loa::bench
