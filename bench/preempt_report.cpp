// `loa-bench preempt`'s report: the figures pooled over the rounds, the
// targets, and the JSON object or the table.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "bench_util.h"
#include "preempt_internal.h"
#include "report.h"

namespace loa::bench::preempt {

namespace {

constexpr double kTargetPacketP99Ms = 40.0;
constexpr double kTargetPacketMaxMs = 60.0;
constexpr double kTargetAudioP99Ms = 80.0;

struct Dist {
  std::optional<double> p50, p99, max;
  std::size_t n = 0;
};

Dist dist(const std::vector<double>& v) {
  return Dist{percentile(v, 50), percentile(v, 99), percentile(v, 100), v.size()};
}

JsonObject dist_json(const Dist& d) {
  JsonObject o;
  const auto r = [](std::optional<double> v) -> std::optional<double> {
    if (!v) return v;
    return std::round(*v * 1000.0) / 1000.0;
  };
  o.add("p50", r(d.p50)).add("p99", r(d.p99)).add("max", r(d.max));
  return o;
}

}  // namespace

void report_preempt(const PreemptOptions& opt, const Wire& wire, std::size_t n_wire, std::uint32_t hearing,
                    const std::vector<Round>& rounds, const std::string& load_before, const std::string& load_after,
                    const std::string& notes, const std::string& error) {
  // Pooled over the rounds; switched and confirmed are the worst round's.
  std::vector<double> packet_ms, audio_ms, confirm_ms, raise_ms;
  constexpr std::size_t kNone = SIZE_MAX;
  std::size_t switched = kNone;
  std::size_t confirmed = kNone;
  bool captured = !rounds.empty();
  std::uint64_t drops = 0;
  for (const auto& rd : rounds) {
    packet_ms.insert(packet_ms.end(), rd.first_packet_ms.begin(), rd.first_packet_ms.end());
    audio_ms.insert(audio_ms.end(), rd.first_audio_ms.begin(), rd.first_audio_ms.end());
    confirm_ms.insert(confirm_ms.end(), rd.confirm_ms.begin(), rd.confirm_ms.end());
    raise_ms.push_back(rd.raise_call_ms);
    captured = captured && rd.captured;
    if (rd.captured) switched = std::min(switched, rd.switched);
    confirmed = std::min(confirmed, rd.confirm_ms.size());
    drops += rd.capture_drops;
  }
  if (!captured) switched = kNone;
  const Dist packet = dist(packet_ms);
  const Dist audio = dist(audio_ms);
  const Dist confirm = dist(confirm_ms);
  const bool pass_packet = captured && packet.p99 && *packet.p99 <= kTargetPacketP99Ms && packet.max &&
                           *packet.max <= kTargetPacketMaxMs;
  const bool pass_audio = audio.p99 && *audio.p99 <= kTargetAudioP99Ms && audio.n == rounds.size() * opt.speakers;
  const bool pass_switched = captured && switched == n_wire && drops == 0;
  // The wire check (veth only): every frame goes to all wire clusters and
  // all speakers alike and only the former cross the veth, so the engine's
  // datagrams_sent over a round, scaled by N / (N + speakers), must fall
  // between the device TX counts read inside and outside the two engine
  // counts, give or take one frame's wire packets at each end (a shard
  // counts a frame's datagrams only once it has sent its whole slice); and
  // the device must have dropped nothing (the capture taps packets just
  // before the device counts them).
  const double wire_share = static_cast<double>(n_wire) / static_cast<double>(n_wire + opt.speakers);
  const double kSlack = static_cast<double>(n_wire);
  const auto wire_expected = [&](const Round& rd) { return static_cast<double>(rd.engine_datagrams) * wire_share; };
  const auto wire_ok = [&](const Round& rd) {
    const double e = wire_expected(rd);
    return rd.wire_tx_errors == 0 && e >= static_cast<double>(rd.wire_tx_inner) - kSlack &&
           e <= static_cast<double>(rd.wire_tx_outer) + kSlack;
  };
  std::optional<bool> pass_wire;
  if (wire.kind == WireKind::veth && !rounds.empty()) {
    pass_wire = std::all_of(rounds.begin(), rounds.end(), wire_ok);
  }
  const std::string machine = machine_line();

  if (opt.json) {
    JsonObject results;
    results.add("first_packet_ms", dist_json(packet))
        .add("first_audio_ms", dist_json(audio))
        .add("confirm_ms", dist_json(confirm));
    if (switched != kNone) {
      results.add_int("switched", static_cast<double>(switched))
          .add_int("missed", static_cast<double>(n_wire - switched));
    } else {
      results.add_null("switched").add_null("missed");
    }
    const std::optional<double> confirmed_json =
        confirmed != kNone ? std::optional<double>(static_cast<double>(confirmed)) : std::nullopt;
    results.add_int("confirmed", confirmed_json)
        .add_int("speakers", static_cast<double>(opt.speakers))
        .add_int("rounds", static_cast<double>(rounds.size()))
        .add_int("first_packet_samples", static_cast<double>(packet.n))
        .add_int("first_audio_samples", static_cast<double>(audio.n))
        .add_int("confirm_samples", static_cast<double>(confirm.n))
        .add("raise_call_ms", dist_json(dist(raise_ms)))
        .add_int("confirm_poll_ms", opt.poll_ms);
    std::string per_round = "[";
    for (std::size_t i = 0; i < rounds.size(); ++i) {
      const auto& rd = rounds[i];
      JsonObject o;
      o.add_int("alert_id", static_cast<double>(rd.alert_id))
          .add_int("clusters_targeted", rd.targeted)
          .add_int("switched", rd.captured ? std::optional<double>(static_cast<double>(rd.switched)) : std::nullopt)
          .add("first_packet_ms", dist_json(dist(rd.first_packet_ms)))
          .add("first_packet_min_ms", percentile(rd.first_packet_ms, 0))
          .add("first_audio_ms", dist_json(dist(rd.first_audio_ms)))
          .add("confirm_ms", dist_json(dist(rd.confirm_ms)))
          .add_int("confirmed", static_cast<double>(rd.confirm_ms.size()))
          .add("raise_call_ms", std::optional<double>(rd.raise_call_ms))
          .add_int("capture_packets", static_cast<double>(rd.capture_packets))
          .add_int("capture_drops", static_cast<double>(rd.capture_drops))
          .add_int("engine_datagrams_sent", static_cast<double>(rd.engine_datagrams))
          .add_int("engine_send_errors", static_cast<double>(rd.send_errors))
          .add("return_ms", rd.return_ms);
      if (wire.kind == WireKind::veth) {
        o.add_int("wire_tx_inner", static_cast<double>(rd.wire_tx_inner))
            .add_int("wire_tx_outer", static_cast<double>(rd.wire_tx_outer))
            .add_int("wire_tx_expected", wire_expected(rd))
            .add_int("wire_tx_errors", static_cast<double>(rd.wire_tx_errors))
            .add("wire_check", wire_ok(rd));
      }
      per_round += (i == 0 ? "" : ",") + o.str();
    }
    per_round += "]";
    JsonObject top;
    top.add("bench", "preempt")
        .add_int("clusters", static_cast<double>(opt.clusters))
        .add("results", results)
        .add_int("wire_destinations", static_cast<double>(n_wire))
        .add_int("clusters_hearing_schedule", hearing)
        .add("wire", wire.name())
        .add("wire_note", wire.note)
        .add("machine", machine)
        .add("load_before", load_before)
        .add("load_after", load_after)
        .add_int("speaker_block_ms", opt.speaker_block_ms)
        .add("pass_first_packet", pass_packet)
        .add("pass_first_audio", pass_audio)
        .add("pass_switched", pass_switched);
    if (pass_wire) {
      top.add("pass_wire_counts", *pass_wire);
    } else {
      top.add_null("pass_wire_counts");
    }
    top.add("pass", pass_packet && pass_audio && pass_switched && pass_wire.value_or(true) && error.empty())
        .add_raw("per_round", per_round);
    if (!notes.empty()) top.add("notes", notes);
    if (!error.empty()) top.add("error", error);
    std::cout << top.str() << std::endl;
  } else {
    std::printf("preempt: RaiseAlert to %zu wire clusters + %zu loa-speakers on %s, %zu round(s) (%s; load %s -> %s)\n",
                n_wire, opt.speakers, wire.name(), rounds.size(), machine.c_str(), load_before.c_str(),
                load_after.c_str());
    std::printf("  %s\n", wire.note.c_str());
    std::printf("%-40s %8s %9s %9s %9s\n", "from just before RaiseAlert is written", "samples", "p50 ms", "p99 ms",
                "max ms");
    const auto row = [](const char* name, const Dist& d) {
      std::printf("%-40s %8zu %9s %9s %9s\n", name, d.n, f3(d.p50).c_str(), f3(d.p99).c_str(), f3(d.max).c_str());
    };
    row("(a) first alert packet per wire dest", packet);
    row("(b) first alert audio decoded, speakers", audio);
    row("(c) confirmation seen by the bench", confirm);
    row("    RaiseAlert call answered", dist(raise_ms));
    const std::string switched_text = switched != kNone ? std::to_string(switched) : std::string("n/a");
    const std::string confirmed_text = confirmed != kNone ? std::to_string(confirmed) : std::string("n/a");
    std::printf("switched %s of %zu (worst round), confirmed %s of %zu (worst round), capture drops %llu; "
                "confirmation poll every %u ms\n",
                switched_text.c_str(), n_wire, confirmed_text.c_str(), opt.speakers,
                static_cast<unsigned long long>(drops), opt.poll_ms);
    for (std::size_t i = 0; i < rounds.size(); ++i) {
      const auto& rd = rounds[i];
      std::printf("  round %zu: first packet min %s ms; engine sent %llu datagrams (%llu errors)", i + 1,
                  f3(percentile(rd.first_packet_ms, 0)).c_str(), static_cast<unsigned long long>(rd.engine_datagrams),
                  static_cast<unsigned long long>(rd.send_errors));
      if (wire.kind == WireKind::veth) {
        std::printf("; %s TX %llu..%llu packets, expected %.0f, TX errors %llu: %s", wire.device.c_str(),
                    static_cast<unsigned long long>(rd.wire_tx_inner),
                    static_cast<unsigned long long>(rd.wire_tx_outer),
                    wire_expected(rd), static_cast<unsigned long long>(rd.wire_tx_errors),
                    wire_ok(rd) ? "ok" : "MISMATCH");
      }
      std::printf("\n");
    }
    std::printf("targets: first packet p99 <= %.0f ms and max <= %.0f ms: %s; first audio p99 <= %.0f ms: %s; "
                "every destination switched: %s; wire counts: %s\n",
                kTargetPacketP99Ms, kTargetPacketMaxMs, pass_packet ? "PASS" : "FAIL", kTargetAudioP99Ms,
                pass_audio ? "PASS" : "FAIL", pass_switched ? "PASS" : "FAIL",
                pass_wire ? (*pass_wire ? "PASS" : "FAIL") : "n/a");
    if (!notes.empty()) std::printf("notes: %s\n", notes.c_str());
    if (!error.empty()) std::printf("FAILED: %s\n", error.c_str());
  }
}

}  // namespace loa::bench::preempt
