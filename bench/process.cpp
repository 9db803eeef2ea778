#include "process.h"

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace loa::bench {

namespace {

double tv_s(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
}

std::optional<double> schedstat_cpu_s(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return std::nullopt;
  }
  double total = 0.0;
  bool any = false;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') {
      continue;
    }
    std::ifstream f(dir + "/" + e->d_name + "/schedstat");
    unsigned long long ns = 0;
    if (f >> ns) {
      total += static_cast<double>(ns) * 1e-9;
      any = true;
    }
  }
  closedir(d);
  if (!any) {
    return std::nullopt;
  }
  return total;
}

std::optional<double> stat_cpu_s(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) {
    return std::nullopt;
  }
  const auto close = line.rfind(')');
  if (close == std::string::npos) {
    return std::nullopt;
  }
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  // Fields after the command: state(3) ... utime(14) stime(15).
  for (int i = 3; i <= 15; ++i) {
    if (!(rest >> field)) {
      return std::nullopt;
    }
    if (i == 14) {
      utime = std::stoull(field);
    } else if (i == 15) {
      stime = std::stoull(field);
    }
  }
  const long tick = sysconf(_SC_CLK_TCK);
  return static_cast<double>(utime + stime) / static_cast<double>(tick > 0 ? tick : 100);
}

}  // namespace

bool ExitInfo::exited_ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

double ExitInfo::cpu_s() const { return tv_s(usage.ru_utime) + tv_s(usage.ru_stime); }

std::string ExitInfo::describe() const {
  if (WIFEXITED(status)) {
    return "exit status " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  }
  return "status " + std::to_string(status);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), exit_(std::move(other.exit_)) {
  other.pid_ = -1;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !exit_) {
      stop(SIGKILL, std::chrono::milliseconds(2000));
    }
    pid_ = other.pid_;
    exit_ = std::move(other.exit_);
    other.pid_ = -1;
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !exit_) {
    stop(SIGKILL, std::chrono::milliseconds(2000));
  }
}

ChildProcess ChildProcess::spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  if (argv.empty()) {
    throw std::runtime_error("spawn: empty argv");
  }
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  return ChildProcess(pid);
}

bool ChildProcess::running() {
  if (pid_ <= 0 || exit_) {
    return false;
  }
  return !wait_for(std::chrono::milliseconds(0)).has_value();
}

std::optional<ExitInfo> ChildProcess::wait_for(std::chrono::milliseconds timeout) {
  if (exit_) {
    return exit_;
  }
  if (pid_ <= 0) {
    return std::nullopt;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    ExitInfo info;
    const pid_t r = wait4(pid_, &info.status, WNOHANG, &info.usage);
    if (r == pid_) {
      exit_ = info;
      return exit_;
    }
    if (r < 0 && errno != EINTR) {
      exit_ = info;
      return exit_;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return std::nullopt;
    }
    // apps-level harness code: polling a child's exit is the bench's own business.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

ExitInfo ChildProcess::stop(int sig, std::chrono::milliseconds grace) {
  if (auto done = wait_for(std::chrono::milliseconds(0))) {
    return *done;
  }
  kill(pid_, sig);
  if (auto done = wait_for(grace)) {
    return *done;
  }
  kill(pid_, SIGKILL);
  for (;;) {
    if (auto done = wait_for(std::chrono::milliseconds(5000))) {
      return *done;
    }
  }
}

std::optional<double> ChildProcess::cpu_s() const {
  if (pid_ <= 0 || exit_) {
    return std::nullopt;
  }
  if (auto s = schedstat_cpu_s(pid_)) {
    return s;
  }
  return stat_cpu_s(pid_);
}

bool run_command(const std::vector<std::string>& argv, const std::string& log_path) {
  try {
    auto child = ChildProcess::spawn(argv, log_path);
    auto done = child.wait_for(std::chrono::seconds(30));
    if (!done) {
      child.stop(SIGKILL, std::chrono::milliseconds(1000));
      return false;
    }
    return done->exited_ok();
  } catch (const std::exception&) {
    return false;
  }
}

std::string tail_file(const std::string& path, std::size_t max_bytes) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  if (s.size() > max_bytes) {
    s = "..." + s.substr(s.size() - max_bytes);
  }
  return s;
}

}  // namespace loa::bench
