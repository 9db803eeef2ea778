#include "loa/transport/cluster_status.h"

#include <algorithm>

#include "byte_order.h"

namespace loa::transport {

namespace {

constexpr std::uint8_t kFlagAmplifierOn = 0x01;
constexpr std::uint8_t kMaxVolumePct = 100;





}  // namespace

Status encode_cluster_status(const ClusterStatus& s, std::span<std::uint8_t> out) noexcept {
    if (out.size() < kClusterStatusSize) return Status::BufferTooSmall;
    out[0] = kClusterStatusVersion;
    out[1] = s.amplifier_on ? kFlagAmplifierOn : std::uint8_t{0};
    out[2] = s.volume_pct;
    out[3] = 0;
    write_u16(out, 4, s.buffer_delay_ms);
    write_u16(out, 6, 0);
    write_u32(out, 8, s.playing_ssrc);
    write_u32(out, 12, s.packets_received);
    write_u32(out, 16, s.packets_lost);
    write_u32(out, 20, s.packets_late);
    write_u32(out, 24, s.packets_malformed);
    write_u32(out, 28, s.frames_concealed);
    write_u32(out, 32, s.underruns);
    write_u32(out, 36, s.uptime_s);
    return Status::Ok;
}

Status decode_cluster_status(std::span<const std::uint8_t> in, ClusterStatus& s) noexcept {
    if (in.empty()) return Status::Truncated;
    if (in[0] == 0) return Status::BadVersion;
    if (in.size() < kClusterStatusSize) return Status::Truncated;
    ClusterStatus r;
    r.amplifier_on = (in[1] & kFlagAmplifierOn) != 0;
    r.volume_pct = std::min(in[2], kMaxVolumePct);
    r.buffer_delay_ms = read_u16(in, 4);
    r.playing_ssrc = read_u32(in, 8);
    r.packets_received = read_u32(in, 12);
    r.packets_lost = read_u32(in, 16);
    r.packets_late = read_u32(in, 20);
    r.packets_malformed = read_u32(in, 24);
    r.frames_concealed = read_u32(in, 28);
    r.underruns = read_u32(in, 32);
    r.uptime_s = read_u32(in, 36);
    s = r;
    return Status::Ok;
}

}  // namespace loa::transport
