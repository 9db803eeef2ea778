#include "loa/engine/delay_estimator.h"

#include <algorithm>
#include <cmath>

namespace loa::engine {

DelayEstimator::DelayEstimator(const DelayEstimatorConfig& config) : config_(config) {
    config_.bin_ms = std::max(config_.bin_ms, 1);
    config_.max_delay_ms = std::max(config_.max_delay_ms, config_.bin_ms);
    config_.quantile = std::clamp(config_.quantile, 0.0, 1.0);
    config_.forget_factor = std::clamp(config_.forget_factor, 0.5, 1.0);
    if (config_.min_window_ns <= 0) config_.min_window_ns = 2'000'000'000;
    hist_.assign(static_cast<std::size_t>(config_.max_delay_ms / config_.bin_ms) + 1, 0.0);
    reset();
}

void DelayEstimator::reset() noexcept {
    std::fill(hist_.begin(), hist_.end(), 0.0);
    hist_total_ = 0.0;
    packets_ = 0;
    quantile_ms_ = 0;
    last_rel_ms_ = 0.0;
    for (std::size_t i = 0; i < kBuckets; ++i) bucket_used_[i] = false;
    bucket_ = 0;
    bucket_start_ns_ = 0;
    has_floor_ = false;
    floor_ = 0;
}

void DelayEstimator::recompute_floor() noexcept {
    bool any = false;
    std::int64_t m = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
        if (!bucket_used_[i]) continue;
        if (!any || bucket_min_[i] < m) m = bucket_min_[i];
        any = true;
    }
    has_floor_ = any;
    floor_ = m;
}

void DelayEstimator::shift_media(std::int64_t delta_ns) noexcept {
    // media' = media + delta  =>  (arrival - media') = (arrival - media) - delta.
    for (std::size_t i = 0; i < kBuckets; ++i) bucket_min_[i] -= delta_ns;
    floor_ -= delta_ns;
}

void DelayEstimator::recompute_quantile() noexcept {
    if (hist_total_ <= 0.0) {
        quantile_ms_ = 0;
        return;
    }
    const double want = config_.quantile * hist_total_;
    double acc = 0.0;
    std::size_t b = 0;
    for (; b + 1 < hist_.size(); ++b) {
        acc += hist_[b];
        if (acc >= want) break;
    }
    quantile_ms_ = static_cast<int>(b + 1) * config_.bin_ms;
}

void DelayEstimator::update(std::int64_t arrival_ns, std::int64_t media_ns) noexcept {
    const std::int64_t offset = arrival_ns - media_ns;

    // Sliding minimum over buckets of arrival time.
    const std::int64_t bucket_len = config_.min_window_ns / static_cast<std::int64_t>(kBuckets - 1);
    if (packets_ == 0) {
        bucket_start_ns_ = arrival_ns;
        bucket_ = 0;
        bucket_used_[0] = true;
        bucket_min_[0] = offset;
    } else {
        while (arrival_ns - bucket_start_ns_ >= bucket_len) {
            bucket_start_ns_ += bucket_len;
            bucket_ = (bucket_ + 1) % kBuckets;
            bucket_used_[bucket_] = false;
            // A long silence: skip whole windows at once.
            if (arrival_ns - bucket_start_ns_ >= config_.min_window_ns) {
                const std::int64_t skip = (arrival_ns - bucket_start_ns_) / bucket_len;
                bucket_start_ns_ += skip * bucket_len;
                for (std::size_t i = 0; i < kBuckets; ++i) bucket_used_[i] = false;
            }
        }
        if (!bucket_used_[bucket_] || offset < bucket_min_[bucket_]) bucket_min_[bucket_] = offset;
        bucket_used_[bucket_] = true;
    }
    recompute_floor();

    // Histogram of the relative delay, forgetting old packets; the first
    // packets are averaged plainly so the estimate is usable at once.
    const double rel_ms = static_cast<double>(offset - floor_) / 1e6;
    last_rel_ms_ = rel_ms;
    ++packets_;
    const double f = std::min(config_.forget_factor, 1.0 - 1.0 / static_cast<double>(packets_ + 1));
    for (double& h : hist_) h *= f;
    hist_total_ *= f;
    const auto bin = static_cast<std::size_t>(
        std::clamp(rel_ms / config_.bin_ms, 0.0, static_cast<double>(hist_.size() - 1)));
    hist_[bin] += 1.0 - f;
    hist_total_ += 1.0 - f;
    recompute_quantile();
}

}  // namespace loa::engine
