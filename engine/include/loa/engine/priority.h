#pragma once
// Priority levels of programmes, highest first (DESIGN.md "Priorities").
// The numeric value travels in every RTP packet's priority header extension.

#include <cstdint>
#include <optional>
#include <string_view>

namespace loa::engine {

enum class Priority : std::uint8_t {
    Background = 0,
    Scheduled = 1,
    Commune = 2,
    District = 3,
    Province = 4,
    Emergency = 5,
};

/// RFC 8285 one-byte extension id that carries the priority byte.
inline constexpr std::uint8_t kPriorityExtensionId = 1;
/// URI naming that extension in SDP (a=extmap).
inline constexpr std::string_view kPriorityExtensionUri = "urn:x-loa:rtp-hdrext:priority";
/// RFC 8285 one-byte extension id of the alert state (forced amplifier and
/// volume), carried by every packet of an alert programme only. Element
/// layout: loa/engine/stream_signal.h.
inline constexpr std::uint8_t kAlertExtensionId = 2;
/// URI naming that extension in SDP (a=extmap).
inline constexpr std::string_view kAlertExtensionUri = "urn:x-loa:rtp-hdrext:alert";

std::string_view to_string(Priority p) noexcept;
/// Parses "emergency", "province", ... (case-insensitive).
std::optional<Priority> parse_priority(std::string_view text) noexcept;

}  // namespace loa::engine
