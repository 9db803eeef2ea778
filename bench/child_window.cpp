#include "child_window.h"

#include <algorithm>
#include <cmath>
#include <vector>
#include <optional>
#include <thread>

namespace loa::bench {


WindowSample measure_window(ChildProcess& child, const Wire& wire, std::uint64_t baseline,
                            unsigned warmup_frames, unsigned frames, unsigned ptime_ms,
                            std::chrono::milliseconds first_packet_timeout) {
  using clock = std::chrono::steady_clock;
  WindowSample out;
  const auto give_up = clock::now() + first_packet_timeout;
  clock::time_point first;
  for (;;) {
    if (wire.packets_out() > baseline) {
      first = clock::now();
      break;
    }
    if (!child.running()) {
      out.error = "exited before sending";
      return out;
    }
    if (clock::now() > give_up) {
      out.error = "sent nothing within " + std::to_string(first_packet_timeout.count()) + " ms";
      return out;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  const auto ptime = std::chrono::milliseconds(ptime_ms);
  const auto half = std::chrono::microseconds(ptime_ms * 500);
  const auto t_a = first + ptime * warmup_frames + half;
  // One TX sample at the middle of every frame of the window; the rate that
  // leaves is the least-squares slope, so a frame caught half-sent at either
  // edge does not bias it, while a sender falling behind lowers it.
  std::vector<double> tx(frames + 1U, 0.0);
  std::optional<double> cpu_a;
  std::optional<double> cpu_b;
  clock::time_point at_a;
  clock::time_point at_b;
  for (unsigned j = 0; j <= frames; ++j) {
    std::this_thread::sleep_until(t_a + ptime * j);
    if (j == 0) {
      cpu_a = child.cpu_s();
      at_a = clock::now();
    }
    tx[j] = static_cast<double>(wire.packets_out());
    if (j == frames) {
      cpu_b = child.cpu_s();
      at_b = clock::now();
    }
  }
  const double n = static_cast<double>(frames + 1U);
  const double mean_x = static_cast<double>(frames) / 2.0;
  double mean_y = 0.0;
  for (const double y : tx) {
    mean_y += y / n;
  }
  double sxy = 0.0;
  double sxx = 0.0;
  for (unsigned j = 0; j <= frames; ++j) {
    const double dx = static_cast<double>(j) - mean_x;
    sxy += dx * (tx[j] - mean_y);
    sxx += dx * dx;
  }
  const double slope = sxx > 0.0 ? sxy / sxx : 0.0;
  if (!cpu_a || !cpu_b || !child.running()) {
    out.error = "exited during the measurement window";
    return out;
  }
  out.ok = true;
  out.packets = static_cast<std::uint64_t>(std::llround(std::max(0.0, slope) * frames));
  out.packets_counted = static_cast<std::uint64_t>(tx[frames] - tx[0]);
  out.cpu_s = *cpu_b - *cpu_a;
  out.frames = frames;
  out.seconds = std::chrono::duration<double>(at_b - at_a).count();
  return out;
}

}  // namespace loa::bench
