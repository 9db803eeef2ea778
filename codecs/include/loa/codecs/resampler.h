#pragma once
// Variable-ratio resampler for 48 kHz mono float audio, wrapping libsamplerate.
// Used by engine::Playout for clock-drift compensation: the ratio stays within
// a fraction of a percent of 1 and may change on every call; libsamplerate
// glides from the previous ratio to the new one across the call's output, so
// a changing ratio never steps.
//
// Threads: one owner thread. process() and reset() never allocate, lock,
// block or throw (libsamplerate allocates only in src_new(), in the
// constructor).

#include <cstddef>
#include <memory>
#include <span>

#include "loa/codecs/status.h"

namespace loa::codecs {

enum class ResamplerQuality {
    SincFastest,  // SRC_SINC_FASTEST: ~97 dB SNR, 80 % bandwidth
    SincMedium,   // SRC_SINC_MEDIUM_QUALITY
    SincBest,     // SRC_SINC_BEST_QUALITY (slow)
    Linear,       // SRC_LINEAR (tests only: poor quality)
};

class Resampler {
public:
    /// Largest and smallest ratio libsamplerate accepts (output/input).
    static constexpr double kMinRatio = 1.0 / 256.0;
    static constexpr double kMaxRatio = 256.0;

    /// Throws codecs::Error(Internal) if libsamplerate cannot be set up.
    explicit Resampler(ResamplerQuality quality = ResamplerQuality::SincFastest);
    ~Resampler();
    Resampler(const Resampler&) = delete;
    Resampler& operator=(const Resampler&) = delete;
    Resampler(Resampler&&) noexcept;
    Resampler& operator=(Resampler&&) noexcept;

    /// Converts as much of `in` into `out` as both allow. `ratio` is the output
    /// rate over the input rate (1.0001: 100 ppm more output samples than input
    /// samples). `used` receives the input samples consumed (the rest must be
    /// offered again, first, on the next call), `generated` the output samples
    /// written. The converter keeps a few dozen input samples inside (its filter
    /// delay), so output lags input by a constant. BadArgument if `ratio` is
    /// outside [kMinRatio, kMaxRatio]; Internal on a libsamplerate error.
    [[nodiscard]] Status process(std::span<const float> in, std::span<float> out, double ratio,
                                 std::size_t& used, std::size_t& generated) noexcept;

    /// Forgets the filter state and the previous ratio (next call starts fresh).
    void reset() noexcept;

    /// The ratio of the last successful process() call (1.0 before the first).
    double last_ratio() const noexcept { return last_ratio_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    double last_ratio_ = 1.0;
};

}  // namespace loa::codecs
