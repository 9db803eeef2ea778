#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

#include "loa/codecs/dsp.h"
#include "loa/codecs/time_scale.h"
#include "loa/codecs/tone_analysis.h"

using namespace loa::codecs;


TEST_CASE("time_scale_accelerate_keeps_pitch", "[time_scale]") {
    TimeScale ts;
    // 1 s of 1 kHz; shorten every 20 ms frame by up to 10 ms.
    std::vector<float> out;
    ToneGenerator gen(1000.0, 0.5);
    std::vector<float> frame(960);
    std::size_t removed = 0;
    for (int f = 0; f < 100; ++f) {
        gen.render(frame);
        std::vector<float> buf = frame;
        const auto r = ts.accelerate(buf, 480);
        REQUIRE(r.samples > 0);
        CHECK(r.samples % 48 == 0);  // whole periods of 1 kHz at 48 kHz
        CHECK(r.samples <= 480);
        CHECK(r.correlation > 0.99);
        removed += r.samples;
        out.insert(out.end(), buf.begin(), buf.end() - static_cast<std::ptrdiff_t>(r.samples));
    }
    CHECK(out.size() == 96000 - removed);
    CHECK(removed >= 100 * 240);
    const auto fit = fit_tone(out);
    CHECK(fit.frequency_hz == Approx(1000.0).margin(0.5));
    CHECK(fit.snr_db > 40.0);
}

TEST_CASE("time_scale_expand_keeps_pitch", "[time_scale]") {
    TimeScale ts;
    std::vector<float> out;
    ToneGenerator gen(1000.0, 0.5);
    std::vector<float> frame(960);
    std::size_t inserted = 0;
    for (int f = 0; f < 100; ++f) {
        gen.render(frame);
        std::vector<float> buf(960 + 720);
        std::copy(frame.begin(), frame.end(), buf.begin());
        const auto r = ts.expand(buf, 960, 300);
        REQUIRE(r.samples > 0);
        CHECK(r.samples % 48 == 0);
        CHECK(r.samples <= 300);
        inserted += r.samples;
        out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(960 + r.samples));
    }
    CHECK(out.size() == 96000 + inserted);
    const auto fit = fit_tone(out);
    CHECK(fit.frequency_hz == Approx(1000.0).margin(0.5));
    CHECK(fit.snr_db > 40.0);
}

TEST_CASE("time_scale_finds_voice_like_period", "[time_scale]") {
    // A harmonic signal with a 200 Hz fundamental (5 ms = 240 samples).
    std::vector<float> x(1440);
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double t = static_cast<double>(i) / 48000.0;
        x[i] = static_cast<float>(0.3 * std::sin(2 * 3.14159265358979 * 200 * t) +
                                  0.2 * std::sin(2 * 3.14159265358979 * 400 * t + 0.5) +
                                  0.1 * std::sin(2 * 3.14159265358979 * 600 * t + 1.0));
    }
    TimeScale ts;
    auto buf = x;
    const auto r = ts.accelerate(buf, 300);
    CHECK(r.samples >= 238);
    CHECK(r.samples <= 242);
    auto buf2 = x;
    const auto r2 = ts.accelerate(buf2, 720);
    CHECK(r2.samples >= 238);  // one period or several
}

TEST_CASE("time_scale_leaves_noise_alone_but_cuts_silence", "[time_scale]") {
    TimeScale ts;
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> d(-0.5f, 0.5f);
    std::vector<float> noise(960);
    for (auto& v : noise) v = d(rng);
    auto buf = noise;
    CHECK(ts.accelerate(buf, 480).samples == 0);
    CHECK(buf == noise);  // untouched
    std::vector<float> room(960 + 480, 0.0f);
    std::copy(noise.begin(), noise.end(), room.begin());
    CHECK(ts.expand(room, 960, 480).samples == 0);

    std::vector<float> silence(960, 0.0f);
    const auto r = ts.accelerate(silence, 400);
    CHECK(r.silent);
    CHECK(r.samples == 400);
    // Too short for two periods: nothing.
    std::vector<float> tiny(100, 0.1f);
    CHECK(ts.accelerate(tiny, 100).samples == 0);
}
