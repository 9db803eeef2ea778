#include "loa/engine/clock.h"

#include <cerrno>
#include <ctime>

namespace loa::engine {
namespace {
std::int64_t read_clock(clockid_t id) {
    timespec ts{};
    clock_gettime(id, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
}  // namespace

std::int64_t SystemClock::now_ns() const { return read_clock(CLOCK_MONOTONIC); }
std::int64_t SystemClock::unix_ns() const { return read_clock(CLOCK_REALTIME); }

void SystemClock::sleep_until(std::int64_t deadline_ns) {
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(deadline_ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(deadline_ns % 1'000'000'000);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
}

}  // namespace loa::engine
