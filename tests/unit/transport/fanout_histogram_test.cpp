// MicrosHistogram, the fan-out spread's histogram: log-linear buckets,
// quantiles, and records from several threads at once.
#include <catch2/catch.hpp>

#include "loa/transport/fanout_sender.h"

#include <cstdint>
#include <limits>
#include <random>
#include <thread>
#include <vector>

using namespace loa::transport;

TEST_CASE("histogram_buckets_are_log_linear", "[fanout][histogram]") {
    // Exact below 64 us.
    for (std::int64_t v = 0; v < 64; ++v) {
        REQUIRE(MicrosHistogram::bucket_index(v) == static_cast<std::size_t>(v));
        REQUIRE(MicrosHistogram::bucket_upper_edge(MicrosHistogram::bucket_index(v)) == v);
    }
    CHECK(MicrosHistogram::bucket_index(-5) == 0);
    // Above: monotonic, each value inside its bucket, relative width <= 1/16.
    std::mt19937_64 rng(99);
    std::size_t last_bucket = 0;
    for (std::int64_t v = 64; v < 200'000'000; v += 1 + v / 37) {
        const std::size_t b = MicrosHistogram::bucket_index(v);
        REQUIRE(b >= last_bucket);
        last_bucket = b;
        const std::int64_t upper = MicrosHistogram::bucket_upper_edge(b);
        const std::int64_t lower = b == 0 ? 0 : MicrosHistogram::bucket_upper_edge(b - 1) + 1;
        REQUIRE(v <= upper);
        REQUIRE(v >= lower);
        REQUIRE(static_cast<double>(upper - lower + 1) <= static_cast<double>(lower) / 16.0 + 1.0);
    }
    // 100 s is covered without clamping.
    CHECK(MicrosHistogram::bucket_index(100'000'000) < MicrosHistogram::kBuckets - 1);
    CHECK(MicrosHistogram::bucket_index(std::numeric_limits<std::int64_t>::max()) ==
          MicrosHistogram::kBuckets - 1);
    (void)rng;
}

TEST_CASE("histogram_quantiles_and_concurrent_record", "[fanout][histogram]") {
    MicrosHistogram h;
    CHECK(h.count() == 0);
    CHECK(h.quantile(0.99) == 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&h, t] {
            for (std::int64_t v = 1; v <= 1000; ++v) h.record(v * 10 + t);
        });
    }
    for (auto& th : threads) th.join();
    CHECK(h.count() == 4000);
    CHECK(h.max() == 10'003);
    const auto p50 = h.quantile(0.5);
    CHECK(p50 >= 5000);
    CHECK(p50 <= 5000 + 5000 / 16 + 16);
    const auto p99 = h.quantile(0.99);
    CHECK(p99 >= 9900);
    CHECK(p99 <= 10'003);  // never above max
    CHECK(h.quantile(1.0) == 10'003);
    CHECK(h.quantile(0.0) <= 13);
    h.reset();
    CHECK(h.count() == 0);
    CHECK(h.max() == 0);
}
