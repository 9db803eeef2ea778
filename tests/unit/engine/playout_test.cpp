// engine::Playout: the adaptive jitter buffer, FEC/PLC, time-stretch and drift
// compensation, driven in simulated time with real Opus packets.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "loa/codecs/audio_format.h"
#include "loa/codecs/dsp.h"
#include "loa/codecs/opus_encoder.h"
#include "loa/codecs/tone_analysis.h"
#include "loa/engine/playout.h"
#include "loa/transport/impairment.h"
#include "loa/transport/rtp_packet.h"

using namespace loa;
using engine::Playout;
using engine::PlayoutConfig;
using engine::PlayoutPush;

namespace {

constexpr std::int64_t kMs = 1'000'000;
constexpr std::int64_t kSec = 1'000'000'000;

using Bytes = std::vector<std::uint8_t>;

/// Opus frames of a tone, encoded once.
std::vector<Bytes> encode_tone(std::size_t frames, double hz = 1000.0, codecs::Content content = codecs::Content::Speech,
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

Bytes make_rtp(std::uint16_t seq, std::uint32_t ts, std::uint32_t ssrc, const Bytes& payload, bool marker = false) {
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

PlayoutPush push_bytes(Playout& p, const Bytes& bytes, std::int64_t now) {
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
const Bytes& payload_for(const std::vector<Bytes>& payloads, std::size_t i) {
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

Bytes stream_packet(const StreamSpec& s, const std::vector<Bytes>& payloads, std::size_t i) {
    return make_rtp(static_cast<std::uint16_t>(s.first_seq + i), static_cast<std::uint32_t>(s.first_ts + i * s.samples),
                    s.ssrc, payload_for(payloads, i));
}

/// Clean arrivals: packet i at start + i * period.
std::vector<SimPacket> clean_arrivals(const StreamSpec& s, const std::vector<Bytes>& payloads, std::size_t count) {
    std::vector<SimPacket> v;
    v.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        v.push_back({s.start_ns + static_cast<std::int64_t>(i) * s.period_ns, i, stream_packet(s, payloads, i)});
    }
    return v;
}

void sort_by_arrival(std::vector<SimPacket>& v) {
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

double rms_of(std::span<const float> x) { return codecs::rms(x); }

}  // namespace

TEST_CASE("clean_network_one_packet_delay", "[playout]") {
    const auto payloads = encode_tone(100);
    for (std::size_t block : {std::size_t{960}, std::size_t{480}}) {
        for (std::int64_t phase : {std::int64_t{0}, 3 * kMs, 7 * kMs, 19 * kMs}) {
            Playout p;
            StreamSpec s;
            Sim sim{p, clean_arrivals(s, payloads, 500)};
            sim.block = block;
            sim.phase_ns = phase;
            sim.run_until(2 * kSec);
            const auto underruns_startup = p.stats().underruns.load();
            sim.run_until(9 * kSec);
            INFO("block " << block << " phase " << phase / kMs << " ms; target " << p.stats().target_delay_ms.load()
                          << " current " << p.stats().current_delay_ms.load());
            CHECK(p.stats().underruns.load() == 0);
            CHECK(underruns_startup == 0);
            CHECK(p.stats().concealed.load() == 0);
            CHECK(p.stats().lost.load() == 0);
            CHECK(p.stats().target_delay_ms.load() >= 20);
            CHECK(p.stats().target_delay_ms.load() <= 25);
            CHECK(p.stats().current_delay_ms.load() <= 40);
            CHECK(std::abs(p.stats().current_delay_ms.load() - p.stats().target_delay_ms.load()) <= 5);
            const auto fit = codecs::fit_tone(sim.output_after(1 * kSec));
            CHECK(fit.frequency_hz == Approx(1000.0).margin(1.0));
            CHECK(fit.snr_db > 20.0);
        }
    }
}

TEST_CASE("seqnum_wrap", "[playout]") {
    const auto payloads = encode_tone(100);
    Playout p;
    StreamSpec s;
    s.first_seq = 65400;
    s.first_ts = 0xFFFF0000u;  // timestamps wrap too
    Sim sim{p, clean_arrivals(s, payloads, 300)};
    sim.run_until(6 * kSec);
    CHECK(p.stats().frames_decoded.load() == 300);
    CHECK(p.stats().lost.load() == 0);
    CHECK(p.stats().late.load() == 0);
    CHECK(p.stats().concealed.load() == 0);
    CHECK(p.stats().underruns.load() == 0);
    CHECK(p.stats().ssrc_changes.load() == 1);
    const auto fit = codecs::fit_tone(sim.output_after(1 * kSec).first(4 * 48000));
    CHECK(fit.frequency_hz == Approx(1000.0).margin(1.0));
}

TEST_CASE("ssrc_change_flushes", "[playout]") {
    const auto a = encode_tone(100, 1000.0);
    const auto b = encode_tone(100, 500.0);
    Playout p;
    StreamSpec sa;
    sa.ssrc = 0xAAAA;
    StreamSpec sb;
    sb.ssrc = 0xBBBB;
    sb.first_seq = 7;
    sb.first_ts = 999;
    sb.start_ns = 2 * kSec;
    auto packets = clean_arrivals(sa, a, 100);  // 0..2 s
    // A second programme preempts at 2 s; one straggler of the old one follows.
    auto pb = clean_arrivals(sb, b, 100);
    packets.insert(packets.end(), pb.begin(), pb.end());
    packets.push_back({2 * kSec + 5 * kMs, 100, stream_packet(sa, a, 100)});
    sort_by_arrival(packets);
    Sim sim{p, packets};
    sim.run_until(1 * kSec);
    CHECK(p.take_stream_change());
    CHECK_FALSE(p.take_stream_change());
    CHECK(p.stats().ssrc.load() == 0xAAAA);
    sim.run_until(2 * kSec + 30 * kMs);
    CHECK(p.take_stream_change());
    CHECK(p.stats().ssrc.load() == 0xBBBB);
    CHECK(p.stats().ssrc_changes.load() == 2);
    sim.run_until(4 * kSec);
    CHECK(p.stats().late.load() == 1);  // the straggler
    CHECK(p.stats().underruns.load() == 0);
    // The new programme is heard at once: 500 Hz from 2.06 s on, no 1 kHz left.
    const auto after = sim.output_after(2 * kSec + 60 * kMs).first(48000);
    const auto fit = codecs::fit_tone(after);
    CHECK(fit.frequency_hz == Approx(500.0).margin(1.0));
    CHECK(fit.snr_db > 15.0);
    // And nothing but silence and B between the switch and B's first frame.
    const auto before = sim.output_after(1 * kSec).first(48000);
    CHECK(codecs::fit_tone(before).frequency_hz == Approx(1000.0).margin(1.0));
    CHECK(p.has_stream());
    p.flush();
    CHECK_FALSE(p.has_stream());
}

TEST_CASE("reordered_packets_restored", "[playout]") {
    const auto payloads = encode_tone(100);
    PlayoutConfig cfg;
    cfg.min_delay_ms = 60;
    Playout p(cfg);
    StreamSpec s;
    auto packets = clean_arrivals(s, payloads, 400);
    std::size_t swapped = 0;
    for (std::size_t i = 5; i < packets.size(); i += 7) {
        packets[i].arrival += 30 * kMs;  // overtaken by the next one
        ++swapped;
    }
    sort_by_arrival(packets);
    Sim sim{p, packets};
    sim.run_until(8 * kSec - 60 * kMs);  // the stream ends at 8 s
    const auto swapped_pushed = static_cast<std::size_t>(std::count_if(
        sim.packets.begin(), sim.packets.begin() + static_cast<std::ptrdiff_t>(sim.next),
        [](const SimPacket& q) { return q.index >= 5 && q.index % 7 == 5; }));
    CHECK(p.stats().reordered.load() == swapped_pushed);
    CHECK(swapped_pushed + 1 >= swapped);
    CHECK(p.stats().lost.load() == 0);
    CHECK(p.stats().late.load() == 0);
    CHECK(p.stats().concealed.load() == 0);
    CHECK(p.stats().frames_decoded.load() >= 394);
    CHECK(p.stats().target_delay_ms.load() >= 60);
}

TEST_CASE("duplicate_dropped", "[playout]") {
    const auto payloads = encode_tone(100);
    Playout p;
    StreamSpec s;
    auto packets = clean_arrivals(s, payloads, 200);
    std::vector<SimPacket> dups;
    for (std::size_t i = 3; i < packets.size(); i += 5) {
        dups.push_back({packets[i].arrival + 2 * kMs, i, packets[i].bytes});
    }
    packets.insert(packets.end(), dups.begin(), dups.end());
    sort_by_arrival(packets);
    Sim sim{p, packets};
    sim.run_until(4 * kSec - 40 * kMs);  // the stream ends at 4 s
    const auto dups_pushed = static_cast<std::size_t>(std::count_if(
        sim.packets.begin(), sim.packets.begin() + static_cast<std::ptrdiff_t>(sim.next),
        [](const SimPacket& q) { return q.index % 5 == 3; })) / 2;
    CHECK(p.stats().duplicate.load() == dups_pushed);
    CHECK(dups_pushed >= 38);
    CHECK(p.stats().frames_decoded.load() >= 196);
    CHECK(p.stats().concealed.load() == 0);
    CHECK(p.stats().lost.load() == 0);
    // A copy pushed again afterwards is still a duplicate (or late), never played twice.
    const auto r = push_bytes(p, packets.front().bytes, sim.now);
    CHECK((r == PlayoutPush::Duplicate || r == PlayoutPush::Late));
}

TEST_CASE("late_packet_dropped", "[playout]") {
    const auto payloads = encode_tone(100, 1000.0, codecs::Content::Music);  // no FEC: PLC
    Playout p;
    StreamSpec s;
    auto packets = clean_arrivals(s, payloads, 200);
    packets[100].arrival += 300 * kMs;
    sort_by_arrival(packets);
    Sim sim{p, packets};
    std::optional<PlayoutPush> late_result;
    sim.before_render = [&](std::int64_t) {};
    sim.run_until(2 * kSec + 200 * kMs);
    // Push the late packet by hand to see the result.
    auto it = std::find_if(sim.packets.begin() + static_cast<std::ptrdiff_t>(sim.next), sim.packets.end(),
                           [](const SimPacket& q) { return q.index == 100; });
    REQUIRE(it != sim.packets.end());
    late_result = push_bytes(p, it->bytes, it->arrival);
    sim.packets.erase(it);
    sim.run_until(4 * kSec - 40 * kMs);
    CHECK(late_result == PlayoutPush::Late);
    CHECK(p.stats().late.load() == 1);
    CHECK(p.stats().lost.load() == 1);
    CHECK(p.stats().concealed.load() == 1);
    CHECK(p.stats().underruns.load() == 0);
    CHECK(p.stats().frames_decoded.load() >= 195);
}

TEST_CASE("late_packet_waited_for", "[playout]") {
    // Packet 100 comes 25 ms late, after packet 101: when its frame is due it
    // is missing while a later one is here, and there is no FEC (music mode).
    // The playout conceals a piece at a time for up to one packet time
    // instead of giving the frame up at once; the packet comes meanwhile and
    // is played whole, not dropped as late.
    const auto payloads = encode_tone(100, 1000.0, codecs::Content::Music);
    Playout p;
    StreamSpec s;
    auto packets = clean_arrivals(s, payloads, 200);
    packets[100].arrival += 25 * kMs;
    sort_by_arrival(packets);
    Sim sim{p, packets};
    sim.block = 480;
    sim.phase_ns = 3 * kMs;
    sim.run_until(2 * kSec + 10 * kMs);
    const auto expanded_before = p.stats().expanded_samples.load();
    sim.run_until(4 * kSec - 40 * kMs);
    INFO("target " << p.stats().target_delay_ms.load() << " current " << p.stats().current_delay_ms.load());
    CHECK(p.stats().late_played.load() == 1);
    CHECK(p.stats().late.load() == 0);
    CHECK(p.stats().lost.load() == 0);
    CHECK(p.stats().concealed.load() == 0);  // less than a frame of concealment while waiting
    CHECK(p.stats().underruns.load() == 0);
    CHECK(p.stats().frames_decoded.load() >= 197);
    CHECK(p.stats().expanded_samples.load() == expanded_before);  // no expand: the wait was concealment
    // The delay that the wait added is taken back.
    CHECK(p.stats().accelerated_samples.load() > 0);
    CHECK(std::abs(p.stats().current_delay_ms.load() - p.stats().target_delay_ms.load()) <= 5);
    const auto fit = codecs::fit_tone(sim.output_after(2500 * kMs).first(48000));
    CHECK(fit.frequency_hz == Approx(1000.0).margin(1.0));
}

TEST_CASE("late_fec_carrier_waited_for", "[playout]") {
    // Packet 100 is lost and packet 101, which carries its FEC copy, comes
    // 50 ms late: with a 60 ms delay, 102 is here when the frame of 100 is
    // due and 101 comes 10 ms after. The frame is held open for up to one
    // packet time, 101 comes meanwhile and the frame is rebuilt from its
    // FEC, whole.
    const auto payloads = encode_tone(200, 1000.0, codecs::Content::Speech, 20);
    PlayoutConfig cfg;
    cfg.min_delay_ms = 60;
    Playout p(cfg);
    StreamSpec s;
    auto packets = clean_arrivals(s, payloads, 200);
    packets[101].arrival += 50 * kMs;
    packets.erase(packets.begin() + 100);
    sort_by_arrival(packets);
    Sim sim{p, packets};
    sim.block = 480;
    sim.phase_ns = 3 * kMs;
    sim.run_until(4 * kSec - 40 * kMs);
    CHECK(p.stats().lost.load() == 1);
    CHECK(p.stats().recovered_fec.load() == 1);
    CHECK(p.stats().concealed.load() == 0);
    CHECK(p.stats().late.load() == 0);
    CHECK(p.stats().late_played.load() == 0);
    CHECK(p.stats().underruns.load() == 0);
    CHECK(std::abs(p.stats().current_delay_ms.load() - p.stats().target_delay_ms.load()) <= 5);
}

TEST_CASE("late_wait_is_bounded", "[playout]") {
    // The same late packet as in late_packet_waited_for with the wait turned
    // off, and one 60 ms late with the default wait: both frames are given
    // up (concealed) and the packets dropped as late when they come.
    for (const auto& [wait, extra_ms] : {std::pair{std::optional<int>(0), std::int64_t{25}},
                                         std::pair{std::optional<int>(), std::int64_t{60}}}) {
        const auto payloads = encode_tone(100, 1000.0, codecs::Content::Music);
        PlayoutConfig cfg;
        cfg.late_wait_ms = wait;
        Playout p(cfg);
        StreamSpec s;
        auto packets = clean_arrivals(s, payloads, 200);
        packets[100].arrival += extra_ms * kMs;
        sort_by_arrival(packets);
        Sim sim{p, packets};
        sim.block = 480;
        sim.phase_ns = 3 * kMs;
        sim.run_until(4 * kSec - 40 * kMs);
        INFO("wait " << (wait ? *wait : -1) << " ms, packet " << extra_ms << " ms late");
        CHECK(p.stats().late_played.load() == 0);
        CHECK(p.stats().late.load() == 1);
        CHECK(p.stats().lost.load() == 1);
        CHECK(p.stats().concealed.load() == 1);
        CHECK(p.stats().underruns.load() == 0);
    }
}

TEST_CASE("fec_recovers_single_loss", "[playout]") {
    const auto payloads = encode_tone(200, 1000.0, codecs::Content::Speech, 20);
    // FEC needs the packet after the lost one to be there when the lost one
    // is due: one packet time more than a clean network needs.
    PlayoutConfig cfg;
    cfg.min_delay_ms = 40;
    Playout p(cfg);
    StreamSpec s;
    auto packets = clean_arrivals(s, payloads, 200);
    std::vector<SimPacket> kept;
    for (auto& q : packets) {
        if (q.index != 40 && q.index != 80 && q.index != 120) kept.push_back(std::move(q));
    }
    Sim sim{p, kept};
    sim.run_until(4 * kSec - 60 * kMs);
    CHECK(p.stats().lost.load() == 3);
    CHECK(p.stats().recovered_fec.load() == 3);
    CHECK(p.stats().concealed.load() == 0);
    CHECK(p.stats().underruns.load() == 0);
    const auto fit = codecs::fit_tone(sim.output_after(500 * kMs).first(3 * 48000));
    CHECK(fit.frequency_hz == Approx(1000.0).margin(1.0));
}

TEST_CASE("long_gap_fades_out", "[playout]") {
    const auto payloads = encode_tone(100, 1000.0, codecs::Content::Music);
    Playout p;  // fade_after_ms = 100
    StreamSpec s;
    auto packets = clean_arrivals(s, payloads, 250);
    std::vector<SimPacket> kept;
    for (auto& q : packets) {
        if (q.index < 100 || q.index >= 150) kept.push_back(std::move(q));  // 1 s gap from 2 s on
    }
    Sim sim{p, kept};
    sim.run_until(5 * kSec - 60 * kMs);
    CHECK(p.stats().lost.load() == 50);
    // PLC for fade_after_ms (100 ms), then a 20 ms fade: about 6 frames.
    CHECK(p.stats().concealed.load() >= 5);
    CHECK(p.stats().concealed.load() <= 7);
    CHECK(p.stats().underruns.load() == 0);
    const auto delay = p.stats().current_delay_ms.load();
    // Packet 100 was due at about 2 s + delay: concealment up to 100 ms, then a 20 ms fade.
    const std::int64_t gap_start = 2 * kSec + delay * kMs;
    const auto early = sim.output_after(gap_start + 20 * kMs).first(960);
    CHECK(rms_of(early) > 0.05);  // PLC still sounds
    const auto silent = sim.output_after(gap_start + 160 * kMs).first(48000 * 7 / 10);
    CHECK(codecs::peak(silent) < 1e-6f);
    // The stream comes back after the gap.
    const auto back = sim.output_after(gap_start + 1100 * kMs).first(48000);
    CHECK(rms_of(back) > 0.2);
    CHECK(codecs::fit_tone(back).frequency_hz == Approx(1000.0).margin(1.0));
}

namespace {

/// Arrivals of `count` packets sent every 20 ms through `model` (loss,
/// jitter, reordering), sorted by arrival. Lost packets are left out.
std::vector<SimPacket> impaired_arrivals(const StreamSpec& s, const std::vector<Bytes>& payloads, std::size_t count,
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

transport::ImpairmentConfig jitter_config(std::int64_t spread_ns, std::uint64_t seed) {
    transport::ImpairmentConfig c;
    c.seed = seed;
    c.delay_ns = 5 * kMs;
    c.jitter = transport::JitterDistribution::Uniform;
    c.jitter_spread_ns = spread_ns;
    return c;
}

}  // namespace

TEST_CASE("adapts_to_jitter", "[playout]") {
    const auto payloads = encode_tone(100);
    Playout p;
    StreamSpec s;
    transport::ImpairmentModel jittery(jitter_config(40 * kMs, 7));
    auto packets = impaired_arrivals(s, payloads, 1500, jittery);  // 30 s of 0..40 ms jitter
    transport::ImpairmentModel clean(jitter_config(0, 7));
    const auto calm = impaired_arrivals(s, payloads, 3500, clean, 1500);  // then 70 s clean
    packets.insert(packets.end(), calm.begin(), calm.end());
    sort_by_arrival(packets);
    Sim sim{p, packets};
    sim.keep_output = false;
    sim.run_until(5 * kSec);
    const auto underruns_startup = p.stats().underruns.load();
    const auto concealed_startup = p.stats().concealed.load();
    sim.run_until(30 * kSec);
    const int jitter_target = p.stats().target_delay_ms.load();
    const int jitter_delay = p.stats().current_delay_ms.load();
    const auto concealed_jitter = p.stats().concealed.load() - concealed_startup;
    const auto underruns_jitter = p.stats().underruns.load() - underruns_startup;
    sim.run_until(99 * kSec);
    const int clean_target = p.stats().target_delay_ms.load();
    const int clean_delay = p.stats().current_delay_ms.load();
    WARN("adapts_to_jitter: 40 ms jitter: target " << jitter_target << " ms, delay " << jitter_delay
         << " ms, concealed " << concealed_jitter << " of 1250 frames, underruns " << underruns_jitter
         << "; clean again: target " << clean_target << " ms, delay " << clean_delay << " ms; accelerated "
         << p.stats().accelerated_samples.load() << " expanded " << p.stats().expanded_samples.load());
    CHECK(jitter_target >= 50);
    CHECK(jitter_target <= 70);
    CHECK(std::abs(jitter_delay - jitter_target) <= 5);
    CHECK(concealed_jitter <= 25);  // <= 2 %
    CHECK(clean_target <= 25);
    CHECK(std::abs(clean_delay - clean_target) <= 5);
    CHECK(p.stats().lost.load() == p.stats().late.load());  // nothing was dropped by the network
}

TEST_CASE("imposed_target_delay", "[playout]") {
    const auto payloads = encode_tone(100);
    PlayoutConfig cfg;
    cfg.fixed_delay_ms = 100;
    Playout p(cfg);
    StreamSpec s;
    Sim sim{p, clean_arrivals(s, payloads, 1000)};
    sim.run_until(3 * kSec);
    CHECK(p.stats().target_delay_ms.load() == 100);
    CHECK(std::abs(p.stats().current_delay_ms.load() - 100) <= 5);
    // Imposed later: 150 ms, reached by expanding.
    p.set_target_delay_ms(150);
    sim.run_until(8 * kSec);
    CHECK(p.stats().target_delay_ms.load() == 150);
    CHECK(std::abs(p.stats().current_delay_ms.load() - 150) <= 5);
    // Back to adaptive: about one packet time, reached by accelerating.
    p.set_target_delay_ms(std::nullopt);
    sim.run_until(16 * kSec);
    CHECK(p.stats().target_delay_ms.load() <= 25);
    CHECK(std::abs(p.stats().current_delay_ms.load() - p.stats().target_delay_ms.load()) <= 5);
    CHECK(p.stats().underruns.load() == 0);
    CHECK(p.stats().concealed.load() == 0);
    CHECK(p.stats().expanded_samples.load() >= 48 * 50);
    CHECK(p.stats().accelerated_samples.load() >= 48 * 120);
    // Imposed values are clamped to [one packet time, max_delay_ms].
    p.set_target_delay_ms(5);
    CHECK(p.stats().target_delay_ms.load() == 20);
    p.set_target_delay_ms(100000);
    CHECK(p.stats().target_delay_ms.load() == 500);
    // The stretched tone keeps its pitch.
    const auto fit = codecs::fit_tone(sim.output_after(1 * kSec));
    CHECK(fit.frequency_hz == Approx(1000.0).margin(1.0));
}

TEST_CASE("tone_through_burst_loss_and_jitter", "[playout][quality]") {
    // 60 s of a 1 kHz tone with in-band FEC through seeded Gilbert-Elliott
    // loss (5 %, bursts of 2 on average) and 0..40 ms jitter (reordering).
    const auto payloads = encode_tone(500, 1000.0, codecs::Content::Speech, 10);
    Playout p;
    StreamSpec s;
    transport::ImpairmentConfig ic = jitter_config(40 * kMs, 2024);
    ic.loss = transport::LossModel::GilbertElliott;
    ic.gilbert_elliott = transport::GilbertElliottParams::from_mean(0.05, 2.0);
    transport::ImpairmentModel model(ic);
    const std::size_t count = 3000;
    Sim sim{p, impaired_arrivals(s, payloads, count, model)};
    sim.run_until(5 * kSec);
    const auto underruns_startup = p.stats().underruns.load();
    const auto concealed_startup = p.stats().concealed.load();
    const auto fec_startup = p.stats().recovered_fec.load();
    sim.run_until(60 * kSec - 100 * kMs);
    const double loss_rate = static_cast<double>(model.counts().dropped) / static_cast<double>(count);
    const double frames = 55.0 * 50.0;
    const double concealed = static_cast<double>(p.stats().concealed.load() - concealed_startup) / frames;
    const double fec = static_cast<double>(p.stats().recovered_fec.load() - fec_startup) / frames;
    const auto fit = codecs::fit_tone(sim.output_after(5 * kSec));
    WARN("tone_through_burst_loss_and_jitter: loss " << loss_rate * 100 << " %, concealed " << concealed * 100
         << " %, recovered by FEC " << fec * 100 << " %, late " << p.stats().late.load() << ", target "
         << p.stats().target_delay_ms.load() << " ms, delay " << p.stats().current_delay_ms.load()
         << " ms, underruns after start-up " << p.stats().underruns.load() - underruns_startup << ", tone "
         << fit.frequency_hz << " Hz, SNR " << fit.snr_db << " dB");
    CHECK(loss_rate > 0.03);
    CHECK(fit.frequency_hz == Approx(1000.0).margin(2.0));
    CHECK(p.stats().underruns.load() == underruns_startup);
    CHECK(concealed < loss_rate);
    CHECK(fec > 0.0);
}

namespace {

/// Sender clock off by `ppm` against the consumer's: 10 simulated minutes of
/// a 1 kHz tone, rendered in 20 ms blocks on the consumer clock.
void run_drift(double ppm) {
    const auto payloads = encode_tone(110, 1000.0, codecs::Content::Music, 0, 128000);
    Playout p;
    StreamSpec s;
    const double sender_period_ns = 20e6 / (1.0 + ppm * 1e-6);  // consumer ns per sender packet
    const std::int64_t duration = 600 * kSec;
    const std::int64_t phase = 11 * kMs;
    std::vector<float> buf(960);
    std::size_t next_packet = 0;
    double worst_db = -200.0;
    std::size_t windows = 0;
    std::size_t bad_windows = 0;
    std::int64_t worst_at = 0;
    std::vector<float> last_second;
    for (std::int64_t now = phase; now < duration; now += 20 * kMs) {
        while (true) {
            const auto arrival = static_cast<std::int64_t>(std::llround(static_cast<double>(next_packet) * sender_period_ns)) +
                                 3 * kMs;
            if (arrival > now) break;
            push_bytes(p, stream_packet(s, payloads, next_packet), arrival);
            ++next_packet;
        }
        p.render(buf, now);
        if (now < 2 * kSec) continue;
        // The tone's frequency in consumer time is 1000 Hz * (1 + applied
        // correction): fit it per window on a 0.25 Hz grid around 1000 Hz.
        double best = 0.0;
        for (int k = -8; k <= 8; ++k) {
            best = std::min(best, codecs::sine_residual_db(buf, 1000.0 + 0.25 * k));
        }
        ++windows;
        if (best > -30.0) ++bad_windows;
        if (best > worst_db) {
            worst_db = best;
            worst_at = now;
        }
        if (now > duration - 1 * kSec) last_second.insert(last_second.end(), buf.begin(), buf.end());
    }
    const auto fit = codecs::fit_tone(last_second);
    WARN("drift " << ppm << " ppm: delay " << p.stats().current_delay_ms.load() << " ms, target "
         << p.stats().target_delay_ms.load() << " ms, correction " << p.stats().drift_ppm.load()
         << " ppm, accelerated " << p.stats().accelerated_samples.load() << " expanded "
         << p.stats().expanded_samples.load() << " samples, worst window residual " << worst_db << " dB at "
         << worst_at / kMs << " ms (" << bad_windows << " of " << windows << " above -30 dB), last second "
         << fit.frequency_hz << " Hz");
    CHECK(p.stats().underruns.load() == 0);
    CHECK(p.stats().overflows.load() == 0);
    CHECK(p.stats().concealed.load() == 0);
    CHECK(p.stats().late.load() == 0);
    CHECK(std::abs(p.stats().current_delay_ms.load() - p.stats().target_delay_ms.load()) <= 5);
    CHECK(std::abs(p.stats().drift_ppm.load() - ppm) <= 50);
    CHECK(worst_db <= -30.0);
}

}  // namespace

TEST_CASE("drift_plus_200ppm", "[playout][drift]") { run_drift(200.0); }

TEST_CASE("drift_minus_200ppm", "[playout][drift]") { run_drift(-200.0); }

TEST_CASE("dtx_gap_resumes_without_loss", "[playout]") {
    // A sender in DTX stops sending during silence: the sequence numbers run
    // on without a hole, the timestamp jumps by the silent time, and the first
    // packet after it carries the marker bit. Nothing is lost or late, and the
    // stream plays again at its target delay.
    const auto payloads = encode_tone(100);
    Playout p;
    StreamSpec s;
    std::vector<SimPacket> packets;
    constexpr std::size_t kBefore = 100;
    constexpr std::size_t kSilentFrames = 50;  // 1 s without packets
    for (std::size_t i = 0; i < 2 * kBefore; ++i) {
        const std::size_t frame = i < kBefore ? i : i + kSilentFrames;
        const auto seq = static_cast<std::uint16_t>(s.first_seq + i);
        const auto ts = static_cast<std::uint32_t>(s.first_ts + frame * s.samples);
        packets.push_back({static_cast<std::int64_t>(frame) * s.period_ns, i,
                           make_rtp(seq, ts, s.ssrc, payload_for(payloads, i), i == kBefore)});
    }
    Sim sim{p, packets};
    // Up to the last packet's arrival: after it the stream has simply ended.
    sim.run_until(static_cast<std::int64_t>(2 * kBefore + kSilentFrames - 1) * s.period_ns + 5 * kMs);
    INFO("target " << p.stats().target_delay_ms.load() << " current " << p.stats().current_delay_ms.load()
                   << " concealed " << p.stats().concealed.load());
    CHECK(p.stats().frames_decoded.load() >= 2 * kBefore - 2);  // the last one or two are still buffered
    CHECK(p.stats().lost.load() == 0);
    CHECK(p.stats().late.load() == 0);
    CHECK(p.stats().ssrc_changes.load() == 1);
    CHECK(std::abs(p.stats().current_delay_ms.load() - p.stats().target_delay_ms.load()) <= 5);
    // The tone is back after the pause.
    const auto resumed = sim.output_after(static_cast<std::int64_t>(kBefore + kSilentFrames) * s.period_ns + 300 * kMs);
    REQUIRE(resumed.size() > 24000);
    const auto fit = codecs::fit_tone(resumed.first(24000));
    CHECK(fit.frequency_hz == Approx(1000.0).margin(1.0));
    CHECK(fit.snr_db > 20.0);
}

TEST_CASE("clean_network_10ms_packets", "[playout]") {
    const auto payloads = encode_tone(200, 1000.0, codecs::Content::Speech, 10, 64000, 10);
    Playout p;
    StreamSpec s;
    s.samples = 480;
    s.period_ns = 10 * kMs;
    Sim sim{p, clean_arrivals(s, payloads, 800)};
    sim.block = 480;
    sim.phase_ns = 3 * kMs;
    sim.run_until(8 * kSec);
    INFO("target " << p.stats().target_delay_ms.load() << " current " << p.stats().current_delay_ms.load());
    CHECK(p.stats().underruns.load() == 0);
    CHECK(p.stats().concealed.load() == 0);
    CHECK(p.stats().lost.load() == 0);
    CHECK(p.stats().target_delay_ms.load() <= 15);
    CHECK(std::abs(p.stats().current_delay_ms.load() - p.stats().target_delay_ms.load()) <= 5);
    const auto fit = codecs::fit_tone(sim.output_after(1 * kSec).first(4 * 48000));
    CHECK(fit.frequency_hz == Approx(1000.0).margin(1.0));
    CHECK(fit.snr_db > 20.0);
}
