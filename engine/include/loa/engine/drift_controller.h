#pragma once
// Slow PI controller that keeps a playout buffer at its target delay by
// nudging a resampling ratio: the error (current delay - target) is low-pass
// filtered, then a proportional and an integral term give the correction, in
// parts per million, clamped to +-max_ppm. A positive correction means "play
// the input faster" (consume 1 + ppm/1e6 input samples per output sample).
//
// The integral term learns the steady clock-rate difference (up to a few
// hundred ppm between two sound cards), so the error returns to zero. It only
// integrates while the error is small (large errors are for time-stretching,
// not for the resampler), which keeps it from winding up.
//
// Threads: one owner. No allocation.

namespace loa::engine {

struct DriftControllerConfig {
    double max_ppm = 1000.0;
    /// Filtered errors smaller than this (ms) are left alone: arrival jitter
    /// and steps of the delay floor are not a clock difference, and equal
    /// clocks must give a correction of (nearly) zero.
    double dead_band_ms = 0.5;
    /// ppm of correction per ms of (filtered) error beyond the dead band.
    double kp_ppm_per_ms = 100.0;
    /// ppm of correction added per ms of error beyond the dead band per second.
    double ki_ppm_per_ms_s = 4.0;
    /// Error filter time constant, seconds.
    double filter_s = 1.0;
    /// The integral term is frozen while |filtered error| exceeds this (ms).
    double integrate_below_ms = 8.0;
};

class DriftController {
public:
    explicit DriftController(const DriftControllerConfig& config = {}) noexcept : config_(config) {}

    /// Forgets the filter state; keeps the learned rate unless `full`.
    void reset(bool full) noexcept;

    /// Feeds one measurement of `error_ms` taken `dt_s` seconds after the
    /// previous one; returns the correction in ppm.
    double update(double error_ms, double dt_s) noexcept;

    double correction_ppm() const noexcept { return output_; }
    double filtered_error_ms() const noexcept { return filtered_; }
    double integral_ppm() const noexcept { return integral_; }

private:
    DriftControllerConfig config_;
    bool primed_ = false;
    double filtered_ = 0.0;
    double integral_ = 0.0;
    double output_ = 0.0;
};

}  // namespace loa::engine
