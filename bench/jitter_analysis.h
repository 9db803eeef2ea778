// `loa-bench jitter`: judging what one contender played against the trace
// (the tone detector's calibration, per-frame delay and concealment) and Loa's playout counters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "loa/engine/playout.h"
#include "report.h"
#include "tone_track.h"
#include "trace.h"

namespace loa::bench::jitter {

// The trace's packet time (20 ms) in ns.
constexpr std::int64_t kFrameNs = 20'000'000;

struct Calibration {
  std::int64_t bias_ns = 0;    // detected onset of frame k minus the start of decoded frame k
  double clean_seen_ratio = 0.0;
};

// The detector's bias and hit rate on the trace decoded without impairment.
Calibration calibrate(const PacketTrace& trace, const HopSignal& signal);

struct ContenderResult {
  bool ok = false;
  std::string error;
  std::size_t frames = 0;     // source frames judged
  std::size_t played = 0;     // shown with their own tone (decoded or FEC)
  std::size_t concealed = 0;  // not shown: PLC, silence or skipped
  std::size_t fec = 0;        // shown although their own packet was lost or too late
  std::vector<double> delays_ms;
  std::size_t relocks = 0;
  std::size_t unmatched_runs = 0;
  std::size_t output_samples = 0;
};

// Matches the tone runs in `out` to the trace's frames [first_frame, end_frame)
// and judges each: played (with its delay), FEC-recovered or concealed.
ContenderResult analyse(const TimedPcm& out, const PacketTrace& trace, const HopSignal& signal,
                        const Calibration& cal, std::int64_t t0, std::size_t first_frame, std::size_t end_frame);

JsonObject contender_json(const ContenderResult& r);

struct LoaCounters {
  std::uint64_t received = 0, lost = 0, recovered_fec = 0, concealed = 0, late = 0, late_played = 0, duplicate = 0,
                reordered = 0,
                underruns = 0, frames_decoded = 0, accelerated = 0, expanded = 0;
  std::int32_t target_delay_ms = 0;
};

LoaCounters read_counters(const engine::PlayoutStats& s);

JsonObject counters_json(const LoaCounters& c);

}  // namespace loa::bench::jitter
