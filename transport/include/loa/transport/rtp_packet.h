#pragma once
// RTP packets (RFC 3550) with RFC 8285 header extensions, read from and written
// to caller-owned byte spans. No allocation; every field is read big-endian
// explicitly. Safe on untrusted input: parse() validates every length.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "loa/transport/status.h"

namespace loa::transport {

inline constexpr std::size_t kRtpHeaderSize = 12;
inline constexpr std::size_t kMaxRtpPacket = 1500;
/// RFC 8285 profile words.
inline constexpr std::uint16_t kOneByteExtensionProfile = 0xBEDE;
inline constexpr std::uint16_t kTwoByteExtensionProfileMask = 0xFFF0;  // 0x100X
inline constexpr std::uint16_t kTwoByteExtensionProfile = 0x1000;

/// A parsed, validated view of an RTP packet. Spans point into the buffer
/// given to parse(); the view is valid as long as that buffer is.
class RtpView {
public:
    /// Validates `packet` (version 2, CSRC list, extension, padding, lengths)
    /// and fills `out`. Any other result than Ok leaves `out` unspecified.
    [[nodiscard]] static Status parse(std::span<const std::uint8_t> packet, RtpView& out) noexcept;

    bool marker() const noexcept { return marker_; }
    std::uint8_t payload_type() const noexcept { return payload_type_; }
    std::uint16_t sequence() const noexcept { return sequence_; }
    std::uint32_t timestamp() const noexcept { return timestamp_; }
    std::uint32_t ssrc() const noexcept { return ssrc_; }
    std::size_t csrc_count() const noexcept { return csrc_count_; }
    std::uint32_t csrc(std::size_t i) const noexcept;
    bool has_padding() const noexcept { return padding_; }

    /// Profile-defined extension block (empty if the X bit is clear).
    std::uint16_t extension_profile() const noexcept { return ext_profile_; }
    std::span<const std::uint8_t> extension_data() const noexcept { return ext_data_; }

    /// Finds an RFC 8285 element (one- or two-byte form) by id; nullopt if the
    /// packet has no such element or no RFC 8285 extension.
    std::optional<std::span<const std::uint8_t>> find_extension(std::uint8_t id) const noexcept;

    std::span<const std::uint8_t> payload() const noexcept { return payload_; }
    std::span<const std::uint8_t> bytes() const noexcept { return bytes_; }

private:
    std::span<const std::uint8_t> bytes_;
    std::span<const std::uint8_t> payload_;
    std::span<const std::uint8_t> ext_data_;
    std::span<const std::uint8_t> csrcs_;
    std::uint32_t timestamp_ = 0;
    std::uint32_t ssrc_ = 0;
    std::uint16_t sequence_ = 0;
    std::uint16_t ext_profile_ = 0;
    std::uint8_t payload_type_ = 0;
    std::uint8_t csrc_count_ = 0;
    bool marker_ = false;
    bool padding_ = false;
};

/// One RFC 8285 element to write.
struct RtpExtensionElement {
    std::uint8_t id = 0;                         // 1..14 one-byte, 1..255 two-byte
    std::span<const std::uint8_t> data;          // 1..16 bytes one-byte, 0..255 two-byte
};

struct RtpHeaderFields {
    bool marker = false;
    std::uint8_t payload_type = 0;
    std::uint16_t sequence = 0;
    std::uint32_t timestamp = 0;
    std::uint32_t ssrc = 0;
    std::span<const std::uint32_t> csrcs;        // at most 15
};

/// Writes a complete RTP packet (header, optional RFC 8285 extension block,
/// payload) into `out`. Chooses the one-byte form when every element fits it,
/// else the two-byte form. On Ok, `written` is the packet length.
/// BufferTooSmall if `out` cannot hold it; BadExtension for an invalid element.
[[nodiscard]] Status write_rtp(std::span<std::uint8_t> out, const RtpHeaderFields& header,
                               std::span<const RtpExtensionElement> extensions,
                               std::span<const std::uint8_t> payload,
                               std::size_t& written) noexcept;

/// RFC 5761 demultiplexing: true if the second byte marks an RTCP packet type
/// (192..223), which RTP payload types must avoid.
bool looks_like_rtcp(std::span<const std::uint8_t> packet) noexcept;

/// Signed distance from sequence a to b, accounting for 16-bit wrap
/// (seq_delta(65535, 0) == 1).
inline std::int32_t seq_delta(std::uint16_t a, std::uint16_t b) noexcept {
    return static_cast<std::int16_t>(static_cast<std::uint16_t>(b - a));
}

/// Extends 16-bit sequence numbers to a monotonically increasing 64-bit count.
class SequenceUnwrapper {
public:
    std::int64_t unwrap(std::uint16_t seq) noexcept;
    void reset() noexcept { started_ = false; }

private:
    std::int64_t last_ = 0;
    bool started_ = false;
};

}  // namespace loa::transport
