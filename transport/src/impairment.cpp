#include "loa/transport/impairment.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>
#include <utility>

namespace loa::transport {
namespace {

void require_probability(double p, const char* field) {
    if (!(p >= 0.0 && p <= 1.0)) {
        throw std::invalid_argument(std::string("impairment: ") + field + " must be in [0, 1], got " +
                                    std::to_string(p));
    }
}

void require_non_negative(std::int64_t v, const char* field) {
    if (v < 0) {
        throw std::invalid_argument(std::string("impairment: ") + field + " must be >= 0, got " +
                                    std::to_string(v));
    }
}

void sort_unique(std::vector<std::uint64_t>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

// Stream numbers for derive_seed(); fixed forever, they are part of the trace.
constexpr std::uint64_t kLossStream = 1;
constexpr std::uint64_t kJitterStream = 2;
constexpr std::uint64_t kReorderStream = 3;
constexpr std::uint64_t kDuplicateStream = 4;

}  // namespace

double ImpairRng::uniform01() {
    return static_cast<double>(engine_() >> 11) * 0x1.0p-53;
}

double ImpairRng::normal() {
    const double u1 = 1.0 - uniform01();  // (0, 1]: log() stays finite
    const double u2 = uniform01();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

double ImpairRng::exponential(double mean) {
    return -mean * std::log(1.0 - uniform01());
}

double ImpairRng::lomax(double shape, double scale) {
    // Inverse CDF: x = scale * (u^(-1/shape) - 1) with u in (0, 1].
    const double u = 1.0 - uniform01();
    return scale * (std::exp(-std::log(u) / shape) - 1.0);
}

std::uint64_t ImpairRng::derive_seed(std::uint64_t seed, std::uint64_t stream) {
    std::uint64_t z = seed + stream * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

GilbertElliottParams GilbertElliottParams::from_mean(double mean_loss, double mean_burst) {
    if (!(mean_loss >= 0.0 && mean_loss < 1.0)) {
        throw std::invalid_argument("Gilbert-Elliott: mean loss must be in [0, 1), got " +
                                    std::to_string(mean_loss));
    }
    if (!(mean_burst >= 1.0)) {
        throw std::invalid_argument("Gilbert-Elliott: mean burst length must be >= 1 packet, got " +
                                    std::to_string(mean_burst));
    }
    GilbertElliottParams p;
    p.p_bad_to_good = 1.0 / mean_burst;
    // Stationary Bad share pi_b = g / (g + b) = mean_loss  =>  g = mean_loss * b / (1 - mean_loss).
    p.p_good_to_bad = mean_loss * p.p_bad_to_good / (1.0 - mean_loss);
    if (p.p_good_to_bad > 1.0) {
        throw std::invalid_argument("Gilbert-Elliott: mean loss " + std::to_string(mean_loss) +
                                    " is unreachable with mean burst " + std::to_string(mean_burst));
    }
    p.loss_in_good = 0.0;
    p.loss_in_bad = 1.0;
    return p;
}

double GilbertElliottParams::mean_loss() const {
    const double sum = p_good_to_bad + p_bad_to_good;
    if (sum <= 0.0) return loss_in_good;  // never leaves Good
    const double bad_share = p_good_to_bad / sum;
    return bad_share * loss_in_bad + (1.0 - bad_share) * loss_in_good;
}

ImpairmentModel::ImpairmentModel(ImpairmentConfig config)
    : config_(std::move(config)),
      loss_rng_(ImpairRng::derive_seed(config_.seed, kLossStream)),
      jitter_rng_(ImpairRng::derive_seed(config_.seed, kJitterStream)),
      reorder_rng_(ImpairRng::derive_seed(config_.seed, kReorderStream)),
      duplicate_rng_(ImpairRng::derive_seed(config_.seed, kDuplicateStream)) {
    require_probability(config_.uniform_loss, "uniform_loss");
    const auto& ge = config_.gilbert_elliott;
    require_probability(ge.p_good_to_bad, "gilbert_elliott.p_good_to_bad");
    require_probability(ge.p_bad_to_good, "gilbert_elliott.p_bad_to_good");
    require_probability(ge.loss_in_good, "gilbert_elliott.loss_in_good");
    require_probability(ge.loss_in_bad, "gilbert_elliott.loss_in_bad");
    require_probability(config_.reorder_probability, "reorder_probability");
    require_probability(config_.duplicate_probability, "duplicate_probability");
    require_non_negative(config_.delay_ns, "delay_ns");
    require_non_negative(config_.jitter_spread_ns, "jitter_spread_ns");
    require_non_negative(config_.jitter_cap_ns, "jitter_cap_ns");
    require_non_negative(config_.reorder_delay_ns, "reorder_delay_ns");
    require_non_negative(config_.duplicate_delay_ns, "duplicate_delay_ns");
    if (!(config_.pareto_shape > 0.0) || !std::isfinite(config_.pareto_shape)) {
        throw std::invalid_argument("impairment: pareto_shape must be > 0, got " +
                                    std::to_string(config_.pareto_shape));
    }
    sort_unique(config_.drop_indices);
    sort_unique(config_.duplicate_indices);

    jitter_cap_ns_ = config_.jitter_cap_ns > 0 ? config_.jitter_cap_ns : 10 * config_.jitter_spread_ns;
    // 95th percentile of Lomax(shape, scale) is scale * (20^(1/shape) - 1).
    pareto_scale_ns_ = static_cast<double>(config_.jitter_spread_ns) /
                       (std::pow(20.0, 1.0 / config_.pareto_shape) - 1.0);
}

bool ImpairmentModel::decide_loss(std::uint64_t index) {
    bool lost = false;
    switch (config_.loss) {
    case LossModel::None:
        break;
    case LossModel::Uniform:
        lost = loss_rng_.bernoulli(config_.uniform_loss);
        break;
    case LossModel::GilbertElliott: {
        const auto& ge = config_.gilbert_elliott;
        lost = loss_rng_.bernoulli(bad_ ? ge.loss_in_bad : ge.loss_in_good);
        const double move = loss_rng_.uniform01();
        if (bad_) {
            if (move < ge.p_bad_to_good) bad_ = false;
        } else if (move < ge.p_good_to_bad) {
            bad_ = true;
        }
        break;
    }
    }
    if (std::binary_search(config_.drop_indices.begin(), config_.drop_indices.end(), index)) lost = true;
    return lost;
}

std::int64_t ImpairmentModel::draw_jitter_ns() {
    const double spread = static_cast<double>(config_.jitter_spread_ns);
    double extra = 0.0;
    switch (config_.jitter) {
    case JitterDistribution::None:
        return 0;
    case JitterDistribution::Uniform:
        extra = jitter_rng_.uniform(0.0, spread);
        break;
    case JitterDistribution::Normal:
        extra = std::fabs(jitter_rng_.normal()) * (spread / 2.0);
        break;
    case JitterDistribution::Pareto:
        extra = jitter_rng_.lomax(config_.pareto_shape, pareto_scale_ns_);
        break;
    }
    const double cap = static_cast<double>(jitter_cap_ns_);
    if (!(extra < cap)) return jitter_cap_ns_;  // also catches inf/NaN
    return std::llround(std::max(extra, 0.0));
}

ImpairDecision ImpairmentModel::decide(std::uint64_t index, std::int64_t arrival_ns) {
    ++counts_.packets;
    // Every stream draws for every packet, whatever the outcome.
    const bool lost = decide_loss(index);
    const std::int64_t jitter_ns = draw_jitter_ns();
    const bool held_back = reorder_rng_.bernoulli(config_.reorder_probability);
    const bool duplicate =
        duplicate_rng_.bernoulli(config_.duplicate_probability) ||
        std::binary_search(config_.duplicate_indices.begin(), config_.duplicate_indices.end(), index);

    ImpairDecision d;
    if (lost) {
        ++counts_.dropped;
        return d;
    }
    std::int64_t release = arrival_ns + config_.delay_ns + jitter_ns;
    if (config_.jitter_keeps_order && have_last_release_ && release < last_release_ns_) {
        release = last_release_ns_;
    }
    if (held_back) {
        release += config_.reorder_delay_ns;
        d.reordered = true;
        ++counts_.reordered;
    } else {
        last_release_ns_ = have_last_release_ ? std::max(last_release_ns_, release) : release;
        have_last_release_ = true;
    }
    d.copies = 1;
    d.release_ns[0] = release;
    if (duplicate) {
        d.copies = 2;
        d.release_ns[1] = release + config_.duplicate_delay_ns;
        ++counts_.duplicated;
    }
    return d;
}

}  // namespace loa::transport
