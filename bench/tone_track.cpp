#include "tone_track.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

#include "trace.h"

namespace loa::bench {

namespace {

// The windows slide by a small hop so that what is found does not depend on
// where the output's frames fall against the analysis grid: with a hop of
// half a window, a tone lasting just one window is found under some
// alignments and missed under others (e.g. the ~5 ms of a lost frame's end
// that the next packet's FEC reproduces, Opus' look-ahead).
constexpr std::size_t kHop = 30;      // 0.625 ms
constexpr std::size_t kWindow = 240;  // 5 ms
constexpr double kRate = 48000.0;
constexpr double kMinRms = 0.02;
constexpr double kMinPurity = 0.55;   // share of a pure tone's score
constexpr std::size_t kMinRunHops = 8;  // 5 ms of window starts
constexpr std::size_t kMaxGapHops = 4;  // unlabelled windows inside a run that are bridged (2.5 ms)
constexpr std::uint8_t kNone = 0xff;

struct Bank {
  std::array<double, kWindow> window{};
  std::array<std::array<double, kWindow>, kToneCount> cos{}, sin{};
  std::array<double, kToneCount> pure_ratio{};  // P/E of a pure unit tone
  double window_energy = 0.0;                   // sum of w^2

  Bank() {
    for (std::size_t i = 0; i < kWindow; ++i) {
      window[i] = 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * (static_cast<double>(i) + 0.5) / kWindow);
      window_energy += window[i] * window[i];
    }
    for (std::size_t t = 0; t < kToneCount; ++t) {
      const double w = 2.0 * std::numbers::pi * kToneHz[t] / kRate;
      for (std::size_t i = 0; i < kWindow; ++i) {
        cos[t][i] = window[i] * std::cos(w * static_cast<double>(i));
        sin[t][i] = window[i] * std::sin(w * static_cast<double>(i));
      }
      // Average over phases: the ratio barely depends on it.
      double sum = 0.0;
      constexpr int kPhases = 8;
      std::array<float, kWindow> x{};
      for (int p = 0; p < kPhases; ++p) {
        const double ph = 2.0 * std::numbers::pi * p / kPhases;
        for (std::size_t i = 0; i < kWindow; ++i) x[i] = static_cast<float>(std::sin(w * static_cast<double>(i) + ph));
        double e = 0.0;
        const double pw = power(x.data(), t, e);
        sum += pw / e;
      }
      pure_ratio[t] = sum / kPhases;
    }
  }

  // Tone power of `t` in the window at x; `energy` receives the windowed energy.
  double power(const float* x, std::size_t t, double& energy) const {
    double c = 0.0;
    double s = 0.0;
    double e = 0.0;
    for (std::size_t i = 0; i < kWindow; ++i) {
      const double v = static_cast<double>(x[i]);
      c += v * cos[t][i];
      s += v * sin[t][i];
      const double wv = v * window[i];
      e += wv * wv;
    }
    energy = e;
    return c * c + s * s;
  }

  std::uint8_t label(const float* x) const {
    double energy = 0.0;
    double best = 0.0;
    std::uint8_t best_t = kNone;
    for (std::size_t t = 0; t < kToneCount; ++t) {
      const double p = power(x, t, energy) / pure_ratio[t];
      if (p > best) {
        best = p;
        best_t = static_cast<std::uint8_t>(t);
      }
    }
    if (energy < kMinRms * kMinRms * window_energy) return kNone;
    return best >= kMinPurity * energy ? best_t : kNone;
  }
};

const Bank& bank() {
  static const Bank b;
  return b;
}

}  // namespace

void TimedPcm::reserve(std::size_t samples_count, std::size_t block_count) {
  samples.reserve(samples_count);
  blocks.reserve(block_count);
}

void TimedPcm::append(std::span<const float> block, std::int64_t play_ns) {
  blocks.emplace_back(samples.size(), play_ns);
  samples.insert(samples.end(), block.begin(), block.end());
}

std::int64_t TimedPcm::time_of(std::size_t index) const {
  if (blocks.empty()) return 0;
  auto it = std::upper_bound(blocks.begin(), blocks.end(), index,
                             [](std::size_t i, const std::pair<std::size_t, std::int64_t>& b) { return i < b.first; });
  if (it != blocks.begin()) --it;
  const auto offset = static_cast<double>(index) - static_cast<double>(it->first);
  return it->second + std::llround(offset * 1e9 / kRate);
}

std::vector<ToneRun> detect_runs(std::span<const float> pcm) {
  const Bank& b = bank();
  std::vector<ToneRun> runs;
  if (pcm.size() < kWindow) return runs;
  const std::size_t hops = (pcm.size() - kWindow) / kHop + 1;
  std::vector<std::uint8_t> labels(hops);
  for (std::size_t h = 0; h < hops; ++h) labels[h] = b.label(pcm.data() + h * kHop);
  // Bridge short unlabelled gaps inside a run (X _ _ X).
  for (std::size_t h = 1; h + 1 < hops; ++h) {
    if (labels[h] != kNone || labels[h - 1] == kNone) continue;
    std::size_t e = h;
    while (e < hops && e - h < kMaxGapHops && labels[e] == kNone) ++e;
    if (e < hops && labels[e] == labels[h - 1]) {
      for (std::size_t g = h; g < e; ++g) labels[g] = labels[h - 1];
    }
  }
  std::size_t h = 0;
  while (h < hops) {
    if (labels[h] == kNone) {
      ++h;
      continue;
    }
    std::size_t e = h;
    while (e < hops && labels[e] == labels[h]) ++e;
    if (e - h >= kMinRunHops) runs.push_back({labels[h], h * kHop, e * kHop});
    h = e;
  }
  return runs;
}

MatchResult match_runs(std::span<const ToneRun> runs, std::span<const std::int64_t> onset_ns,
                       std::span<const std::uint8_t> labels, std::int64_t frame_ns, std::int64_t offset_min_ns,
                       std::int64_t offset_max_ns) {
  MatchResult r;
  r.runs = runs.size();
  const auto frames = static_cast<std::int64_t>(labels.size());
  auto frame_at = [&](std::int64_t t, std::int64_t offset) {
    const double k = static_cast<double>(t - offset) / static_cast<double>(frame_ns);
    return static_cast<std::int64_t>(std::llround(k));
  };
  constexpr std::size_t kLockRuns = 24;
  constexpr int kSearch = (kToneDistinctRun - 1) / 2;  // +-3 frames: tones there are all distinct
  constexpr std::size_t kLostAfter = 10;               // unmatched runs in a row before re-locking

  std::int64_t last_frame = -1;
  bool locked = false;
  std::int64_t offset = 0;
  std::size_t misses = 0;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    if (!locked) {
      // Lock: the offset (5 ms grid) under which most of the next runs show their frame's tone.
      const std::size_t end = std::min(runs.size(), i + kLockRuns);
      std::size_t best_score = 0;
      std::int64_t best_offset = offset_min_ns;
      for (std::int64_t off = offset_min_ns; off <= offset_max_ns; off += 5'000'000) {
        std::size_t score = 0;
        for (std::size_t j = i; j < end; ++j) {
          const std::int64_t k = frame_at(onset_ns[j], off);
          if (k > last_frame && k < frames && labels[static_cast<std::size_t>(k)] == runs[j].label) ++score;
        }
        if (score > best_score) {
          best_score = score;
          best_offset = off;
        }
      }
      if (best_score * 2 < end - i) {
        ++r.unmatched_runs;
        continue;  // try again from the next run
      }
      offset = best_offset;
      locked = true;
      misses = 0;
      if (last_frame >= 0) ++r.relocks;
    }
    const std::int64_t k_pred = frame_at(onset_ns[i], offset);
    std::int64_t best = -1;
    for (int d = 0; d <= kSearch && best < 0; ++d) {
      for (const std::int64_t k : {k_pred - d, k_pred + d}) {
        if (k > last_frame && k >= 0 && k < frames && labels[static_cast<std::size_t>(k)] == runs[i].label) {
          best = k;
          break;
        }
      }
    }
    if (best < 0) {
      ++r.unmatched_runs;
      if (++misses >= kLostAfter) locked = false;
      continue;
    }
    misses = 0;
    last_frame = best;
    offset = onset_ns[i] - best * frame_ns;
    r.matches.push_back({static_cast<std::size_t>(best), onset_ns[i], runs[i].end - runs[i].start});
  }
  return r;
}

}  // namespace loa::bench
