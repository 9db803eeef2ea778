// Background music under voice at a real speaker: a run-time programme
// whose source alternates voice and silence plays over a looped background
// clip ducked by 20 dB (loactl programmes start --background-clip
// --duck-db), with the engine's [engine] duck_* envelope shortened. The
// speaker's WAV is judged by content only: under the voice bursts the bed
// is about 20 dB below its level in the middle of the silences, where it is
// present at full level, and the voice itself is untouched. loactl lists the
// programme's bed in its table and in --json.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include "audio_check.h"
#include "integration_util.h"
#include "loa/codecs/tone_analysis.h"
#include "loa/codecs/wav_writer.h"
#include "process.h"
#include "temp_dir.h"

using namespace loa;

namespace {

constexpr std::size_t kWin = 960;     // 20 ms: whole periods of both 300 Hz and 1 kHz
constexpr double kVoiceAmp = 0.4;     // 1 kHz voice
constexpr double kBedAmp = 0.3;       // 300 Hz bed

// Writes `on_s` of a sine at `hz` (amplitude `amp`) followed by `off_s` of silence.
void write_burst(const std::filesystem::path& path, double hz, double amp, double on_s, double off_s) {
    codecs::WavWriter w(path, codecs::WavSampleFormat::Pcm16, 48000, 1);
    std::vector<float> pcm(static_cast<std::size_t>((on_s + off_s) * 48000), 0.0f);
    for (std::size_t i = 0; i < static_cast<std::size_t>(on_s * 48000); ++i) {
        pcm[i] = static_cast<float>(amp * std::sin(2.0 * std::numbers::pi * hz * static_cast<double>(i) / 48000.0));
    }
    REQUIRE(w.write(pcm) == codecs::Status::Ok);
    REQUIRE(w.close() == codecs::Status::Ok);
}

// Amplitude of the `hz` component of one window (whole periods long).
double amplitude_at(std::span<const float> w, double hz) {
    double re = 0.0, im = 0.0;
    for (std::size_t i = 0; i < w.size(); ++i) {
        const double ph = 2.0 * std::numbers::pi * hz * static_cast<double>(i) / 48000.0;
        re += static_cast<double>(w[i]) * std::cos(ph);
        im += static_cast<double>(w[i]) * std::sin(ph);
    }
    return 2.0 * std::hypot(re, im) / static_cast<double>(w.size());
}

struct Run {
    std::size_t first = 0;  // window index
    std::size_t last = 0;   // inclusive
    std::size_t size() const { return last - first + 1; }
};

// Runs of consecutive windows whose voice amplitude is above half its level.
std::vector<Run> voice_runs(const std::vector<double>& voice) {
    std::vector<Run> out;
    for (std::size_t w = 0; w < voice.size(); ++w) {
        if (voice[w] <= kVoiceAmp / 2) continue;
        if (!out.empty() && out.back().last + 1 == w) {
            out.back().last = w;
        } else {
            out.push_back({w, w});
        }
    }
    return out;
}

// Mean of `v` over windows [from, to), as dB against `ref`.
double mean_db(const std::vector<double>& v, std::size_t from, std::size_t to, double ref) {
    double sum = 0.0;
    for (std::size_t w = from; w < to; ++w) sum += v[w];
    return 20.0 * std::log10(sum / static_cast<double>(to - from) / ref);
}

}  // namespace

TEST_CASE("ducked_background_dips_under_voice_at_the_speaker", "[integration][control][programmes][ducker]") {
    test::TempDir dir("loa-ducking");
    unsigned port = 0;
    auto speaker = test::start_speaker("sp-a", dir / "a.wav", "127.0.0.1", port, dir / "a.log");

    // Hold and release shortened from the defaults (300 / 500 ms): the bed
    // is back at full level 0.4 s after the voice stops.
    auto engine = test::start_control_engine(
        dir, test::control_engine_toml("realtime_priority = 0\nduck_hold_ms = 100\nduck_release_ms = 300\n",
                                       test::zone_tree_seed({"a"}) + test::cluster_seed("sp-a", port, "p.d.a")));
    const auto& ctl = engine.ctl;

    // Voice: 1 s of 1 kHz, 1.5 s of silence, looped by the programme. Bed:
    // 2 s of 300 Hz (a whole number of periods, so it loops seamlessly).
    write_burst(dir / "voice.wav", 1000.0, kVoiceAmp, 1.0, 1.5);
    write_burst(dir / "bed.wav", 300.0, kBedAmp, 2.0, 0.0);
    const auto voice = test::json_int(ctl.ok({"--json", "clips", "upload", (dir / "voice.wav").string()}), "id");
    const auto bed = test::json_int(ctl.ok({"--json", "clips", "upload", (dir / "bed.wav").string()}), "id");
    REQUIRE(voice > 0);
    REQUIRE(bed > 0);

    const auto a0 = test::file_size_or_0(dir / "a.wav");
    ctl.ok({"programmes", "start", "--zone", "p.d.a", "--level", "commune", "--name", "talk", "--clip-id",
            std::to_string(voice), "--loop", "--background-clip", std::to_string(bed), "--duck-db", "-20"});

    // Listed with its bed, in the table and as JSON.
    const auto table = ctl.ok({"programmes", "list"});
    INFO(table);
    CHECK(table.find("BACKGROUND") != std::string::npos);
    CHECK(table.find(std::to_string(bed) + " (-20 dB)") != std::string::npos);
    const auto json = ctl.ok({"--json", "programmes", "list"});
    INFO(json);
    CHECK(test::json_int(json, "background_clip_id") == bed);
    CHECK(json.find("\"duck_db\":-20") != std::string::npos);

    // Voice, silence, and most of the next voice burst, with a second of
    // slack for the time between the speaker's first written frame and the
    // programme's first packet (longer on a loaded machine): 4.6 s of output.
    REQUIRE(test::wav_grows(dir / "a.wav", a0, 4.6));
    speaker->signal(SIGTERM);
    REQUIRE(speaker->wait(20000) == std::optional<int>(0));
    engine.stop();

    const auto pcm = test::read_wav(dir / "a.wav");
    std::vector<double> voice_amp, bed_amp;
    for (std::size_t at = 0; at + kWin <= pcm.size(); at += kWin) {
        const std::span<const float> w(pcm.data() + at, kWin);
        voice_amp.push_back(amplitude_at(w, 1000.0));
        bed_amp.push_back(amplitude_at(w, 300.0));
    }
    const auto runs = voice_runs(voice_amp);
    std::string seen;
    for (const auto& r : runs) seen += std::to_string(r.first) + ".." + std::to_string(r.last) + " ";
    INFO("voice windows (20 ms): " << seen);
    // A whole burst (1 s), a whole silence, then the next burst.
    REQUIRE(runs.size() >= 2);
    const auto& burst = runs[0];
    const auto& next = runs[1];
    CHECK(burst.size() >= 45);
    CHECK(burst.size() <= 55);
    REQUIRE(next.first > burst.last + 60);
    REQUIRE(next.size() >= 10);
    const std::size_t gap = next.first - burst.last - 1;
    CHECK(gap >= 70);
    CHECK(gap <= 80);

    // The voice is untouched: 1 kHz at its level, clean, through the burst;
    // nothing of it in the silence.
    for (std::size_t at = (burst.first + 2) * kWin; at + 4800 <= (burst.last - 1) * kWin; at += 4800) {
        const auto fit = codecs::fit_tone(std::span<const float>(pcm.data() + at, 4800));
        INFO("voice window at sample " << at);
        CHECK(fit.frequency_hz == Approx(1000.0).margin(5.0));
        CHECK(20.0 * std::log10(fit.amplitude / kVoiceAmp) == Approx(0.0).margin(1.5));
        CHECK(fit.snr_db >= 15.0);
    }
    for (std::size_t w = burst.last + 3; w + 3 < next.first; ++w) CHECK(voice_amp[w] < 0.01);

    // The bed: full in the middle of the silence (0.6 s after the voice,
    // past hold and release, until 0.2 s before the next burst), about
    // 20 dB lower under the voice (past the attack).
    const double quiet_db = mean_db(bed_amp, burst.last + 30, next.first - 10, kBedAmp);
    const double under_first_db = mean_db(bed_amp, burst.first + 5, burst.last - 1, kBedAmp);
    const double under_next_db = mean_db(bed_amp, next.first + 5, next.last - 1, kBedAmp);
    INFO("bed: " << quiet_db << " dB in the silence, " << under_first_db << " / " << under_next_db
                 << " dB under the voice");
    CHECK(quiet_db == Approx(0.0).margin(2.0));
    for (std::size_t w = burst.last + 30; w < next.first - 10; ++w) CHECK(bed_amp[w] > kBedAmp / 2);
    CHECK(quiet_db - under_first_db >= 14.0);
    CHECK(quiet_db - under_first_db <= 26.0);
    CHECK(quiet_db - under_next_db >= 14.0);
    CHECK(quiet_db - under_next_db <= 26.0);
}
