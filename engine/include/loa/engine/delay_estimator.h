#pragma once
// Arrival-delay statistics of one RTP stream, the way NetEq measures jitter.
//
// Each packet's "relative delay" is (arrival time - media time of its RTP
// timestamp) minus the smallest such value seen over the last ~2 s (the
// fastest packet of the recent past: the network's floor). Measuring against
// a sliding minimum, not the stream's first packet, keeps a +-200 ppm clock
// drift between sender and receiver from inflating the delays. Late packets
// count too (they are what the target has to cover). The relative delays go
// into a histogram with a forgetting factor; the requested quantile of it is
// the jitter the playout delay must cover.
//
// Threads: one owner. No allocation after construction; update() is O(bins).

#include <cstddef>
#include <cstdint>
#include <vector>

namespace loa::engine {

struct DelayEstimatorConfig {
    int max_delay_ms = 500;          // histogram range (larger delays land in the last bin)
    double quantile = 0.97;
    /// Per-packet forgetting factor of the histogram (0.9983: the weight of a
    /// packet halves after ~400 packets, i.e. ~8 s at 20 ms).
    double forget_factor = 0.9983;
    int bin_ms = 1;
    std::int64_t min_window_ns = 2'000'000'000;  // sliding-minimum span
    int clock_rate = 48000;
};

class DelayEstimator {
public:
    explicit DelayEstimator(const DelayEstimatorConfig& config = {});

    /// Forgets everything (new stream).
    void reset() noexcept;

    /// One packet: `arrival_ns` on the consumer's clock, `media_ns` its RTP
    /// timestamp (unwrapped, relative to any fixed origin) converted to ns.
    void update(std::int64_t arrival_ns, std::int64_t media_ns) noexcept;

    /// Shifts the timestamp origin (the sender's timestamps jumped by
    /// `delta_ns`): keeps the floor consistent with the new timestamps.
    void shift_media(std::int64_t delta_ns) noexcept;

    bool has_floor() const noexcept { return has_floor_; }
    /// Smallest (arrival - media) over the sliding window: where a packet with
    /// no network jitter would arrive is floor + media_ns.
    std::int64_t floor_ns() const noexcept { return floor_; }
    /// The configured quantile of the relative delays, ms (upper bin edge);
    /// 0 before any packet.
    int quantile_ms() const noexcept { return quantile_ms_; }
    /// Relative delay of the last packet, ms.
    double last_relative_ms() const noexcept { return last_rel_ms_; }
    std::uint64_t packets() const noexcept { return packets_; }

private:
    static constexpr std::size_t kBuckets = 5;
    void recompute_floor() noexcept;
    void recompute_quantile() noexcept;

    DelayEstimatorConfig config_;
    std::vector<double> hist_;
    double hist_total_ = 0.0;
    std::uint64_t packets_ = 0;
    int quantile_ms_ = 0;
    double last_rel_ms_ = 0.0;

    // Sliding minimum: the minimum of each bucket of min_window_ns / (kBuckets-1).
    std::int64_t bucket_min_[kBuckets] = {};
    bool bucket_used_[kBuckets] = {};
    std::int64_t bucket_start_ns_ = 0;
    std::size_t bucket_ = 0;
    bool has_floor_ = false;
    std::int64_t floor_ = 0;
};

}  // namespace loa::engine
