// `loa-bench preempt`: the run (wire, speakers, engine, the schedule, then
// each round: raise, capture, poll, cancel) and the subcommand. Capture, set-up
// and report are in preempt_capture.cpp, preempt_setup.cpp and preempt_report.cpp.
#include "preempt.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench_util.h"
#include "preempt_capture.h"
#include "preempt_internal.h"
#include "report.h"
#include "wire.h"

namespace loa::bench {

namespace preempt {

namespace {

namespace pb = loa::control::v1;

constexpr std::size_t kNoWireDestinations = 1000;  // loopback: the receive side shares the sending CPUs

void progress(const std::string& line) { std::cerr << "[loa-bench] preempt: " << line << std::endl; }

std::int64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

double ms_between(std::int64_t from_ns, std::int64_t to_ns) { return static_cast<double>(to_ns - from_ns) / 1e6; }

std::string default_bin_dir() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  return (self.parent_path().parent_path() / "apps").string();
}

int run_preempt(PreemptOptions opt) {
  if (opt.bin_dir.empty()) opt.bin_dir = default_bin_dir();
  if (opt.speakers == 0) throw std::invalid_argument("--speakers must be at least 1");
  // The namespace must be entered while the process is single-threaded;
  // every child (engine, speakers) is started inside it.
  Wire wire = enter_bench_wire(!opt.no_wire);
  if (opt.no_wire && wire.private_netns) wire.note = "--no-wire: " + wire.note;
  const std::size_t n_wire =
      wire.kind == WireKind::veth ? opt.clusters : std::min(opt.clusters, kNoWireDestinations);
  progress(std::string("wire: ") + wire.name() + " (" + wire.note + ")");
  if (n_wire != opt.clusters) {
    progress("WARNING: no veth wire; " + std::to_string(n_wire) + " loopback destinations instead of " +
             std::to_string(opt.clusters));
  }
  const std::string load_before = load_average();

  const std::string workdir = open_workdir("", "loa-bench-preempt");
  const std::string state_dir = workdir + "/state";
  const std::string engine_log = workdir + "/engine.log";
  const auto dests = wire.destinations(n_wire);
  std::unordered_map<std::uint64_t, std::uint32_t> index;
  index.reserve(dests.size() * 2);
  for (std::size_t i = 0; i < dests.size(); ++i) {
    index.emplace(dest_key(ntohl(dests[i].sin_addr.s_addr), ntohs(dests[i].sin_port)), static_cast<std::uint32_t>(i));
  }

  std::vector<SpeakerProc> speakers;
  std::optional<ChildProcess> engine_proc;
  std::vector<Round> rounds;
  std::string error;
  std::string notes;
  std::uint32_t hearing = 0;
  const std::uint16_t engine_port = wire.private_netns ? 5004 : free_udp_port();
  try {
    // Speakers first: their ports go into the seed.
    progress("starting " + std::to_string(opt.speakers) + " loa-speaker processes on loopback");
    start_speakers(opt, workdir, engine_port, speakers);

    const std::string config = workdir + "/engine.toml";
    const std::string listen = (wire.private_netns ? "0.0.0.0:" : "127.0.0.1:") + std::to_string(engine_port);
    write_config(config, state_dir, listen, "127.0.0.1:" + std::to_string(free_udp_port()), dests, speakers);
    progress("starting loa-engine: " + std::to_string(n_wire) + " wire clusters + " + std::to_string(opt.speakers) +
             " speakers seeded, state in " + state_dir);
    engine_proc = ChildProcess::spawn({bin(opt, "loa-engine"), "--config", config}, engine_log);
    const std::filesystem::path socket = std::filesystem::path(state_dir) / "control.sock";
    auto admin = connect_when_up(socket, *engine_proc, engine_log, std::chrono::seconds(60));

    // A viewer scoped to the speakers' commune: its GetAlertStatus walks 50
    // clusters, not the whole province (the poll stays cheap for the engine).
    pb::CreateOperatorRequest op;
    op.set_name("bench-viewer");
    op.set_role(pb::VIEWER);
    op.set_zone_id(kSpeakerCommune);
    op.set_max_level(pb::EMERGENCY);
    const auto viewer_token = call_ok<pb::CreateOperatorResponse>(*admin, "CreateOperator", op).token();
    auto viewer = std::make_unique<engine::ControlClient>(socket);
    viewer->set_token(viewer_token);

    const auto clip_id = upload_clip(*admin, workdir + "/message.wav");

    pb::StartProgrammeRequest sched;
    sched.set_name("schedule");
    sched.set_level(pb::SCHEDULED);
    sched.add_zone_ids(kProvince);
    sched.set_tone_hz(440.0);
    const auto sched_id = call_ok<pb::StartProgrammeResponse>(*admin, "StartProgramme", sched).id();
    std::uint32_t sched_ssrc = 0;
    const auto listed = call_ok<pb::ListProgrammesResponse>(*admin, "ListProgrammes", pb::ListProgrammesRequest());
    for (const auto& p : listed.programmes()) {
      if (p.id() == sched_id) {
        sched_ssrc = p.ssrc();
        hearing = p.clusters_hearing();
      }
    }
    progress("schedule programme " + std::to_string(sched_id) + " (ssrc " + std::to_string(sched_ssrc) + ") to " +
             std::to_string(hearing) + " clusters; waiting for every speaker to play it");
    const auto all_on = [&](std::uint32_t ssrc, std::int64_t since) {
      return std::all_of(speakers.begin(), speakers.end(), [&](const SpeakerProc& s) {
        const auto log = read_switches(s.switch_log);
        return !log.empty() && log.back().ssrc == ssrc && log.back().mono_ns >= since;
      });
    };
    if (!wait_until([&] { return all_on(sched_ssrc, 0); }, std::chrono::seconds(30))) {
      throw std::runtime_error("the speakers did not all start playing the schedule within 30 s");
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));  // steady state

    std::map<std::string, std::size_t> speaker_index;
    for (std::size_t i = 0; i < speakers.size(); ++i) speaker_index[speakers[i].id] = i;
    std::mt19937 rng(1);
    std::uniform_int_distribution<int> phase_us(0, 20000);

    for (unsigned r = 0; r < opt.rounds; ++r) {
      Round rd;
      std::unique_ptr<AlertCapture> cap;
      try {
        cap = std::make_unique<AlertCapture>(wire.device, index, dests.size());
      } catch (const std::exception& e) {
        if (notes.find("capture") == std::string::npos) notes += "capture unavailable: " + std::string(e.what()) + "; ";
      }
      // The device's TX counter read on both sides of each engine count brackets the engine's window.
      const DevCounters dev0 = dev_counters(wire.device);
      const FanoutCount before = fanout_count(*admin);
      const DevCounters dev1 = dev_counters(wire.device);
      // Spread the raise instant over the frame period from round to round.
      std::this_thread::sleep_for(std::chrono::microseconds(phase_us(rng)));

      pb::RaiseAlertRequest raise;
      raise.set_name("bench-" + std::to_string(r + 1));
      raise.add_zone_ids(kProvince);
      raise.set_clip_id(clip_id);
      raise.set_repeats(100);
      raise.set_duration_s(static_cast<double>(opt.seconds) + 60.0);  // ends by itself should the bench die
      const std::int64_t deadline = mono_ns() + static_cast<std::int64_t>(opt.seconds) * 1'000'000'000;
      if (cap) cap->start(deadline);
      // t0 on both clocks, just before the request is written.
      const std::int64_t t0_real = clock_ns(CLOCK_REALTIME);
      const std::int64_t t0 = mono_ns();
      const auto req_id = admin->send("RaiseAlert", raise);
      std::optional<pb::Response> resp;
      while ((resp = admin->read(30000)) && resp->request_id() != req_id) {
      }
      if (!resp) throw std::runtime_error("RaiseAlert: no response");
      rd.raise_call_ms = ms_between(t0, mono_ns());
      const auto raised = parse_reply<pb::RaiseAlertResponse>(*resp, "RaiseAlert");
      rd.alert_id = raised.id();
      rd.targeted = raised.clusters_targeted();

      // (c) confirmation as the bench sees it, polling every poll_ms.
      std::vector<std::optional<double>> confirmed(speakers.size());
      std::size_t n_confirmed = 0;
      pb::GetAlertStatusRequest st_req;
      st_req.set_id(rd.alert_id);
      while (n_confirmed < speakers.size() && mono_ns() < deadline) {
        const auto tick = Clock::now();
        const auto st = call_ok<pb::GetAlertStatusResponse>(*viewer, "GetAlertStatus", st_req);
        const double at = ms_between(t0, mono_ns());
        rd.alert_ssrc = st.alert().ssrc();
        for (const auto& id : st.confirmed()) {
          const auto it = speaker_index.find(id);
          if (it != speaker_index.end() && !confirmed[it->second]) {
            confirmed[it->second] = at;
            ++n_confirmed;
          }
        }
        std::this_thread::sleep_until(tick + std::chrono::milliseconds(opt.poll_ms));
      }
      for (const auto& c : confirmed) {
        if (c) rd.confirm_ms.push_back(*c);
      }

      // (a) first alert packet per wire destination.
      if (cap) {
        cap->finish();
        rd.captured = true;
        rd.switched = cap->seen();
        for (const auto ns : cap->first_ns()) {
          if (ns != 0) rd.first_packet_ms.push_back(ms_between(t0_real, ns));
        }
        rd.capture_packets = cap->packets();
        rd.capture_drops = cap->kernel_drops();
        rd.capture_other_ssrc = cap->other_ssrc();
        if (cap->first_ssrc() != 0 && rd.alert_ssrc != 0 && cap->first_ssrc() != rd.alert_ssrc) {
          notes += "round " + std::to_string(r + 1) + ": captured SSRC " + std::to_string(cap->first_ssrc()) +
                   " is not the alert's " + std::to_string(rd.alert_ssrc) + "; ";
        }
        cap.reset();
      }
      const DevCounters dev2 = dev_counters(wire.device);
      const FanoutCount after = fanout_count(*admin);
      const DevCounters dev3 = dev_counters(wire.device);
      rd.wire_tx_outer = dev3.packets - dev0.packets;
      rd.wire_tx_inner = dev2.packets - dev1.packets;
      rd.wire_tx_errors = dev3.errors - dev0.errors;
      rd.engine_datagrams = after.datagrams - before.datagrams;
      rd.send_errors = after.errors - before.errors;

      // (b) first alert audio decoded at each speaker.
      (void)wait_until([&] { return all_on(rd.alert_ssrc, t0); }, std::chrono::seconds(2));
      for (const auto& s : speakers) {
        if (const auto at = switched_to(read_switches(s.switch_log), rd.alert_ssrc, t0)) {
          rd.first_audio_ms.push_back(ms_between(t0, *at));
        }
      }

      pb::CancelAlertRequest cancel;
      cancel.set_id(rd.alert_id);
      const std::int64_t t_cancel = mono_ns();
      (void)call_ok<pb::CancelAlertResponse>(*admin, "CancelAlert", cancel);
      if (wait_until([&] { return all_on(sched_ssrc, t_cancel); }, std::chrono::seconds(15))) {
        double worst = 0.0;
        for (const auto& s : speakers) {
          if (const auto at = switched_to(read_switches(s.switch_log), sched_ssrc, t_cancel)) {
            worst = std::max(worst, ms_between(t_cancel, *at));
          }
        }
        rd.return_ms = worst;
      } else {
        notes += "round " + std::to_string(r + 1) + ": not every speaker returned to the schedule within 15 s; ";
      }
      progress("round " + std::to_string(r + 1) + "/" + std::to_string(opt.rounds) + ": switched " +
               (rd.captured ? std::to_string(rd.switched) + "/" + std::to_string(n_wire) : std::string("n/a")) +
               ", first packet p99 " + f3(percentile(rd.first_packet_ms, 99)) + " max " +
               f3(percentile(rd.first_packet_ms, 100)) + " ms; first audio " +
               std::to_string(rd.first_audio_ms.size()) + "/" + std::to_string(speakers.size()) + " p99 " +
               f3(percentile(rd.first_audio_ms, 99)) + " ms; confirmed " + std::to_string(rd.confirm_ms.size()) +
               " p99 " + f3(percentile(rd.confirm_ms, 99)) + " ms; RaiseAlert answered in " +
               fmt_fixed(rd.raise_call_ms, 1) + " ms");
      rounds.push_back(std::move(rd));
      std::this_thread::sleep_for(std::chrono::milliseconds(500));  // settle on the schedule
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
  for (auto& s : speakers) {
    if (s.proc.pid() > 0) (void)s.proc.stop(SIGTERM, std::chrono::seconds(5));
  }
  if (engine_proc) {
    const ExitInfo exit = engine_proc->stop(SIGTERM, std::chrono::seconds(10));
    if (error.empty() && !exit.exited_ok()) error = "loa-engine " + exit.describe() + ": " + tail_file(engine_log, 800);
  }
  const std::string load_after = load_average();

  report_preempt(opt, wire, n_wire, hearing, rounds, load_before, load_after, notes, error);
  if (!opt.keep_workdir) {
    std::error_code ec;
    std::filesystem::remove_all(workdir, ec);
  } else {
    progress("workdir kept: " + workdir);
  }
  return error.empty() ? 0 : 1;
}

}  // namespace

}  // namespace preempt

void add_preempt_scenario(CLI::App& app, int& exit_code) {
  using namespace preempt;
  auto opt = std::make_shared<PreemptOptions>();
  CLI::App* sub = app.add_subcommand(
      "preempt", "RaiseAlert while a schedule plays: first alert packet per destination, first alert audio at real "
                 "speakers, confirmation");
  sub->add_option("--clusters,-n", opt->clusters, "Wire clusters (unicast destinations on the veth)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{64770}));
  sub->add_option("--speakers", opt->speakers, "Real loa-speaker processes on loopback")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{500}));
  sub->add_option("--rounds", opt->rounds, "Alerts raised one after the other (cancelled in between)")
      ->capture_default_str()
      ->check(CLI::Range(1U, 100U));
  sub->add_option("--seconds,-s", opt->seconds, "Per round: how long to wait for every switch and confirmation")
      ->capture_default_str()
      ->check(CLI::Range(1U, 600U));
  sub->add_option("--poll-ms", opt->poll_ms, "GetAlertStatus poll interval (the confirmation times' resolution)")
      ->capture_default_str()
      ->check(CLI::Range(1U, 1000U));
  sub->add_option("--speaker-block-ms", opt->speaker_block_ms, "The speakers' render block (--block-ms)")
      ->capture_default_str()
      ->check(CLI::IsMember({5, 10, 20}));
  sub->add_flag("--json", opt->json, "Print one JSON object on stdout (progress goes to stderr)");
  sub->add_flag("--no-wire", opt->no_wire, "No veth: at most 1000 loopback destinations in a private namespace");
  sub->add_option("--bin-dir", opt->bin_dir, "Where loa-engine and loa-speaker are (default: this build)");
  sub->add_flag("--keep-workdir", opt->keep_workdir, "Keep the generated config, state, logs and switch logs");
  sub->callback([opt, &exit_code] {
    try {
      exit_code = run_preempt(*opt);
    } catch (const std::exception& e) {
      std::cerr << "loa-bench preempt: " << e.what() << std::endl;
      exit_code = 1;
    }
  });
}

}  // namespace loa::bench
