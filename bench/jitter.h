// `loa-bench jitter`: one seeded impaired packet trace replayed in real time
// into Loa's adaptive playout and into GStreamer's rtpjitterbuffer + opusdec;
// concealed frames and send-to-output delay measured from each one's output.
// `--virtual-time` replays it into Loa alone on a simulated clock (for tuning).
#pragma once

#include <CLI/CLI.hpp>

namespace loa::bench {

void add_jitter_scenario(CLI::App& app, int& exit_code);

}  // namespace loa::bench
