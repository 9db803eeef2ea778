#include "loa-speaker/amp_hook.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

extern char** environ;

namespace loa::speaker {

AmpHook::AmpHook(AmpHookSettings settings)
    : settings_(std::move(settings)), configured_(!settings_.command.empty() || !settings_.gpio_path.empty()) {
    if (configured_) worker_ = std::thread([this] { run(); });
}

AmpHook::~AmpHook() {
    if (!worker_.joinable()) return;
    stopping_.store(true);
    requested_.fetch_add(1);
    requested_.notify_one();
    worker_.join();
}

void AmpHook::request(bool on) noexcept {
    if (!configured_) return;
    wanted_.store(on);
    // The generation is bumped after the state is stored: a worker that sees
    // the new generation also sees this state (or a later one).
    requested_.fetch_add(1);
    requested_.notify_one();
}

bool AmpHook::wait_applied(std::chrono::milliseconds timeout) {
    if (!configured_) return true;
    const std::uint64_t target = requested_.load();
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return handled_ >= target; });
}

void AmpHook::run() noexcept {
    std::uint64_t seen = 0;
    bool known = false;  // the amplifier's state is known (the last change succeeded)
    bool state = false;
    for (;;) {
        requested_.wait(seen);
        const std::uint64_t generation = requested_.load();
        const bool stop = stopping_.load();
        seen = generation;
        const bool want = wanted_.load();
        if (!known || want != state) {
            const bool ok = apply(want);
            applied_.fetch_add(1, std::memory_order_relaxed);
            if (!ok) failures_.fetch_add(1, std::memory_order_relaxed);
            known = ok;  // after a failure the next request tries again, even for the same state
            state = want;
        }
        {
            std::lock_guard lock(mu_);
            handled_ = generation;
        }
        cv_.notify_all();
        if (stop) return;
    }
}

bool AmpHook::apply(bool on) noexcept {
    bool ok = true;
    if (!settings_.gpio_path.empty()) ok = write_gpio(on) && ok;
    if (!settings_.command.empty()) ok = run_command(on) && ok;
    return ok;
}

bool AmpHook::write_gpio(bool on) noexcept {
    // No O_CREAT: a mistyped path must fail, not leave a stray file.
    const int fd = ::open(settings_.gpio_path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) {
        std::fprintf(stderr, "loa-speaker: amplifier %s: cannot open %s: %s\n", on ? "on" : "off",
                     settings_.gpio_path.c_str(), std::strerror(errno));
        return false;
    }
    const char value = on ? '1' : '0';
    ssize_t n = -1;
    do {
        n = ::write(fd, &value, 1);
    } while (n < 0 && errno == EINTR);
    const int write_errno = errno;
    const bool closed = ::close(fd) == 0;
    if (n != 1 || !closed) {
        std::fprintf(stderr, "loa-speaker: amplifier %s: writing %s failed: %s\n", on ? "on" : "off",
                     settings_.gpio_path.c_str(), std::strerror(n != 1 ? write_errno : errno));
        return false;
    }
    return true;
}

bool AmpHook::run_command(bool on) noexcept {
    char arg_on[] = "on";
    char arg_off[] = "off";
    char* const argv[] = {settings_.command.data(), on ? arg_on : arg_off, nullptr};

    // The program gets /dev/null as stdin, the speaker's stderr as stdout and
    // stderr (stdout may be read by whoever started loa-speaker), and none of
    // the speaker's other descriptors (sockets, files).
    posix_spawn_file_actions_t actions;
    if (posix_spawn_file_actions_init(&actions) != 0) return false;
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, 2, 1);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    pid_t pid = -1;
    const int rc = posix_spawnp(&pid, settings_.command.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        std::fprintf(stderr, "loa-speaker: amplifier %s: cannot run %s: %s\n", on ? "on" : "off",
                     settings_.command.c_str(), std::strerror(rc));
        return false;
    }

    // Wait for it, at most the timeout (a pidfd becomes readable when the
    // child exits); a program that hangs is killed.
    bool timed_out = false;
    // (syscall: the glibc 2.36 header declares pidfd_open without C linkage)
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd >= 0) {
        pollfd p{pidfd, POLLIN, 0};
        int r = 0;
        do {
            r = ::poll(&p, 1, static_cast<int>(settings_.command_timeout.count()));
        } while (r < 0 && errno == EINTR);
        if (r == 0) {
            timed_out = true;
            ::kill(pid, SIGKILL);
        }
        ::close(pidfd);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out) {
        std::fprintf(stderr, "loa-speaker: amplifier %s: %s still running after %lld ms, killed\n", on ? "on" : "off",
                     settings_.command.c_str(), static_cast<long long>(settings_.command_timeout.count()));
        return false;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "loa-speaker: amplifier %s: %s failed (%s %d)\n", on ? "on" : "off",
                     settings_.command.c_str(), WIFEXITED(status) ? "exit status" : "signal",
                     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return false;
    }
    return true;
}

}  // namespace loa::speaker
