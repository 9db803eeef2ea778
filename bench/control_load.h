// The control scenario's load: clients flooding the control socket with
// GetStatus and ListClusters, a mutating call's commit cost, late media frames.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "engine_control.h"

namespace loa::bench::control_load {

struct MethodLatency {
  std::uint64_t calls = 0;
  std::optional<double> p50_ms, p99_ms, max_ms;
};

struct LevelResult {
  unsigned clients = 0;
  std::uint64_t calls = 0;
  std::uint64_t errors = 0;
  double seconds = 0.0;
  std::optional<double> calls_per_s, p50_ms, p99_ms, max_ms;
  std::string first_error;
  // The mix split by call (the read levels only).
  std::optional<MethodLatency> get_status, list_clusters;
};

struct LateFrames {
  std::uint64_t late = 0;
  std::uint64_t skipped = 0;
  std::uint64_t missed = 0;  // fan-out frames missed (deadline passed before the last send)
};

// The programmes' late and skipped frames and the fan-out's missed ones, from GetStatus.
LateFrames late_frames(engine::ControlClient& c);

// `clients` threads, each with its own connection, issue GetStatus and
// ListClusters (a page of 100 starting at a pseudo-random cluster) in turn,
// one call at a time, for `seconds`.
LevelResult run_level(const std::filesystem::path& socket, unsigned clients, unsigned seconds, std::size_t clusters);

// SetClusterEnabled toggling one cluster after another, one call at a time:
// each is a committed SQLite transaction (WAL, synchronous=FULL), so its
// latency is the commit cost seen by a client.
LevelResult run_mutating(engine::ControlClient& c, unsigned seconds, std::size_t clusters);

}  // namespace loa::bench::control_load
