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

// Version 1 layout, all integers big-endian:
//   offset  size  field
//        0     1  version (= 1)
//        1     1  flags: bit 0 amplifier_on; bits 1..7 reserved, sent as 0
//        2     1  volume_pct
//        3     1  reserved, sent as 0
//        4     2  buffer_delay_ms
//        6     2  reserved, sent as 0
//        8     4  playing_ssrc
//       12     4  packets_received
//       16     4  packets_lost
//       20     4  packets_late
//       24     4  packets_malformed
//       28     4  frames_concealed
//       32     4  underruns
//       36     4  uptime_s
// Later versions only append fields (and may use reserved bits/bytes), so a
// version-1 reader accepts any version >= 1 and reads these 40 bytes.

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

/// Writes kClusterStatusSize bytes (version 1); BufferTooSmall if `out` is
/// shorter. volume_pct is written as given. Any thread; no allocation.
[[nodiscard]] Status encode_cluster_status(const ClusterStatus& s, std::span<std::uint8_t> out) noexcept;
/// Reads a status; Truncated if empty or shorter than version 1 (40 bytes),
/// BadVersion for version 0. Newer versions are read as version 1; bytes past
/// 40 and reserved bits are ignored. volume_pct above 100 is clamped to 100.
/// Any other result than Ok leaves `s` unchanged. Any thread; no allocation.
[[nodiscard]] Status decode_cluster_status(std::span<const std::uint8_t> in, ClusterStatus& s) noexcept;

}  // namespace loa::transport
