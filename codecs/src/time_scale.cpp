#include "loa/codecs/time_scale.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

namespace loa::codecs {

namespace {

/// Longest period searched (42.7 ms), whatever the config says.
constexpr std::size_t kMaxLag = 2048;

/// Normalised cross-correlation of x[0..n) and x[lag..lag+n).
double normalised_correlation(const float* x, std::size_t lag, std::size_t n) noexcept {
    double ab = 0.0, aa = 0.0, bb = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        const double a = static_cast<double>(x[i]);
        const double b = static_cast<double>(x[i + lag]);
        ab += a * b;
        aa += a * a;
        bb += b * b;
    }
    if (aa <= 0.0 || bb <= 0.0) return 0.0;
    return ab / std::sqrt(aa * bb);
}

/// Raised-cosine fade-in weight for sample i of n.
inline float fade_in(std::size_t i, std::size_t n) noexcept {
    const double t = (static_cast<double>(i) + 0.5) / static_cast<double>(n);
    return static_cast<float>(0.5 - 0.5 * std::cos(3.14159265358979323846 * t));
}

}  // namespace

TimeScale::TimeScale(const TimeScaleConfig& config) noexcept
    : config_(config),
      min_period_(static_cast<std::size_t>(
          std::max(1.0, std::round(config.min_period_ms * config.sample_rate / 1000.0)))),
      max_period_(static_cast<std::size_t>(
          std::max(1.0, std::round(config.max_period_ms * config.sample_rate / 1000.0)))) {
    if (max_period_ < min_period_) max_period_ = min_period_;
}

TimeScaleResult TimeScale::find_period(std::span<const float> x, std::size_t max_lag) const noexcept {
    TimeScaleResult r;
    max_lag = std::min({max_lag, max_period_, x.size() / 2, kMaxLag});
    if (max_lag < min_period_) return r;

    // Silence: any lag will do; take the longest allowed.
    double energy = 0.0;
    for (std::size_t i = 0; i < 2 * max_lag; ++i) energy += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    if (std::sqrt(energy / static_cast<double>(2 * max_lag)) < config_.silence_rms) {
        r.samples = max_lag;
        r.correlation = 1.0;
        r.silent = true;
        return r;
    }

    // The correlation window is the lag itself (the two periods that the
    // cross-fade joins). Among lags whose correlation is within a hair of the
    // best, the longest wins: several whole periods of a steady tone move the
    // delay faster at no cost.
    std::array<float, kMaxLag + 1> corr{};
    double best = -1.0;
    for (std::size_t lag = min_period_; lag <= max_lag; ++lag) {
        const double c = normalised_correlation(x.data(), lag, lag);
        corr[lag] = static_cast<float>(c);
        best = std::max(best, c);
    }
    std::size_t best_lag = 0;
    const double accept = std::max(config_.correlation_threshold, best - 0.002);
    for (std::size_t lag = max_lag; lag >= min_period_; --lag) {
        if (static_cast<double>(corr[lag]) >= accept) {
            best_lag = lag;
            best = static_cast<double>(corr[lag]);
            break;
        }
    }
    if (best_lag == 0 || best < config_.correlation_threshold) {
        r.correlation = best;
        return r;
    }
    r.samples = best_lag;
    r.correlation = best;
    return r;
}

TimeScaleResult TimeScale::accelerate(std::span<float> buf, std::size_t max_remove) const noexcept {
    TimeScaleResult r = find_period(buf, max_remove);
    if (r.samples == 0) return r;
    const std::size_t p = r.samples;
    // A B C -> Y C, Y = A faded out + B faded in.
    float* a = buf.data();
    const float* b = buf.data() + p;
    for (std::size_t i = 0; i < p; ++i) {
        const float w = fade_in(i, p);
        a[i] = a[i] * (1.0f - w) + b[i] * w;
    }
    const std::size_t tail = buf.size() - 2 * p;
    if (tail > 0) std::memmove(buf.data() + p, buf.data() + 2 * p, tail * sizeof(float));
    return r;
}

TimeScaleResult TimeScale::expand(std::span<float> buf, std::size_t len, std::size_t max_insert) const noexcept {
    if (len > buf.size()) len = buf.size();
    const std::size_t room = buf.size() - len;
    TimeScaleResult r = find_period(buf.first(len), std::min(max_insert, room));
    if (r.samples == 0) return r;
    const std::size_t p = r.samples;
    // A B C -> A X B C, X = B faded out + A faded in: X starts like B (so A
    // runs on into it) and ends like A (so it runs on into B).
    std::memmove(buf.data() + 2 * p, buf.data() + p, (len - p) * sizeof(float));
    // Now buf = A ? B C with B at [2p, 3p); build X at [p, 2p).
    const float* a = buf.data();
    const float* b = buf.data() + 2 * p;
    float* x = buf.data() + p;
    for (std::size_t i = 0; i < p; ++i) {
        const float w = fade_in(i, p);
        x[i] = b[i] * (1.0f - w) + a[i] * w;
    }
    return r;
}

}  // namespace loa::codecs
