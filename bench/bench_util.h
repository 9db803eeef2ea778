// Helpers shared by the bench's scenarios that start local processes: a free
// loopback UDP port, the work directory, number formatting, the jitter
// distribution by name.
#pragma once

#include <cstdint>
#include <string>

#include "loa/transport/impairment.h"

namespace loa::bench {

// A UDP port on 127.0.0.1 free right now (the kernel's pick; closed again).
// Throws std::runtime_error.
[[nodiscard]] std::uint16_t free_udp_port();

// `requested` (created if missing) or, if empty, a new temporary directory
// named <prefix>-XXXXXX. Throws on failure.
[[nodiscard]] std::string open_workdir(const std::string& requested, const std::string& prefix);

// `v` with `prec` digits after the point ("%.*f").
[[nodiscard]] std::string fmt_fixed(double v, int prec = 1);

// "normal", "uniform", anything else: Pareto.
[[nodiscard]] transport::JitterDistribution jitter_distribution(const std::string& name);

}  // namespace loa::bench
