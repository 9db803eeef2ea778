// MicrosHistogram: a lock-free histogram of microsecond values (exact below
// 64 us, then 16 buckets per power of two), read as quantiles.
#include "loa/transport/fanout_sender.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>

namespace loa::transport {

namespace {

constexpr std::int64_t kExactLimit = 64;  // values below it are their own bucket
constexpr int kFirstPower = 6;            // log2(kExactLimit)
constexpr int kSubBits = 4;               // 16 sub-buckets per power of two
constexpr std::size_t kSubBuckets = std::size_t{1} << kSubBits;

}  // namespace

std::size_t MicrosHistogram::bucket_of(std::int64_t us) noexcept {
    if (us < kExactLimit) return us < 0 ? 0 : static_cast<std::size_t>(us);
    const auto u = static_cast<std::uint64_t>(us);
    const int power = static_cast<int>(std::bit_width(u)) - 1;  // >= kFirstPower
    const auto sub = static_cast<std::size_t>((u >> (power - kSubBits)) & (kSubBuckets - 1));
    const std::size_t b = static_cast<std::size_t>(kExactLimit) +
                          static_cast<std::size_t>(power - kFirstPower) * kSubBuckets + sub;
    return std::min(b, kBuckets - 1);
}

std::int64_t MicrosHistogram::bucket_upper(std::size_t b) noexcept {
    if (b < static_cast<std::size_t>(kExactLimit)) return static_cast<std::int64_t>(b);
    const std::size_t offset = b - static_cast<std::size_t>(kExactLimit);
    const int power = kFirstPower + static_cast<int>(offset / kSubBuckets);
    const auto sub = static_cast<std::int64_t>(offset % kSubBuckets);
    const std::int64_t width = std::int64_t{1} << (power - kSubBits);
    return (static_cast<std::int64_t>(kSubBuckets) + sub) * width + width - 1;
}

void MicrosHistogram::record(std::int64_t us) noexcept {
    if (us < 0) us = 0;
    buckets_[bucket_of(us)].fetch_add(1, std::memory_order_relaxed);
    std::int64_t seen = max_.load(std::memory_order_relaxed);
    while (us > seen && !max_.compare_exchange_weak(seen, us, std::memory_order_relaxed)) {
    }
}

void MicrosHistogram::reset() noexcept {
    for (auto& b : buckets_) b.store(0, std::memory_order_relaxed);
    max_.store(0, std::memory_order_relaxed);
}

std::uint64_t MicrosHistogram::count() const noexcept {
    std::uint64_t n = 0;
    for (const auto& b : buckets_) n += b.load(std::memory_order_relaxed);
    return n;
}

std::int64_t MicrosHistogram::quantile(double q) const noexcept {
    std::array<std::uint64_t, kBuckets> snapshot{};
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
        snapshot[i] = buckets_[i].load(std::memory_order_relaxed);
        total += snapshot[i];
    }
    if (total == 0) return 0;
    q = std::clamp(q, 0.0, 1.0);
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total)));
    rank = std::clamp<std::uint64_t>(rank, 1, total);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
        seen += snapshot[i];
        if (seen >= rank) return std::min(bucket_upper(i), max());
    }
    return max();
}

}  // namespace loa::transport
