#pragma once
// Small real-time-safe DSP helpers on float mono frames. None allocates.

#include <cstddef>
#include <span>

namespace loa::codecs {

/// Sine generator with a continuous phase across frames.
class ToneGenerator {
public:
    ToneGenerator(double frequency_hz, double amplitude, int sample_rate = 48000) noexcept;
    /// Overwrites `out` with the next samples of the tone.
    void render(std::span<float> out) noexcept;
    void reset() noexcept { phase_ = 0.0; }

private:
    double step_;
    double amplitude_;
    double phase_ = 0.0;
};

/// Converts decibels to a linear gain factor.
double db_to_gain(double db) noexcept;

/// out[i] *= gain.
void apply_gain(std::span<float> frame, float gain) noexcept;

/// dst[i] += gain * src[i] over min(dst.size(), src.size()) samples.
void mix_into(std::span<float> dst, std::span<const float> src, float gain = 1.0f) noexcept;

/// Clamps every sample to [-1, 1]; returns how many were clipped.
std::size_t hard_limit(std::span<float> frame) noexcept;

/// Root-mean-square level of a frame (0 for an empty span).
double rms(std::span<const float> frame) noexcept;

/// Peak absolute sample value.
float peak(std::span<const float> frame) noexcept;

}  // namespace loa::codecs
