#include "loa-studio/packetiser.h"

#include <algorithm>
#include <stdexcept>

#include "loa/transport/rtcp_packet.h"

namespace loa::studio {

void validate(const PacketiserConfig& c) {
    if (c.payload_type < 96 || c.payload_type > 127) {
        throw std::invalid_argument("payload type " + std::to_string(c.payload_type) +
                                    " is not a dynamic payload type (96..127)");
    }
    if (c.cname.empty() || c.cname.size() > 255) {
        throw std::invalid_argument("CNAME must be 1..255 bytes");
    }
    if (!codecs::is_valid_ptime_ms(c.opus.ptime_ms)) {
        throw std::invalid_argument("packet time " + std::to_string(c.opus.ptime_ms) +
                                    " ms is not one of 10, 20, 40, 60");
    }
    if (c.opus.bitrate_bps < 6000 || c.opus.bitrate_bps > 510000) {
        throw std::invalid_argument("bitrate " + std::to_string(c.opus.bitrate_bps) +
                                    " b/s is outside 6000..510000");
    }
}

namespace {
const PacketiserConfig& validated(const PacketiserConfig& c) {
    validate(c);
    return c;
}
}  // namespace

Packetiser::Packetiser(const PacketiserConfig& config)
    : config_(validated(config)),
      encoder_(config.opus),
      frame_(codecs::frame_samples(config.opus.ptime_ms), 0.0f),
      next_sequence_(config.first_sequence) {}

std::span<const std::uint8_t> Packetiser::push(std::span<const float> pcm) noexcept {
    const std::size_t n = std::min(pcm.size(), pending_room());
    std::copy_n(pcm.begin(), n, frame_.begin() + static_cast<std::ptrdiff_t>(fill_));
    fill_ += n;
    if (fill_ < frame_.size()) return {};
    return packetise();
}

std::span<const std::uint8_t> Packetiser::flush() noexcept {
    if (fill_ == 0) return {};
    std::fill(frame_.begin() + static_cast<std::ptrdiff_t>(fill_), frame_.end(), 0.0f);
    fill_ = frame_.size();
    return packetise();
}

std::span<const std::uint8_t> Packetiser::packetise() noexcept {
    fill_ = 0;
    const std::uint64_t index = frame_index_++;
    // Keep every packet within one MTU-sized RTP datagram: libopus caps the
    // packet at the space given.
    const auto room = std::span<std::uint8_t>(opus_).first(transport::kMaxRtpPacket - transport::kRtpHeaderSize);
    std::size_t opus_len = 0;
    if (encoder_.encode(frame_, room, opus_len) != codecs::Status::Ok) {
        ++encode_errors_;
        return {};
    }
    ++frames_encoded_;
    transport::RtpHeaderFields h;
    h.marker = packets_ == 0;  // start of the talkspurt (RFC 3551 4.1)
    h.payload_type = config_.payload_type;
    h.sequence = next_sequence_;
    h.timestamp = timestamp_of(index * frame_.size());
    h.ssrc = config_.ssrc;
    std::size_t written = 0;
    if (transport::write_rtp(rtp_, h, {}, std::span<const std::uint8_t>(opus_.data(), opus_len), written) !=
        transport::Status::Ok) {
        ++encode_errors_;
        return {};
    }
    ++next_sequence_;
    ++packets_;
    payload_octets_ += opus_len;
    return std::span<const std::uint8_t>(rtp_.data(), written);
}

std::span<const std::uint8_t> Packetiser::build_rtcp(std::uint64_t sample_now, std::uint64_t ntp, bool bye) noexcept {
    transport::RtcpWriter w(rtcp_);
    transport::RtcpSenderInfo info;
    info.ntp_timestamp = ntp;
    info.rtp_timestamp = timestamp_of(sample_now);
    info.packet_count = static_cast<std::uint32_t>(packets_);
    info.octet_count = static_cast<std::uint32_t>(payload_octets_);
    if (w.add_sr(config_.ssrc, info) != transport::Status::Ok) return {};
    if (w.add_sdes_cname(config_.ssrc, config_.cname) != transport::Status::Ok) return {};
    if (bye && w.add_bye(config_.ssrc) != transport::Status::Ok) return {};
    return w.bytes();
}

}  // namespace loa::studio
