#pragma once
// Time sources. Everything below apps/ takes time from an injected Clock so
// tests can run hours of audio in milliseconds.

#include <cstdint>

namespace loa::engine {

/// Monotonic nanoseconds plus a way to wait until a deadline.
/// Threads: any; implementations are thread-safe.
class Clock {
public:
    virtual ~Clock() = default;
    /// Monotonic time in nanoseconds (CLOCK_MONOTONIC for the real clock).
    virtual std::int64_t now_ns() const = 0;
    /// Wall-clock (Unix) time in nanoseconds, for RTCP NTP timestamps.
    virtual std::int64_t unix_ns() const = 0;
    /// Blocks until now_ns() >= deadline_ns (real clock: clock_nanosleep with
    /// TIMER_ABSTIME, so sleep jitter never accumulates).
    virtual void sleep_until(std::int64_t deadline_ns) = 0;
};

/// CLOCK_MONOTONIC / CLOCK_REALTIME.
class SystemClock final : public Clock {
public:
    std::int64_t now_ns() const override;
    std::int64_t unix_ns() const override;
    void sleep_until(std::int64_t deadline_ns) override;
};

/// A clock that moves only when told: sleep_until() jumps straight to the
/// deadline. Single-threaded use (tests).
class ManualClock final : public Clock {
public:
    explicit ManualClock(std::int64_t start_ns = 0, std::int64_t unix_offset_ns = 1'700'000'000'000'000'000)
        : now_(start_ns), unix_offset_(unix_offset_ns) {}
    std::int64_t now_ns() const override { return now_; }
    std::int64_t unix_ns() const override { return now_ + unix_offset_; }
    void sleep_until(std::int64_t deadline_ns) override {
        if (deadline_ns > now_) now_ = deadline_ns;
    }
    void advance(std::int64_t ns) { now_ += ns; }

private:
    std::int64_t now_;
    std::int64_t unix_offset_;
};

}  // namespace loa::engine
