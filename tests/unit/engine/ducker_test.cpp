#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <numbers>
#include <string>
#include <thread>
#include <vector>

#include "allocation_counter.h"
#include "loa/codecs/opus_decoder.h"
#include "loa/codecs/wav_writer.h"
#include "loa/engine/config.h"
#include "loa/engine/ducker.h"
#include "loa/engine/program.h"
#include "loa/transport/rtcp_packet.h"
#include "loa/transport/rtp_packet.h"
#include "loa/transport/udp_socket.h"
#include "temp_dir.h"
#include "udp_receiver.h"

using namespace loa;
using loa::engine::Ducker;
using loa::engine::DuckerConfig;

namespace {

constexpr std::size_t kFrame = 960;  // 20 ms at 48 kHz

double to_db(double g) { return 20.0 * std::log10(g); }

// Feeds `frames` frames with `voice`, appending every sample's gain to `out`.
void feed(Ducker& d, bool voice, int frames, std::vector<float>& out) {
    std::vector<float> g(kFrame);
    for (int i = 0; i < frames; ++i) {
        d.process(voice, g);
        out.insert(out.end(), g.begin(), g.end());
    }
}

float max_step(const std::vector<float>& g) {
    float m = 0.0f;
    for (std::size_t i = 1; i < g.size(); ++i) m = std::max(m, std::abs(g[i] - g[i - 1]));
    return m;
}

std::vector<float> sine(double hz, double amplitude, std::size_t samples) {
    std::vector<float> s(samples);
    for (std::size_t i = 0; i < samples; ++i) {
        s[i] = static_cast<float>(amplitude * std::sin(2.0 * std::numbers::pi * hz * static_cast<double>(i) / 48000.0));
    }
    return s;
}

// Amplitude of the `hz` component of `w` (a whole number of its periods long).
double amplitude_at(std::span<const float> w, double hz) {
    double re = 0.0, im = 0.0;
    for (std::size_t i = 0; i < w.size(); ++i) {
        const double ph = 2.0 * std::numbers::pi * hz * static_cast<double>(i) / 48000.0;
        re += static_cast<double>(w[i]) * std::cos(ph);
        im += static_cast<double>(w[i]) * std::sin(ph);
    }
    return 2.0 * std::hypot(re, im) / static_cast<double>(w.size());
}

bool wait_until(const std::function<bool()>& done) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::yield();
    }
    return true;
}

std::string error_of(const std::string& text) {
    try {
        engine::parse_config(text, "test.toml", "/etc/loa");
    } catch (const engine::ConfigError& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST_CASE("ducker_voice_present_uses_rms_threshold", "[ducker]") {
    const std::vector<float> silence(kFrame, 0.0f);
    CHECK_FALSE(Ducker::voice_present(silence, -45.0));
    // A sine's RMS is its peak minus 3 dB.
    CHECK(Ducker::voice_present(sine(1000, std::pow(10.0, -38.0 / 20.0), kFrame), -45.0));
    CHECK_FALSE(Ducker::voice_present(sine(1000, std::pow(10.0, -45.0 / 20.0), kFrame), -45.0));
}

TEST_CASE("ducker_bed_stays_full_on_silence", "[ducker]") {
    Ducker d(DuckerConfig{});
    std::vector<float> g;
    feed(d, false, 100, g);
    CHECK(std::all_of(g.begin(), g.end(), [](float x) { return x == 1.0f; }));
    CHECK(d.gain() == 1.0f);
}

TEST_CASE("ducker_dips_holds_and_releases", "[ducker]") {
    DuckerConfig c;
    c.duck_db = -15.0;  // attack 50 ms, hold 300 ms, release 500 ms
    Ducker d(c);
    std::vector<float> g;
    feed(d, false, 10, g);
    REQUIRE(d.gain() == 1.0f);

    // Voice starts: moving down from the first sample, fully down within the
    // attack (50 ms = 2.5 frames), not before 40 ms.
    feed(d, true, 2, g);
    CHECK(g[10 * kFrame] < 1.0f);
    CHECK(to_db(d.gain()) > -15.0 + 0.5);
    feed(d, true, 1, g);
    CHECK(to_db(d.gain()) == Approx(-15.0).margin(0.01));
    feed(d, true, 20, g);
    CHECK(to_db(d.gain()) == Approx(-15.0).margin(0.01));

    // A 200 ms pause between words: stays down all through it.
    const auto pause_start = g.size();
    feed(d, false, 10, g);
    CHECK(std::all_of(g.begin() + static_cast<std::ptrdiff_t>(pause_start), g.end(),
                      [&](float x) { return std::abs(to_db(x) + 15.0) < 0.01; }));
    feed(d, true, 10, g);

    // Voice ends: held for 300 ms, then back to full within the release.
    feed(d, false, 15, g);
    CHECK(to_db(d.gain()) == Approx(-15.0).margin(0.01));
    feed(d, false, 12, g);  // 240 ms into the release: on its way up
    CHECK(d.gain() < 1.0f);
    CHECK(to_db(d.gain()) > -15.0 + 3.0);
    feed(d, false, 13, g);  // 500 ms into the release
    CHECK(d.gain() == Approx(1.0f).margin(1e-4));
    feed(d, false, 5, g);
    CHECK(d.gain() == 1.0f);

    // No clicks: consecutive samples never differ by more than a tiny step.
    CHECK(max_step(g) < 0.001f);
}

TEST_CASE("ducker_deep_dip_has_no_clicks", "[ducker]") {
    DuckerConfig c;
    c.duck_db = -60.0;
    Ducker d(c);
    std::vector<float> g;
    for (int round = 0; round < 5; ++round) {
        feed(d, true, 3 + round, g);
        feed(d, false, 20 + 7 * round, g);
    }
    CHECK(max_step(g) < 0.005f);
    CHECK(*std::min_element(g.begin(), g.end()) == Approx(d.ducked_gain()).margin(1e-6));
}

TEST_CASE("config_duck_db_parsed_and_validated", "[config][ducker]") {
    const std::string head = "[[program]]\nname = \"p\"\n";
    const std::string voice = "[[program.source]]\ntype = \"tone\"\n";
    const auto cfg = engine::parse_config(head + voice + "[[program.source]]\ntype = \"tone\"\nduck_db = -15\n",
                                          "test.toml", "/etc/loa");
    REQUIRE(cfg.programs.size() == 1);
    REQUIRE(cfg.programs[0].sources.size() == 2);
    CHECK(cfg.programs[0].sources[0].duck_db == 0.0);
    CHECK(cfg.programs[0].sources[1].duck_db == -15.0);

    CHECK(error_of(head + voice + "[[program.source]]\ntype = \"tone\"\nduck_db = -61\n")
              .find("program[0].source[1].duck_db") != std::string::npos);
    CHECK(error_of(head + voice + "[[program.source]]\ntype = \"tone\"\nduck_db = 3\n")
              .find("program[0].source[1].duck_db") != std::string::npos);
    // A bed alone has nothing to dip under.
    CHECK(error_of(head + "[[program.source]]\ntype = \"tone\"\nduck_db = -10\n")
              .find("program[0].source[0].duck_db: a ducked source needs another") != std::string::npos);
}

TEST_CASE("programme_ducks_tone_bed_under_voice_clip", "[program][ducker]") {
    // Voice: a 1500 Hz clip of 1 s silence, 1 s tone, 3 s silence (not looped).
    loa::test::TempDir dir("loa-duck");
    {
        codecs::WavWriter w(dir / "voice.wav", codecs::WavSampleFormat::Pcm16, 48000, 1);
        std::vector<float> pcm(48000, 0.0f);
        const auto tone = sine(1500, 0.25, 48000);
        pcm.insert(pcm.end(), tone.begin(), tone.end());
        pcm.insert(pcm.end(), 3 * 48000, 0.0f);
        REQUIRE(w.write(pcm) == codecs::Status::Ok);
        REQUIRE(w.close() == codecs::Status::Ok);
    }
    engine::ProgramConfig config;
    config.name = "ducked";
    config.ssrc = 0xD0C4;
    config.ptime_ms = 20;
    config.content = codecs::Content::Music;
    config.bitrate_bps = 128000;
    engine::SourceConfig voice;
    voice.type = engine::SourceConfig::Type::Clip;
    voice.path = dir / "voice.wav";
    voice.loop = false;
    engine::SourceConfig bed;
    bed.type = engine::SourceConfig::Type::Tone;
    bed.frequency_hz = 300;
    bed.level_db = -12;  // peak 0.251
    bed.duck_db = -20;
    config.sources = {bed, voice};  // the bed first: order must not matter

    boost::asio::io_context io;
    auto sock = transport::open_udp(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    test::UdpReceiver rx;
    transport::FanoutSender fanout({}, sock.native_handle(), -1);
    const std::vector<transport::Destination> dests{{rx.endpoint(), 0}};
    REQUIRE(fanout.set_destinations(0, dests) == 0);
    transport::PacketPool pool(64);
    engine::ManualClock clock;
    engine::Program prog(config, 0, "engine-test");
    const auto& clip = dynamic_cast<const engine::ClipSource&>(*prog.sources()[1]);
    REQUIRE(wait_until([&] { return clip.ready(); }));

    codecs::OpusDecoder dec;
    std::vector<float> pcm;
    std::vector<std::uint8_t> d;
    std::vector<float> frame(codecs::kMaxFrameSamples);
    std::size_t allocations = 0;
    for (int f = 0; f < 250; ++f) {
        test::start_counting_allocations();
        prog.produce_frame(clock.now_ns(), clock.unix_ns(), pool, fanout, clock);
        allocations += test::stop_counting_allocations();
        clock.advance(20'000'000);
        for (;;) {  // this frame's RTP packet (sender reports skipped)
            REQUIRE(rx.receive(d));
            if (transport::looks_like_rtcp(d)) continue;
            transport::RtpView v;
            REQUIRE(transport::RtpView::parse(d, v) == transport::Status::Ok);
            std::size_t n = 0;
            REQUIRE(dec.decode(v.payload(), frame, n) == codecs::Status::Ok);
            pcm.insert(pcm.end(), frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(n));
            break;
        }
    }
    CHECK(allocations == 0);
    REQUIRE(pcm.size() == 250 * kFrame);

    // Per 20 ms window: the bed's (300 Hz) and the voice's (1500 Hz) amplitude.
    std::vector<double> bed_amp, voice_amp;
    for (std::size_t w = 0; w < 250; ++w) {
        const std::span<const float> win(pcm.data() + w * kFrame, kFrame);
        bed_amp.push_back(amplitude_at(win, 300));
        voice_amp.push_back(amplitude_at(win, 1500));
    }
    std::size_t onset = 0, end = 0;
    for (std::size_t w = 0; w < voice_amp.size(); ++w) {
        if (voice_amp[w] > 0.1) {
            if (onset == 0) onset = w;
            end = w;
        }
    }
    INFO("voice windows " << onset << ".." << end);
    REQUIRE(onset >= 30);  // 1 s of silence first (less any clip start-up)
    REQUIRE(end - onset >= 45);
    REQUIRE(end + 60 < bed_amp.size());
    const double full = 0.251;
    // Before the voice: the bed at full level.
    for (std::size_t w = 10; w + 3 < onset; ++w) CHECK(to_db(bed_amp[w] / full) == Approx(0.0).margin(1.0));
    // During the voice (after the attack) and through the hold: 20 dB down.
    for (std::size_t w = onset + 4; w < end + 12; ++w) {
        INFO("window " << w);
        CHECK(to_db(bed_amp[w] / full) == Approx(-20.0).margin(2.0));
    }
    // After hold and release: back to full.
    for (std::size_t w = end + 45; w < end + 60; ++w) CHECK(to_db(bed_amp[w] / full) == Approx(0.0).margin(1.0));
}
