#include <catch2/catch.hpp>

#include "loa/engine/clock.h"
#include "loa/engine/media_clock.h"

using loa::engine::ManualClock;
using loa::engine::MediaClock;

TEST_CASE("media_clock_no_drift_over_one_hour", "[media_clock]") {
    ManualClock clock(5'000'000);
    const std::int64_t start = 7'000'000;
    MediaClock mc(clock, 20'000'000, start);
    const std::uint64_t frames = 3600ull * 50;  // one hour of 20 ms frames
    std::int64_t worst_late = 0;
    for (std::uint64_t i = 0; i < frames; ++i) {
        // A real wake-up is a little late; lateness must never accumulate.
        worst_late = std::max(worst_late, mc.wait_next());
        clock.advance(137'000);  // 137 us of work per frame
    }
    CHECK(mc.frame_index() == frames);
    CHECK(mc.deadline_ns() == start + static_cast<std::int64_t>(frames) * 20'000'000);
    CHECK(worst_late == 0);
    // Exactly one hour of media time from the first deadline.
    CHECK(mc.deadline_ns() - start == 3600ll * 1'000'000'000);
}

TEST_CASE("media_clock_10ms_ptime_exact", "[media_clock]") {
    ManualClock clock;
    MediaClock mc(clock, 10'000'000, 0);
    for (int i = 0; i < 360'000; ++i) (void)mc.wait_next();
    CHECK(clock.now_ns() == 359'999ll * 10'000'000);
    CHECK(mc.deadline_ns() == 3600ll * 1'000'000'000);
}

TEST_CASE("media_clock_skips_after_stall", "[media_clock]") {
    ManualClock clock;
    MediaClock mc(clock, 20'000'000, 0);
    (void)mc.wait_next();
    clock.advance(105'000'000);  // a 105 ms stall
    const auto skipped = mc.skip_overdue();
    // Deadlines 20..80 ms are more than one period behind 105 ms; 100 ms is not.
    CHECK(skipped == 4);
    CHECK(mc.deadline_ns() == 100'000'000);
    CHECK(mc.wait_next() == 5'000'000);
}
