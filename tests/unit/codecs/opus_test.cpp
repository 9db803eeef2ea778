#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <random>
#include <vector>

#include "loa/codecs/audio_format.h"
#include "loa/codecs/dsp.h"
#include "loa/codecs/opus_decoder.h"
#include "loa/codecs/opus_encoder.h"
#include "loa/codecs/tone_analysis.h"

using namespace loa::codecs;

namespace {

using Packet = std::vector<std::uint8_t>;

/// Encodes `seconds` of a 1 kHz tone (after `silent_frames` of silence).
std::vector<Packet> encode_tone(OpusEncoder& enc, double seconds, std::size_t silent_frames = 0) {
    const std::size_t fs = enc.frame_size();
    ToneGenerator gen(1000.0, 0.5);
    std::vector<float> pcm(fs);
    std::array<std::uint8_t, kMaxOpusPacketBytes> buf{};
    std::vector<Packet> packets;
    const auto frames = static_cast<std::size_t>(seconds * kSampleRate) / fs;
    for (std::size_t i = 0; i < frames; ++i) {
        if (i < silent_frames) {
            std::fill(pcm.begin(), pcm.end(), 0.0f);
        } else {
            gen.render(pcm);
        }
        std::size_t written = 0;
        REQUIRE(enc.encode(pcm, buf, written) == Status::Ok);
        REQUIRE(written > 0);
        packets.emplace_back(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(written));
    }
    return packets;
}

std::vector<float> decode_all(OpusDecoder& dec, const std::vector<Packet>& packets) {
    std::vector<float> out;
    std::vector<float> frame(kMaxFrameSamples);
    for (const auto& p : packets) {
        std::size_t n = 0;
        REQUIRE(dec.decode(p, frame, n) == Status::Ok);
        REQUIRE(n == OpusDecoder::packet_samples(p));
        out.insert(out.end(), frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(n));
    }
    return out;
}

/// Skips the codec delay and start-up transient (100 ms); the sine fit is
/// phase-free, so no sample alignment is needed beyond that.
ToneFit fit_after_startup(const std::vector<float>& pcm) {
    const std::size_t skip = kSampleRate / 10;
    REQUIRE(pcm.size() > skip + kSampleRate / 10);
    return fit_tone(std::span<const float>(pcm).subspan(skip));
}

}  // namespace

TEST_CASE("opus_round_trip_tone_all_ptimes", "[opus]") {
    for (Content content : {Content::Speech, Content::Music}) {
        for (int ptime : {10, 20, 40, 60}) {
            OpusEncoderConfig cfg;
            cfg.ptime_ms = ptime;
            cfg.content = content;
            OpusEncoder enc(cfg);
            REQUIRE(enc.frame_size() == frame_samples(ptime));
            OpusDecoder dec;
            const auto packets = encode_tone(enc, 1.2);
            for (const auto& p : packets) {
                REQUIRE(OpusDecoder::packet_samples(p) == frame_samples(ptime));
            }
            const auto pcm = decode_all(dec, packets);
            CHECK(pcm.size() == packets.size() * frame_samples(ptime));
            const ToneFit fit = fit_after_startup(pcm);
            INFO("ptime " << ptime << " music " << (content == Content::Music));
            CHECK(fit.frequency_hz == Approx(1000.0).margin(2.0));
            CHECK(fit.snr_db >= 20.0);
            CHECK(fit.amplitude == Approx(0.5).margin(0.1));
        }
    }
}

TEST_CASE("opus_decoder_output_lags_by_lookahead", "[opus]") {
    OpusEncoder enc(OpusEncoderConfig{});
    OpusDecoder dec;
    // 200 ms of silence then the tone: the decoded onset is late by the
    // encoder lookahead (a few ms), never early and never by a whole frame.
    const auto packets = encode_tone(enc, 0.6, 10);
    const auto pcm = decode_all(dec, packets);
    const std::size_t onset = first_above(pcm, 0.1f);
    CHECK(onset >= 10 * 960);
    CHECK(onset < 10 * 960 + 960);
}

TEST_CASE("speech_mode_packets_carry_fec", "[opus][fec]") {
    for (int ptime : {10, 20, 40, 60}) {
        OpusEncoderConfig cfg;
        cfg.ptime_ms = ptime;
        cfg.content = Content::Speech;
        cfg.expected_loss_pct = 20;
        OpusEncoder enc(cfg);
        // SILK sends LBRR only for frames its VAD rates as active; with 10 ms
        // frames it rates a perfectly steady tone as background after ~0.5 s,
        // so that case looks at the first 0.4 s only.
        const auto packets = encode_tone(enc, ptime == 10 ? 0.4 : 1.0);
        INFO("ptime " << ptime);
        CHECK_FALSE(OpusDecoder::packet_has_fec(packets.front()));
        std::size_t with_fec = 0;
        for (std::size_t i = 3; i < packets.size(); ++i) {
            with_fec += OpusDecoder::packet_has_fec(packets[i]) ? 1u : 0u;
        }
        CHECK(with_fec == packets.size() - 3);
    }
}

TEST_CASE("speech_mode_without_loss_hint_has_no_fec", "[opus][fec]") {
    OpusEncoderConfig cfg;
    cfg.expected_loss_pct = 0;
    OpusEncoder enc(cfg);
    auto packets = encode_tone(enc, 0.5);
    for (const auto& p : packets) {
        CHECK_FALSE(OpusDecoder::packet_has_fec(p));
    }
    // Raising the hint at run time turns FEC on.
    REQUIRE(enc.set_expected_loss(25) == Status::Ok);
    CHECK(enc.config().expected_loss_pct == 25);
    packets = encode_tone(enc, 0.5);
    CHECK(OpusDecoder::packet_has_fec(packets.back()));
}

TEST_CASE("music_mode_has_no_fec", "[opus][fec]") {
    OpusEncoderConfig cfg;
    cfg.content = Content::Music;
    cfg.inband_fec = true;  // ignored for music
    cfg.expected_loss_pct = 30;
    OpusEncoder enc(cfg);
    CHECK_FALSE(enc.config().inband_fec);
    const auto packets = encode_tone(enc, 1.0);
    for (const auto& p : packets) {
        CHECK_FALSE(OpusDecoder::packet_has_fec(p));
        CHECK((p[0] >> 3) >= 16);  // CELT-only TOC configuration
    }
}

TEST_CASE("decode_fec_recovers_dropped_frame", "[opus][fec]") {
    for (int ptime : {10, 20, 40, 60}) {
        OpusEncoderConfig cfg;
        cfg.ptime_ms = ptime;
        cfg.expected_loss_pct = 20;
        OpusEncoder enc(cfg);
        const std::size_t fs = enc.frame_size();
        const auto packets = encode_tone(enc, 1.0);
        const std::size_t lost = packets.size() / 4;
        REQUIRE(OpusDecoder::packet_has_fec(packets[lost + 1]));

        OpusDecoder dec;
        std::vector<float> frame(kMaxFrameSamples);
        std::vector<float> out;
        for (std::size_t i = 0; i < packets.size(); ++i) {
            if (i == lost) {
                std::vector<float> rec(fs);
                REQUIRE(dec.decode_fec(packets[i + 1], rec) == Status::Ok);
                INFO("ptime " << ptime);
                CHECK(rms(rec) > 0.2);
                CHECK(sine_residual_db(rec, 1000.0) < -10.0);
                const ToneFit fit = fit_tone(rec);
                CHECK(fit.frequency_hz == Approx(1000.0).margin(5.0));
                out.insert(out.end(), rec.begin(), rec.end());
                continue;
            }
            std::size_t n = 0;
            REQUIRE(dec.decode(packets[i], frame, n) == Status::Ok);
            out.insert(out.end(), frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(n));
        }
        // The whole stream, recovered frame included, is still a clean tone.
        const ToneFit fit = fit_after_startup(out);
        CHECK(fit.frequency_hz == Approx(1000.0).margin(2.0));
        CHECK(fit.snr_db >= 15.0);
    }
}

TEST_CASE("decode_fec_restores_tone_onset_plc_cannot", "[opus][fec]") {
    // The lost frame is the first one with the tone: concealment extrapolates
    // the silence before it, FEC carries the tone.
    OpusEncoderConfig cfg;
    cfg.expected_loss_pct = 20;
    OpusEncoder enc(cfg);
    const std::size_t onset = 20;
    const auto packets = encode_tone(enc, 1.0, onset);
    REQUIRE(OpusDecoder::packet_has_fec(packets[onset + 1]));

    auto recover = [&](bool use_fec) {
        OpusDecoder dec;
        std::vector<float> frame(kMaxFrameSamples);
        for (std::size_t i = 0; i < onset; ++i) {
            std::size_t n = 0;
            REQUIRE(dec.decode(packets[i], frame, n) == Status::Ok);
        }
        std::vector<float> rec(960);
        REQUIRE((use_fec ? dec.decode_fec(packets[onset + 1], rec) : dec.conceal(rec)) == Status::Ok);
        return rms(rec);
    };
    const double with_fec = recover(true);
    const double with_plc = recover(false);
    CHECK(with_fec > 0.1);
    CHECK(with_plc < 0.01);
}

TEST_CASE("conceal_produces_requested_length", "[opus]") {
    OpusEncoder enc(OpusEncoderConfig{});
    OpusDecoder dec;
    const auto packets = encode_tone(enc, 0.3);
    std::vector<float> frame(kMaxFrameSamples);
    for (const auto& p : packets) {
        std::size_t n = 0;
        REQUIRE(dec.decode(p, frame, n) == Status::Ok);
    }
    for (std::size_t len : {120u, 480u, 960u, 2880u}) {
        std::vector<float> out(len, 5.0f);
        REQUIRE(dec.conceal(out) == Status::Ok);
        CHECK(peak(out) <= 1.0f);  // every sample overwritten
    }
    // The first concealed frame continues the tone.
    OpusDecoder dec2;
    for (const auto& p : packets) {
        std::size_t n = 0;
        REQUIRE(dec2.decode(p, frame, n) == Status::Ok);
    }
    std::vector<float> plc(960);
    REQUIRE(dec2.conceal(plc) == Status::Ok);
    CHECK(rms(plc) > 0.1);

    std::vector<float> odd(100);
    CHECK(dec.conceal(odd) == Status::BadArgument);
    CHECK(dec.conceal(std::span<float>{}) == Status::BadArgument);
    CHECK(dec.decode_fec(packets[0], odd) == Status::BadArgument);
}

TEST_CASE("corrupt_packet_reported_not_crashing", "[opus]") {
    OpusDecoder dec;
    std::vector<float> out(kMaxFrameSamples);
    std::size_t n = 99;
    const std::vector<std::vector<std::uint8_t>> bad = {
        {},                  // empty
        {0x03},              // code 3 without frame count
        {0x03, 0x00},        // code 3 with zero frames
        {0x02, 0xFF},        // code 2, first frame longer than the packet
        {0x03, 0x3F, 0x00},  // 63 frames: far beyond 120 ms
    };
    for (const auto& p : bad) {
        CHECK(dec.decode(p, out, n) == Status::CorruptPacket);
        CHECK(n == 0);
        CHECK(OpusDecoder::packet_samples(p) == 0);
        CHECK_FALSE(OpusDecoder::packet_has_fec(p));
        std::vector<float> rec(960);
        CHECK(dec.decode_fec(p, rec) == Status::CorruptPacket);
    }
    // Random payloads: every outcome is Ok or CorruptPacket, never a crash.
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<std::size_t> len(1, 300);
    for (int i = 0; i < 2000; ++i) {
        std::vector<std::uint8_t> p(len(rng));
        for (auto& b : p) {
            b = static_cast<std::uint8_t>(byte(rng));
        }
        const Status s = dec.decode(p, out, n);
        CHECK((s == Status::Ok || s == Status::CorruptPacket || s == Status::BufferTooSmall));
        (void)OpusDecoder::packet_has_fec(p);
    }
    // The decoder still works afterwards.
    dec.reset();
    OpusEncoder enc(OpusEncoderConfig{});
    const auto pcm = decode_all(dec, encode_tone(enc, 0.5));
    CHECK(fit_after_startup(pcm).frequency_hz == Approx(1000.0).margin(2.0));
}

TEST_CASE("decode_rejects_too_small_output", "[opus]") {
    OpusEncoderConfig cfg;
    cfg.ptime_ms = 40;
    OpusEncoder enc(cfg);
    const auto packets = encode_tone(enc, 0.1);
    OpusDecoder dec;
    std::vector<float> small(960);
    std::size_t n = 0;
    CHECK(dec.decode(packets[0], small, n) == Status::BufferTooSmall);
}

TEST_CASE("bad_encoder_config_throws_bad_argument", "[opus]") {
    auto status_of = [](OpusEncoderConfig cfg) {
        try {
            OpusEncoder enc(cfg);
        } catch (const Error& e) {
            return e.status();
        }
        return Status::Ok;
    };
    OpusEncoderConfig cfg;
    CHECK(status_of(cfg) == Status::Ok);
    cfg.ptime_ms = 15;
    CHECK(status_of(cfg) == Status::BadArgument);
    cfg = {};
    cfg.bitrate_bps = -1;
    CHECK(status_of(cfg) == Status::BadArgument);
    cfg = {};
    cfg.complexity = 11;
    CHECK(status_of(cfg) == Status::BadArgument);
    cfg = {};
    cfg.expected_loss_pct = 101;
    CHECK(status_of(cfg) == Status::BadArgument);

    OpusEncoder enc(OpusEncoderConfig{});
    CHECK(enc.set_bitrate(-1) == Status::BadArgument);
    CHECK(enc.set_expected_loss(-5) == Status::BadArgument);
    CHECK(enc.set_bitrate(32000) == Status::Ok);
    CHECK(enc.config().bitrate_bps == 32000);
    std::vector<float> wrong(100);
    std::array<std::uint8_t, 1500> out{};
    std::size_t written = 7;
    CHECK(enc.encode(wrong, out, written) == Status::BadArgument);
    CHECK(written == 0);
}

TEST_CASE("encoder_and_decoder_are_movable", "[opus]") {
    OpusEncoder a(OpusEncoderConfig{});
    OpusEncoder b = std::move(a);
    OpusDecoder d1;
    OpusDecoder d2 = std::move(d1);
    const auto pcm = decode_all(d2, encode_tone(b, 0.5));
    CHECK(fit_after_startup(pcm).frequency_hz == Approx(1000.0).margin(2.0));
}
