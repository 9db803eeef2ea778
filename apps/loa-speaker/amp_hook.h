#pragma once
// The amplifier hook of a speaker cluster: switches the amplifier on or off
// by running a program (`PROG on` / `PROG off`, no shell) and/or writing "1" /
// "0" to a file such as a GPIO line's /sys/class/gpio/gpioN/value.
//
// Requests never block: request() stores the wanted state in an atomic and
// wakes a worker thread that owns all blocking work (posix_spawn, waiting for
// the program, the file write). Requests made while the worker is busy are
// coalesced: only the latest state is applied, and a state equal to the one
// last applied is not applied again. With nothing configured no thread runs
// and requests are no-ops.
//
// Threads: request() from any thread (lock-free, never allocates or blocks);
// wait_applied() and the destructor from a thread that may block (never the
// io thread of a running speaker); counters from any thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace loa::speaker {

struct AmpHookSettings {
    std::string command;    // program run as `command on|off` (PATH lookup); empty = none
    std::string gpio_path;  // file written "1" / "0"; empty = none
    /// A program still running after this long is killed (counted as failed).
    std::chrono::milliseconds command_timeout{10000};
};

class AmpHook {
public:
    /// Starts the worker thread if a command or a GPIO path is set.
    explicit AmpHook(AmpHookSettings settings);
    /// Applies the last request (if not yet applied), then stops the worker.
    ~AmpHook();
    AmpHook(const AmpHook&) = delete;
    AmpHook& operator=(const AmpHook&) = delete;

    bool configured() const noexcept { return configured_; }

    /// Any thread; never blocks. Asks for the amplifier to be on or off.
    void request(bool on) noexcept;

    /// Blocks until every request made before the call has been handled
    /// (applied, or found equal to the applied state), at most `timeout`.
    /// True when done; also true at once when nothing is configured.
    bool wait_applied(std::chrono::milliseconds timeout);

    /// State changes carried out (program run and/or file written).
    std::uint64_t applied() const noexcept { return applied_.load(std::memory_order_relaxed); }
    /// State changes whose program failed (could not start, non-zero exit,
    /// killed after the timeout) or whose file write failed.
    std::uint64_t failures() const noexcept { return failures_.load(std::memory_order_relaxed); }

private:
    void run() noexcept;
    bool apply(bool on) noexcept;
    bool run_command(bool on) noexcept;
    bool write_gpio(bool on) noexcept;

    AmpHookSettings settings_;
    bool configured_ = false;
    std::atomic<bool> wanted_{false};
    std::atomic<std::uint64_t> requested_{0};  // generation: bumped by every request()
    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> applied_{0};
    std::atomic<std::uint64_t> failures_{0};

    std::mutex mu_;                  // guards handled_ (worker <-> wait_applied only)
    std::condition_variable cv_;
    std::uint64_t handled_ = 0;      // highest generation the worker has handled

    std::thread worker_;
};

}  // namespace loa::speaker
