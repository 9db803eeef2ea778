#pragma once
// Test helper: runs a program as a child process with its stdout captured
// (and stderr to a file), reads lines with a deadline, signals it and waits
// for it with a deadline. Used by the multi-process integration tests.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace loa::test {

class Process {
public:
    /// Starts argv[0] with the given arguments; stderr goes to `stderr_file`
    /// (or is inherited when empty).
    explicit Process(const std::vector<std::string>& argv, const std::string& stderr_file = {}) {
        int out[2];
        if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        if (!stderr_file.empty()) {
            posix_spawn_file_actions_addopen(&fa, 2, stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        }
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        const int rc = ::posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(out[1]);
        if (rc != 0) {
            ::close(out[0]);
            throw std::runtime_error("cannot start " + argv[0]);
        }
        out_ = out[0];
        pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
        if (pidfd_ < 0) throw std::runtime_error("pidfd_open");
    }

    ~Process() {
        if (pid_ > 0 && !exited_) {
            ::kill(pid_, SIGKILL);
            int st = 0;
            ::waitpid(pid_, &st, 0);
        }
        if (out_ >= 0) ::close(out_);
        if (pidfd_ >= 0) ::close(pidfd_);
    }
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const { return pid_; }

    /// Next stdout line (without newline), waiting up to `timeout_ms`;
    /// nullopt on timeout or end of output.
    std::optional<std::string> read_line(int timeout_ms = 10000) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            const auto nl = buffer_.find('\n');
            if (nl != std::string::npos) {
                std::string line = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                return line;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  deadline - std::chrono::steady_clock::now())
                                  .count();
            if (left <= 0) return std::nullopt;
            pollfd p{out_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left)) <= 0) return std::nullopt;
            char buf[4096];
            const auto n = ::read(out_, buf, sizeof buf);
            if (n <= 0) {
                if (buffer_.empty()) return std::nullopt;
                std::string line;
                line.swap(buffer_);
                return line;
            }
            buffer_.append(buf, static_cast<std::size_t>(n));
        }
    }

    /// Reads stdout until it closes (up to `timeout_ms`) and returns it all.
    std::string read_all(int timeout_ms = 30000) {
        std::string all;
        while (auto line = read_line(timeout_ms)) all += *line + "\n";
        return all;
    }

    void signal(int sig) {
        if (!exited_) ::kill(pid_, sig);
    }

    /// Waits for exit up to `timeout_ms`; returns the exit status, or -signal
    /// if it was killed by a signal, or nullopt on timeout.
    std::optional<int> wait(int timeout_ms = 30000) {
        // Reaped already: the same answer again (waitpid would fail now).
        if (exited_) return exit_status_;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            int st = 0;
            const auto r = ::waitpid(pid_, &st, WNOHANG);
            if (r == pid_) {
                exited_ = true;
                exit_status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
                return exit_status_;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  deadline - std::chrono::steady_clock::now())
                                  .count();
            if (left <= 0) return std::nullopt;
            // The pidfd becomes readable when the child exits; keep draining
            // its stdout meanwhile so it never blocks on a full pipe.
            pollfd p[2] = {{pidfd_, POLLIN, 0}, {out_eof_ ? -1 : out_, POLLIN, 0}};
            if (::poll(p, 2, static_cast<int>(left)) > 0 && (p[1].revents & (POLLIN | POLLHUP)) != 0) {
                char buf[4096];
                const auto n = ::read(out_, buf, sizeof buf);
                if (n > 0) {
                    buffer_.append(buf, static_cast<std::size_t>(n));
                } else {
                    out_eof_ = true;
                }
            }
        }
    }

private:
    pid_t pid_ = -1;
    int out_ = -1;
    int pidfd_ = -1;
    bool out_eof_ = false;
    bool exited_ = false;
    int exit_status_ = 0;  // once exited_
    std::string buffer_;
};

/// Runs a shell command to completion; returns its exit status.
inline int run_shell(const std::string& cmd) {
    const int st = std::system(cmd.c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace loa::test
