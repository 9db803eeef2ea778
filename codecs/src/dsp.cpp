#include "loa/codecs/dsp.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace loa::codecs {

namespace {
constexpr double kTwoPi = 2.0 * std::numbers::pi;
}  // namespace

ToneGenerator::ToneGenerator(double frequency_hz, double amplitude, int sample_rate) noexcept
    : step_(sample_rate > 0 ? kTwoPi * frequency_hz / sample_rate : 0.0), amplitude_(amplitude) {}

void ToneGenerator::render(std::span<float> out) noexcept {
    for (float& s : out) {
        s = static_cast<float>(amplitude_ * std::sin(phase_));
        phase_ += step_;
        if (phase_ >= kTwoPi) {
            phase_ -= kTwoPi;
        } else if (phase_ < 0.0) {
            phase_ += kTwoPi;
        }
    }
}

double db_to_gain(double db) noexcept { return std::pow(10.0, db / 20.0); }

void apply_gain(std::span<float> frame, float gain) noexcept {
    for (float& s : frame) {
        s *= gain;
    }
}

void mix_into(std::span<float> dst, std::span<const float> src, float gain) noexcept {
    const std::size_t n = std::min(dst.size(), src.size());
    for (std::size_t i = 0; i < n; ++i) {
        dst[i] += gain * src[i];
    }
}

std::size_t hard_limit(std::span<float> frame) noexcept {
    std::size_t clipped = 0;
    for (float& s : frame) {
        if (s > 1.0f) {
            s = 1.0f;
            ++clipped;
        } else if (s < -1.0f) {
            s = -1.0f;
            ++clipped;
        } else if (std::isnan(s)) {
            s = 0.0f;
            ++clipped;
        }
    }
    return clipped;
}

double rms(std::span<const float> frame) noexcept {
    if (frame.empty()) {
        return 0.0;
    }
    double acc = 0.0;
    for (float s : frame) {
        acc += static_cast<double>(s) * static_cast<double>(s);
    }
    return std::sqrt(acc / static_cast<double>(frame.size()));
}

float peak(std::span<const float> frame) noexcept {
    float p = 0.0f;
    for (float s : frame) {
        p = std::max(p, std::fabs(s));
    }
    return p;
}

}  // namespace loa::codecs
