#pragma once
// Settings of one speaker receiver and the parsing of its address options.
// Start-up code: parse functions throw std::invalid_argument with a message.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/udp.hpp>

namespace loa::speaker {

/// An engine media may come from: an address and, optionally, a port.
struct EngineAddress {
    boost::asio::ip::address address;
    std::optional<std::uint16_t> port;  // none: any source port; RTCP goes to the latched one

    bool matches(const boost::asio::ip::udp::endpoint& from) const noexcept;
};

/// Parses "HOST", "HOST:PORT", "V6", "[V6]" or "[V6]:PORT" (numeric addresses).
EngineAddress parse_engine_address(const std::string& text);

/// An IPv4-mapped IPv6 address becomes plain IPv4; anything else is unchanged.
boost::asio::ip::address normalize(const boost::asio::ip::address& a) noexcept;

struct SpeakerConfig {
    std::string cluster_id;                 // RTCP SDES CNAME, at most 255 bytes
    std::vector<EngineAddress> engines;     // media accepted only from these
    int jitter_ms = 0;                      // imposed playout delay (ms); 0 = adaptive
    int min_delay_ms = 0;                   // floor of the adaptive delay
    int max_delay_ms = 500;                 // ceiling of the adaptive (and imposed) delay
    int volume_pct = 100;                   // software volume 0..100
    int report_interval_ms = 1000;          // RTCP report period
    std::uint32_t ssrc = 0;                 // own RTCP SSRC; 0 = random at start
    std::size_t jitter_capacity = 256;      // jitter-buffer slots
    std::int64_t long_gap_ns = 200'000'000; // concealment longer than this fades to silence

    // Preemption: a packet of another SSRC whose priority level is below the
    // playing stream's is ignored (counted as outranked) while the playing
    // stream is alive: until it has been silent for 3 of its packet times
    // (at least 60 ms and the playout's target delay) or sent an RTCP BYE,
    // and never longer than this; a higher level switches at once.
    int preempt_hold_ms = 500;

    // Amplifier hook (amp_hook.h). Without a command or GPIO path nothing is
    // switched; the reported amplifier state then follows alerts only.
    std::string amp_command;                // run as `amp_command on|off`
    std::string amp_gpio;                   // file written "1" / "0" (e.g. /sys/class/gpio/gpioN/value)
    bool amp_auto = true;                   // with a hook: on while a stream plays, off after amp_idle_ms
    int amp_idle_ms = 10'000;               // idle time before the amplifier goes off (amp_auto)
};

/// Throws std::invalid_argument when a setting is out of range.
void validate(const SpeakerConfig& config);

}  // namespace loa::speaker
