#include "trace.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

#include "loa/codecs/audio_format.h"
#include "loa/codecs/opus_decoder.h"
#include "loa/codecs/opus_encoder.h"
#include "loa/transport/rtp_packet.h"
#include "report.h"

namespace loa::bench {

namespace tr = loa::transport;

HopSignal make_hop_signal(std::size_t frames, int ptime_ms, std::uint64_t seed, double amplitude) {
  HopSignal s;
  s.ptime_ms = ptime_ms;
  const std::size_t n = codecs::frame_samples(ptime_ms);
  s.labels.reserve(frames);
  s.pcm.reserve(frames * n);
  tr::ImpairRng rng(tr::ImpairRng::derive_seed(seed, 0x746f6e6573ULL));
  double phase = 0.0;
  for (std::size_t k = 0; k < frames; ++k) {
    // Pick uniformly among the tones not used by the previous kToneDistinctRun - 1 frames.
    std::array<std::uint8_t, kToneCount> free{};
    int free_count = 0;
    for (int t = 0; t < kToneCount; ++t) {
      bool used = false;
      for (std::size_t back = 1; back < kToneDistinctRun && back <= k; ++back) {
        if (s.labels[k - back] == t) used = true;
      }
      if (!used) free[static_cast<std::size_t>(free_count++)] = static_cast<std::uint8_t>(t);
    }
    const auto pick = static_cast<std::size_t>(rng.uniform01() * free_count);
    const std::uint8_t label = free[std::min(pick, static_cast<std::size_t>(free_count - 1))];
    s.labels.push_back(label);
    const double step = 2.0 * std::numbers::pi * kToneHz[label] / codecs::kSampleRate;
    for (std::size_t i = 0; i < n; ++i) {
      s.pcm.push_back(static_cast<float>(amplitude * std::sin(phase)));
      phase = std::fmod(phase + step, 2.0 * std::numbers::pi);
    }
  }
  return s;
}

PacketTrace record_trace(const HopSignal& signal, const TraceOptions& options) {
  PacketTrace trace;
  trace.ptime_ms = options.ptime_ms;
  trace.payload_type = options.payload_type;
  const std::uint64_t seed = options.impairment.seed;
  tr::ImpairRng rtp_rng(tr::ImpairRng::derive_seed(seed, 0x727470ULL));
  trace.ssrc = static_cast<std::uint32_t>(rtp_rng.next_u64());
  auto sequence = static_cast<std::uint16_t>(rtp_rng.next_u64());
  auto timestamp = static_cast<std::uint32_t>(rtp_rng.next_u64());

  codecs::OpusEncoderConfig ec;
  ec.bitrate_bps = options.bitrate_bps;
  ec.ptime_ms = options.ptime_ms;
  ec.content = codecs::Content::Speech;
  ec.inband_fec = true;
  ec.expected_loss_pct = options.expected_loss_pct;
  codecs::OpusEncoder encoder(ec);
  tr::ImpairmentModel model(options.impairment);

  const std::size_t n = codecs::frame_samples(options.ptime_ms);
  const std::int64_t frame_ns = static_cast<std::int64_t>(options.ptime_ms) * 1'000'000;
  std::vector<std::uint8_t> opus(codecs::kMaxOpusPacketBytes);
  std::vector<std::uint8_t> rtp(tr::kMaxRtpPacket);
  const std::size_t frames = signal.pcm.size() / n;
  trace.packets.reserve(frames);
  for (std::size_t k = 0; k < frames; ++k) {
    std::size_t written = 0;
    const auto st = encoder.encode(std::span<const float>(signal.pcm).subspan(k * n, n), opus, written);
    if (st != codecs::Status::Ok) throw std::runtime_error(std::string("opus encode: ") + codecs::to_string(st));
    tr::RtpHeaderFields h;
    h.payload_type = options.payload_type;
    h.sequence = sequence;
    h.timestamp = timestamp;
    h.ssrc = trace.ssrc;
    std::size_t rtp_len = 0;
    if (tr::write_rtp(rtp, h, {}, std::span<const std::uint8_t>(opus.data(), written), rtp_len) != tr::Status::Ok) {
      throw std::runtime_error("write_rtp failed");
    }
    TracePacket p;
    p.send_ns = static_cast<std::int64_t>(k + 1) * frame_ns;  // sent once the frame is captured
    p.bytes.assign(rtp.begin(), rtp.begin() + static_cast<std::ptrdiff_t>(rtp_len));
    p.rtp_timestamp = timestamp;
    p.sequence = sequence;
    p.has_fec = codecs::OpusDecoder::packet_has_fec(std::span<const std::uint8_t>(opus.data(), written));
    const tr::ImpairDecision d = model.decide(k, p.send_ns);
    for (std::uint32_t c = 0; c < d.copies; ++c) p.arrival_ns.push_back(d.release_ns[c]);
    trace.packets.push_back(std::move(p));
    ++sequence;
    timestamp += static_cast<std::uint32_t>(n);
  }

  // Statistics.
  TraceStats& s = trace.stats;
  s.packets = trace.packets.size();
  std::vector<double> delays;
  std::int64_t latest_arrival = -1;
  for (const auto& p : trace.packets) {
    if (p.has_fec) ++s.with_fec;
    if (p.arrival_ns.empty()) {
      ++s.lost;
      continue;
    }
    if (p.arrival_ns.size() > 1) ++s.duplicated;
    delays.push_back(static_cast<double>(p.arrival_ns.front() - p.send_ns) / 1e6);
    // Reordered: it arrives before a packet sent earlier does.
    if (p.arrival_ns.front() < latest_arrival) ++s.reordered;
    latest_arrival = std::max(latest_arrival, p.arrival_ns.front());
  }
  s.loss_ratio = s.packets ? static_cast<double>(s.lost) / static_cast<double>(s.packets) : 0.0;
  s.delay_ms_p50 = percentile(delays, 50).value_or(0.0);
  s.ideal_delay_ms_p99 = percentile(delays, 99).value_or(0.0);
  s.delay_ms_max = percentile(delays, 100).value_or(0.0);
  return trace;
}

std::vector<float> decode_clean(const PacketTrace& trace) {
  codecs::OpusDecoder decoder;
  const std::size_t n = codecs::frame_samples(trace.ptime_ms);
  std::vector<float> out(trace.packets.size() * n, 0.0f);
  for (std::size_t k = 0; k < trace.packets.size(); ++k) {
    tr::RtpView v;
    if (tr::RtpView::parse(trace.packets[k].bytes, v) != tr::Status::Ok) continue;
    std::size_t samples = 0;
    (void)decoder.decode(v.payload(), std::span<float>(out).subspan(k * n, n), samples);
  }
  return out;
}

std::vector<TraceEvent> arrival_order(const PacketTrace& trace) {
  std::vector<TraceEvent> events;
  for (std::size_t k = 0; k < trace.packets.size(); ++k) {
    for (const auto a : trace.packets[k].arrival_ns) events.push_back({a, k});
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const TraceEvent& a, const TraceEvent& b) { return a.arrival_ns < b.arrival_ns; });
  return events;
}

}  // namespace loa::bench
