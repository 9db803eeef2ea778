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

/// One RFC 8285 element to write, or one element read by RtpExtensionReader.
struct RtpExtensionElement {
    std::uint8_t id = 0;                         // 1..14 one-byte, 1..255 two-byte
    std::span<const std::uint8_t> data;          // 1..16 bytes one-byte, 0..255 two-byte
};

/// True for the RFC 8285 profile words (0xBEDE, 0x1000..0x100F).
inline bool is_rfc8285_profile(std::uint16_t profile) noexcept {
    return profile == kOneByteExtensionProfile ||
           (profile & kTwoByteExtensionProfileMask) == kTwoByteExtensionProfile;
}

/// Walks the elements of an RFC 8285 extension block (the bytes after the
/// 4-byte extension header). Padding bytes (id 0) are skipped; in the one-byte
/// form id 15 ends the walk (its length is ignored). Every element is bounds
/// checked: a header or body running past the block ends the walk with
/// malformed() true. A profile that is not RFC 8285 yields no elements.
/// Spans returned point into `block`. Any thread; no allocation.
class RtpExtensionReader {
public:
    RtpExtensionReader(std::uint16_t profile, std::span<const std::uint8_t> block) noexcept;

    /// Next element into `e`; false at the end of the block or on a malformed one.
    bool next(RtpExtensionElement& e) noexcept;
    /// True once next() stopped on an element that runs past the block.
    bool malformed() const noexcept { return malformed_; }

private:
    std::span<const std::uint8_t> block_;
    std::size_t pos_ = 0;
    bool one_byte_ = false;
    bool done_ = false;
    bool malformed_ = false;
};

/// A parsed, validated view of an RTP packet. Spans point into the buffer
/// given to parse(); the view is valid as long as that buffer is.
class RtpView {
public:
    /// Validates `packet` and fills `out`. Checks, in this order:
    ///   Truncated     fewer than 12 bytes (including an empty span);
    ///   BadVersion    version field is not 2;
    ///   NotRtp        second byte is 192..223 (an RTCP packet, RFC 5761);
    ///   BadCsrcCount  the CSRC list runs past the end;
    ///   BadExtension  X set and the 4-byte extension header or its declared
    ///                 length runs past the end, or an RFC 8285 block
    ///                 (0xBEDE / 0x100X) holds an element running past it;
    ///   BadPadding    P set and no byte follows the header, or the padding
    ///                 count (last byte, which counts itself) is 0 or larger
    ///                 than the bytes after the header.
    /// The payload excludes the padding. Any other result than Ok leaves `out`
    /// unspecified. Any thread; no allocation.
    [[nodiscard]] static Status parse(std::span<const std::uint8_t> packet, RtpView& out) noexcept;

    bool marker() const noexcept { return marker_; }
    std::uint8_t payload_type() const noexcept { return payload_type_; }
    std::uint16_t sequence() const noexcept { return sequence_; }
    std::uint32_t timestamp() const noexcept { return timestamp_; }
    std::uint32_t ssrc() const noexcept { return ssrc_; }
    std::size_t csrc_count() const noexcept { return csrc_count_; }
    /// CSRC number i (0-based); 0 when i >= csrc_count().
    std::uint32_t csrc(std::size_t i) const noexcept;
    bool has_padding() const noexcept { return padding_; }

    /// Profile-defined extension block (empty if the X bit is clear).
    std::uint16_t extension_profile() const noexcept { return ext_profile_; }
    std::span<const std::uint8_t> extension_data() const noexcept { return ext_data_; }
    bool has_extension() const noexcept { return extension_; }

    /// Finds an RFC 8285 element (one- or two-byte form) by id; nullopt if the
    /// packet has no such element or no RFC 8285 extension. With duplicate ids
    /// the first element wins. Id 0 (padding) is never found.
    std::optional<std::span<const std::uint8_t>> find_extension(std::uint8_t id) const noexcept;
    /// Reader over the RFC 8285 elements (none for another profile).
    RtpExtensionReader extensions() const noexcept { return {ext_profile_, ext_data_}; }

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
    bool extension_ = false;
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
/// payload; never padding) into `out`. With no elements the X bit is clear.
/// Chooses the one-byte form (0xBEDE) when every id is 1..14 and every size
/// 1..16, else the two-byte form (0x1000); the block is zero-padded to a
/// multiple of 4 bytes. On Ok, `written` is the packet length. Errors, `out`
/// contents then unspecified and `written` 0:
///   BadPacketType   payload_type > 127, or marker + payload type would make
///                   the second byte 192..223 (RFC 5761: read back as RTCP);
///   BadCsrcCount    more than 15 CSRCs;
///   BadExtension    an element with id 0, or (two-byte form) data over 255
///                   bytes, or a block longer than 65535 words;
///   BufferTooSmall  `out` cannot hold the packet.
/// Any thread; no allocation.
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

/// Extends 16-bit sequence numbers to a 64-bit count. The first value is
/// returned as is (0..65535); each later one is placed at the signed 16-bit
/// distance (seq_delta) from the highest value seen so far, so forward wraps
/// keep counting up (65535 -> 65536) and late, reordered packets map below the
/// highest (possibly negative before the first). Not thread-safe; one owner.
class SequenceUnwrapper {
public:
    std::int64_t unwrap(std::uint16_t seq) noexcept;
    /// Highest value returned so far (meaningless before the first unwrap()).
    std::int64_t highest() const noexcept { return last_; }
    void reset() noexcept { started_ = false; }

private:
    std::int64_t last_ = 0;
    bool started_ = false;
};

}  // namespace loa::transport
