// `loa-bench fanout`'s contenders: one run at N destinations of the raw
// sendmmsg limit, of loa-engine and of GStreamer, and their figures.
#include "fanout_contenders.h"

#include <cstdint>
#include <cstdio>

#include "engine_runner.h"
#include "gst_runner.h"
#include "raw_sender.h"
#include "report.h"

namespace loa::bench::fanout {

namespace {

std::optional<double> ratio(double num, double den) {
  if (den <= 0.0) {
    return std::nullopt;
  }
  return num / den;
}

RunMetrics run_raw(const Context& ctx, std::size_t n) {
  RunMetrics m;
  const auto dests = ctx.wire.destinations(n);
  const unsigned frames = ctx.opt.seconds * 1000 / kPtimeMs;
  RawFanoutConfig cfg;
  cfg.destinations = dests;
  cfg.threads = ctx.opt.threads;
  cfg.frames = frames;
  cfg.ptime_ms = kPtimeMs;
  const std::uint64_t before = ctx.wire.packets_out();
  const RawFanoutResult r = run_raw_fanout(cfg);
  const std::uint64_t tx = ctx.wire.packets_out() - before;
  if (!r.error.empty()) {
    m.error = r.error;
    return m;
  }
  m.ok = true;
  m.pps_per_core = ratio(static_cast<double>(tx), r.cpu_s);
  m.delivered_ratio = ratio(static_cast<double>(tx), static_cast<double>(n) * frames);
  std::vector<double> us;
  us.reserve(r.spread_ns.size());
  double missed = 0;
  for (const auto ns : r.spread_ns) {
    us.push_back(static_cast<double>(ns) / 1000.0);
    missed += ns > static_cast<std::int64_t>(kPtimeMs) * 1'000'000 ? 1 : 0;
  }
  m.spread_us_p50 = percentile(us, 50);
  m.spread_us_p99 = percentile(us, 99);
  m.spread_us_max = percentile(us, 100);
  m.missed_frames = missed;
  m.extra["cpu_s"] = r.cpu_s;
  m.extra["send_errors"] = static_cast<double>(r.send_errors);
  return m;
}

RunMetrics run_loa(const Context& ctx, std::size_t n) {
  RunMetrics m;
  const auto dests = ctx.wire.destinations(n);
  EngineRunOptions eo;
  eo.engine_bin = ctx.opt.engine_bin;
  eo.workdir = ctx.workdir;
  eo.clip_path = ctx.clip_path;
  eo.destinations = dests;
  eo.threads = ctx.opt.threads;
  eo.seconds = ctx.opt.seconds;
  eo.ptime_ms = kPtimeMs;
  const EngineRun e = run_engine(eo, ctx.wire);
  if (!e.ok) {
    m.error = e.error;
    return m;
  }
  m.ok = true;
  const auto& w = e.window;
  // The engine multiplexes RTCP on the RTP port and sends one SR round per
  // second (every 1000/ptime frames) to every destination; the window spans
  // whole seconds, so it holds exactly frames/(1000/ptime) rounds. Only media
  // packets are counted below, as for the other contenders.
  const std::uint64_t frames_per_sr = 1000 / kPtimeMs;
  const std::uint64_t rtcp = e.sr_sent > 0 ? n * (w.frames / frames_per_sr) : 0;
  const std::uint64_t media = w.packets > rtcp ? w.packets - rtcp : 0;
  // Every datagram that left costs the engine the same send path, so the
  // efficiency figure counts them all (media + RTCP); the media-only figure
  // is reported beside it.
  m.pps_per_core = ratio(static_cast<double>(w.packets), w.cpu_s);
  m.extra["media_pps_per_core"] = ratio(static_cast<double>(media), w.cpu_s);
  m.delivered_ratio = ratio(static_cast<double>(media), static_cast<double>(n) * w.frames);
  m.extra["rtcp_packets_window"] = static_cast<double>(rtcp);
  m.spread_us_p50 = e.spread_us_p50;
  m.spread_us_p99 = e.spread_us_p99;
  m.spread_us_max = e.spread_us_max;
  m.missed_frames = static_cast<double>(e.frames_missed);
  m.extra["rss_kib"] = static_cast<double>(e.max_rss_kib);
  m.extra["encode_us_p50"] = e.encode_us_p50;
  m.extra["encode_us_p99"] = e.encode_us_p99;
  m.extra["send_errors"] = static_cast<double>(e.send_errors);
  m.extra["cpu_self_s"] = e.cpu_self_s;
  m.extra["pps_per_core_rusage"] = ratio(static_cast<double>(e.datagrams_sent), e.cpu_self_s);
  m.extra["delivered_ratio_run"] =
      ratio(static_cast<double>(e.tx_total), static_cast<double>(n) * static_cast<double>(e.frames_encoded + e.sr_sent));
  return m;
}

RunMetrics run_gst(const Context& ctx, std::size_t n) {
  RunMetrics m;
  const auto dests = ctx.wire.destinations(n);
  GstRunOptions go;
  go.gst_launch = ctx.opt.gst_launch;
  go.workdir = ctx.workdir;
  go.destinations = dests;
  go.threads = ctx.opt.threads;
  go.seconds = ctx.opt.seconds;
  go.ptime_ms = kPtimeMs;
  const GstRun g = run_gstreamer(go, ctx.wire);
  if (!g.ok) {
    m.error = g.error;
    return m;
  }
  m.ok = true;
  const auto& w = g.window;
  m.pps_per_core = ratio(static_cast<double>(w.packets), w.cpu_s);
  m.delivered_ratio = ratio(static_cast<double>(w.packets), static_cast<double>(n) * w.frames);
  m.extra["cpu_total_s"] = g.cpu_total_s;
  m.extra["sinks"] = static_cast<double>(g.sinks);
  return m;
}

}  // namespace

Runner runner_for(const std::string& name) {
  if (name == "raw") {
    return run_raw;
  }
  if (name == "loa") {
    return run_loa;
  }
  return run_gst;
}

std::string brief(const RunMetrics& m) {
  if (!m.ok) {
    return "FAILED: " + m.error;
  }
  auto f = [](std::optional<double> v, int prec) {
    if (!v) {
      return std::string("n/a");
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", prec, *v);
    return std::string(buf);
  };
  return "pps/core " + f(m.pps_per_core, 0) + ", delivered " + f(m.delivered_ratio, 5) + ", spread p50/p99/max " +
         f(m.spread_us_p50, 0) + "/" + f(m.spread_us_p99, 0) + "/" + f(m.spread_us_max, 0) + " us, missed " +
         f(m.missed_frames, 0);
}

}  // namespace loa::bench::fanout
