#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "loa/codecs/dsp.h"
#include "loa/codecs/tone_analysis.h"

using namespace loa::codecs;

TEST_CASE("tone_generator_frequency_and_amplitude", "[dsp]") {
    ToneGenerator gen(440.0, 0.25);
    std::vector<float> buf(48000);
    // Render in uneven chunks: the phase must be continuous across calls.
    std::size_t pos = 0;
    for (std::size_t chunk : {1u, 479u, 960u, 2880u, 37u}) {
        gen.render(std::span<float>(buf).subspan(pos, chunk));
        pos += chunk;
    }
    gen.render(std::span<float>(buf).subspan(pos));
    const ToneFit fit = fit_tone(buf);
    CHECK(fit.frequency_hz == Approx(440.0).margin(0.01));
    CHECK(fit.amplitude == Approx(0.25).margin(1e-3));
    CHECK(fit.snr_db > 80.0);
    CHECK(peak(buf) == Approx(0.25f).margin(1e-4));
    CHECK(rms(buf) == Approx(0.25 / std::sqrt(2.0)).margin(1e-4));
}

TEST_CASE("tone_generator_reset_restarts_phase", "[dsp]") {
    ToneGenerator gen(1000.0, 1.0);
    std::vector<float> a(100), b(100);
    gen.render(a);
    gen.reset();
    gen.render(b);
    CHECK(a == b);
    CHECK(a[0] == 0.0f);
}

TEST_CASE("db_to_gain_known_values", "[dsp]") {
    CHECK(db_to_gain(0.0) == Approx(1.0));
    CHECK(db_to_gain(-6.0206) == Approx(0.5).epsilon(1e-4));
    CHECK(db_to_gain(20.0) == Approx(10.0));
    CHECK(db_to_gain(-40.0) == Approx(0.01));
}

TEST_CASE("apply_gain_and_mix_into", "[dsp]") {
    std::vector<float> dst{1.0f, -1.0f, 0.5f, 0.25f};
    apply_gain(dst, 0.5f);
    CHECK(dst == std::vector<float>{0.5f, -0.5f, 0.25f, 0.125f});

    const std::vector<float> src{1.0f, 1.0f};  // shorter: only two samples mixed
    mix_into(dst, src, 0.5f);
    CHECK(dst == std::vector<float>{1.0f, 0.0f, 0.25f, 0.125f});

    std::vector<float> shorter{0.0f};
    mix_into(shorter, dst);
    CHECK(shorter == std::vector<float>{1.0f});
}

TEST_CASE("hard_limit_counts_clipped_samples", "[dsp]") {
    std::vector<float> frame{0.5f, 1.5f, -2.0f, 1.0f, -1.0f, 0.0f};
    CHECK(hard_limit(frame) == 2);
    CHECK(frame == std::vector<float>{0.5f, 1.0f, -1.0f, 1.0f, -1.0f, 0.0f});
    CHECK(hard_limit(frame) == 0);
}

TEST_CASE("rms_and_peak_edge_cases", "[dsp]") {
    CHECK(rms(std::span<const float>{}) == 0.0);
    CHECK(peak(std::span<const float>{}) == 0.0f);
    const std::vector<float> dc{-0.5f, -0.5f, -0.5f};
    CHECK(rms(dc) == Approx(0.5));
    CHECK(peak(dc) == 0.5f);
}
