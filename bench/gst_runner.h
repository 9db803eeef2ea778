// The peer: GStreamer multiudpsink fed by one live Opus pipeline (gst-launch).
#pragma once

#include <netinet/in.h>

#include <span>
#include <string>
#include <vector>

#include "child_window.h"
#include "wire.h"

namespace loa::bench {

struct GstRunOptions {
  std::string gst_launch = "gst-launch-1.0";
  std::string workdir;
  std::span<const sockaddr_in> destinations;
  unsigned threads = 2;
  unsigned seconds = 10;
  unsigned ptime_ms = 20;
};

struct GstRun {
  bool ok = false;
  std::string error;
  WindowSample window;
  double cpu_total_s = 0.0;  // wait4 rusage of gst-launch over its whole life
  std::size_t sinks = 0;     // multiudpsink elements used
};

// The gst-launch argv: audiotestsrc (live) -> opusenc -> rtpopuspay -> tee,
// one queue (thread) per T, and behind each queue the clients of its slice in
// one multiudpsink, or several behind a plain tee when one `clients=` argument
// would exceed `max_arg_bytes` (the kernel limits one argument to 128 KiB).
[[nodiscard]] std::vector<std::string> gst_argv(const GstRunOptions& options, std::size_t max_arg_bytes = 120000);

// Starts the pipeline, measures a steady-state window, stops it with SIGINT.
[[nodiscard]] GstRun run_gstreamer(const GstRunOptions& options, const Wire& wire);

}  // namespace loa::bench
