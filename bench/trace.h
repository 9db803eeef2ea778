// The jitter bench's test signal and its seeded, impaired packet trace.
//
// The signal is a frequency-hopping tone: source frame k (one packet time)
// carries a sine at one of kToneCount frequencies, chosen so that any 7
// consecutive frames have different ones. Each frame's tone is thus both its
// identity in the output (where it plays tells the send-to-output delay) and
// a concealment detector: Opus PLC continues the previous frame's pitch, so a
// concealed frame never shows its own tone, while a decoded or FEC-recovered
// one does. The phase is continuous across frames (no clicks).
//
// The trace: the signal encoded as 20 ms Opus (speech mode, in-band FEC on),
// packed as RTP, and passed through loa::transport::ImpairmentModel; each
// packet has its send time, its arrival times (none when lost, two when
// duplicated) and its bytes.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "loa/transport/impairment.h"

namespace loa::bench {

inline constexpr int kToneCount = 8;
// 700, 1100, ..., 3500 Hz: 400 Hz apart, all inside SILK's band (in-band FEC
// covers them) and resolvable in a 5 ms window.
inline constexpr std::array<double, kToneCount> kToneHz = {700, 1100, 1500, 1900, 2300, 2700, 3100, 3500};
// Same-tone frames are at least this far apart.
inline constexpr int kToneDistinctRun = 7;

struct HopSignal {
  int ptime_ms = 20;
  std::vector<std::uint8_t> labels;  // tone index of every frame
  std::vector<float> pcm;            // 48 kHz mono, labels.size() frames
};

// `frames` frames of `ptime_ms`, tone sequence drawn from `seed`, amplitude `amplitude`.
[[nodiscard]] HopSignal make_hop_signal(std::size_t frames, int ptime_ms, std::uint64_t seed, double amplitude);

struct TracePacket {
  std::int64_t send_ns = 0;              // relative to the trace's start: end of the frame's capture
  std::vector<std::int64_t> arrival_ns;  // relative to the same start; empty = lost
  std::vector<std::uint8_t> bytes;       // the RTP packet
  std::uint32_t rtp_timestamp = 0;
  std::uint16_t sequence = 0;
  bool has_fec = false;                  // carries in-band FEC for the previous frame
};

struct TraceStats {
  std::size_t packets = 0;
  std::size_t lost = 0;
  std::size_t reordered = 0;   // delivered after a later-sent packet
  std::size_t duplicated = 0;
  std::size_t with_fec = 0;
  double loss_ratio = 0.0;
  double delay_ms_p50 = 0.0;       // of delivered packets (first copy): arrival - send
  double ideal_delay_ms_p99 = 0.0; // smallest fixed delay that receives 99 % of the delivered packets
  double delay_ms_max = 0.0;
};

struct PacketTrace {
  int ptime_ms = 20;
  std::uint32_t ssrc = 0;
  std::uint8_t payload_type = 96;
  std::vector<TracePacket> packets;  // in send order
  TraceStats stats;
};

struct TraceOptions {
  int ptime_ms = 20;
  int bitrate_bps = 64000;
  int expected_loss_pct = 10;
  std::uint8_t payload_type = 96;
  transport::ImpairmentConfig impairment;  // its seed also seeds the RTP fields
};

// Encodes `signal` and impairs it. Throws on codec errors.
[[nodiscard]] PacketTrace record_trace(const HopSignal& signal, const TraceOptions& options);

// Decodes every packet in order with no loss: the reference the detector is
// calibrated on.
[[nodiscard]] std::vector<float> decode_clean(const PacketTrace& trace);

// One delivery of the trace: packet index and arrival time, sorted by arrival.
struct TraceEvent {
  std::int64_t arrival_ns = 0;
  std::size_t packet = 0;
};
[[nodiscard]] std::vector<TraceEvent> arrival_order(const PacketTrace& trace);

}  // namespace loa::bench
