#include "raw_sender.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

namespace loa::bench {

namespace {

constexpr std::int64_t kNsPerMs = 1'000'000;

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

timespec to_timespec(std::int64_t ns) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  return ts;
}

double thread_cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

struct ThreadOut {
  std::uint64_t sent = 0;
  std::uint64_t errors = 0;
  double cpu_s = 0.0;
  std::string error;
};

void sender_thread(const RawFanoutConfig& cfg, std::span<const sockaddr_in> slice, std::int64_t start_ns,
                   std::span<std::int64_t> spread_out, unsigned thread_index, ThreadOut& out) {
  const double cpu0 = thread_cpu_s();
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    out.error = std::string("socket: ") + std::strerror(errno);
    return;
  }
  const int sndbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

  std::vector<std::uint8_t> packet(12 + cfg.payload_bytes, 0);
  packet[0] = 0x80;  // V=2
  packet[1] = 111;   // dynamic PT, Opus
  const std::uint32_t ssrc = 0x4c4f4100U + thread_index;
  for (int i = 0; i < 4; ++i) {
    packet[static_cast<std::size_t>(8 + i)] = static_cast<std::uint8_t>(ssrc >> (24 - 8 * i));
  }
  for (std::size_t i = 12; i < packet.size(); ++i) {
    packet[i] = static_cast<std::uint8_t>(i * 37U + 11U);
  }
  iovec iov{packet.data(), packet.size()};
  std::vector<mmsghdr> msgs(slice.size());
  for (std::size_t i = 0; i < slice.size(); ++i) {
    msgs[i] = mmsghdr{};
    msgs[i].msg_hdr.msg_name = const_cast<sockaddr_in*>(&slice[i]);
    msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
    msgs[i].msg_hdr.msg_iov = &iov;
    msgs[i].msg_hdr.msg_iovlen = 1;
  }

  const std::int64_t ptime_ns = static_cast<std::int64_t>(cfg.ptime_ms) * kNsPerMs;
  const std::size_t batch = std::clamp<std::size_t>(cfg.batch, 1, 1024);
  for (unsigned f = 0; f < cfg.frames; ++f) {
    const std::int64_t deadline = start_ns + static_cast<std::int64_t>(f) * ptime_ns;
    const timespec ts = to_timespec(deadline);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
    const auto seq = static_cast<std::uint16_t>(f);
    const std::uint32_t rtp_ts = f * 48U * cfg.ptime_ms;
    packet[2] = static_cast<std::uint8_t>(seq >> 8);
    packet[3] = static_cast<std::uint8_t>(seq);
    for (int i = 0; i < 4; ++i) {
      packet[static_cast<std::size_t>(4 + i)] = static_cast<std::uint8_t>(rtp_ts >> (24 - 8 * i));
    }
    std::size_t next = 0;
    while (next < msgs.size()) {
      const std::size_t want = std::min(batch, msgs.size() - next);
      const int n = sendmmsg(fd, msgs.data() + next, static_cast<unsigned>(want), 0);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        ++out.errors;  // the first message of the batch failed: drop it and go on
        ++next;
        continue;
      }
      out.sent += static_cast<std::uint64_t>(n);
      next += static_cast<std::size_t>(n);
    }
    spread_out[f] = now_ns() - deadline;
  }
  close(fd);
  out.cpu_s = thread_cpu_s() - cpu0;
}

}  // namespace

RawFanoutResult run_raw_fanout(const RawFanoutConfig& config) {
  RawFanoutResult result;
  const unsigned threads = std::max(1U, config.threads);
  const std::size_t n = config.destinations.size();
  std::vector<std::vector<std::int64_t>> spreads(threads, std::vector<std::int64_t>(config.frames, 0));
  std::vector<ThreadOut> outs(threads);
  // Threads set up their sockets and arrays before the first deadline.
  const std::int64_t start = now_ns() + 100 * kNsPerMs;
  {
    std::vector<std::jthread> pool;
    for (unsigned t = 0; t < threads; ++t) {
      const std::size_t begin = n * t / threads;
      const std::size_t end = n * (t + 1) / threads;
      pool.emplace_back(sender_thread, std::cref(config), config.destinations.subspan(begin, end - begin), start,
                        std::span<std::int64_t>(spreads[t]), t, std::ref(outs[t]));
    }
  }
  result.spread_ns.assign(config.frames, 0);
  for (unsigned t = 0; t < threads; ++t) {
    if (!outs[t].error.empty()) {
      result.error = outs[t].error;
    }
    result.datagrams_sent += outs[t].sent;
    result.send_errors += outs[t].errors;
    result.cpu_s += outs[t].cpu_s;
    for (unsigned f = 0; f < config.frames; ++f) {
      result.spread_ns[f] = std::max(result.spread_ns[f], spreads[t][f]);
    }
  }
  return result;
}

}  // namespace loa::bench
