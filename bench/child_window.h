// Steady-state measurement of a sending child process (loa-engine, GStreamer)
// from outside: packets through the wire's TX counter and the child's CPU time,
// both sampled at the same frame phase so partial frames cancel out.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "process.h"
#include "wire.h"

namespace loa::bench {

struct WindowSample {
  bool ok = false;
  std::string error;
  std::uint64_t packets = 0;  // leaving rate (least-squares slope per frame) x frames
  std::uint64_t packets_counted = 0;  // plain TX delta between the window's edges
  double cpu_s = 0.0;         // child's CPU (user + sys) inside the window
  unsigned frames = 0;        // frames the window spans
  double seconds = 0.0;       // measured wall time of the window
};

// Waits (up to `first_packet_timeout`) until the TX counter moves past
// `baseline` -- the child's first frame -- then, from the middle of frame
// `warmup_frames` for `frames` frames, samples the TX counter at every
// mid-frame and the child's CPU at both ends.
// Fails if the child exits before the window ends. Blocks the caller.
[[nodiscard]] WindowSample measure_window(ChildProcess& child, const Wire& wire, std::uint64_t baseline,
                                          unsigned warmup_frames, unsigned frames, unsigned ptime_ms,
                                          std::chrono::milliseconds first_packet_timeout);

}  // namespace loa::bench
