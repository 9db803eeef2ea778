#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <vector>

#include "loa/codecs/dsp.h"
#include "loa/codecs/resampler.h"
#include "loa/codecs/tone_analysis.h"

using namespace loa::codecs;

namespace {

/// Pushes `seconds` of a 1 kHz tone through `r` in 10 ms input blocks at
/// `ratio`; returns the output.
std::vector<float> run(Resampler& r, double ratio, double seconds, std::size_t& consumed) {
    ToneGenerator gen(1000.0, 0.5);
    std::vector<float> in(480);
    std::vector<float> out(4096);
    std::vector<float> all;
    consumed = 0;
    const auto blocks = static_cast<std::size_t>(seconds * 100);
    for (std::size_t b = 0; b < blocks; ++b) {
        gen.render(in);
        std::size_t offset = 0;
        while (offset < in.size()) {
            std::size_t used = 0;
            std::size_t gen_n = 0;
            REQUIRE(r.process(std::span<const float>(in).subspan(offset), out, ratio, used, gen_n) == Status::Ok);
            offset += used;
            consumed += used;
            all.insert(all.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(gen_n));
            if (used == 0 && gen_n == 0) break;
        }
    }
    return all;
}

}  // namespace

TEST_CASE("resampler_ratio_accuracy", "[resampler]") {
    for (double ppm : {-1000.0, -200.0, 0.0, 200.0, 1000.0}) {
        Resampler r;
        const double ratio = 1.0 + ppm * 1e-6;
        std::size_t consumed = 0;
        const auto out = run(r, ratio, 10.0, consumed);
        INFO("ppm " << ppm);
        REQUIRE(consumed == 480000);
        // Output count follows the ratio (up to the converter's constant delay).
        const double expected = 480000.0 * ratio;
        CHECK(std::fabs(static_cast<double>(out.size()) - expected) < 100.0);
        // The tone's frequency scales by 1/ratio and stays clean.
        const auto fit = fit_tone(std::span<const float>(out).subspan(4800));
        CHECK(fit.frequency_hz == Approx(1000.0 / ratio).margin(0.02));
        CHECK(fit.snr_db > 60.0);
    }
}

TEST_CASE("resampler_ratio_changes_glide", "[resampler]") {
    // Changing the ratio every block (like the drift controller) leaves no
    // audible step: every 20 ms window still fits a sine closely.
    Resampler r;
    ToneGenerator gen(1000.0, 0.5);
    std::vector<float> in(480);
    std::vector<float> out(1024);
    std::vector<float> all;
    for (int b = 0; b < 300; ++b) {
        gen.render(in);
        const double ratio = 1.0 + 1e-3 * std::sin(b * 0.1);
        std::size_t offset = 0;
        while (offset < in.size()) {
            std::size_t used = 0;
            std::size_t n = 0;
            REQUIRE(r.process(std::span<const float>(in).subspan(offset), out, ratio, used, n) == Status::Ok);
            offset += used;
            all.insert(all.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
            if (used == 0 && n == 0) break;
        }
    }
    double worst = -200.0;
    for (std::size_t w = 4800; w + 960 <= all.size(); w += 960) {
        const auto win = std::span<const float>(all).subspan(w, 960);
        double best = 0.0;
        for (int k = -6; k <= 6; ++k) best = std::min(best, sine_residual_db(win, 1000.0 + 0.25 * k));
        worst = std::max(worst, best);
    }
    CHECK(worst < -40.0);
}

TEST_CASE("resampler_rejects_bad_ratio_and_resets", "[resampler]") {
    Resampler r;
    std::vector<float> in(100, 0.0f);
    std::vector<float> out(100);
    std::size_t used = 1;
    std::size_t n = 1;
    CHECK(r.process(in, out, 0.0, used, n) == Status::BadArgument);
    CHECK(used == 0);
    CHECK(n == 0);
    CHECK(r.process(in, out, 1000.0, used, n) == Status::BadArgument);
    CHECK(r.process(in, out, 1.0001, used, n) == Status::Ok);
    CHECK(r.last_ratio() == 1.0001);
    r.reset();
    CHECK(r.last_ratio() == 1.0);
    CHECK(r.process(in, std::span<float>(), 1.0, used, n) == Status::Ok);
    CHECK(n == 0);
}
