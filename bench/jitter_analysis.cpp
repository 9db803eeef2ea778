// `loa-bench jitter`'s analysis of a contender's output (see jitter_analysis.h).
#include "jitter_analysis.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>

namespace loa::bench::jitter {

Calibration calibrate(const PacketTrace& trace, const HopSignal& signal) {
  const std::vector<float> clean = decode_clean(trace);
  const auto runs = detect_runs(clean);
  std::vector<std::int64_t> onsets;
  onsets.reserve(runs.size());
  for (const auto& r : runs) onsets.push_back(std::llround(static_cast<double>(r.start) * 1e9 / 48000.0));
  const auto m = match_runs(runs, onsets, signal.labels, kFrameNs, -kFrameNs, 2 * kFrameNs);
  std::vector<double> offsets;
  for (const auto& x : m.matches) {
    offsets.push_back(static_cast<double>(x.onset_ns - static_cast<std::int64_t>(x.frame) * kFrameNs));
  }
  Calibration c;
  c.bias_ns = std::llround(percentile(offsets, 50).value_or(0.0));
  c.clean_seen_ratio =
      signal.labels.empty() ? 0.0 : static_cast<double>(m.matches.size()) / static_cast<double>(signal.labels.size());
  return c;
}

ContenderResult analyse(const TimedPcm& out, const PacketTrace& trace, const HopSignal& signal,
                        const Calibration& cal, std::int64_t t0, std::size_t first_frame, std::size_t end_frame) {
  ContenderResult r;
  // LOA_BENCH_JITTER_PCM=PREFIX: each contender's output as raw 48 kHz mono
  // float (PREFIX.<n>.f32, in the order analysed) with the play time of its
  // first sample (relative to the replay's start) in PREFIX.<n>.txt.
  if (const char* prefix = std::getenv("LOA_BENCH_JITTER_PCM"); prefix != nullptr && !out.samples.empty()) {
    static int n = 0;
    const std::string base = std::string(prefix) + "." + std::to_string(++n);
    if (std::FILE* f = std::fopen((base + ".f32").c_str(), "wb")) {
      std::fwrite(out.samples.data(), sizeof(float), out.samples.size(), f);
      std::fclose(f);
    }
    if (std::FILE* f = std::fopen((base + ".txt").c_str(), "w")) {
      std::fprintf(f, "%.3f\n", static_cast<double>(out.time_of(0) - t0) / 1e6);
      std::fclose(f);
    }
  }
  r.output_samples = out.samples.size();
  const auto runs = detect_runs(out.samples);
  std::vector<std::int64_t> onsets;
  onsets.reserve(runs.size());
  for (const auto& run : runs) onsets.push_back(out.time_of(run.start));
  // play(k) = t0 + send_k + delay + bias, send_k = (k + 1) * frame: offset = t0 + frame + bias + delay.
  const std::int64_t base = t0 + kFrameNs + cal.bias_ns;
  const auto m = match_runs(runs, onsets, signal.labels, kFrameNs, base - 20'000'000, base + 3'000'000'000LL);
  r.relocks = m.relocks;
  r.unmatched_runs = m.unmatched_runs;
  std::vector<std::int64_t> onset_of(trace.packets.size(), -1);
  std::vector<std::size_t> run_of(trace.packets.size(), 0);
  for (const auto& x : m.matches) {
    onset_of[x.frame] = x.onset_ns;
    run_of[x.frame] = x.run_samples;
  }
  std::FILE* dbg = nullptr;
  if (const char* d = std::getenv("LOA_BENCH_JITTER_FRAMES")) dbg = std::fopen(d, "a");
  if (dbg != nullptr && !out.blocks.empty()) {
    std::fprintf(dbg, "# samples %zu blocks %zu first %.1f ms last %.1f ms runs %zu\n", out.samples.size(),
                 out.blocks.size(), static_cast<double>(out.blocks.front().second - t0) / 1e6,
                 static_cast<double>(out.blocks.back().second - t0) / 1e6, runs.size());
  }
  for (std::size_t k = first_frame; k < end_frame && k < trace.packets.size(); ++k) {
    if (dbg != nullptr) {
      const auto& p = trace.packets[k];
      std::fprintf(dbg, "%zu %d %.2f %d %.2f %.1f\n", k, p.arrival_ns.empty() ? 1 : 0,
                   p.arrival_ns.empty() ? -1.0 : static_cast<double>(p.arrival_ns.front() - p.send_ns) / 1e6,
                   onset_of[k] >= 0 ? 1 : 0,
                   onset_of[k] >= 0 ? static_cast<double>(onset_of[k] - cal.bias_ns - t0 - p.send_ns) / 1e6 : -1.0,
                   static_cast<double>(run_of[k]) / 48.0);
    }
    ++r.frames;
    if (onset_of[k] < 0) {
      ++r.concealed;
      continue;
    }
    ++r.played;
    const auto& p = trace.packets[k];
    const std::int64_t play_start = onset_of[k] - cal.bias_ns;  // the decoded frame's first sample
    r.delays_ms.push_back(static_cast<double>(play_start - t0 - p.send_ns) / 1e6);
    const bool own_packet_in_time = !p.arrival_ns.empty() && t0 + p.arrival_ns.front() <= play_start;
    if (!own_packet_in_time) ++r.fec;
  }
  if (dbg != nullptr) std::fclose(dbg);
  r.ok = true;
  return r;
}

JsonObject contender_json(const ContenderResult& r) {
  JsonObject o;
  if (!r.ok) {
    o.add("error", r.error);
    return o;
  }
  const double frames = static_cast<double>(std::max<std::size_t>(r.frames, 1));
  double mean = 0.0;
  for (const double d : r.delays_ms) mean += d;
  mean = r.delays_ms.empty() ? 0.0 : mean / static_cast<double>(r.delays_ms.size());
  o.add("concealed_ratio", std::optional<double>(static_cast<double>(r.concealed) / frames))
      .add("fec_ratio", std::optional<double>(static_cast<double>(r.fec) / frames))
      .add("delay_ms_mean", r.delays_ms.empty() ? std::nullopt : std::optional<double>(mean))
      .add("delay_ms_p50", percentile(r.delays_ms, 50))
      .add("delay_ms_p99", percentile(r.delays_ms, 99))
      .add("delay_ms_max", percentile(r.delays_ms, 100))
      .add_int("frames", static_cast<double>(r.frames))
      .add_int("played", static_cast<double>(r.played))
      .add_int("concealed", static_cast<double>(r.concealed))
      .add_int("fec", static_cast<double>(r.fec))
      .add_int("detector_relocks", static_cast<double>(r.relocks));
  return o;
}

LoaCounters read_counters(const engine::PlayoutStats& s) {
  LoaCounters c;
  c.received = s.received.load();
  c.lost = s.lost.load();
  c.recovered_fec = s.recovered_fec.load();
  c.concealed = s.concealed.load();
  c.late = s.late.load();
  c.late_played = s.late_played.load();
  c.duplicate = s.duplicate.load();
  c.reordered = s.reordered.load();
  c.underruns = s.underruns.load();
  c.frames_decoded = s.frames_decoded.load();
  c.accelerated = s.accelerated_samples.load();
  c.expanded = s.expanded_samples.load();
  c.target_delay_ms = s.target_delay_ms.load();
  return c;
}

JsonObject counters_json(const LoaCounters& c) {
  const double made = static_cast<double>(c.frames_decoded + c.recovered_fec + c.concealed);
  JsonObject o;
  o.add_int("received", static_cast<double>(c.received))
      .add_int("lost", static_cast<double>(c.lost))
      .add_int("recovered_fec", static_cast<double>(c.recovered_fec))
      .add_int("concealed", static_cast<double>(c.concealed))
      .add_int("late", static_cast<double>(c.late))
      .add_int("late_played", static_cast<double>(c.late_played))
      .add_int("duplicate", static_cast<double>(c.duplicate))
      .add_int("reordered", static_cast<double>(c.reordered))
      .add_int("underruns", static_cast<double>(c.underruns))
      .add_int("frames_decoded", static_cast<double>(c.frames_decoded))
      .add("concealed_ratio", made > 0 ? std::optional<double>(static_cast<double>(c.concealed) / made) : std::nullopt)
      .add("fec_ratio", made > 0 ? std::optional<double>(static_cast<double>(c.recovered_fec) / made) : std::nullopt)
      .add("accelerated_ms", std::optional<double>(static_cast<double>(c.accelerated) / 48.0))
      .add("expanded_ms", std::optional<double>(static_cast<double>(c.expanded) / 48.0))
      .add_int("target_delay_ms_end", static_cast<double>(c.target_delay_ms));
  return o;
}

}  // namespace loa::bench::jitter
