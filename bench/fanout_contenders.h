// `loa-bench fanout`'s contenders: the options and context of a run, what one
// run of one contender measures, and the runner of each (raw, loa, gstreamer).
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "wire.h"

namespace loa::bench::fanout {

constexpr unsigned kPtimeMs = 20;
constexpr double kDeliveredTarget = 0.999;

struct FanoutOptions {
  std::size_t clusters = 10000;
  unsigned seconds = 10;
  unsigned threads = 0;  // 0: hardware concurrency
  unsigned rounds = 3;
  bool json = false;
  bool max = false;
  std::string engine_bin;
  std::string gst_launch = "gst-launch-1.0";
  std::string clip;  // "": generate a music clip with sox; "tone": tone source
  std::vector<std::string> contenders = {"raw", "loa", "gstreamer"};
  bool keep_workdir = false;
  std::string wire = "veth";
};

// One run of one contender at one N. Metrics that cannot be observed stay empty.
struct RunMetrics {
  bool ok = false;
  std::string error;
  std::optional<double> pps_per_core, delivered_ratio, spread_us_p50, spread_us_p99, spread_us_max, missed_frames;
  std::map<std::string, std::optional<double>> extra;

  [[nodiscard]] bool sustained() const {
    return ok && delivered_ratio && *delivered_ratio >= kDeliveredTarget && (!missed_frames || *missed_frames == 0);
  }
};

struct Context {
  FanoutOptions opt;
  Wire wire;
  std::string workdir;
  std::string clip_path;
};

using Runner = std::function<RunMetrics(const Context&, std::size_t)>;

// The runner of contender `name`: "raw", "loa", anything else: GStreamer.
Runner runner_for(const std::string& name);

// One line on a run: its figures, or why it failed.
std::string brief(const RunMetrics& m);

}  // namespace loa::bench::fanout
