#pragma once
// RTCP (RFC 3550): parsing of compound packets into a fixed-capacity structure
// (no allocation) and a writer that appends packets into a caller buffer.
// RTCP shares the RTP port (RFC 5761); see looks_like_rtcp().

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "loa/transport/status.h"

namespace loa::transport {

enum class RtcpType : std::uint8_t { SR = 200, RR = 201, SDES = 202, BYE = 203, APP = 204 };

struct RtcpReportBlock {
    std::uint32_t ssrc = 0;            // source this block reports on
    std::uint8_t fraction_lost = 0;    // fixed point /256 since the last report
    std::int32_t cumulative_lost = 0;  // 24-bit signed
    std::uint32_t highest_seq = 0;     // extended highest sequence received
    std::uint32_t jitter = 0;          // interarrival jitter, RTP timestamp units
    std::uint32_t lsr = 0;             // middle 32 bits of the last SR's NTP time
    std::uint32_t dlsr = 0;            // delay since that SR, 1/65536 s
};

struct RtcpSenderInfo {
    std::uint64_t ntp_timestamp = 0;   // 32.32 fixed point seconds since 1900
    std::uint32_t rtp_timestamp = 0;
    std::uint32_t packet_count = 0;
    std::uint32_t octet_count = 0;
};

/// Everything Loa reads from one compound packet. Elements past the fixed
/// capacities are skipped (not an error); sizes say how many were kept.
struct RtcpCompound {
    static constexpr std::size_t kMaxBlocks = 31;
    static constexpr std::size_t kMaxSdes = 8;
    static constexpr std::size_t kMaxBye = 31;
    static constexpr std::size_t kMaxApp = 4;

    struct Sdes {
        std::uint32_t ssrc = 0;
        std::string_view cname;  // points into the parsed buffer; empty if none
    };
    struct App {
        std::uint32_t ssrc = 0;
        std::uint8_t subtype = 0;
        std::array<char, 4> name{};
        std::span<const std::uint8_t> data;  // points into the parsed buffer
    };

    bool has_sr = false;
    std::uint32_t sender_ssrc = 0;  // of the SR or RR
    RtcpSenderInfo sender_info;
    bool has_rr = false;
    std::array<RtcpReportBlock, kMaxBlocks> blocks{};
    std::size_t block_count = 0;
    std::array<Sdes, kMaxSdes> sdes{};
    std::size_t sdes_count = 0;
    std::array<std::uint32_t, kMaxBye> bye{};
    std::size_t bye_count = 0;
    std::array<App, kMaxApp> apps{};
    std::size_t app_count = 0;
};

/// Validates and parses a compound RTCP packet: each sub-packet must have
/// version 2, a length that fits, a valid padding and a known or skippable
/// type; the first must be SR or RR unless `require_report_first` is false.
/// The whole packet is validated before Ok is returned; any other result
/// leaves `out` unspecified. Results:
///   Truncated      empty input, or fewer than 4 bytes left for a sub-packet
///                  header;
///   BadVersion     a sub-packet's version field is not 2;
///   BadLength      a declared length runs past the end, or a sub-packet is
///                  too short for what it declares (report/source count,
///                  SR sender info, APP name, BYE reason), or an SDES chunk
///                  or item runs past its sub-packet or lacks its null item;
///   BadPadding     P set on a sub-packet other than the last, or its padding
///                  count is 0 or larger than the sub-packet body;
///   BadPacketType  the first sub-packet is not SR/RR (when required).
/// Types other than 200..204 (e.g. 205/206 feedback, XR) are skipped once
/// their header and length are valid. sender_ssrc comes from the first SR or
/// RR; report blocks of every SR/RR are collected. Of each SDES chunk the
/// first CNAME item is kept (other items are skipped). Any thread; no
/// allocation; spans and string_views point into `packet`.
[[nodiscard]] Status parse_rtcp(std::span<const std::uint8_t> packet, RtcpCompound& out,
                                bool require_report_first = true) noexcept;

/// Appends RTCP packets to a buffer. Each add_*() returns BufferTooSmall and
/// leaves the buffer unchanged when the packet would not fit. Invalid
/// arguments also leave it unchanged:
///   BadLength      more than 31 report blocks, a CNAME over 255 bytes, an
///                  APP name that is not exactly 4 characters, APP data that
///                  is not a multiple of 4 bytes or over 262132 bytes;
///   BadPacketType  an APP subtype over 31.
/// Writes no padding (P bit clear). One owner; no allocation.
class RtcpWriter {
public:
    explicit RtcpWriter(std::span<std::uint8_t> out) noexcept : out_(out) {}

    [[nodiscard]] Status add_sr(std::uint32_t ssrc, const RtcpSenderInfo& info,
                                std::span<const RtcpReportBlock> blocks = {}) noexcept;
    [[nodiscard]] Status add_rr(std::uint32_t ssrc, std::span<const RtcpReportBlock> blocks) noexcept;
    [[nodiscard]] Status add_sdes_cname(std::uint32_t ssrc, std::string_view cname) noexcept;
    [[nodiscard]] Status add_bye(std::uint32_t ssrc) noexcept;
    [[nodiscard]] Status add_app(std::uint32_t ssrc, std::uint8_t subtype, std::string_view name4,
                                 std::span<const std::uint8_t> data) noexcept;

    std::size_t size() const noexcept { return size_; }
    std::span<const std::uint8_t> bytes() const noexcept { return out_.first(size_); }

private:
    std::span<std::uint8_t> out_;
    std::size_t size_ = 0;
};

/// Seconds between the NTP epoch (1900-01-01) and the Unix epoch (1970-01-01).
inline constexpr std::uint64_t kNtpUnixEpochOffsetS = 2208988800ULL;

/// NTP time helpers: 32.32 fixed point seconds since 1900-01-01 from Unix
/// nanoseconds (fraction rounded to nearest; seconds wrap modulo 2^32 as NTP
/// era 0 does in 2036), and the "middle 32 bits" used for LSR.
std::uint64_t ntp_from_unix_ns(std::int64_t unix_ns) noexcept;
/// Inverse of ntp_from_unix_ns() for era 0 (1900..2036), to within 1 ns.
std::int64_t unix_ns_from_ntp(std::uint64_t ntp) noexcept;
inline std::uint32_t ntp_middle32(std::uint64_t ntp) noexcept {
    return static_cast<std::uint32_t>(ntp >> 16);
}

}  // namespace loa::transport
