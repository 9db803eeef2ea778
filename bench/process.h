// Child processes of the bench: spawn with output to a log file, wait with a
// deadline, read CPU time while running. Only processes started here are ever
// signalled, always by their own pid.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace loa::bench {

struct ExitInfo {
  int status = 0;          // as from wait4
  rusage usage{};          // the child's own rusage (all its threads)
  [[nodiscard]] bool exited_ok() const;
  [[nodiscard]] double cpu_s() const;  // user + system
  [[nodiscard]] std::string describe() const;
};

class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  // Kills (SIGKILL) and reaps a child still running.
  ~ChildProcess();

  // Starts argv[0] (looked up in PATH) with stdin from /dev/null and
  // stdout + stderr appended to `log_path`. Throws std::runtime_error.
  static ChildProcess spawn(const std::vector<std::string>& argv, const std::string& log_path);

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] bool running();

  // Waits up to `timeout` for the child to exit; nullopt if it did not.
  std::optional<ExitInfo> wait_for(std::chrono::milliseconds timeout);
  // Sends `sig`, waits up to `grace`, then SIGKILLs; always reaps.
  ExitInfo stop(int sig, std::chrono::milliseconds grace);

  // CPU time (user + system, all threads) consumed so far, from
  // /proc/<pid>/task/*/schedstat (ns) or /proc/<pid>/stat (ticks).
  [[nodiscard]] std::optional<double> cpu_s() const;

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  std::optional<ExitInfo> exit_;
};

// Runs argv to completion (up to 30 s) with output to `log_path`; returns true
// on exit status 0.
bool run_command(const std::vector<std::string>& argv, const std::string& log_path);

// Last `max_bytes` of a file, for error messages.
std::string tail_file(const std::string& path, std::size_t max_bytes = 2000);

}  // namespace loa::bench
