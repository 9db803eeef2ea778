#pragma once
// Opus + RTP packetiser of loa-studio: collects 10 ms blocks into one packet
// time of audio and encodes and wraps it in RTP (RFC 3550 / RFC 7587) the
// moment the frame is complete; builds the RTCP SR + SDES CNAME (+ BYE)
// compound that describes the stream.
//
// Threads: one owner (the studio's io thread). push(), flush() and
// build_rtcp() do not allocate, lock or block.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "loa/codecs/audio_format.h"
#include "loa/codecs/opus_encoder.h"
#include "loa/transport/rtp_packet.h"

namespace loa::studio {

struct PacketiserConfig {
    std::uint32_t ssrc = 0;
    std::uint16_t first_sequence = 0;
    std::uint32_t first_timestamp = 0;
    std::uint8_t payload_type = 111;  // dynamic, 96..127
    std::string cname;                // RTCP SDES CNAME, 1..255 bytes
    codecs::OpusEncoderConfig opus;   // ptime, bitrate, content, FEC
};

/// Throws std::invalid_argument naming the setting that is out of range.
void validate(const PacketiserConfig& config);

class Packetiser {
public:
    /// Validates (std::invalid_argument) and creates the encoder
    /// (codecs::Error).
    explicit Packetiser(const PacketiserConfig& config);

    /// Appends audio (any length; a 10 ms block normally). Returns the RTP
    /// packet when this call completed a frame, else an empty span. At most
    /// one frame may complete per call: `pcm` must not be longer than
    /// pending_room(). The span points into an internal buffer valid until
    /// the next push()/flush(). An encoder failure drops the frame (counted
    /// in encode_errors(); the sequence number does not advance, the
    /// timestamp does, so the receiver sees a gap in time, not a loss).
    std::span<const std::uint8_t> push(std::span<const float> pcm) noexcept;

    /// Pads a partly filled frame with silence and packetises it; empty span
    /// when nothing is pending.
    std::span<const std::uint8_t> flush() noexcept;

    /// Samples still missing from the frame being collected.
    std::size_t pending_room() const noexcept { return frame_.size() - fill_; }

    /// RTCP compound: SR (sender info: `ntp`, the RTP timestamp of stream
    /// sample `sample_now`, packet and payload-octet counts) + SDES CNAME,
    /// plus BYE when `bye`. Span into an internal buffer valid until the next
    /// build_rtcp(); empty only on a broken invariant (CNAME validated).
    std::span<const std::uint8_t> build_rtcp(std::uint64_t sample_now, std::uint64_t ntp, bool bye) noexcept;

    /// RTP timestamp of stream sample `n` (first_timestamp + n, modulo 2^32).
    std::uint32_t timestamp_of(std::uint64_t n) const noexcept {
        return static_cast<std::uint32_t>(config_.first_timestamp + n);
    }

    /// Passes the receivers' loss report on to the encoder's FEC hint.
    /// BadArgument outside 0..100.
    [[nodiscard]] codecs::Status set_expected_loss(int pct) noexcept { return encoder_.set_expected_loss(pct); }

    const PacketiserConfig& config() const noexcept { return config_; }
    std::uint64_t frames_encoded() const noexcept { return frames_encoded_; }
    std::uint64_t encode_errors() const noexcept { return encode_errors_; }
    std::uint64_t packets() const noexcept { return packets_; }
    std::uint64_t payload_octets() const noexcept { return payload_octets_; }

private:
    std::span<const std::uint8_t> packetise() noexcept;

    PacketiserConfig config_;
    codecs::OpusEncoder encoder_;
    std::vector<float> frame_;
    std::size_t fill_ = 0;
    std::uint64_t frame_index_ = 0;  // frames completed (encoded or dropped)
    std::uint16_t next_sequence_;
    std::uint64_t frames_encoded_ = 0;
    std::uint64_t encode_errors_ = 0;
    std::uint64_t packets_ = 0;
    std::uint64_t payload_octets_ = 0;
    std::array<std::uint8_t, codecs::kMaxOpusPacketBytes> opus_{};
    std::array<std::uint8_t, codecs::kMaxOpusPacketBytes + 64> rtp_{};
    std::array<std::uint8_t, 512> rtcp_{};
};

}  // namespace loa::studio
