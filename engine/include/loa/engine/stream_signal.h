#pragma once
// What every RTP packet of a programme tells the speakers that play it, in
// RFC 8285 one-byte header extension elements (ids in priority.h):
//
//   kPriorityExtensionId (1), 1 byte, on every packet:
//        byte 0  the programme's Priority (0 = BACKGROUND .. 5 = EMERGENCY)
//   kAlertExtensionId (2), 2 bytes, on every packet of an alert programme:
//        byte 0  flags: bit 0 = switch the amplifier on;
//                bits 1..7 reserved, sent as 0, ignored by receivers
//        byte 1  forced software volume, percent 0..100
//
// Both are repeated on every packet, so a receiver applies them from
// whichever packet reaches it first: losing the first packets of an alert
// never leaves it silent. Receivers ignore bytes after the defined ones
// (later versions may append) and treat an element that is too short or out
// of range as absent (level unknown, no alert); the packet itself stays good.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "loa/engine/config.h"
#include "loa/engine/priority.h"
#include "loa/transport/rtp_packet.h"

namespace loa::engine {

inline constexpr std::size_t kAlertElementSize = 2;
inline constexpr std::uint8_t kAlertFlagAmplifierOn = 0x01;

/// The alert element of one packet (the alert state it carries).
struct AlertElement {
    bool amplifier_on = true;
    std::uint8_t volume_pct = 100;

    friend bool operator==(const AlertElement&, const AlertElement&) = default;
};

/// Everything a speaker reads from one packet's extension elements.
struct StreamSignal {
    std::optional<Priority> level;     // nullopt: no or bad priority element
    std::optional<AlertElement> alert;   // nullopt: not an alert packet (or a bad element)
};

/// The alert element's bytes for `alert` (amplifier on, volume clamped to 100).
/// Any thread; no allocation.
std::array<std::uint8_t, kAlertElementSize> encode_alert_element(const AlertSignal& alert) noexcept;

/// Reads the priority and alert elements of a parsed packet. Never fails:
/// missing or bad elements come back as nullopt. Any thread; no allocation.
StreamSignal read_stream_signal(const transport::RtpView& packet) noexcept;

}  // namespace loa::engine
