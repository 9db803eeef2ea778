#include "loa/engine/ducker.h"

#include <algorithm>
#include <cmath>

#include "loa/codecs/dsp.h"

namespace loa::engine {

namespace {
// Per-sample multiplier that covers `db` (signed) in `ms`.
double step_factor(double db, double ms, int sample_rate) {
    const double samples = std::max(1.0, ms * sample_rate / 1000.0);
    return std::pow(10.0, db / 20.0 / samples);
}
}  // namespace

Ducker::Ducker(const DuckerConfig& config) noexcept
    : floor_(std::pow(10.0, std::min(0.0, config.duck_db) / 20.0)),
      down_factor_(step_factor(std::min(0.0, config.duck_db), config.attack_ms, config.sample_rate)),
      up_factor_(step_factor(-std::min(0.0, config.duck_db), config.release_ms, config.sample_rate)),
      hold_samples_(static_cast<std::size_t>(std::max(0.0, config.hold_ms) * config.sample_rate / 1000.0)) {}

bool Ducker::voice_present(std::span<const float> frame, double threshold_dbfs) noexcept {
    const double r = codecs::rms(frame);
    if (r <= 0.0) return false;
    return 20.0 * std::log10(r) > threshold_dbfs;
}

void Ducker::process(bool voice, std::span<float> gains) noexcept {
    if (voice) {
        hold_left_ = hold_samples_;
    }
    const bool down = voice || hold_left_ > 0;
    if (!voice) hold_left_ -= std::min(hold_left_, gains.size());
    double g = gain_;
    if (down) {
        for (auto& out : gains) {
            g = std::max(floor_, g * down_factor_);
            out = static_cast<float>(g);
        }
    } else {
        for (auto& out : gains) {
            g = std::min(1.0, g * up_factor_);
            out = static_cast<float>(g);
        }
    }
    gain_ = g;
}

}  // namespace loa::engine
