#pragma once
// Pitch-synchronous time-scale modification of decoded audio (48 kHz mono):
// accelerate removes one whole pitch period, expand repeats one. The period
// is the lag of the highest normalised autocorrelation in
// [min_period_ms, max_period_ms]; the edit cross-fades two adjacent periods,
// so a periodic signal keeps its pitch exactly (a 1 kHz tone stays 1000 Hz,
// and the length changes by whole periods). A signal that is not periodic
// enough (correlation below the threshold) is left alone, unless it is
// near-silent, where any length may go or come.
//
// Used by engine::Playout to move the playout delay toward its target
// without audible jumps (NetEq's accelerate / preemptive expand).
//
// Threads: one owner. accelerate() and expand() never allocate, lock or throw.

#include <cstddef>
#include <span>

namespace loa::codecs {

struct TimeScaleConfig {
    int sample_rate = 48000;
    double min_period_ms = 2.5;
    double max_period_ms = 15.0;
    /// Lowest normalised autocorrelation at which a period is cut or repeated.
    double correlation_threshold = 0.9;
    /// Below this RMS level the signal counts as silence (any lag will do).
    double silence_rms = 1e-4;
};

/// What one operation did.
struct TimeScaleResult {
    std::size_t samples = 0;    // removed (accelerate) or inserted (expand); 0: nothing done
    double correlation = 0.0;   // normalised autocorrelation at the chosen lag
    bool silent = false;        // chosen because the signal was near-silent
};

class TimeScale {
public:
    explicit TimeScale(const TimeScaleConfig& config = {}) noexcept;

    /// Removes one period of at most `max_remove` samples from `buf` (the
    /// audio not yet played), in place: the result is buf.size() - samples
    /// long, starting at buf[0]. Needs buf.size() >= 2 * period.
    TimeScaleResult accelerate(std::span<float> buf, std::size_t max_remove) const noexcept;

    /// Inserts one period of at most `max_insert` samples into the first
    /// `len` samples of `buf`, in place; buf.size() must leave room for it
    /// (the period is also limited to buf.size() - len). The result is
    /// len + samples long. Needs len >= 2 * period.
    TimeScaleResult expand(std::span<float> buf, std::size_t len, std::size_t max_insert) const noexcept;

    std::size_t min_period() const noexcept { return min_period_; }
    std::size_t max_period() const noexcept { return max_period_; }

private:
    /// Best lag in [min_period_, max_lag] for the start of `x`; 0 if none.
    TimeScaleResult find_period(std::span<const float> x, std::size_t max_lag) const noexcept;

    TimeScaleConfig config_;
    std::size_t min_period_;
    std::size_t max_period_;
};

}  // namespace loa::codecs
