#pragma once
// Shared by the Playout tests (playout_test, playout_adaptive_test): real
// Opus packets of a tone, RTP streams with clean or impaired arrivals, and a
// simulator that drives a Playout in simulated time.

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "loa/codecs/audio_format.h"
#include "loa/codecs/dsp.h"
#include "loa/codecs/opus_encoder.h"
#include "loa/engine/playout.h"
#include "loa/transport/impairment.h"
#include "loa/transport/rtp_packet.h"

namespace loa::test {

using engine::Playout;
using engine::PlayoutPush;

inline constexpr std::int64_t kMs = 1'000'000;
inline constexpr std::int64_t kSec = 1'000'000'000;

using Bytes = std::vector<std::uint8_t>;

/// Opus frames of a tone, encoded once.
inline std::vector<Bytes> encode_tone(std::size_t frames, double hz = 1000.0, codecs::Content content = codecs::Content::Speech,
                               int loss_pct = 10, int bitrate = 64000, int ptime = 20) {
    codecs::OpusEncoderConfig cfg;
    cfg.content = content;
    cfg.expected_loss_pct = loss_pct;
    cfg.bitrate_bps = bitrate;
    cfg.ptime_ms = ptime;
    codecs::OpusEncoder enc(cfg);
    codecs::ToneGenerator gen(hz, 0.5);
    std::vector<float> pcm(enc.frame_size());
    std::array<std::uint8_t, codecs::kMaxOpusPacketBytes> buf{};
    std::vector<Bytes> out;
    out.reserve(frames);
    for (std::size_t i = 0; i < frames; ++i) {
        gen.render(pcm);
        std::size_t written = 0;
        REQUIRE(enc.encode(pcm, buf, written) == codecs::Status::Ok);
        out.emplace_back(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(written));
    }
    return out;
}

inline Bytes make_rtp(std::uint16_t seq, std::uint32_t ts, std::uint32_t ssrc, const Bytes& payload, bool marker = false) {
    transport::RtpHeaderFields h;
    h.marker = marker;
    h.payload_type = 111;
    h.sequence = seq;
    h.timestamp = ts;
    h.ssrc = ssrc;
    Bytes out(transport::kMaxRtpPacket);
    std::size_t written = 0;
    REQUIRE(transport::write_rtp(out, h, {}, payload, written) == transport::Status::Ok);
    out.resize(written);
    return out;
}

inline PlayoutPush push_bytes(Playout& p, const Bytes& bytes, std::int64_t now) {
    transport::RtpView v;
    REQUIRE(transport::RtpView::parse(bytes, v) == transport::Status::Ok);
    return p.push(v, now);
}

struct SimPacket {
    std::int64_t arrival = 0;
    std::size_t index = 0;  // packet number in the stream
    Bytes bytes;
};

/// Payload of packet i: the encoded frames in order, then (for long streams)
/// frames 10.. again; a 1 kHz tone is exactly 20 periods per 20 ms frame, so
/// the cycle is seamless, and the encoder's start-up frames are not repeated.
inline const Bytes& payload_for(const std::vector<Bytes>& payloads, std::size_t i) {
    if (i < payloads.size()) return payloads[i];
    return payloads[10 + (i - 10) % (payloads.size() - 10)];
}

/// One stream of packets.
struct StreamSpec {
    std::uint16_t first_seq = 1000;
    std::uint32_t first_ts = 123456;
    std::uint32_t ssrc = 0x5157;
    std::uint32_t samples = 960;
    std::int64_t period_ns = 20 * kMs;
    std::int64_t start_ns = 0;
};

inline Bytes stream_packet(const StreamSpec& s, const std::vector<Bytes>& payloads, std::size_t i) {
    return make_rtp(static_cast<std::uint16_t>(s.first_seq + i), static_cast<std::uint32_t>(s.first_ts + i * s.samples),
                    s.ssrc, payload_for(payloads, i));
}

/// Clean arrivals: packet i at start + i * period.
inline std::vector<SimPacket> clean_arrivals(const StreamSpec& s, const std::vector<Bytes>& payloads, std::size_t count) {
    std::vector<SimPacket> v;
    v.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        v.push_back({s.start_ns + static_cast<std::int64_t>(i) * s.period_ns, i, stream_packet(s, payloads, i)});
    }
    return v;
}

inline void sort_by_arrival(std::vector<SimPacket>& v) {
    std::stable_sort(v.begin(), v.end(), [](const SimPacket& a, const SimPacket& b) { return a.arrival < b.arrival; });
}

/// Drives a Playout in simulated time: packets are pushed at their arrival,
/// render() is called every `block` samples from `phase_ns` on, on the same
/// clock. Output is appended to `out` (if given).
struct Sim {
    Sim(Playout& p, std::vector<SimPacket> v) : playout(p), packets(std::move(v)) {}

    Playout& playout;
    std::vector<SimPacket> packets;
    std::size_t next = 0;
    std::size_t block = 960;
    std::int64_t phase_ns = 7 * kMs;
    std::int64_t now = 0;
    bool started = false;
    std::vector<float> out;
    bool keep_output = true;
    std::function<void(std::int64_t)> before_render;

    std::int64_t block_ns() const { return static_cast<std::int64_t>(block) * kSec / 48000; }

    void run_until(std::int64_t t_end) {
        if (!started) {
            now = phase_ns;
            started = true;
        }
        std::vector<float> buf(block);
        while (now < t_end) {
            while (next < packets.size() && packets[next].arrival <= now) {
                push_bytes(playout, packets[next].bytes, packets[next].arrival);
                ++next;
            }
            if (before_render) before_render(now);
            playout.render(buf, now);
            if (keep_output) out.insert(out.end(), buf.begin(), buf.end());
            now += block_ns();
        }
    }
    std::span<const float> output_after(std::int64_t t) const {
        const auto skip = static_cast<std::size_t>(std::max<std::int64_t>(0, t - phase_ns) * 48000 / kSec);
        return std::span<const float>(out).subspan(std::min(skip, out.size()));
    }
};

inline double rms_of(std::span<const float> x) { return codecs::rms(x); }

/// Arrivals of `count` packets sent every 20 ms through `model` (loss,
/// jitter, reordering), sorted by arrival. Lost packets are left out.
inline std::vector<SimPacket> impaired_arrivals(const StreamSpec& s, const std::vector<Bytes>& payloads, std::size_t count,
                                         transport::ImpairmentModel& model, std::size_t first_index = 0) {
    std::vector<SimPacket> v;
    for (std::size_t i = first_index; i < first_index + count; ++i) {
        const std::int64_t sent = s.start_ns + static_cast<std::int64_t>(i) * s.period_ns;
        const auto d = model.decide(i, sent);
        for (std::uint32_t c = 0; c < d.copies; ++c) {
            v.push_back({d.release_ns[c], i, stream_packet(s, payloads, i)});
        }
    }
    sort_by_arrival(v);
    return v;
}

inline transport::ImpairmentConfig jitter_config(std::int64_t spread_ns, std::uint64_t seed) {
    transport::ImpairmentConfig c;
    c.seed = seed;
    c.delay_ns = 5 * kMs;
    c.jitter = transport::JitterDistribution::Uniform;
    c.jitter_spread_ns = spread_ns;
    return c;
}

}  // namespace loa::test
