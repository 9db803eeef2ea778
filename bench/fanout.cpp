// `loa-bench fanout`: interleaved rounds of each contender, the --max search,
// the engine's memory per destination, the report, and the subcommand.
#include "fanout.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "engine_runner.h"
#include "fanout_contenders.h"
#include "process.h"
#include "report.h"
#include "wire.h"

namespace loa::bench {

namespace {

using namespace fanout;

void progress(const std::string& line) { std::cerr << "[loa-bench] " << line << std::endl; }

// Largest N the contender sustains for S seconds (0 missed frames where
// observable, delivered >= 0.999), by doubling/halving from `start` and then
// bisecting to within 2 %.
std::size_t find_max(const Context& ctx, const std::string& name, std::size_t start) {
  const Runner run = runner_for(name);
  constexpr std::size_t kCap = 1'000'000;
  auto pass = [&](std::size_t n) {
    const RunMetrics m = run(ctx, n);
    progress("--max " + name + " N=" + std::to_string(n) + ": " + (m.sustained() ? "sustained" : "NOT sustained") +
             " (" + brief(m) + ")");
    return m.sustained();
  };
  std::size_t lo = 0;
  std::size_t hi = 0;  // 0: no failing N known yet
  std::size_t n = std::max<std::size_t>(start, 1);
  if (pass(n)) {
    lo = n;
    while (hi == 0) {
      if (lo >= kCap) {
        return lo;
      }
      n = std::min(lo * 2, kCap);
      (pass(n) ? lo : hi) = n;
    }
  } else {
    hi = n;
    while (lo == 0) {
      if (hi <= 1) {
        return 0;
      }
      n = hi / 2;
      (pass(n) ? lo : hi) = n;
    }
  }
  while (hi - lo > std::max<std::size_t>(lo / 50, 50)) {
    n = lo + (hi - lo) / 2;
    (pass(n) ? lo : hi) = n;
  }
  return lo;
}

std::string make_workdir() {
  std::string tmpl = "/tmp/loa-bench.XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  return tmpl;
}

// A 10 s music-like clip (two chords over pink noise) for the engine's clip source.
std::string make_clip(const std::string& workdir) {
  const std::string path = workdir + "/clip.wav";
  const bool ok = run_command({"sox", "-n", "-r", "48000", "-c", "1", "-b", "16", path, "synth", "10", "sine", "220",
                               "sine", "277", "sine", "330", "pinknoise", "remix", "-", "tremolo", "4", "40",
                               "gain", "-n", "-3"},
                              workdir + "/sox.log");
  return ok ? path : std::string();
}

const std::array<const char*, 6> kCoreMetrics = {"pps_per_core",  "delivered_ratio", "spread_us_p50",
                                                 "spread_us_p99", "spread_us_max",   "missed_frames"};

std::optional<double> core_metric(const RunMetrics& m, const std::string& key) {
  if (key == "pps_per_core") return m.pps_per_core;
  if (key == "delivered_ratio") return m.delivered_ratio;
  if (key == "spread_us_p50") return m.spread_us_p50;
  if (key == "spread_us_p99") return m.spread_us_p99;
  if (key == "spread_us_max") return m.spread_us_max;
  return m.missed_frames;
}

struct ContenderSummary {
  std::string name;
  std::vector<RunMetrics> rounds;
  std::optional<std::size_t> max_clusters;

  [[nodiscard]] std::optional<double> med(const std::string& key) const {
    std::vector<std::optional<double>> v;
    for (const auto& r : rounds) {
      if (r.ok) {
        v.push_back(core_metric(r, key));
      }
    }
    return median(v);
  }
  [[nodiscard]] std::optional<double> med_extra(const std::string& key) const {
    std::vector<std::optional<double>> v;
    for (const auto& r : rounds) {
      if (r.ok) {
        const auto it = r.extra.find(key);
        if (it != r.extra.end()) {
          v.push_back(it->second);
        }
      }
    }
    return median(v);
  }
  [[nodiscard]] bool any_ok() const {
    return std::any_of(rounds.begin(), rounds.end(), [](const RunMetrics& r) { return r.ok; });
  }
  [[nodiscard]] std::string first_error() const {
    for (const auto& r : rounds) {
      if (!r.ok) {
        return r.error;
      }
    }
    return {};
  }
};

JsonObject contender_json(const ContenderSummary& c, bool with_max) {
  JsonObject o;
  o.add_int("pps_per_core", c.med("pps_per_core"));
  o.add("delivered_ratio", c.med("delivered_ratio"));
  o.add_int("spread_us_p50", c.med("spread_us_p50"));
  o.add_int("spread_us_p99", c.med("spread_us_p99"));
  o.add_int("spread_us_max", c.med("spread_us_max"));
  o.add_int("missed_frames", c.med("missed_frames"));
  if (with_max) {
    o.add_int("max_clusters", c.max_clusters ? std::optional<double>(static_cast<double>(*c.max_clusters))
                                             : std::nullopt);
  }
  std::string rounds = "[";
  for (std::size_t i = 0; i < c.rounds.size(); ++i) {
    rounds += (i ? "," : "") + (c.rounds[i].ok ? json_number(c.rounds[i].pps_per_core.value_or(NAN), 7) : "null");
  }
  o.add_raw("pps_per_core_rounds", rounds + "]");
  if (c.name == "raw") {
    o.add_int("send_errors", c.med_extra("send_errors"));
  } else if (c.name == "loa") {
    o.add_int("encode_us_p50", c.med_extra("encode_us_p50"));
    o.add_int("encode_us_p99", c.med_extra("encode_us_p99"));
    o.add_int("rss_kib", c.med_extra("rss_kib"));
    o.add_int("send_errors", c.med_extra("send_errors"));
    o.add_int("pps_per_core_rusage", c.med_extra("pps_per_core_rusage"));
    o.add("delivered_ratio_run", c.med_extra("delivered_ratio_run"));
    o.add_int("rtcp_packets_window", c.med_extra("rtcp_packets_window"));
    o.add_int("media_pps_per_core", c.med_extra("media_pps_per_core"));
  } else {
    o.add_int("sinks", c.med_extra("sinks"));
  }
  if (!c.any_ok()) {
    o.add("error", c.first_error());
  }
  return o;
}

std::string cell(std::optional<double> v, int prec) {
  if (!v) {
    return "null";
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, *v);
  return buf;
}

int run_fanout(FanoutOptions opt) {
  if (opt.threads == 0) {
    opt.threads = std::max(1U, std::thread::hardware_concurrency());
  }
  if (opt.engine_bin.empty()) {
    opt.engine_bin = default_engine_bin();
  }
  Context ctx;
  ctx.opt = opt;
  ctx.wire = enter_bench_wire(opt.wire == "veth");
  progress(std::string("wire: ") + ctx.wire.name() + " (" + ctx.wire.note + ")");
  if (ctx.wire.kind != WireKind::veth) {
    progress("WARNING: falling back to loopback; the receiving side's work lands on the sending CPUs");
  }
  ctx.workdir = make_workdir();
  if (opt.clip != "tone") {
    ctx.clip_path = opt.clip.empty() ? make_clip(ctx.workdir) : opt.clip;
    if (ctx.clip_path.empty()) {
      progress("sox could not make a clip; the engine uses a tone source");
    }
  }

  std::vector<ContenderSummary> contenders;
  for (const auto& c : opt.contenders) {
    contenders.push_back(ContenderSummary{c, {}, std::nullopt});
  }
  // Interleaved rounds: raw, loa, gst, raw, loa, gst, ...
  for (unsigned r = 0; r < opt.rounds; ++r) {
    for (auto& c : contenders) {
      progress("round " + std::to_string(r + 1) + "/" + std::to_string(opt.rounds) + " " + c.name + " N=" +
               std::to_string(opt.clusters) + " T=" + std::to_string(opt.threads) + " S=" +
               std::to_string(opt.seconds) + " ...");
      c.rounds.push_back(runner_for(c.name)(ctx, opt.clusters));
      progress("  " + c.name + ": " + brief(c.rounds.back()));
    }
  }

  // Engine memory and encode cost at N=1, for the per-destination figure.
  std::optional<double> rss_n1;
  std::optional<double> encode_n1;
  const bool with_loa = std::find(opt.contenders.begin(), opt.contenders.end(), "loa") != opt.contenders.end();
  if (with_loa) {
    const auto one = ctx.wire.destinations(1);
    EngineRunOptions eo;
    eo.engine_bin = opt.engine_bin;
    eo.workdir = ctx.workdir;
    eo.clip_path = ctx.clip_path;
    eo.destinations = one;
    eo.threads = opt.threads;
    eo.seconds = std::min(opt.seconds, 5U);
    eo.ptime_ms = kPtimeMs;
    eo.measure = false;
    progress("loa N=1 (RSS and encode cost) ...");
    const EngineRun e = run_engine(eo, ctx.wire);
    if (e.ok) {
      rss_n1 = static_cast<double>(e.max_rss_kib);
      encode_n1 = e.encode_us_p50;
    } else {
      progress("  loa N=1 failed: " + e.error);
    }
  }

  if (opt.max) {
    for (auto& c : contenders) {
      c.max_clusters = find_max(ctx, c.name, opt.clusters);
      progress("--max " + c.name + ": " + std::to_string(*c.max_clusters) + " clusters");
    }
  }

  JsonObject results;
  std::optional<double> rss_n;
  for (const auto& c : contenders) {
    results.add(c.name, contender_json(c, opt.max));
    if (c.name == "loa") {
      rss_n = c.med_extra("rss_kib");
    }
  }
  std::optional<double> bytes_per_dest;
  if (rss_n && rss_n1 && opt.clusters > 1) {
    bytes_per_dest = (*rss_n - *rss_n1) * 1024.0 / static_cast<double>(opt.clusters - 1);
  }
  std::optional<double> encode_n;
  for (const auto& c : contenders) {
    if (c.name == "loa") {
      encode_n = c.med_extra("encode_us_p50");
    }
  }

  JsonObject top;
  top.add("bench", "fanout")
      .add_int("clusters", static_cast<double>(opt.clusters))
      .add_int("threads", static_cast<double>(opt.threads))
      .add_int("seconds", static_cast<double>(opt.seconds))
      .add_int("rounds", static_cast<double>(opt.rounds))
      .add("wire", ctx.wire.name())
      .add("results", results);
  if (with_loa) {
    top.add_int("loa_rss_kib_n1", rss_n1)
        .add_int("loa_rss_kib", rss_n)
        .add_int("loa_bytes_per_destination", bytes_per_dest)
        .add_int("loa_encode_us_p50_n1", encode_n1)
        .add_int("loa_encode_us_p50", encode_n);
  }
  top.add("wire_note", ctx.wire.note);

  if (opt.json) {
    std::cout << top.str() << std::endl;
  } else {
    std::printf("fanout: N=%zu destinations, T=%u threads, %u s x %u rounds (median), wire=%s\n", opt.clusters,
                opt.threads, opt.seconds, opt.rounds, ctx.wire.name());
    std::printf("  %s\n", ctx.wire.note.c_str());
    std::printf("%-18s", "");
    for (const auto& c : contenders) {
      std::printf("%14s", c.name.c_str());
    }
    std::printf("\n");
    for (const char* key : kCoreMetrics) {
      std::printf("%-18s", key);
      for (const auto& c : contenders) {
        std::printf("%14s", cell(c.med(key), std::string(key) == "delivered_ratio" ? 5 : 0).c_str());
      }
      std::printf("\n");
    }
    if (opt.max) {
      std::printf("%-18s", "max_clusters");
      for (const auto& c : contenders) {
        std::printf("%14s",
                    cell(c.max_clusters ? std::optional<double>(static_cast<double>(*c.max_clusters)) : std::nullopt, 0)
                        .c_str());
      }
      std::printf("\n");
    }
    if (with_loa) {
      std::printf("loa RSS: %s KiB at N=1, %s KiB at N=%zu (%s bytes/destination); encode p50 %s us (N=1) / %s us\n",
                  cell(rss_n1, 0).c_str(), cell(rss_n, 0).c_str(), opt.clusters, cell(bytes_per_dest, 0).c_str(),
                  cell(encode_n1, 0).c_str(), cell(encode_n, 0).c_str());
    }
    for (const auto& c : contenders) {
      if (!c.any_ok()) {
        std::printf("%s failed: %s\n", c.name.c_str(), c.first_error().c_str());
      }
    }
  }
  if (!opt.keep_workdir) {
    std::error_code ec;
    std::filesystem::remove_all(ctx.workdir, ec);
  } else {
    progress("workdir kept: " + ctx.workdir);
  }
  return 0;
}

}  // namespace

void add_fanout_scenario(CLI::App& app, int& exit_code) {
  auto opt = std::make_shared<FanoutOptions>();
  CLI::App* sub = app.add_subcommand(
      "fanout",
      "Fan one 64 kb/s, 20 ms Opus programme out to N destinations: raw sendmmsg limit, loa-engine, GStreamer");
  sub->add_option("--clusters,-n", opt->clusters, "Destinations (speaker clusters)")->capture_default_str();
  sub->add_option("--seconds,-s", opt->seconds, "Measured seconds per run")->capture_default_str();
  sub->add_option("--threads,-t", opt->threads, "Sender threads for every contender (default: CPU count)");
  sub->add_option("--rounds", opt->rounds, "Interleaved rounds; the median is reported")->capture_default_str();
  sub->add_flag("--json", opt->json, "Print one JSON object on stdout (progress goes to stderr)");
  sub->add_flag("--max", opt->max, "Also bisect the largest N each contender sustains for S seconds");
  sub->add_option("--engine-bin", opt->engine_bin, "loa-engine binary (default: next to this build)");
  sub->add_option("--gst-launch", opt->gst_launch, "gst-launch-1.0 binary")->capture_default_str();
  sub->add_option("--clip", opt->clip, "Clip for the engine source (default: a generated 10 s clip; 'tone': tone)");
  sub->add_option("--contenders", opt->contenders, "Subset of raw,loa,gstreamer")
      ->delimiter(',')
      ->check(CLI::IsMember({"raw", "loa", "gstreamer"}));
  sub->add_option("--wire", opt->wire, "veth (default; loopback where namespaces are unavailable) or loopback")
      ->check(CLI::IsMember({"veth", "loopback"}))
      ->capture_default_str();
  sub->add_flag("--keep-workdir", opt->keep_workdir, "Keep generated configs, stats and logs");
  sub->callback([opt, &exit_code] {
    try {
      exit_code = run_fanout(*opt);
    } catch (const std::exception& e) {
      std::cerr << "loa-bench fanout: " << e.what() << std::endl;
      exit_code = 1;
    }
  });
}

}  // namespace loa::bench
