#include <catch2/catch.hpp>

#include <stdlib.h>  // mkdtemp

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "loa/codecs/audio_format.h"
#include "loa/codecs/clip_reader.h"
#include "loa/codecs/tone_analysis.h"

using namespace loa::codecs;
namespace fs = std::filesystem;

namespace {

/// A fresh directory under the system temp dir, removed with its contents.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "loa_clip_test_XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

/// Runs a fixture generator. sox and ffmpeg are build dependencies
/// (packaging/install-deps.sh): a missing tool fails the test.
void run(const std::string& cmd) {
    INFO("command: " << cmd);
    REQUIRE(std::system(cmd.c_str()) == 0);
}

std::string sox_tone(const fs::path& out, int rate, int channels, double seconds = 1.0) {
    return "sox -q -n -r " + std::to_string(rate) + " -c " + std::to_string(channels) + " '" +
           out.string() + "' synth " + std::to_string(seconds) + " sine 1000 vol 0.5";
}

std::string ffmpeg_tone(const fs::path& out, int rate, const std::string& codec_args) {
    return "ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i "
           "'sine=frequency=1000:sample_rate=" +
           std::to_string(rate) + ":duration=1' -ac 2 " + codec_args + " '" + out.string() + "'";
}

/// Reads the whole clip in 20 ms frames, checking the read() contract.
std::vector<float> read_all(ClipReader& reader) {
    std::vector<float> all;
    std::vector<float> frame(frame_samples(20));
    for (int guard = 0; guard < 100000; ++guard) {
        std::fill(frame.begin(), frame.end(), 7.0f);
        std::size_t got = 0;
        const Status s = reader.read(frame, got);
        REQUIRE(got <= frame.size());
        all.insert(all.end(), frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(got));
        if (s == Status::EndOfStream) {
            CHECK(got < frame.size());
            for (std::size_t i = got; i < frame.size(); ++i) {
                REQUIRE(frame[i] == 0.0f);  // tail zero-filled
            }
            // Stays at the end.
            std::size_t again = 99;
            CHECK(reader.read(frame, again) == Status::EndOfStream);
            CHECK(again == 0);
            return all;
        }
        REQUIRE(s == Status::Ok);
        REQUIRE(got == frame.size());
    }
    FAIL("clip never reached EndOfStream");
    return all;
}

/// Checks 48 kHz mono audio holding a 1 kHz tone of about `seconds`.
void check_tone(const std::vector<float>& pcm, double seconds, double duration_tolerance_s) {
    CHECK(static_cast<double>(pcm.size()) / kSampleRate ==
          Approx(seconds).margin(duration_tolerance_s));
    // Skip codec/resampler edges (encoder priming, filter ramps).
    const std::size_t edge = kSampleRate / 20;
    REQUIRE(pcm.size() > 4 * edge);
    const ToneFit fit = fit_tone(std::span<const float>(pcm).subspan(edge, pcm.size() - 2 * edge));
    CHECK(fit.frequency_hz == Approx(1000.0).margin(2.0));
    CHECK(fit.snr_db >= 20.0);
}

struct Case {
    const char* name;
    const char* file;
    int rate;
    int channels;
    const char* format;
};

}  // namespace

TEST_CASE("clip_formats_read_back_as_48k_mono_tone", "[clip]") {
    TempDir dir;
    const fs::path d = dir.path();
    const Case cases[] = {
        {"wav 44.1k stereo", "tone44.wav", 44100, 2, "WAV"},
        {"wav 48k mono (no resampling)", "tone48.wav", 48000, 1, "WAV"},
        {"flac 22.05k mono (upsampling)", "tone.flac", 22050, 1, "FLAC"},
        {"flac 96k stereo (downsampling)", "tone96.flac", 96000, 2, "FLAC"},
        {"ogg vorbis 44.1k stereo", "tone.ogg", 44100, 2, "OGG/Vorbis"},
        {"mp3 44.1k stereo", "tone.mp3", 44100, 2, "MP3"},
        {"ogg opus 48k stereo", "tone.opus", 48000, 2, "OGG/Opus"},
    };
    run(sox_tone(d / "tone44.wav", 44100, 2));
    run(sox_tone(d / "tone48.wav", 48000, 1));
    run(sox_tone(d / "tone.flac", 22050, 1));
    run(sox_tone(d / "tone96.flac", 96000, 2));
    run(sox_tone(d / "tone.ogg", 44100, 2));
    run(ffmpeg_tone(d / "tone.mp3", 44100, "-c:a libmp3lame -b:a 128k"));
    run(ffmpeg_tone(d / "tone.opus", 48000, "-c:a libopus -b:a 96k"));

    for (const Case& c : cases) {
        INFO(c.name);
        ClipReader reader(d / c.file);
        CHECK(reader.path() == d / c.file);
        CHECK(reader.info().source_rate == c.rate);
        CHECK(reader.info().source_channels == c.channels);
        CHECK(reader.info().format == c.format);
        CHECK(reader.info().duration_s() == Approx(1.0).margin(0.1));
        const auto pcm = read_all(reader);
        // Lossy codecs add priming/padding; PCM and FLAC are exact to a few samples.
        const bool lossless = std::string(c.format) == "WAV" || std::string(c.format) == "FLAC";
        check_tone(pcm, 1.0, lossless ? 0.002 : 0.1);
    }
}

TEST_CASE("clip_48k_wav_is_passed_through_sample_exact", "[clip]") {
    TempDir dir;
    const fs::path f = dir.path() / "exact.wav";
    run(sox_tone(f, 48000, 1, 0.5));
    ClipReader reader(f);
    const auto pcm = read_all(reader);
    CHECK(pcm.size() == 24000);
}

TEST_CASE("clip_stereo_downmix_is_channel_average", "[clip]") {
    TempDir dir;
    const fs::path f = dir.path() / "lr.wav";
    // Left: 1 kHz tone at 0.5; right: silence. The mono mix is the tone at 0.25.
    run("sox -q -n -r 48000 -c 2 '" + f.string() + "' synth 1 sine 1000 vol 0.5 remix 1 0");
    ClipReader reader(f);
    REQUIRE(reader.info().source_channels == 2);
    const auto pcm = read_all(reader);
    const ToneFit fit = fit_tone(pcm);
    CHECK(fit.frequency_hz == Approx(1000.0).margin(0.5));
    CHECK(fit.amplitude == Approx(0.25).margin(0.01));
}

TEST_CASE("clip_rewind_restarts_from_beginning", "[clip]") {
    TempDir dir;
    for (const char* name : {"r.wav", "r.ogg"}) {
        INFO(name);
        const fs::path f = dir.path() / name;
        run(sox_tone(f, 44100, 2, 0.5));
        ClipReader reader(f);
        const auto first = read_all(reader);
        REQUIRE(reader.rewind() == Status::Ok);
        const auto second = read_all(reader);
        REQUIRE(first.size() == second.size());
        double max_diff = 0.0;
        for (std::size_t i = 0; i < first.size(); ++i) {
            max_diff = std::max(max_diff, static_cast<double>(std::fabs(first[i] - second[i])));
        }
        CHECK(max_diff < 1e-4);

        // Rewind in the middle of the clip as well.
        std::vector<float> frame(1000);
        std::size_t got = 0;
        REQUIRE(reader.rewind() == Status::Ok);
        REQUIRE(reader.read(frame, got) == Status::Ok);
        REQUIRE(reader.rewind() == Status::Ok);
        CHECK(read_all(reader).size() == first.size());
    }
}

TEST_CASE("clip_large_and_odd_read_sizes", "[clip]") {
    TempDir dir;
    const fs::path f = dir.path() / "big.flac";
    run(sox_tone(f, 44100, 2, 1.0));
    ClipReader reader(f);
    // One call larger than the whole clip.
    std::vector<float> big(3 * kSampleRate, 9.0f);
    std::size_t got = 0;
    CHECK(reader.read(big, got) == Status::EndOfStream);
    CHECK(static_cast<double>(got) == Approx(48000.0).margin(100.0));
    CHECK(big.back() == 0.0f);
    check_tone(std::vector<float>(big.begin(), big.begin() + static_cast<std::ptrdiff_t>(got)), 1.0, 0.002);

    // Odd sizes give the same total.
    REQUIRE(reader.rewind() == Status::Ok);
    std::size_t total = 0;
    std::vector<float> odd(333);
    for (;;) {
        std::size_t n = 0;
        const Status s = reader.read(odd, n);
        total += n;
        if (s != Status::Ok) {
            CHECK(s == Status::EndOfStream);
            break;
        }
    }
    CHECK(total == got);
}

TEST_CASE("clip_undecodable_file_names_the_file", "[clip]") {
    TempDir dir;
    const fs::path f = dir.path() / "garbage.wav";
    {
        std::ofstream out(f, std::ios::binary);
        std::mt19937 rng(99);
        for (int i = 0; i < 4096; ++i) {
            out.put(static_cast<char>(rng() & 0xFF));
        }
    }
    try {
        ClipReader reader(f);
        FAIL("opening random bytes must throw");
    } catch (const Error& e) {
        const std::string what = e.what();
        INFO(what);
        CHECK(e.status() == Status::Unsupported);
        CHECK(what.find(f.string()) != std::string::npos);
        CHECK(what.find("cannot open clip") != std::string::npos);
    }
}

TEST_CASE("clip_missing_file_names_the_file", "[clip]") {
    TempDir dir;
    const fs::path f = dir.path() / "does_not_exist.flac";
    try {
        ClipReader reader(f);
        FAIL("opening a missing file must throw");
    } catch (const Error& e) {
        const std::string what = e.what();
        INFO(what);
        CHECK(e.status() == Status::IoError);
        CHECK(what.find(f.string()) != std::string::npos);
    }
}

TEST_CASE("clip_empty_file_is_rejected", "[clip]") {
    TempDir dir;
    const fs::path f = dir.path() / "empty.mp3";
    { std::ofstream out(f, std::ios::binary); }
    CHECK_THROWS_AS(ClipReader(f), Error);
}
