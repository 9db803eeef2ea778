#pragma once
// Media-plane status codes of the transport module. Parsers return them for
// every malformed shape; callers drop the packet and count the status.

#include <cstddef>

namespace loa::transport {

enum class Status {
    Ok = 0,
    Truncated,          // shorter than its fixed header or a declared length
    BadVersion,         // RTP/RTCP version field is not 2
    BadCsrcCount,       // CSRC list runs past the end of the packet
    BadExtension,       // header extension length runs past the end, or bad element
    BadPadding,         // padding count is 0 or larger than the payload
    BadLength,          // an RTCP length field disagrees with the bytes present
    BadPacketType,      // RTCP packet type unknown where one was required
    NotRtp,             // looks like RTCP (RFC 5761 demux) or something else
    BufferTooSmall,     // a builder's output span is too small
    QueueFull,          // a bounded queue refused an item (dropped and counted)
    SocketError,        // the kernel refused a send or receive
};

const char* to_string(Status s) noexcept;

/// Number of Status values, for per-status counter arrays.
inline constexpr std::size_t kStatusCount = static_cast<std::size_t>(Status::SocketError) + 1;

}  // namespace loa::transport
