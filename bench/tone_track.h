// Finds the frequency-hopping test signal's frames (bench/trace.h) in an
// output stream: which source frames were played, and when each began.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace loa::bench {

// Output audio with the play time of its samples: block b starts at sample
// blocks[b].first and that sample played at blocks[b].second (monotonic ns);
// later samples of the block follow at 48 kHz.
struct TimedPcm {
  std::vector<float> samples;
  std::vector<std::pair<std::size_t, std::int64_t>> blocks;  // ascending sample index

  void reserve(std::size_t samples_count, std::size_t block_count);
  // Appends `block` played from `play_ns`.
  void append(std::span<const float> block, std::int64_t play_ns);
  // Play time of sample `index` (the last block's time extrapolated past the end).
  [[nodiscard]] std::int64_t time_of(std::size_t index) const;
};

// A stretch of output dominated by one of the tones.
struct ToneRun {
  std::uint8_t label = 0;
  std::size_t start = 0;  // first sample of the first window that showed it
  std::size_t end = 0;    // one past the last window's hop
};

// Tone runs of `pcm` (48 kHz): 5 ms Hann windows every 0.625 ms, a window
// labelled when one tone holds most of its energy and it is not near-silent;
// runs shorter than 5 ms (of window starts) are dropped, runs of one tone
// interrupted by up to 2.5 ms of unlabelled windows are joined. The fine hop
// makes what is found independent of where the frames fall against the
// analysis grid.
[[nodiscard]] std::vector<ToneRun> detect_runs(std::span<const float> pcm);

struct FrameMatch {
  std::size_t frame = 0;
  std::int64_t onset_ns = 0;  // play time of the run's start
  std::size_t run_samples = 0;  // length of the run (first window's start to last window's hop)
};

struct MatchResult {
  std::vector<FrameMatch> matches;  // ascending frame
  std::size_t runs = 0;
  std::size_t unmatched_runs = 0;
  std::size_t relocks = 0;
};

// Assigns runs (with their play times `onset_ns`) to source frames whose tone
// is `labels[k]` and whose source start is k * frame_ns: play time = k *
// frame_ns + offset, with offset searched in [offset_min_ns, offset_max_ns]
// first, then tracked (it may drift by a few ms a frame). Each frame is
// matched at most once, in increasing order.
[[nodiscard]] MatchResult match_runs(std::span<const ToneRun> runs, std::span<const std::int64_t> onset_ns,
                                     std::span<const std::uint8_t> labels, std::int64_t frame_ns,
                                     std::int64_t offset_min_ns, std::int64_t offset_max_ns);

}  // namespace loa::bench
