// The [engine] duck_* envelope: it reaches every programme the engine
// builds (configured and run-time), and it shapes how a programme's bed
// moves under voice (attack, hold, release, voice threshold), judged on the
// Opus-decoded output of the programme.

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <numbers>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "loa/codecs/opus_decoder.h"
#include "loa/codecs/wav_writer.h"
#include "loa/engine/engine.h"
#include "loa/engine/program.h"
#include "loa/transport/rtcp_packet.h"
#include "loa/transport/rtp_packet.h"
#include "loa/transport/udp_socket.h"
#include "temp_dir.h"
#include "udp_receiver.h"

using namespace loa::engine;
using boost::asio::ip::udp;

namespace {

constexpr std::size_t kFrame = 960;  // 20 ms at 48 kHz

EngineConfig engine_config() {
    EngineConfig c;
    c.engine.listen = udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0);
    c.engine.fanout_threads = 1;
    c.engine.realtime_priority = 0;
    return c;
}

bool wait_until(const std::function<bool()>& done) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::yield();
    }
    return true;
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

// `tone_s` of a 1500 Hz sine of `amplitude`, then `silence_s` of silence.
void write_voice(const std::filesystem::path& path, double amplitude, double tone_s, double silence_s) {
    loa::codecs::WavWriter w(path, loa::codecs::WavSampleFormat::Pcm16, 48000, 1);
    std::vector<float> pcm(static_cast<std::size_t>((tone_s + silence_s) * 48000), 0.0f);
    for (std::size_t i = 0; i < static_cast<std::size_t>(tone_s * 48000); ++i) {
        pcm[i] = static_cast<float>(amplitude * std::sin(2.0 * std::numbers::pi * 1500.0 * static_cast<double>(i) / 48000.0));
    }
    REQUIRE(w.write(pcm) == loa::codecs::Status::Ok);
    REQUIRE(w.close() == loa::codecs::Status::Ok);
}

constexpr double kBedFull = 0.251;  // a -12 dBFS sine

// Per 20 ms frame of a programme's decoded output: the bed's (300 Hz) level
// in dB against its full level, and the voice's (1500 Hz) amplitude.
struct Heard {
    std::vector<double> bed_db;
    std::vector<double> voice;
    // First and last frame whose voice amplitude is above `above`.
    std::pair<std::size_t, std::size_t> voiced(double above) const {
        std::size_t first = voice.size(), last = 0;
        for (std::size_t f = 0; f < voice.size(); ++f) {
            if (voice[f] > above) {
                first = std::min(first, f);
                last = f;
            }
        }
        return {first, last};
    }
};

// Runs a programme of the voice clip over a ducked (-20 dB) 300 Hz tone bed
// for `frames` frames with envelope `ducking`, and decodes what it sent.
Heard play(const std::filesystem::path& voice_wav, const DuckingSettings& ducking, int frames) {
    ProgramConfig config;
    config.name = "bed";
    config.ssrc = 0xBED;
    config.content = loa::codecs::Content::Music;
    config.bitrate_bps = 128000;
    SourceConfig voice;
    voice.type = SourceConfig::Type::Clip;
    voice.path = voice_wav;
    voice.loop = false;
    SourceConfig bed;
    bed.type = SourceConfig::Type::Tone;
    bed.frequency_hz = 300;
    bed.level_db = -12;
    bed.duck_db = -20;
    config.sources = {voice, bed};

    boost::asio::io_context io;
    auto sock = loa::transport::open_udp(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    loa::test::UdpReceiver rx;
    loa::transport::FanoutSender fanout({}, sock.native_handle(), -1);
    const std::vector<loa::transport::Destination> dests{{rx.endpoint(), 0}};
    REQUIRE(fanout.set_destinations(0, dests) == 0);
    loa::transport::PacketPool pool(64);
    ManualClock clock;
    Program prog(config, 0, "engine-test", {}, ducking);
    const auto& clip = dynamic_cast<const ClipSource&>(*prog.sources()[0]);
    REQUIRE(wait_until([&] { return clip.ready(); }));

    loa::codecs::OpusDecoder dec;
    Heard out;
    std::vector<std::uint8_t> d;
    std::vector<float> frame(loa::codecs::kMaxFrameSamples);
    for (int f = 0; f < frames; ++f) {
        prog.produce_frame(clock.now_ns(), clock.unix_ns(), pool, fanout, clock);
        clock.advance(20'000'000);
        for (;;) {  // this frame's RTP packet (sender reports skipped)
            REQUIRE(rx.receive(d));
            if (loa::transport::looks_like_rtcp(d)) continue;
            loa::transport::RtpView v;
            REQUIRE(loa::transport::RtpView::parse(d, v) == loa::transport::Status::Ok);
            std::size_t n = 0;
            REQUIRE(dec.decode(v.payload(), frame, n) == loa::codecs::Status::Ok);
            REQUIRE(n == kFrame);
            const std::span<const float> win(frame.data(), kFrame);
            out.bed_db.push_back(20.0 * std::log10(std::max(1e-9, amplitude_at(win, 300)) / kBedFull));
            out.voice.push_back(amplitude_at(win, 1500));
            break;
        }
    }
    return out;
}

}  // namespace

TEST_CASE("engine_duck_settings_reach_config_and_runtime_programmes", "[ducker]") {
    auto config = engine_config();
    config.engine.ducking.attack_ms = 20;
    config.engine.ducking.release_ms = 800;
    config.engine.ducking.hold_ms = 120;
    config.engine.ducking.threshold_dbfs = -30;
    ProgramConfig p;
    p.name = "configured";
    p.ssrc = 0xC0F;
    SourceConfig voice;
    voice.type = SourceConfig::Type::Tone;
    SourceConfig bed = voice;
    bed.frequency_hz = 300;
    bed.duck_db = -12;
    p.sources = {voice, bed};
    config.programs.push_back(p);
    SystemClock clock;
    Engine engine(config, clock);

    const auto same = [&](const DuckingSettings& d) {
        CHECK(d.attack_ms == 20.0);
        CHECK(d.release_ms == 800.0);
        CHECK(d.hold_ms == 120.0);
        CHECK(d.threshold_dbfs == -30.0);
    };
    REQUIRE(engine.programs().size() == 1);
    same(engine.programs()[0]->ducking());
    auto runtime = p;
    runtime.name = "run-time";
    runtime.ssrc = 0xF00;
    const auto group = engine.add_programme(runtime);
    REQUIRE(engine.runtime_programme(group) != nullptr);
    same(engine.runtime_programme(group)->ducking());
    CHECK(engine.remove_programme(group));
}

TEST_CASE("programme_duck_envelope_follows_the_settings", "[program][ducker]") {
    loa::test::TempDir dir("loa-duckenv");
    // 0.6 s of voice, then 1.4 s of silence.
    write_voice(dir / "loud.wav", 0.25, 0.6, 1.4);

    // Built-in envelope: the bed is still down 160..300 ms after the voice
    // (held 300 ms).
    const auto slow = play(dir / "loud.wav", DuckingSettings{}, 80);
    const auto [s_on, s_off] = slow.voiced(0.1);
    REQUIRE(s_on < 10);
    REQUIRE(s_off >= s_on + 25);
    for (std::size_t w = s_off + 8; w <= s_off + 14; ++w) CHECK(slow.bed_db[w] == Approx(-20.0).margin(2.0));

    // No hold, a 100 ms return: the bed is back within 160 ms of the voice's end.
    DuckingSettings fast;
    fast.attack_ms = 20;
    fast.hold_ms = 0;
    fast.release_ms = 100;
    const auto quick = play(dir / "loud.wav", fast, 80);
    const auto [q_on, q_off] = quick.voiced(0.1);
    REQUIRE(q_on < 10);
    REQUIRE(q_off >= q_on + 25);
    for (std::size_t w = q_on + 3; w < q_off; ++w) {
        INFO("frame " << w);
        CHECK(quick.bed_db[w] == Approx(-20.0).margin(2.0));
    }
    for (std::size_t w = q_off + 8; w <= q_off + 20; ++w) {
        INFO("frame " << w);
        CHECK(quick.bed_db[w] == Approx(0.0).margin(1.0));
    }

    // Quiet voice (RMS about -37 dBFS): above the built-in -45 dBFS
    // threshold it ducks the bed; under a -30 dBFS threshold it does not.
    write_voice(dir / "quiet.wav", 0.02, 0.6, 0.4);
    const auto ducks = play(dir / "quiet.wav", DuckingSettings{}, 40);
    const auto [d_on, d_off] = ducks.voiced(0.01);
    REQUIRE(d_on < 10);
    REQUIRE(d_off >= d_on + 25);
    CHECK(ducks.bed_db[(d_on + d_off) / 2] == Approx(-20.0).margin(2.0));
    DuckingSettings deaf;
    deaf.threshold_dbfs = -30;
    const auto ignores = play(dir / "quiet.wav", deaf, 40);
    const auto [i_on, i_off] = ignores.voiced(0.01);
    REQUIRE(i_on < 10);
    REQUIRE(i_off >= i_on + 25);
    for (std::size_t w = 2; w < ignores.bed_db.size(); ++w) {
        INFO("frame " << w);
        CHECK(ignores.bed_db[w] == Approx(0.0).margin(1.0));
    }
}
