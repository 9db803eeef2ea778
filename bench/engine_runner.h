// Runs the real loa-engine process on a generated config and reads its stats.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "child_window.h"
#include "wire.h"

namespace loa::bench {

struct EngineRunOptions {
  std::string engine_bin;
  std::string workdir;       // config, stats and log files go here
  std::string clip_path;     // empty: a 1 kHz tone source instead of a clip
  std::span<const sockaddr_in> destinations;
  unsigned threads = 2;
  unsigned seconds = 10;     // measurement window; the engine runs a little longer
  unsigned ptime_ms = 20;
  bool measure = true;       // false: just run and read stats (RSS probe)
};

struct EngineRun {
  bool ok = false;
  std::string error;
  WindowSample window;
  // From the engine's --stats-out file.
  std::uint64_t datagrams_sent = 0;
  std::uint64_t send_errors = 0;
  std::uint64_t frames_missed = 0;
  std::uint64_t frames_encoded = 0;
  std::optional<double> spread_us_p50, spread_us_p99, spread_us_max;
  std::uint64_t spread_count = 0;
  std::uint64_t max_rss_kib = 0;
  double cpu_self_s = 0.0;  // cpu_user_s + cpu_system_s from its own rusage
  std::optional<double> encode_us_p50, encode_us_p99;
  std::uint64_t tx_total = 0;  // TX delta over the engine's whole life
  std::uint64_t sr_sent = 0;   // RTCP SR rounds (each to every destination, same port as RTP)
  double run_seconds = 0.0;    // --duration given
};

// Writes the TOML config, starts the engine (in the caller's namespace),
// measures a steady-state window (if `measure`), waits for it to exit and
// parses the stats. Never throws; failures are in `error`.
[[nodiscard]] EngineRun run_engine(const EngineRunOptions& options, const Wire& wire);

// Writes the engine config for `destinations` to `path`.
void write_engine_config(const std::string& path, std::span<const sockaddr_in> destinations, unsigned threads,
                         unsigned ptime_ms, const std::string& clip_path, const std::string& listen);

}  // namespace loa::bench
