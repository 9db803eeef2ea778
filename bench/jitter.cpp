// `loa-bench jitter`: the trace, the replay into Loa's playout (real time or
// simulated) and GStreamer, the report, and the subcommand. Analysis and the
// GStreamer contender are in jitter_analysis.cpp and jitter_gst.cpp.
#include "jitter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "jitter_analysis.h"
#include "jitter_gst.h"
#include "loa/codecs/audio_format.h"
#include "loa/engine/playout.h"
#include "loa/transport/impairment.h"
#include "loa/transport/rtp_packet.h"
#include "loa/transport/thread_priority.h"
#include "process.h"
#include "report.h"
#include "tone_track.h"
#include "trace.h"

namespace loa::bench {

namespace {

using namespace jitter;

namespace tr = loa::transport;

struct JitterOptions {
  double seconds = 60.0;
  std::uint64_t seed = 1;
  double loss = 0.05;
  double burst = 2.0;
  double delay_ms = 10.0;
  double jitter_ms = 40.0;
  std::string jitter_dist = "pareto";
  double pareto_shape = 2.0;
  double reorder = 0.01;
  double reorder_ms = 30.0;
  int bitrate = 64000;
  int block_ms = 10;
  double warmup_s = 2.0;
  int gst_latency_ms = 200;
  double loa_quantile = 0.0;  // 0: Playout's default
  int loa_late_wait_ms = -1;  // < 0: Playout's default
  std::string gst_launch = "gst-launch-1.0";
  std::vector<std::string> contenders = {"loa", "gstreamer"};
  std::string workdir;
  bool keep_workdir = false;
  bool json = false;
  // Loa only, on a simulated clock: every packet pushed at exactly its recorded
  // arrival, every block rendered at exactly its time, as fast as the CPU goes.
  // Deterministic (same seed, same result): for tuning; the real-time replay
  // stays the measurement.
  bool virtual_time = false;
};

constexpr int kPtimeMs = 20;

void sleep_until_ns(std::int64_t t) {
  timespec ts{static_cast<time_t>(t / 1'000'000'000), static_cast<long>(t % 1'000'000'000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

void say(bool quiet, const std::string& s) {
  if (!quiet) std::cerr << "[loa-bench] jitter: " << s << std::endl;
}

tr::ImpairmentConfig impairment(const JitterOptions& o) {
  tr::ImpairmentConfig c;
  c.seed = o.seed;
  if (o.loss > 0.0) {
    c.loss = tr::LossModel::GilbertElliott;
    c.gilbert_elliott = tr::GilbertElliottParams::from_mean(o.loss, o.burst);
  }
  c.delay_ns = std::llround(o.delay_ms * 1e6);
  if (o.jitter_ms > 0.0) {
    c.jitter = jitter_distribution(o.jitter_dist);
    c.jitter_spread_ns = std::llround(o.jitter_ms * 1e6);
  }
  c.pareto_shape = o.pareto_shape;
  c.reorder_probability = o.reorder;
  c.reorder_delay_ns = std::llround(o.reorder_ms * 1e6);
  return c;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

int finish_jitter(const JitterOptions& o, const PacketTrace& trace, const HopSignal& signal, const Calibration& cal,
                  std::int64_t t0, std::size_t frames, const engine::Playout* playout,
                  const engine::PlayoutConfig& pc, const TimedPcm& loa_out, const std::optional<ExitInfo>& gst_done,
                  const FifoReader* reader, const std::vector<std::string>& gst_args, const std::string& workdir,
                  std::uint64_t send_errors);

int run_jitter(const JitterOptions& o) {
  const bool quiet = false;
  for (const auto& c : o.contenders) {
    if (c != "loa" && c != "gstreamer") throw std::invalid_argument("--contenders: unknown contender " + c);
  }
  const bool run_loa = has(o.contenders, "loa") || o.virtual_time;
  const bool run_gst = has(o.contenders, "gstreamer") && !o.virtual_time;

  // (a) The trace.
  const auto frames = static_cast<std::size_t>(std::llround(o.seconds * 1000.0 / kPtimeMs));
  const HopSignal signal = make_hop_signal(frames, kPtimeMs, o.seed, 0.3);
  TraceOptions to;
  to.ptime_ms = kPtimeMs;
  to.bitrate_bps = o.bitrate;
  to.impairment = impairment(o);
  const PacketTrace trace = record_trace(signal, to);
  const TraceStats& ts = trace.stats;
  say(quiet, "trace: " + std::to_string(ts.packets) + " packets, loss " + fmt_fixed(100.0 * ts.loss_ratio, 2) +
                 " %, reordered " + std::to_string(ts.reordered) + ", FEC in " + std::to_string(ts.with_fec) +
                 ", network delay p50 " + fmt_fixed(ts.delay_ms_p50) + " ms, p99 " + fmt_fixed(ts.ideal_delay_ms_p99) +
                 " ms, max " + fmt_fixed(ts.delay_ms_max) + " ms");
  const Calibration cal = calibrate(trace, signal);
  say(quiet, "detector on the clean decode: " + fmt_fixed(100.0 * cal.clean_seen_ratio, 2) +
                 " % of frames found, bias " + fmt_fixed(static_cast<double>(cal.bias_ns) / 1e6, 2) + " ms");
  const std::vector<TraceEvent> events = arrival_order(trace);

  // Work directory for the FIFO and gst log.
  const std::string workdir = open_workdir(o.workdir, "loa-bench-jitter");

  // (c) GStreamer, started first so that it is playing before the replay.
  std::optional<ChildProcess> gst;
  std::unique_ptr<FifoReader> reader;
  int udp = -1;
  sockaddr_in gst_addr{};
  std::vector<std::string> gst_args;
  const std::string gst_log = workdir + "/gst.log";
  if (run_gst) {
    const std::string fifo = workdir + "/gst.pcm";
    std::remove(fifo.c_str());
    if (::mkfifo(fifo.c_str(), 0600) != 0) throw std::runtime_error("mkfifo " + fifo + ": " + std::strerror(errno));
    const std::uint16_t port = free_udp_port();
    gst_args = gst_jitter_argv(o.gst_launch, o.gst_latency_ms, port, fifo);
    reader = std::make_unique<FifoReader>(fifo);
    gst.emplace(ChildProcess::spawn(gst_args, gst_log));
    udp = ::socket(AF_INET, SOCK_DGRAM, 0);
    gst_addr.sin_family = AF_INET;
    gst_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    gst_addr.sin_port = htons(port);
    say(quiet, "gstreamer: " + join_argv(gst_args));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    if (!gst->running()) throw std::runtime_error("gst-launch exited at start: " + tail_file(gst_log, 800));
  }

  // (b) Loa's playout, fed in this thread.
  std::unique_ptr<engine::Playout> playout;
  engine::PlayoutConfig pc;
  if (o.loa_quantile > 0.0) pc.delay_quantile = o.loa_quantile;
  if (o.loa_late_wait_ms >= 0) pc.late_wait_ms = o.loa_late_wait_ms;
  if (run_loa) playout = std::make_unique<engine::Playout>(pc);
  const auto block = static_cast<std::size_t>(o.block_ms) * 48;
  const std::int64_t block_ns = static_cast<std::int64_t>(o.block_ms) * 1'000'000;
  TimedPcm loa_out;
  const std::int64_t tail_ns = 2'000'000'000;
  const std::int64_t span_ns = static_cast<std::int64_t>(frames) * kFrameNs + tail_ns;
  loa_out.reserve(static_cast<std::size_t>(span_ns / block_ns + 1) * block,
                  static_cast<std::size_t>(span_ns / block_ns + 1));
  std::vector<float> buf(block);

  if (o.virtual_time) {
    // Simulated clock from t0 = 1000 s: the same schedule as the real-time
    // loop below, without scheduling noise.
    const std::int64_t t0 = 1'000'000'000'000;
    std::size_t next_event = 0;
    // LOA_BENCH_JITTER_BLOCKS=FILE: one line per rendered block (time since
    // the start, playout counters after it), for looking into single events.
    std::FILE* blog = nullptr;
    if (const char* f = std::getenv("LOA_BENCH_JITTER_BLOCKS")) blog = std::fopen(f, "w");
    for (std::int64_t b = 0; b * block_ns < span_ns; ++b) {
      const std::int64_t at = t0 + b * block_ns;
      while (next_event < events.size() && t0 + events[next_event].arrival_ns <= at) {
        const auto& p = trace.packets[events[next_event].packet];
        tr::RtpView v;
        if (tr::RtpView::parse(p.bytes, v) == tr::Status::Ok) {
          (void)playout->push(v, t0 + events[next_event].arrival_ns);
        }
        ++next_event;
      }
      playout->render(buf, at);
      loa_out.append(buf, at);
      if (blog != nullptr) {
        const auto& st = playout->stats();
        std::fprintf(blog, "%.1f frame %.1f dec %llu fec %llu conc %llu late %llu lp %llu acc %llu exp %llu cur %d tgt %d ppm %d\n",
                     static_cast<double>(b * block_ns) / 1e6, static_cast<double>(b * block_ns) / 2e7,
                     static_cast<unsigned long long>(st.frames_decoded.load()),
                     static_cast<unsigned long long>(st.recovered_fec.load()),
                     static_cast<unsigned long long>(st.concealed.load()), static_cast<unsigned long long>(st.late.load()),
                     static_cast<unsigned long long>(st.late_played.load()),
                     static_cast<unsigned long long>(st.accelerated_samples.load()),
                     static_cast<unsigned long long>(st.expanded_samples.load()), st.current_delay_ms.load(),
                     st.target_delay_ms.load(), st.drift_ppm.load());
      }
    }
    if (blog != nullptr) std::fclose(blog);
    return finish_jitter(o, trace, signal, cal, t0, frames, playout.get(), pc, loa_out, std::nullopt, nullptr, {},
                         workdir, 0);
  }

  // (b + c) Real-time replay: each packet at its recorded arrival time, to both.
  const bool rt = tr::set_realtime_priority(40);
  say(quiet, std::string("replaying ") + fmt_fixed(o.seconds, 0) + " s in real time" +
                 (rt ? " (SCHED_FIFO)" : " (normal priority)"));
  const std::int64_t t0 = mono_ns() + 300'000'000;
  const std::int64_t end = t0 + span_ns;
  std::size_t next_event = 0;
  std::int64_t next_block = 0;
  std::uint64_t send_errors = 0;
  while (true) {
    const std::int64_t render_at = t0 + next_block * block_ns;
    const std::int64_t arrive_at =
        next_event < events.size() ? t0 + events[next_event].arrival_ns : std::numeric_limits<std::int64_t>::max();
    const std::int64_t wake = std::min(run_loa ? render_at : end, arrive_at);
    if (wake >= end) {
      sleep_until_ns(end);  // the tail: let the contenders play out what they hold
      break;
    }
    sleep_until_ns(wake);
    const std::int64_t now = mono_ns();
    while (next_event < events.size() && t0 + events[next_event].arrival_ns <= now) {
      const auto& p = trace.packets[events[next_event].packet];
      if (udp >= 0) {
        if (::sendto(udp, p.bytes.data(), p.bytes.size(), 0, reinterpret_cast<const sockaddr*>(&gst_addr),
                     sizeof gst_addr) < 0) {
          ++send_errors;
        }
      }
      if (playout) {
        tr::RtpView v;
        if (tr::RtpView::parse(p.bytes, v) == tr::Status::Ok) (void)playout->push(v, mono_ns());
      }
      ++next_event;
    }
    if (playout) {
      while (t0 + next_block * block_ns <= now) {
        const std::int64_t at = mono_ns();
        playout->render(buf, at);
        loa_out.append(buf, at);
        ++next_block;
      }
    }
  }
  if (udp >= 0) ::close(udp);
  std::optional<ExitInfo> gst_done;
  if (gst) {
    gst_done = gst->stop(SIGINT, std::chrono::seconds(5));
    reader->finish();
  }
  return finish_jitter(o, trace, signal, cal, t0, frames, playout.get(), pc, loa_out, gst_done, reader.get(),
                       gst_args, workdir, send_errors);
}

// Analysis and report of one replay. `gst_done` set: GStreamer ran and
// `reader` holds its output.
int finish_jitter(const JitterOptions& o, const PacketTrace& trace, const HopSignal& signal, const Calibration& cal,
                  std::int64_t t0, std::size_t frames, const engine::Playout* playout,
                  const engine::PlayoutConfig& pc, const TimedPcm& loa_out, const std::optional<ExitInfo>& gst_done,
                  const FifoReader* reader, const std::vector<std::string>& gst_args, const std::string& workdir,
                  std::uint64_t send_errors) {
  const TraceStats& ts = trace.stats;
  const bool run_loa = playout != nullptr;
  const bool run_gst = gst_done.has_value();
  const std::string gst_log = workdir + "/gst.log";
  JsonObject results;
  JsonObject loa_json;
  JsonObject gst_json;
  std::optional<ContenderResult> loa_r;
  std::optional<ContenderResult> gst_r;
  const auto first_frame = static_cast<std::size_t>(std::llround(o.warmup_s * 1000.0 / kPtimeMs));
  const std::size_t end_frame = frames > 1 ? frames - 1 : frames;
  LoaCounters counters;
  if (playout) {
    counters = read_counters(playout->stats());
    loa_r = analyse(loa_out, trace, signal, cal, t0, first_frame, end_frame);
    loa_json = contender_json(*loa_r);
    loa_json.add_int("block_ms", o.block_ms)
        .add("delay_quantile", std::optional<double>(pc.delay_quantile))
        .add_int("late_wait_ms", pc.late_wait_ms ? std::optional<double>(*pc.late_wait_ms) : std::nullopt)
        .add("playout", counters_json(counters));
  }
  if (gst_done) {
    const ExitInfo& done = *gst_done;
    gst_r = analyse(reader->pcm(), trace, signal, cal, t0, first_frame, end_frame);
    if (reader->pcm().samples.empty()) {
      gst_r->ok = false;
      gst_r->error = "no audio from gst-launch (" + done.describe() + "): " + tail_file(gst_log, 800);
    }
    gst_json = contender_json(*gst_r);
    gst_json.add_int("latency_ms", o.gst_latency_ms).add("pipeline", join_argv(gst_args));
  }

  // The trace's concealment floor: judged frames that no receiver can show at
  // any delay (their own packet lost and the next one lost or without FEC).
  std::size_t unrecoverable = 0;
  for (std::size_t k = first_frame; k < end_frame && k < trace.packets.size(); ++k) {
    const bool next_helps = k + 1 < trace.packets.size() && !trace.packets[k + 1].arrival_ns.empty() &&
                            trace.packets[k + 1].has_fec;
    if (trace.packets[k].arrival_ns.empty() && !next_helps) ++unrecoverable;
  }
  JsonObject trace_json;
  trace_json.add("loss_ratio", std::optional<double>(ts.loss_ratio))
      .add("ideal_delay_ms_p99", std::optional<double>(ts.ideal_delay_ms_p99))
      .add("delay_ms_p50", std::optional<double>(ts.delay_ms_p50))
      .add("delay_ms_max", std::optional<double>(ts.delay_ms_max))
      .add_int("packets", static_cast<double>(ts.packets))
      .add_int("lost", static_cast<double>(ts.lost))
      .add_int("reordered", static_cast<double>(ts.reordered))
      .add_int("with_fec", static_cast<double>(ts.with_fec))
      .add_int("unrecoverable_frames", static_cast<double>(unrecoverable))
      .add("detector_clean_found_ratio", std::optional<double>(cal.clean_seen_ratio));
  if (run_loa) results.add("loa", loa_json);
  if (run_gst) results.add("gstreamer", gst_json);
  results.add("trace", trace_json);

  // Targets.
  std::optional<bool> fewer_concealed;
  std::optional<bool> half_delay;
  auto mean_of = [](const ContenderResult& r) {
    double m = 0.0;
    for (const double d : r.delays_ms) m += d;
    return r.delays_ms.empty() ? 0.0 : m / static_cast<double>(r.delays_ms.size());
  };
  if (loa_r && gst_r && loa_r->ok && gst_r->ok) {
    fewer_concealed = loa_r->concealed < gst_r->concealed;
    half_delay = mean_of(*loa_r) <= 0.5 * mean_of(*gst_r);
  }
  JsonObject targets;
  if (fewer_concealed) {
    targets.add("loa_conceals_fewer", *fewer_concealed).add("loa_mean_delay_at_most_half", *half_delay);
  } else {
    targets.add_null("loa_conceals_fewer").add_null("loa_mean_delay_at_most_half");
  }

  if (o.json) {
    JsonObject out;
    out.add("bench", "jitter")
        .add("results", results)
        .add("targets", targets)
        .add_int("seed", static_cast<double>(o.seed))
        .add("seconds", std::optional<double>(o.seconds))
        .add("warmup_s", std::optional<double>(o.warmup_s))
        .add("impairment", "gilbert-elliott loss " + fmt_fixed(o.loss, 3) + " burst " + fmt_fixed(o.burst, 1) +
                               ", delay " + fmt_fixed(o.delay_ms) + " ms + " + o.jitter_dist + " jitter " +
                               fmt_fixed(o.jitter_ms) + " ms (shape " + fmt_fixed(o.pareto_shape) + "), reorder " +
                               fmt_fixed(o.reorder, 3) + " x " + fmt_fixed(o.reorder_ms) + " ms")
        .add_int("send_errors", static_cast<double>(send_errors))
        .add("virtual_time", o.virtual_time);
    std::cout << out.str() << std::endl;
  } else {
    std::cout << "jitter: " << fmt_fixed(o.seconds, 0) << " s trace, seed " << o.seed << ": " << ts.packets
              << " packets, loss " << fmt_fixed(100.0 * ts.loss_ratio, 2) << " %, network delay p99 "
              << fmt_fixed(ts.ideal_delay_ms_p99)
              << " ms (the trace's bound: a fixed delay of that receives 99 % of the "
              << "delivered packets); " << unrecoverable
              << " judged frames unrecoverable (own packet lost, next lost or without FEC)"
              << (o.virtual_time ? "; Loa on a simulated clock" : "") << "\n";
    auto line = [&](const char* name, const std::optional<ContenderResult>& r) {
      if (!r) return;
      if (!r->ok) {
        std::cout << "  " << name << ": " << r->error << "\n";
        return;
      }
      const double f = static_cast<double>(std::max<std::size_t>(r->frames, 1));
      std::cout << "  " << name << ": concealed " << fmt_fixed(100.0 * static_cast<double>(r->concealed) / f, 2)
                << " %, FEC-recovered " << fmt_fixed(100.0 * static_cast<double>(r->fec) / f, 2) << " %, delay mean "
                << fmt_fixed(mean_of(*r)) << " ms, p99 " << fmt_fixed(percentile(r->delays_ms, 99).value_or(0.0))
                << " ms (" << r->frames << " frames)\n";
    };
    line("loa      ", loa_r);
    line("gstreamer", gst_r);
    if (playout) {
      std::cout << "  loa playout counters: concealed " << counters.concealed << ", recovered_fec "
                << counters.recovered_fec << ", late " << counters.late << " (+" << counters.late_played << " waited for, played), lost " << counters.lost
                << ", underruns " << counters.underruns << ", target delay at end " << counters.target_delay_ms
                << " ms\n";
    }
    if (fewer_concealed) {
      std::cout << "  target: Loa conceals fewer frames: " << (*fewer_concealed ? "PASS" : "FAIL")
                << "; Loa mean delay <= half of GStreamer's: " << (*half_delay ? "PASS" : "FAIL") << "\n";
    }
  }
  if (!o.keep_workdir && o.workdir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(workdir, ec);
  } else {
    say(false, "work files kept in " + workdir);
  }
  const bool ok = (!loa_r || loa_r->ok) && (!gst_r || gst_r->ok);
  return ok ? 0 : 1;
}

}  // namespace

void add_jitter_scenario(CLI::App& app, int& exit_code) {
  auto opt = std::make_shared<JitterOptions>();
  CLI::App* sub = app.add_subcommand(
      "jitter",
      "Replay one seeded impaired Opus trace in real time into Loa's playout and GStreamer's rtpjitterbuffer; "
      "concealment and send-to-output delay measured from the output");
  sub->add_option("--seconds", opt->seconds, "Trace length")->check(CLI::Range(5.0, 3600.0))->capture_default_str();
  sub->add_option("--seed", opt->seed, "Seed of the signal and the impairment")->capture_default_str();
  sub->add_option("--loss", opt->loss, "Mean Gilbert-Elliott loss rate")
      ->check(CLI::Range(0.0, 0.5))
      ->capture_default_str();
  sub->add_option("--burst", opt->burst, "Mean loss burst length (packets)")
      ->check(CLI::Range(1.0, 50.0))
      ->capture_default_str();
  sub->add_option("--delay-ms", opt->delay_ms, "Fixed network delay")->capture_default_str();
  sub->add_option("--jitter-ms", opt->jitter_ms, "Jitter spread (95th percentile of the extra delay)")
      ->capture_default_str();
  sub->add_option("--jitter-dist", opt->jitter_dist, "Jitter distribution")
      ->check(CLI::IsMember({"pareto", "normal", "uniform"}))
      ->capture_default_str();
  sub->add_option("--pareto-shape", opt->pareto_shape, "Pareto tail shape (smaller = heavier)")->capture_default_str();
  sub->add_option("--reorder", opt->reorder, "Probability a packet is held back")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--reorder-ms", opt->reorder_ms, "Hold-back of a reordered packet")->capture_default_str();
  sub->add_option("--bitrate", opt->bitrate, "Opus bitrate")->check(CLI::Range(6000, 510000))->capture_default_str();
  sub->add_option("--block-ms", opt->block_ms, "Loa's render block (the sink's cadence)")
      ->check(CLI::IsMember({5, 10, 20}))
      ->capture_default_str();
  sub->add_option("--warmup", opt->warmup_s, "Seconds at the start not judged")->capture_default_str();
  sub->add_option("--gst-latency", opt->gst_latency_ms, "rtpjitterbuffer latency (ms; GStreamer's default 200)")
      ->capture_default_str();
  sub->add_option("--loa-quantile", opt->loa_quantile,
                  "Loa's PlayoutConfig::delay_quantile (0: its default); for tuning experiments")
      ->check(CLI::Range(0.0, 0.9999));
  sub->add_option("--loa-late-wait", opt->loa_late_wait_ms,
                  "Loa's PlayoutConfig::late_wait_ms (default: one packet time); for tuning experiments")
      ->check(CLI::Range(0, 1000));
  sub->add_option("--gst-launch", opt->gst_launch, "gst-launch-1.0 binary")->capture_default_str();
  sub->add_option("--contenders", opt->contenders, "Which to run: loa,gstreamer")->delimiter(',');
  sub->add_option("--workdir", opt->workdir, "Directory for the FIFO and logs (default: a temporary one)");
  sub->add_flag("--keep-workdir", opt->keep_workdir, "Keep the temporary directory");
  sub->add_flag("--json", opt->json, "Print one JSON object on stdout");
  sub->add_flag("--virtual-time", opt->virtual_time,
                "Loa only, on a simulated clock (deterministic, faster than real time); for tuning");
  sub->callback([opt, &exit_code] {
    try {
      exit_code = run_jitter(*opt);
    } catch (const std::exception& e) {
      std::cerr << "loa-bench jitter: " << e.what() << std::endl;
      exit_code = 1;
    }
  });
}

}  // namespace loa::bench
