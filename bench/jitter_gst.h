// `loa-bench jitter`'s GStreamer contender: gst-launch writes the decoded audio
// into a FIFO through a synchronised filesink (it writes each buffer when the
// pipeline clock reaches its time: a zero-buffer sink); a thread here timestamps what comes out.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "tone_track.h"

namespace loa::bench::jitter {

// The gst-launch command line: RTP/Opus from 127.0.0.1:`port` through an
// rtpjitterbuffer of `latency_ms` into `fifo` as 48 kHz mono float.
std::vector<std::string> gst_jitter_argv(const std::string& gst_launch, int latency_ms, std::uint16_t port,
                                         const std::string& fifo);

// The command line as one string, for messages.
std::string join_argv(const std::vector<std::string>& argv);

// Reads the FIFO on its own thread, stamping each read with CLOCK_MONOTONIC.
class FifoReader {
 public:
  explicit FifoReader(std::string path);
  FifoReader(const FifoReader&) = delete;
  FifoReader& operator=(const FifoReader&) = delete;
  ~FifoReader();

  // After the writer exited: makes sure the thread ends and joins it.
  void finish();
  const TimedPcm& pcm() const { return out_; }

 private:
  void run();

  std::string path_;
  TimedPcm out_;
  std::atomic<bool> opened_{false};
  std::thread thread_;
};

}  // namespace loa::bench::jitter
