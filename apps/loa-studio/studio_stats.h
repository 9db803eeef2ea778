#pragma once
// Counters of one loa-studio run and the level meter. Written and read on the
// studio's io thread only (the device's own counters are atomics in the
// capture wrapper and copied in at exit).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace loa::studio {

struct StudioStats {
    std::uint64_t packets_sent = 0;     // RTP packets the kernel accepted
    std::uint64_t bytes_sent = 0;       // their UDP payload bytes (RTP header + Opus)
    std::uint64_t frames_encoded = 0;   // Opus frames produced
    std::uint64_t encode_errors = 0;    // frames libopus refused (dropped)
    std::uint64_t send_errors = 0;      // RTP/RTCP datagrams the kernel refused (dropped)
    std::uint64_t rtcp_sent = 0;        // SR + SDES compounds sent (the final BYE included)
    std::uint64_t rtcp_received = 0;    // valid RTCP compounds received
    std::uint64_t rr_blocks = 0;        // report blocks about our SSRC received
    std::uint64_t malformed_received = 0;  // datagrams that are not valid RTCP
    std::uint64_t samples_captured = 0;    // source samples sent on (48 kHz)
    std::uint64_t clicks = 0;              // click onsets sent (--clicks)
    std::uint64_t pacer_resyncs = 0;       // the release clock skipped ahead after a stall
    std::uint64_t underruns = 0;           // device capture: PortAudio input underflows
    std::uint64_t overruns = 0;            // device capture: input overflows + ring full (audio lost)
    double last_fraction_lost = 0.0;       // from the last report block about us, 0..1
    std::uint32_t last_jitter = 0;         // its interarrival jitter, RTP units

    /// One JSON object (no newline) with every field above plus `ssrc`.
    std::string to_json(std::uint32_t ssrc) const;
    /// Multi-line listing for stderr at exit.
    std::string to_text() const;
};

/// Peak and RMS of the blocks seen since the last take(). No allocation.
class LevelMeter {
public:
    struct Reading {
        double peak_dbfs = -120.0;
        double rms_dbfs = -120.0;
    };
    void add(std::span<const float> block) noexcept;
    Reading take() noexcept;

private:
    float peak_ = 0.0f;
    double sum_squares_ = 0.0;
    std::size_t count_ = 0;
};

/// "-12.3 dBFS |#########-----   | peak -6.0" style bar, `width` cells over
/// -60..0 dBFS.
std::string meter_bar(const LevelMeter::Reading& r, int width = 30);

}  // namespace loa::studio
