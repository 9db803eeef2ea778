// Helpers shared by the bench's scenarios that start local processes: a free
// loopback UDP port, the work directory, this build's loa-engine, the clock,
// the host's load and description, number formatting, the jitter distribution by name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "loa/transport/impairment.h"

namespace loa::bench {

// A UDP port on 127.0.0.1 free right now (the kernel's pick; closed again).
// Throws std::runtime_error.
[[nodiscard]] std::uint16_t free_udp_port();

// `requested` (created if missing) or, if empty, a new temporary directory
// named <prefix>-XXXXXX. Throws on failure.
[[nodiscard]] std::string open_workdir(const std::string& requested, const std::string& prefix);

// The loa-engine of this build (<build>/apps/loa-engine/loa-engine, found from
// /proc/self/exe), or "loa-engine" (looked up in PATH) when that cannot be read.
[[nodiscard]] std::string default_engine_bin();

// CLOCK_MONOTONIC in nanoseconds.
[[nodiscard]] std::int64_t mono_ns();

// The 1, 5 and 15 minute load averages ("/proc/loadavg"): the machine may be
// shared, and the figures mean little without it. "unknown" if unreadable.
[[nodiscard]] std::string load_average();

// "<machine>, <n> CPUs, kernel <release>", for reports.
[[nodiscard]] std::string machine_line();

// `v` with `prec` digits after the point ("%.*f").
[[nodiscard]] std::string fmt_fixed(double v, int prec = 1);

// `v` with 3 digits after the point, or "n/a".
[[nodiscard]] std::string f3(std::optional<double> v);

// "normal", "uniform", anything else: Pareto.
[[nodiscard]] transport::JitterDistribution jitter_distribution(const std::string& name);

}  // namespace loa::bench
