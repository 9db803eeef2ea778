// loa-studio's core driven with passed-in time: the 10 ms block pacer, the
// sources (tone, clicks, file, device ring), the Opus/RTP packetiser and the
// send loop with its RTCP SR schedule. No sockets, no sleeps.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>
#include <stdexcept>
#include <vector>

#include "loa-speaker/float_ring.h"
#include "loa-studio/block_source.h"
#include "loa-studio/packetiser.h"
#include "loa-studio/send_loop.h"
#include "loa/codecs/opus_decoder.h"
#include "loa/codecs/tone_analysis.h"
#include "loa/codecs/wav_writer.h"
#include "loa/transport/rtcp_packet.h"
#include "loa/transport/rtp_packet.h"
#include "temp_dir.h"

using namespace loa;

namespace {

constexpr std::int64_t kMs = 1'000'000;
constexpr std::int64_t kStart = 5'000 * kMs;          // arbitrary monotonic origin
constexpr std::int64_t kUnixStart = 1'700'000'000'000'000'000;

struct Sent {
    std::int64_t at_ns;
    std::vector<std::uint8_t> bytes;
};

studio::SendLoopConfig loop_config(int ptime_ms = 20) {
    studio::SendLoopConfig c;
    c.packetiser.ssrc = 0x11223344;
    c.packetiser.first_sequence = 65530;  // wraps during every test
    c.packetiser.first_timestamp = 0xFFFFF000;
    c.packetiser.payload_type = 111;
    c.packetiser.cname = "studio-hn-01";
    c.packetiser.opus.ptime_ms = ptime_ms;
    return c;
}

// Runs `loop` by calling tick() every `step_ns` from kStart up to `end_ns`
// (relative), recording each datagram with the tick time it was sent at.
class Harness {
public:
    Harness(const studio::SendLoopConfig& config, studio::BlockSource& source)
        : loop_(config, source, kStart, [this](std::span<const std::uint8_t> d) {
              sent_.push_back({now_, std::vector<std::uint8_t>(d.begin(), d.end())});
              return true;
          }) {}

    void run_until(std::int64_t rel_end_ns, std::int64_t step_ns = kMs) {
        for (; now_ <= kStart + rel_end_ns; now_ += step_ns) {
            if (!loop_.tick(now_, kUnixStart + (now_ - kStart))) break;
        }
    }

    std::vector<Sent> rtp() const {
        std::vector<Sent> out;
        for (const auto& s : sent_) {
            if (!transport::looks_like_rtcp(s.bytes)) out.push_back(s);
        }
        return out;
    }
    std::vector<Sent> rtcp() const {
        std::vector<Sent> out;
        for (const auto& s : sent_) {
            if (transport::looks_like_rtcp(s.bytes)) out.push_back(s);
        }
        return out;
    }

    studio::SendLoop& loop() { return loop_; }
    std::int64_t now() const { return now_; }

private:
    std::int64_t now_ = kStart;
    std::vector<Sent> sent_;
    studio::SendLoop loop_;
};

transport::RtpView parse_rtp(const Sent& s) {
    transport::RtpView v;
    REQUIRE(transport::RtpView::parse(s.bytes, v) == transport::Status::Ok);
    return v;
}

}  // namespace

TEST_CASE("pacer_releases_blocks_on_deadlines", "[studio][source]") {
    studio::BlockPacer pacer(kStart);
    CHECK(pacer.next_deadline_ns() == kStart + 10 * kMs);
    CHECK(pacer.take_due(kStart) == 0);
    CHECK(pacer.take_due(kStart + 10 * kMs - 1) == 0);
    CHECK(pacer.take_due(kStart + 10 * kMs) == 1);
    CHECK(pacer.take_due(kStart + 10 * kMs) == 0);  // already taken
    CHECK(pacer.next_deadline_ns() == kStart + 20 * kMs);
    // A late wake-up releases everything due at once, on the original grid.
    CHECK(pacer.take_due(kStart + 35 * kMs) == 2);
    CHECK(pacer.taken() == 3);
    CHECK(pacer.next_deadline_ns() == kStart + 40 * kMs);
    CHECK(pacer.sample_time_ns(480) == kStart + 10 * kMs);
    CHECK(pacer.sample_time_ns(48000) == kStart + 1000 * kMs);
    CHECK(pacer.samples_at(kStart + 1000 * kMs) == 48000);
    CHECK(pacer.samples_at(kStart - 1) == 0);
    CHECK(pacer.resyncs() == 0);
}

TEST_CASE("pacer_resyncs_after_a_stall", "[studio][source]") {
    studio::BlockPacer pacer(kStart, studio::kBlockNs, 100);
    CHECK(pacer.take_due(kStart + 5000 * kMs) == 100);  // 1 s of backlog at most, not 5 s
    CHECK(pacer.resyncs() == 1);
    CHECK(pacer.next_deadline_ns() > kStart + 5000 * kMs);
    CHECK(pacer.next_deadline_ns() <= kStart + 5010 * kMs);
    CHECK(pacer.take_due(kStart + 5010 * kMs) == 1);
}

TEST_CASE("click_source_timing", "[studio][source]") {
    studio::ClickSource clicks(4800, 0.8);  // every 100 ms
    std::vector<float> all;
    std::vector<float> block(studio::kBlockSamples);
    for (int i = 0; i < 100; ++i) {  // 1 s
        std::size_t got = 0;
        REQUIRE(clicks.read(block, got) == studio::SourceStatus::Ok);
        REQUIRE(got == block.size());
        all.insert(all.end(), block.begin(), block.end());
    }
    // Onsets: the first non-zero sample after silence.
    std::vector<std::size_t> onsets;
    for (std::size_t i = 1; i < all.size(); ++i) {
        if (all[i] != 0.0f && all[i - 1] == 0.0f && (onsets.empty() || i - onsets.back() > 1000)) {
            onsets.push_back(i - 1);  // the burst starts at phase 0: sample i-1 is its (zero) onset
        }
    }
    REQUIRE(onsets.size() == 9);
    for (std::size_t k = 0; k < onsets.size(); ++k) CHECK(onsets[k] == (k + 1) * 4800);
    CHECK(std::all_of(all.begin(), all.begin() + 4800, [](float s) { return s == 0.0f; }));
    CHECK(codecs::peak(std::span<const float>(all).subspan(4800, 240)) > 0.7f);
    CHECK(codecs::peak(std::span<const float>(all).subspan(4800 + 240, 4800 - 240)) == 0.0f);
    CHECK(clicks.onset_in(0, 4800) == std::numeric_limits<std::uint64_t>::max());
    CHECK(clicks.onset_in(4800, 480) == 4800);
    CHECK(clicks.onset_in(4320, 480) == std::numeric_limits<std::uint64_t>::max());
    CHECK(clicks.onset_in(4321, 480) == 4800);
    CHECK(clicks.onset_in(9600, 1) == 9600);
}

TEST_CASE("paced_source_releases_10ms_blocks_and_packets_on_time", "[studio][rtp]") {
    const int ptime = GENERATE(10, 20, 40, 60);
    const std::uint32_t frame = static_cast<std::uint32_t>(48 * ptime);
    studio::ToneSource tone(440.0, 0.5);
    Harness h(loop_config(ptime), tone);
    h.run_until(1200 * kMs);
    const auto rtp = h.rtp();
    REQUIRE(rtp.size() == static_cast<std::size_t>(1200 / ptime));
    CHECK(h.loop().stats().samples_captured == 120 * studio::kBlockSamples);
    CHECK(h.loop().stats().packets_sent == rtp.size());
    CHECK(h.loop().stats().frames_encoded == rtp.size());
    for (std::size_t i = 0; i < rtp.size(); ++i) {
        INFO("packet " << i);
        const auto v = parse_rtp(rtp[i]);
        // Sent in the tick where its last 10 ms block became due: no extra buffering.
        CHECK(rtp[i].at_ns == kStart + static_cast<std::int64_t>(i + 1) * ptime * kMs);
        CHECK(v.ssrc() == 0x11223344u);
        CHECK(v.payload_type() == 111);
        CHECK(v.marker() == (i == 0));
        CHECK(v.sequence() == static_cast<std::uint16_t>(65530 + i));
        CHECK(v.timestamp() == static_cast<std::uint32_t>(0xFFFFF000u + i * frame));
        CHECK(codecs::OpusDecoder::packet_samples(v.payload()) == frame);
    }
}

TEST_CASE("late_wakeup_sends_the_backlog_at_once", "[studio][rtp]") {
    studio::ToneSource tone(440.0, 0.5);
    Harness h(loop_config(20), tone);
    // One tick 95 ms in: 9 blocks due -> 4 packets, the 9th block pending.
    h.loop().tick(kStart + 95 * kMs, kUnixStart);
    CHECK(h.rtp().size() == 4);
    CHECK(h.loop().next_wake_ns() == kStart + 100 * kMs);
    h.loop().tick(kStart + 100 * kMs, kUnixStart);
    CHECK(h.rtp().size() == 5);
}

TEST_CASE("sr_every_second_with_cname", "[studio][rtcp]") {
    studio::ToneSource tone(440.0, 0.5);
    Harness h(loop_config(20), tone);
    h.run_until(5500 * kMs);
    const auto rtcp = h.rtcp();
    const auto rtp = h.rtp();
    // One right after the first packet, then one per second on the deadlines.
    REQUIRE(rtcp.size() == 6);
    CHECK(rtcp[0].at_ns == kStart + 20 * kMs);
    for (std::size_t k = 1; k < rtcp.size(); ++k) {
        CHECK(rtcp[k].at_ns == kStart + static_cast<std::int64_t>(k) * 1000 * kMs);
    }
    for (const auto& r : rtcp) {
        INFO("rtcp at " << (r.at_ns - kStart) / kMs << " ms");
        transport::RtcpCompound c;
        REQUIRE(transport::parse_rtcp(r.bytes, c) == transport::Status::Ok);
        CHECK(c.has_sr);
        CHECK(c.sender_ssrc == 0x11223344u);
        REQUIRE(c.sdes_count == 1);
        CHECK(c.sdes[0].ssrc == 0x11223344u);
        CHECK(c.sdes[0].cname == "studio-hn-01");
        CHECK(c.bye_count == 0);
        // Counts cover the packets sent before it; the RTP time is the stream's now.
        const auto before = static_cast<std::uint32_t>(
            std::count_if(rtp.begin(), rtp.end(), [&](const Sent& s) { return s.at_ns <= r.at_ns; }));
        CHECK(c.sender_info.packet_count == before);
        CHECK(c.sender_info.octet_count > 0);
        const auto samples = static_cast<std::uint32_t>((r.at_ns - kStart) / kMs * 48);
        CHECK(c.sender_info.rtp_timestamp == static_cast<std::uint32_t>(0xFFFFF000u + samples));
        CHECK(transport::unix_ns_from_ntp(c.sender_info.ntp_timestamp) ==
              Approx(static_cast<double>(kUnixStart + (r.at_ns - kStart))).margin(1000));
    }
}

TEST_CASE("duration_limit_pads_last_packet_and_says_bye", "[studio][rtcp]") {
    auto config = loop_config(20);
    config.max_samples = 12000;  // 250 ms: 12.5 packets
    studio::ToneSource tone(440.0, 0.5);
    Harness h(config, tone);
    h.run_until(2000 * kMs);
    CHECK_FALSE(h.loop().running());
    CHECK(h.loop().stats().samples_captured == 12000);
    const auto rtp = h.rtp();
    REQUIRE(rtp.size() == 13);
    CHECK(parse_rtp(rtp.back()).timestamp() == static_cast<std::uint32_t>(0xFFFFF000u + 12 * 960));
    CHECK(rtp.back().at_ns == kStart + 250 * kMs);  // sent with the block that holds the last sample
    const auto rtcp = h.rtcp();
    REQUIRE(rtcp.size() == 2);  // first SR, then SR + SDES + BYE at the end
    transport::RtcpCompound c;
    REQUIRE(transport::parse_rtcp(rtcp.back().bytes, c) == transport::Status::Ok);
    CHECK(c.has_sr);
    CHECK(c.sender_info.packet_count == 13);
    REQUIRE(c.bye_count == 1);
    CHECK(c.bye[0] == 0x11223344u);
    // finish() again sends nothing more.
    h.loop().finish(h.now(), kUnixStart);
    CHECK(h.rtcp().size() == 2);
}

TEST_CASE("tone_survives_encode_decode_at_440_hz", "[studio][audio]") {
    const int ptime = GENERATE(10, 20, 60);
    studio::ToneSource tone(440.0, 0.5);
    Harness h(loop_config(ptime), tone);
    h.run_until(2000 * kMs);
    codecs::OpusDecoder dec;
    std::vector<float> pcm;
    std::vector<float> out(codecs::kMaxFrameSamples);
    for (const auto& s : h.rtp()) {
        std::size_t n = 0;
        REQUIRE(dec.decode(parse_rtp(s).payload(), out, n) == codecs::Status::Ok);
        pcm.insert(pcm.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
    }
    REQUIRE(pcm.size() == static_cast<std::size_t>(2000 / ptime * 48 * ptime));
    const auto fit = codecs::fit_tone(std::span<const float>(pcm).subspan(4800));
    CHECK(fit.frequency_hz == Approx(440.0).margin(1.0));
    CHECK(fit.amplitude == Approx(0.5).margin(0.1));
    CHECK(fit.snr_db >= 25.0);
}

TEST_CASE("click_capture_instants_recorded_and_sent_within_one_ptime", "[studio][clicks]") {
    auto config = loop_config(20);
    config.record_click_times = true;
    studio::ClickSource clicks(4800, 0.8);  // every 100 ms
    Harness h(config, clicks);
    h.run_until(1025 * kMs);
    const auto& times = h.loop().click_times();
    REQUIRE(times.size() == 10);  // 100, 200, ... 1000 ms
    CHECK(h.loop().stats().clicks == 10);
    const auto rtp = h.rtp();
    for (std::size_t k = 0; k < times.size(); ++k) {
        const std::int64_t onset = kStart + static_cast<std::int64_t>(k + 1) * 100 * kMs;
        CHECK(times[k] == onset);
        // The packet carrying the onset leaves one packet time after it (the
        // onset opens a frame): the 10 ms card block plus the rest of the frame.
        const auto it = std::find_if(rtp.begin(), rtp.end(), [&](const Sent& s) {
            const auto v = parse_rtp(s);
            const auto rel = static_cast<std::uint32_t>(v.timestamp() - 0xFFFFF000u);
            return rel <= (k + 1) * 4800 && (k + 1) * 4800 < rel + 960;
        });
        REQUIRE(it != rtp.end());
        CHECK(it->at_ns - onset == 20 * kMs);
    }
}

TEST_CASE("device_ring_packetised_as_blocks_arrive", "[studio][device]") {
    speaker::FloatRing ring(48000);
    studio::RingSource source(ring);
    Harness h(loop_config(20), source);
    std::vector<float> block(studio::kBlockSamples, 0.25f);
    h.loop().tick(kStart + 1 * kMs, kUnixStart);
    CHECK(h.rtp().empty());
    REQUIRE(ring.write(block) == block.size());
    h.loop().tick(kStart + 11 * kMs, kUnixStart);
    CHECK(h.rtp().empty());  // half a packet
    REQUIRE(ring.write(std::span<const float>(block).first(100)) == 100);
    h.loop().tick(kStart + 13 * kMs, kUnixStart);
    CHECK(h.rtp().empty());  // a partial block stays in the ring
    REQUIRE(ring.write(std::span<const float>(block).first(380)) == 380);
    h.loop().tick(kStart + 21 * kMs, kUnixStart);
    REQUIRE(h.rtp().size() == 1);
    CHECK(h.rtcp().size() == 1);  // the first SR follows the first packet
    // A burst of 5 blocks (a late io thread) is drained in one tick.
    for (int i = 0; i < 5; ++i) REQUIRE(ring.write(block) == block.size());
    h.loop().tick(kStart + 80 * kMs, kUnixStart);
    CHECK(h.rtp().size() == 3);
    CHECK(ring.size() == 0);
    CHECK(h.loop().stats().samples_captured == 7 * studio::kBlockSamples);
}

TEST_CASE("file_source_plays_once_or_loops", "[studio][source]") {
    test::TempDir dir("loa-studio-file");
    const auto path = dir / "ramp.wav";
    std::vector<float> ramp(700);
    for (std::size_t i = 0; i < ramp.size(); ++i) ramp[i] = static_cast<float>(i) / 1000.0f;
    {
        codecs::WavWriter w(path, codecs::WavSampleFormat::Float32);
        REQUIRE(w.write(ramp) == codecs::Status::Ok);
        REQUIRE(w.close() == codecs::Status::Ok);
    }
    std::vector<float> block(studio::kBlockSamples);
    std::size_t got = 0;
    SECTION("once") {
        studio::FileSource src(path, false);
        REQUIRE(src.read(block, got) == studio::SourceStatus::Ok);
        CHECK(block[479] == Approx(0.479f));
        REQUIRE(src.read(block, got) == studio::SourceStatus::End);
        CHECK(got == 220);
        CHECK(block[219] == Approx(0.699f));
        CHECK(block[220] == 0.0f);
        CHECK(src.read(block, got) == studio::SourceStatus::End);
        CHECK(got == 0);
    }
    SECTION("looped") {
        studio::FileSource src(path, true);
        std::vector<float> all;
        for (int i = 0; i < 5; ++i) {
            REQUIRE(src.read(block, got) == studio::SourceStatus::Ok);
            all.insert(all.end(), block.begin(), block.end());
        }
        for (std::size_t i = 0; i < all.size(); ++i) {
            INFO("sample " << i);
            REQUIRE(all[i] == Approx(ramp[i % ramp.size()]));
        }
    }
    SECTION("end_of_file_stops_the_loop") {
        studio::FileSource src(path, false);
        Harness h(loop_config(20), src);
        h.run_until(500 * kMs);
        CHECK_FALSE(h.loop().running());
        CHECK(h.loop().stats().samples_captured == 700);
        CHECK(h.rtp().size() == 1);  // 700 samples < one 960-sample frame: one padded packet
        CHECK(h.loop().error().empty());
    }
    SECTION("missing_file_throws_with_its_name") {
        CHECK_THROWS_WITH(studio::FileSource(dir / "nope.wav", false), Catch::Contains("nope.wav"));
    }
}

TEST_CASE("rtcp_from_engine_counted_and_garbage_dropped", "[studio][rtcp]") {
    studio::ToneSource tone(440.0, 0.5);
    Harness h(loop_config(20), tone);
    std::array<std::uint8_t, 256> buf{};
    transport::RtcpWriter w(buf);
    transport::RtcpReportBlock ours;
    ours.ssrc = 0x11223344;
    ours.fraction_lost = 64;
    ours.jitter = 123;
    transport::RtcpReportBlock other;
    other.ssrc = 0x55;
    other.fraction_lost = 255;
    const std::array<transport::RtcpReportBlock, 2> blocks{other, ours};
    REQUIRE(w.add_rr(0xABCD, blocks) == transport::Status::Ok);
    REQUIRE(w.add_sdes_cname(0xABCD, "engine") == transport::Status::Ok);
    h.loop().on_datagram(w.bytes());
    CHECK(h.loop().stats().rtcp_received == 1);
    CHECK(h.loop().stats().rr_blocks == 1);
    CHECK(h.loop().stats().last_fraction_lost == Approx(0.25));
    CHECK(h.loop().stats().last_jitter == 123);

    const std::array<std::uint8_t, 5> junk{0x80, 0xC9, 0x00, 0x09, 0x01};  // RR claiming 40 bytes
    h.loop().on_datagram(junk);
    h.loop().on_datagram({});
    const std::array<std::uint8_t, 12> rtp{0x80, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2};
    h.loop().on_datagram(rtp);
    CHECK(h.loop().stats().rtcp_received == 1);
    CHECK(h.loop().stats().malformed_received == 3);
}

TEST_CASE("packetiser_rejects_bad_settings", "[studio][config]") {
    auto c = loop_config(20).packetiser;
    SECTION("static_payload_type") {
        c.payload_type = 8;
        CHECK_THROWS_WITH(studio::validate(c), Catch::Contains("96..127"));
    }
    SECTION("empty_cname") {
        c.cname.clear();
        CHECK_THROWS_WITH(studio::validate(c), Catch::Contains("CNAME"));
    }
    SECTION("ptime") {
        c.opus.ptime_ms = 30;
        CHECK_THROWS_WITH(studio::validate(c), Catch::Contains("10, 20, 40, 60"));
    }
    SECTION("bitrate") {
        c.opus.bitrate_bps = 1000;
        CHECK_THROWS_AS(studio::Packetiser(c), std::invalid_argument);
    }
}
