#pragma once
// Seeded network impairment: loss (uniform, Gilbert–Elliott bursts, fixed
// pattern), fixed delay, jitter, reordering and duplication, decided per
// packet. Pure and deterministic: no sockets, no clock, no allocation after
// construction. ImpairProxy applies it to real datagrams; tests and
// benchmarks use it directly to make packet traces.
//
// Determinism: every random draw comes from ImpairRng (std::mt19937_64, whose
// output sequence the C++ standard fixes, plus distributions written here
// from raw 64-bit draws), never from std:: distributions, whose outputs
// differ between standard libraries. Loss, jitter, reorder and duplicate
// decisions each use their own stream derived from the seed, and each stream
// consumes the same number of draws for every packet whatever the outcome:
// changing the jitter leaves the loss pattern of a seed unchanged and vice
// versa. Uniform and Bernoulli draws are bit-exact everywhere; normal and
// Pareto values go through std::log/std::cos/std::exp, which IEEE 754 does not
// require to be correctly rounded, so across C libraries they may differ in
// the last bits (release times are rounded to whole nanoseconds).

#include <array>
#include <cstdint>
#include <random>
#include <vector>

namespace loa::transport {

/// Deterministic random source with portable distributions. Not thread-safe.
class ImpairRng {
public:
    explicit ImpairRng(std::uint64_t seed) : engine_(seed) {}

    /// Raw std::mt19937_64 output.
    std::uint64_t next_u64() { return engine_(); }
    /// Uniform in [0, 1): the top 53 bits of one draw. Bit-exact everywhere.
    double uniform01();
    /// Uniform in [lo, hi).
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform01(); }
    /// true with probability p (one draw, also when p <= 0 or p >= 1).
    bool bernoulli(double p) { return uniform01() < p; }
    /// Standard normal, Box–Muller (two draws, second value discarded).
    double normal();
    /// Exponential with the given mean (one draw).
    double exponential(double mean);
    /// Lomax (Pareto type II, starts at 0) with `shape` > 0 and `scale` (one
    /// draw): P(X > x) = (1 + x/scale)^-shape.
    double lomax(double shape, double scale);

    /// A seed for an independent stream `stream` of `seed` (SplitMix64 mix).
    static std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream);

private:
    std::mt19937_64 engine_;
};

enum class LossModel {
    None,            // only ImpairmentConfig::drop_indices
    Uniform,         // independent loss with probability uniform_loss
    GilbertElliott,  // two-state Markov bursts
};

/// Two-state Markov loss. For each packet, the current state's loss
/// probability decides the loss, then the state moves. Starts in Good.
struct GilbertElliottParams {
    double p_good_to_bad = 0.0;
    double p_bad_to_good = 1.0;
    double loss_in_good = 0.0;
    double loss_in_bad = 1.0;

    /// Simple Gilbert model (no loss in Good, all lost in Bad) with the given
    /// long-run loss rate (0 <= mean_loss < 1) and mean burst length in
    /// packets (>= 1). Throws std::invalid_argument out of range.
    static GilbertElliottParams from_mean(double mean_loss, double mean_burst);
    /// Long-run loss rate: stationary Bad share × loss_in_bad + Good share × loss_in_good.
    [[nodiscard]] double mean_loss() const;
};

/// Distribution of the extra delay added to ImpairmentConfig::delay_ns.
/// The extra delay is never negative: the fixed delay is the path's floor.
enum class JitterDistribution {
    None,
    Uniform,  // uniform in [0, spread]
    Normal,   // |N(0, sigma)| with sigma = spread / 2 (spread ~ 95th percentile)
    Pareto,   // Lomax with pareto_shape, scale chosen so spread is the 95th percentile
};

struct ImpairmentConfig {
    std::uint64_t seed = 1;

    LossModel loss = LossModel::None;
    double uniform_loss = 0.0;                 // LossModel::Uniform
    GilbertElliottParams gilbert_elliott{};    // LossModel::GilbertElliott
    /// Packet indices always dropped, on top of the loss model (NetEq-style
    /// fixed pattern, e.g. {5, 6, 7}). Any order; repeats ignored.
    std::vector<std::uint64_t> drop_indices;

    std::int64_t delay_ns = 0;                 // fixed one-way delay, >= 0

    JitterDistribution jitter = JitterDistribution::None;
    std::int64_t jitter_spread_ns = 0;         // see JitterDistribution, >= 0
    double pareto_shape = 2.0;                 // > 0; smaller = heavier tail
    std::int64_t jitter_cap_ns = 0;            // extra delay clamped to this; 0 = 10 × spread
    /// true: a packet is never released before an earlier non-reordered one
    /// (a FIFO queue: jitter without reordering). false: each packet's jitter
    /// is independent, so large jitter reorders packets (like netem).
    bool jitter_keeps_order = false;

    /// Probability that a packet is held back an extra reorder_delay_ns so
    /// that the packets after it overtake it.
    double reorder_probability = 0.0;
    std::int64_t reorder_delay_ns = 50'000'000;

    /// Probability that a delivered packet is sent twice; the second copy
    /// leaves duplicate_delay_ns after the first.
    double duplicate_probability = 0.0;
    /// Packet indices always duplicated (if not dropped). Any order.
    std::vector<std::uint64_t> duplicate_indices;
    std::int64_t duplicate_delay_ns = 0;
};

/// What happens to one packet: `copies` release times (0 = dropped).
struct ImpairDecision {
    std::uint32_t copies = 0;                  // 0, 1, or 2 (duplicated)
    std::array<std::int64_t, 2> release_ns{};  // valid for [0, copies); ascending
    bool reordered = false;                    // the packet was held back

    [[nodiscard]] bool dropped() const { return copies == 0; }
    [[nodiscard]] bool duplicated() const { return copies == 2; }
};

struct ImpairmentCounts {
    std::uint64_t packets = 0;     // decide() calls
    std::uint64_t dropped = 0;
    std::uint64_t duplicated = 0;  // extra copies made
    std::uint64_t reordered = 0;   // packets held back
};

class ImpairmentModel {
public:
    /// Validates `config` (probabilities in [0, 1], delays >= 0, shape > 0):
    /// std::invalid_argument naming the field otherwise. Allocates.
    explicit ImpairmentModel(ImpairmentConfig config);

    /// Decides the fate of packet `index` that arrived at `arrival_ns` (any
    /// time base; release times are in the same base). The outcome for a
    /// seed is reproducible when packets are decided in order, one call per
    /// packet, index 0, 1, 2, ... (indices select the fixed patterns; the
    /// random streams advance once per call). No allocation, no I/O.
    ImpairDecision decide(std::uint64_t index, std::int64_t arrival_ns);

    /// Extra delay the jitter distribution draws for one packet (advances the
    /// jitter stream exactly as decide() does). For statistics in tests.
    std::int64_t draw_jitter_ns();

    [[nodiscard]] const ImpairmentConfig& config() const { return config_; }
    [[nodiscard]] const ImpairmentCounts& counts() const { return counts_; }
    /// true while the Gilbert–Elliott chain is in its Bad state.
    [[nodiscard]] bool in_bad_state() const { return bad_; }

private:
    bool decide_loss(std::uint64_t index);

    ImpairmentConfig config_;
    ImpairRng loss_rng_;
    ImpairRng jitter_rng_;
    ImpairRng reorder_rng_;
    ImpairRng duplicate_rng_;
    double pareto_scale_ns_ = 0.0;
    std::int64_t jitter_cap_ns_ = 0;
    bool bad_ = false;
    bool have_last_release_ = false;
    std::int64_t last_release_ns_ = 0;
    ImpairmentCounts counts_;
};

}  // namespace loa::transport
