// `loa-bench preempt`'s parts shared by its files (preempt.cpp: the run;
// preempt_setup.cpp: speakers, config, clip, counters; preempt_report.cpp).
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "engine_control.h"
#include "process.h"
#include "wire.h"

namespace loa::bench::preempt {

using Clock = std::chrono::steady_clock;

const char* const kProvince = "prov";
const char* const kDistrict = "prov.d";
const char* const kSpeakerCommune = "prov.d.spk";

struct PreemptOptions {
  std::size_t clusters = 10000;
  std::size_t speakers = 50;
  unsigned rounds = 5;
  unsigned seconds = 5;  // per round: how long to wait for every switch and confirmation
  unsigned poll_ms = 10;
  int speaker_block_ms = 10;
  bool json = false;
  bool no_wire = false;
  std::string bin_dir;
  bool keep_workdir = false;
};

struct SpeakerProc {
  std::string id;
  std::string log;
  std::string switch_log;
  std::uint16_t port = 0;
  ChildProcess proc;
};

struct Switch {
  std::uint32_t ssrc = 0;
  std::int64_t mono_ns = 0;
};

// The switches a speaker logged (--switch-log): SSRC and CLOCK_MONOTONIC ns.
std::vector<Switch> read_switches(const std::string& path);

// The first switch to `ssrc` at or after `from_ns`.
std::optional<std::int64_t> switched_to(const std::vector<Switch>& log, std::uint32_t ssrc, std::int64_t from_ns);

// The port a speaker's log says it listens on; nullopt until it says so.
std::optional<std::uint16_t> listening_port(const std::string& log);

// Polls `pred` every 20 ms until it holds (true) or `limit` has passed (false).
template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit) {
  const auto end = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// Where the program `name` is: in opt.bin_dir (a build tree's apps/<name>/<name>
// or <bin_dir>/<name>), or `name` alone (PATH) when bin_dir is empty.
std::string bin(const PreemptOptions& o, const std::string& name);

// Starts opt.speakers loa-speaker processes on loopback, each reporting to the
// engine at 127.0.0.1:`engine_port`, and waits for each to say its port.
// They go into `speakers` as they start (so that the caller stops them even
// when this throws); throws std::runtime_error when one does not start.
void start_speakers(const PreemptOptions& opt, const std::string& workdir, std::uint16_t engine_port,
                    std::vector<SpeakerProc>& speakers);

// The zones and every cluster go in as the config's seed (imported once, in
// one transaction, into the empty database of a fresh state directory).
void write_config(const std::string& path, const std::string& state_dir, const std::string& listen,
                  const std::string& ingest, std::span<const sockaddr_in> wire_dests,
                  const std::vector<SpeakerProc>& speakers);

// A 3 s 660 Hz tone as the alert's message (the alert plays the built-in
// chime first, then this).
std::uint64_t upload_clip(engine::ControlClient& c, const std::string& path);

struct FanoutCount {
  std::uint64_t datagrams = 0;
  std::uint64_t errors = 0;
};

// The engine's fan-out counters, from GetStatus.
FanoutCount fanout_count(engine::ControlClient& c);

// TX counters of a device from /proc/net/dev (per network namespace).
struct DevCounters {
  std::uint64_t packets = 0;
  std::uint64_t errors = 0;  // errs + drop
};

DevCounters dev_counters(const std::string& dev);

struct Round {
  std::uint64_t alert_id = 0;
  std::uint32_t alert_ssrc = 0;
  std::uint32_t targeted = 0;
  double raise_call_ms = 0.0;
  bool captured = false;
  std::size_t switched = 0;
  std::vector<double> first_packet_ms;
  std::vector<double> first_audio_ms;
  std::vector<double> confirm_ms;
  std::uint64_t capture_packets = 0;
  std::uint64_t capture_drops = 0;
  std::uint64_t capture_other_ssrc = 0;
  std::uint64_t wire_tx_outer = 0;  // device TX from before the first to after the last engine count
  std::uint64_t wire_tx_inner = 0;  // device TX from after the first to before the last engine count
  std::uint64_t wire_tx_errors = 0;
  std::uint64_t engine_datagrams = 0;
  std::uint64_t send_errors = 0;
  std::optional<double> return_ms;  // cancel -> every speaker back on the schedule
};

// Prints the run's figures (one JSON object with opt.json, else a table),
// pooled over the rounds, with the pass/fail of each target.
void report_preempt(const PreemptOptions& opt, const Wire& wire, std::size_t n_wire, std::uint32_t hearing,
                    const std::vector<Round>& rounds, const std::string& load_before, const std::string& load_after,
                    const std::string& notes, const std::string& error);

}  // namespace loa::bench::preempt
