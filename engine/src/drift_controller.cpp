#include "loa/engine/drift_controller.h"

#include <algorithm>
#include <cmath>

namespace loa::engine {

void DriftController::reset(bool full) noexcept {
    primed_ = false;
    filtered_ = 0.0;
    if (full) integral_ = 0.0;
    output_ = std::clamp(integral_, -config_.max_ppm, config_.max_ppm);
}

double DriftController::update(double error_ms, double dt_s) noexcept {
    if (!std::isfinite(error_ms) || !std::isfinite(dt_s)) return output_;
    dt_s = std::clamp(dt_s, 0.0, 1.0);
    if (!primed_) {
        filtered_ = error_ms;
        primed_ = true;
    } else {
        const double a = config_.filter_s > 0.0 ? std::min(1.0, dt_s / config_.filter_s) : 1.0;
        filtered_ += (error_ms - filtered_) * a;
    }
    const double beyond = std::copysign(std::max(std::fabs(filtered_) - config_.dead_band_ms, 0.0), filtered_);
    if (std::fabs(filtered_) < config_.integrate_below_ms) {
        integral_ += config_.ki_ppm_per_ms_s * beyond * dt_s;
        integral_ = std::clamp(integral_, -config_.max_ppm, config_.max_ppm);
    }
    const double p = config_.kp_ppm_per_ms * std::clamp(beyond, -config_.integrate_below_ms,
                                                        config_.integrate_below_ms);
    output_ = std::clamp(p + integral_, -config_.max_ppm, config_.max_ppm);
    return output_;
}

}  // namespace loa::engine
