#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "loa/codecs/clip_reader.h"
#include "loa/codecs/dsp.h"
#include "loa/codecs/tone_analysis.h"
#include "loa/codecs/wav_writer.h"

using namespace loa::codecs;

namespace {

std::filesystem::path temp_wav(const std::string& name) {
    const auto dir = std::filesystem::temp_directory_path() / "loa_wav_writer_test";
    std::filesystem::create_directories(dir);
    return dir / name;
}

std::vector<float> read_all(const std::filesystem::path& path, ClipInfo& info) {
    ClipReader reader(path);
    info = reader.info();
    std::vector<float> all;
    std::vector<float> block(4800);
    for (;;) {
        std::size_t got = 0;
        const Status s = reader.read(block, got);
        all.insert(all.end(), block.begin(), block.begin() + static_cast<std::ptrdiff_t>(got));
        if (s != Status::Ok) break;
    }
    return all;
}

void write_tone(WavWriter& w, double hz, double amplitude, int frames) {
    ToneGenerator tone(hz, amplitude);
    std::vector<float> frame(960);
    for (int i = 0; i < frames; ++i) {
        tone.render(frame);
        REQUIRE(w.write(frame) == Status::Ok);
    }
}

}  // namespace

TEST_CASE("wav_round_trip_pcm16", "[wav_writer]") {
    const auto path = temp_wav("tone_pcm16.wav");
    {
        WavWriter w(path, WavSampleFormat::Pcm16);
        write_tone(w, 1000.0, 0.5, 50);  // 1 s
        CHECK(w.frames_written() == 48000);
    }  // destructor finalises the header
    ClipInfo info;
    const auto samples = read_all(path, info);
    CHECK(info.source_rate == 48000);
    CHECK(info.source_channels == 1);
    CHECK(info.source_frames == 48000);
    REQUIRE(samples.size() == 48000);
    const ToneFit fit = fit_tone(samples);
    CHECK(fit.frequency_hz == Approx(1000.0).margin(1.0));
    CHECK(fit.amplitude == Approx(0.5).margin(0.01));
    CHECK(fit.snr_db > 60.0);  // 16-bit quantisation only
}

TEST_CASE("wav_round_trip_float", "[wav_writer]") {
    const auto path = temp_wav("tone_float.wav");
    WavWriter w(path, WavSampleFormat::Float32);
    write_tone(w, 440.0, 0.25, 25);
    REQUIRE(w.close() == Status::Ok);
    CHECK_FALSE(w.is_open());
    CHECK(w.write(std::vector<float>(960)) == Status::BadArgument);
    ClipInfo info;
    const auto samples = read_all(path, info);
    REQUIRE(samples.size() == 24000);
    const ToneFit fit = fit_tone(samples);
    CHECK(fit.frequency_hz == Approx(440.0).margin(1.0));
    CHECK(fit.snr_db > 90.0);
}

TEST_CASE("wav_pcm16_clips_out_of_range", "[wav_writer]") {
    const auto path = temp_wav("clip.wav");
    {
        WavWriter w(path, WavSampleFormat::Pcm16);
        std::vector<float> loud(960, 2.0f);
        REQUIRE(w.write(loud) == Status::Ok);
    }
    ClipInfo info;
    const auto samples = read_all(path, info);
    REQUIRE(samples.size() == 960);
    // Clipped to full scale, not wrapped to a negative value.
    CHECK(peak(samples) == Approx(1.0f).margin(1e-3));
    CHECK(samples[100] > 0.99f);
}

TEST_CASE("wav_unwritable_path_throws", "[wav_writer]") {
    const auto path = temp_wav("no_such_dir") / "sub" / "x.wav";
    try {
        WavWriter w(path);
        FAIL("expected codecs::Error");
    } catch (const Error& e) {
        CHECK(e.status() == Status::IoError);
        CHECK(std::string(e.what()).find("x.wav") != std::string::npos);
    }
}
