#pragma once
// The speaker's status report, carried in an RTCP APP packet (name "LOAS",
// subtype 1) next to its RR and SDES CNAME (= cluster id). Fixed big-endian
// layout, version byte first, so old engines can skip newer fields.

#include <cstddef>
#include <cstdint>
#include <span>

#include "loa/transport/status.h"

namespace loa::transport {

inline constexpr char kClusterStatusAppName[5] = "LOAS";
inline constexpr std::uint8_t kClusterStatusSubtype = 1;
inline constexpr std::uint8_t kClusterStatusVersion = 1;
/// Encoded size of version 1 (a multiple of 4 as RTCP APP data requires).
inline constexpr std::size_t kClusterStatusSize = 40;

struct ClusterStatus {
    std::uint32_t playing_ssrc = 0;       // SSRC being played, 0 = none
    std::uint8_t volume_pct = 100;        // software volume, 0..100
    bool amplifier_on = false;
    std::uint16_t buffer_delay_ms = 0;    // current jitter-buffer delay
    std::uint32_t packets_received = 0;
    std::uint32_t packets_lost = 0;
    std::uint32_t packets_late = 0;
    std::uint32_t packets_malformed = 0;
    std::uint32_t frames_concealed = 0;
    std::uint32_t underruns = 0;
    std::uint32_t uptime_s = 0;
};

/// Writes kClusterStatusSize bytes; BufferTooSmall if `out` is shorter.
[[nodiscard]] Status encode_cluster_status(const ClusterStatus& s, std::span<std::uint8_t> out) noexcept;
/// Reads a status; Truncated if shorter than version 1, BadVersion for version 0.
[[nodiscard]] Status decode_cluster_status(std::span<const std::uint8_t> in, ClusterStatus& s) noexcept;

}  // namespace loa::transport
