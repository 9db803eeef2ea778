#include <catch2/catch.hpp>

#include <ctime>
#include <cmath>
#include <numbers>
#include <random>
#include <vector>

#include "loa/codecs/tone_analysis.h"

using namespace loa::codecs;

namespace {

std::vector<float> sine(double freq, double amp, std::size_t n, double phase = 0.3, int rate = 48000) {
    std::vector<float> out(n);
    for (std::size_t i = 0; i < n; ++i) {
        out[i] = static_cast<float>(
            amp * std::sin(2.0 * std::numbers::pi * freq * static_cast<double>(i) / rate + phase));
    }
    return out;
}

void add_noise(std::vector<float>& x, double sigma, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> dist(0.0, sigma);
    for (float& s : x) {
        s += static_cast<float>(dist(rng));
    }
}

}  // namespace

TEST_CASE("fit_tone_clean_tones_precise_frequency", "[tone]") {
    for (double f : {50.0, 440.0, 997.3, 1000.0, 3150.7, 12000.25}) {
        const auto x = sine(f, 0.5, 48000);
        const ToneFit fit = fit_tone(x);
        INFO("frequency " << f);
        CHECK(fit.frequency_hz == Approx(f).margin(0.01));
        CHECK(fit.amplitude == Approx(0.5).margin(1e-3));
        CHECK(fit.snr_db > 60.0);
    }
}

TEST_CASE("fit_tone_short_signal", "[tone]") {
    const auto x = sine(1000.0, 0.3, 2400);  // 50 ms
    const ToneFit fit = fit_tone(x);
    CHECK(fit.frequency_hz == Approx(1000.0).margin(0.1));
    CHECK(fit.snr_db > 60.0);
}

TEST_CASE("fit_tone_other_sample_rate", "[tone]") {
    const auto x = sine(1000.0, 0.5, 44100, 1.0, 44100);
    const ToneFit fit = fit_tone(x, 44100);
    CHECK(fit.frequency_hz == Approx(1000.0).margin(0.01));
}

TEST_CASE("fit_tone_snr_estimate_with_seeded_noise", "[tone]") {
    // Tone power 0.125; noise power sigma^2. True SNR = 10 log10(0.125 / sigma^2).
    for (double true_snr : {0.0, 10.0, 20.0, 30.0}) {
        const double sigma = std::sqrt(0.125 / std::pow(10.0, true_snr / 10.0));
        auto x = sine(1234.5, 0.5, 48000);
        add_noise(x, sigma, 42);
        const ToneFit fit = fit_tone(x);
        INFO("true snr " << true_snr);
        CHECK(fit.snr_db == Approx(true_snr).margin(1.0));
        CHECK(fit.frequency_hz == Approx(1234.5).margin(0.5));
        CHECK(sine_residual_db(x, 1234.5) == Approx(-10.0 * std::log10(1.0 + std::pow(10.0, true_snr / 10.0))).margin(1.0));
    }
}

TEST_CASE("fit_tone_picks_dominant_of_two_tones", "[tone]") {
    auto x = sine(700.0, 0.5, 48000);
    const auto y = sine(2500.0, 0.05, 48000, 1.1);
    for (std::size_t i = 0; i < x.size(); ++i) {
        x[i] += y[i];
    }
    const ToneFit fit = fit_tone(x);
    CHECK(fit.frequency_hz == Approx(700.0).margin(0.05));
    CHECK(fit.snr_db == Approx(20.0).margin(0.5));  // 0.5 vs 0.05 amplitude
}

TEST_CASE("fit_tone_five_seconds_is_fast", "[tone]") {
    auto x = sine(1000.0, 0.5, 5 * 48000);
    add_noise(x, 0.01, 7);
    // Process CPU time, so a loaded machine does not make the test flaky.
    const std::clock_t t0 = std::clock();
    const ToneFit fit = fit_tone(x);
    const double cpu_s = static_cast<double>(std::clock() - t0) / CLOCKS_PER_SEC;
    CHECK(fit.frequency_hz == Approx(1000.0).margin(0.01));
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__)
    CHECK(cpu_s < 0.5);
#else
    CHECK(cpu_s < 5.0);  // unoptimised or sanitised build
#endif
}

TEST_CASE("fit_tone_degenerate_inputs", "[tone]") {
    CHECK(fit_tone(std::span<const float>{}).frequency_hz == 0.0);
    const std::vector<float> silence(4800, 0.0f);
    const ToneFit fit = fit_tone(silence);
    CHECK(fit.amplitude == 0.0);
    CHECK(fit.snr_db < 0.0);
    CHECK(sine_residual_db(silence, 1000.0) == 0.0);
}

TEST_CASE("sine_residual_db_wrong_frequency_is_high", "[tone]") {
    const auto x = sine(1000.0, 0.5, 48000);
    CHECK(sine_residual_db(x, 1000.0) < -80.0);
    CHECK(sine_residual_db(x, 1100.0) > -1.0);
}

TEST_CASE("first_above_finds_onset", "[tone]") {
    std::vector<float> x(1000, 0.001f);
    x[600] = -0.2f;
    x[800] = 0.5f;
    CHECK(first_above(x, 0.1f) == 600);
    CHECK(first_above(x, 0.3f) == 800);
    CHECK(first_above(x, 0.9f) == x.size());
    CHECK(first_above(std::span<const float>{}, 0.0f) == 0);
}
