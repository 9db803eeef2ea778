#pragma once
// Frame deadlines on absolute times of a monotonic clock. Deadline n is
// computed as start + n * period in integer nanoseconds, so no error
// accumulates however long the engine runs. Owned by the media thread.

#include <cstdint>

#include "loa/engine/clock.h"

namespace loa::engine {

class MediaClock {
public:
    /// `period_ns`: one packet time. The first deadline is `start_ns`.
    MediaClock(Clock& clock, std::int64_t period_ns, std::int64_t start_ns) noexcept
        : clock_(clock), period_(period_ns), start_(start_ns) {}

    /// Index of the next frame to produce.
    std::uint64_t frame_index() const noexcept { return index_; }
    /// Deadline of the next frame.
    std::int64_t deadline_ns() const noexcept {
        return start_ + static_cast<std::int64_t>(index_) * period_;
    }
    std::int64_t period_ns() const noexcept { return period_; }

    /// Sleeps until the next frame's deadline, then advances to the frame
    /// after it. Returns how late the wake-up was (now - deadline, >= 0).
    std::int64_t wait_next() {
        const auto deadline = deadline_ns();
        clock_.sleep_until(deadline);
        ++index_;
        const auto late = clock_.now_ns() - deadline;
        return late > 0 ? late : 0;
    }

    /// Skips frames whose deadline is already more than one period in the
    /// past (after a stall); returns how many were skipped.
    std::uint64_t skip_overdue() noexcept {
        const auto now = clock_.now_ns();
        std::uint64_t skipped = 0;
        while (deadline_ns() + period_ < now) {
            ++index_;
            ++skipped;
        }
        return skipped;
    }

private:
    Clock& clock_;
    std::int64_t period_;
    std::int64_t start_;
    std::uint64_t index_ = 0;
};

}  // namespace loa::engine
