#include "gst_runner.h"

#include <algorithm>
#include <csignal>
#include <cstdio>

#include "process.h"

namespace loa::bench {

std::vector<std::string> gst_argv(const GstRunOptions& options, std::size_t max_arg_bytes) {
  std::vector<std::string> argv = {options.gst_launch,
                                   "-q",
                                   "audiotestsrc",
                                   "is-live=true",
                                   "wave=pink-noise",
                                   "volume=0.3",
                                   "samplesperbuffer=" + std::to_string(48 * options.ptime_ms),
                                   "!",
                                   "audio/x-raw,rate=48000,channels=1",
                                   "!",
                                   "opusenc",
                                   "bitrate=64000",
                                   "frame-size=" + std::to_string(options.ptime_ms),
                                   "!",
                                   "rtpopuspay",
                                   "!",
                                   "tee",
                                   "name=t"};
  const std::size_t n = options.destinations.size();
  const unsigned threads = std::max(1U, options.threads);
  for (unsigned t = 0; t < threads; ++t) {
    const std::size_t begin = n * t / threads;
    const std::size_t end = n * (t + 1) / threads;
    std::vector<std::string> chunks;
    std::string clients = "clients=";
    for (std::size_t i = begin; i < end; ++i) {
      const std::string c = to_string(options.destinations[i]);
      if (clients.size() + c.size() + 1 > max_arg_bytes) {
        chunks.push_back(clients);
        clients = "clients=";
      }
      if (clients.size() > 8) {
        clients += ",";
      }
      clients += c;
    }
    chunks.push_back(clients);
    argv.insert(argv.end(), {"t.", "!", "queue", "!"});
    auto add_sink = [&](const std::string& c) {
      argv.insert(argv.end(), {"multiudpsink", c, "sync=false", "async=false"});
    };
    if (chunks.size() == 1) {
      add_sink(chunks[0]);
      continue;
    }
    // One streaming thread per queue: the sinks of this slice run in turn.
    const std::string name = "s" + std::to_string(t);
    argv.insert(argv.end(), {"tee", "name=" + name});
    for (const auto& c : chunks) {
      argv.insert(argv.end(), {name + ".", "!"});
      add_sink(c);
    }
  }
  return argv;
}

GstRun run_gstreamer(const GstRunOptions& options, const Wire& wire) {
  GstRun run;
  const auto argv = gst_argv(options);
  for (const auto& a : argv) {
    if (a == "multiudpsink") {
      ++run.sinks;
    }
  }
  const std::string log = options.workdir + "/gst-" + std::to_string(options.destinations.size()) + ".log";
  std::remove(log.c_str());
  const unsigned frames = options.seconds * 1000 / options.ptime_ms;
  const std::uint64_t baseline = wire.packets_out();
  try {
    auto child = ChildProcess::spawn(argv, log);
    run.window = measure_window(child, wire, baseline, 25, frames, options.ptime_ms, std::chrono::seconds(30));
    const ExitInfo done = child.stop(SIGINT, std::chrono::seconds(5));
    run.cpu_total_s = done.cpu_s();
    if (!run.window.ok) {
      run.error = "gst-launch " + run.window.error + " (" + done.describe() + "): " + tail_file(log, 800);
      return run;
    }
  } catch (const std::exception& e) {
    run.error = e.what();
    return run;
  }
  run.ok = true;
  return run;
}

}  // namespace loa::bench
