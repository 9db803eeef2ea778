// Control-socket helpers for the bench (see engine_control.h).
#include "engine_control.h"

#include <cstdio>
#include <thread>

namespace loa::bench {

namespace pb = loa::control::v1;
using Clock = std::chrono::steady_clock;

std::string cluster_id(std::size_t i) {
  char b[32];
  std::snprintf(b, sizeof b, "c-%06zu", i);
  return b;
}

std::unique_ptr<engine::ControlClient> connect_when_up(const std::filesystem::path& socket, ChildProcess& child,
                                                       const std::string& log, std::chrono::seconds timeout) {
  const auto give_up = Clock::now() + timeout;
  for (;;) {
    if (std::filesystem::exists(socket)) {
      try {
        return std::make_unique<engine::ControlClient>(socket);
      } catch (const std::exception&) {
      }
    }
    if (!child.running()) {
      throw std::runtime_error("loa-engine exited before its control socket was up: " + tail_file(log, 800));
    }
    if (Clock::now() > give_up) {
      throw std::runtime_error("control socket " + socket.string() + " not up after " +
                               std::to_string(timeout.count()) + " s: " + tail_file(log, 800));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void expect_ok(const pb::Response& r, const std::string& what) {
  if (r.code() != pb::OK) {
    throw std::runtime_error(what + ": " + pb::StatusCode_Name(r.code()) + " " + r.message());
  }
}

}  // namespace loa::bench
