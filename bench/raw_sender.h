// The limit: a minimal sendmmsg fan-out loop with no codec and no engine.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace loa::bench {

struct RawFanoutConfig {
  std::span<const sockaddr_in> destinations;
  unsigned threads = 1;
  unsigned frames = 500;          // frames to send, one per ptime
  unsigned ptime_ms = 20;
  std::size_t payload_bytes = 160;  // 64 kb/s x 20 ms
  std::size_t batch = 1024;         // messages per sendmmsg call (<= UIO_MAXIOV)
};

struct RawFanoutResult {
  std::uint64_t datagrams_sent = 0;
  std::uint64_t send_errors = 0;
  double cpu_s = 0.0;  // sum of RUSAGE_THREAD (user + sys) of the sender threads
  // Per frame: deadline -> return of the sendmmsg that carried the last
  // destination's packet, over all threads (ns).
  std::vector<std::int64_t> spread_ns;
  std::string error;  // non-empty when the run could not start
};

// Runs T threads, each owning a contiguous slice of the destinations with a
// prebuilt mmsghdr array and its own UDP socket, on absolute CLOCK_MONOTONIC
// deadlines every ptime. Every destination gets the same RTP packet
// (12-byte header + payload); sequence number and timestamp advance per frame.
// Blocks for frames x ptime. Thread: caller's; starts and joins its own threads.
[[nodiscard]] RawFanoutResult run_raw_fanout(const RawFanoutConfig& config);

}  // namespace loa::bench
