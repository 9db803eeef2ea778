#pragma once
// Operator counters of a speaker. Written by the io thread, read by anyone
// (plain relaxed atomic loads); snapshot() copies them for printing.

#include <atomic>
#include <cstdint>
#include <string>

namespace loa::speaker {

struct CountersSnapshot {
    std::uint64_t received = 0;        // well-formed RTP packets from an accepted engine
    std::uint64_t lost = 0;            // sequence numbers never played
    std::uint64_t late = 0;            // arrived after their play time
    std::uint64_t duplicate = 0;
    std::uint64_t malformed = 0;       // RTP/RTCP that failed to parse
    std::uint64_t foreign = 0;         // datagrams from an address that is not an engine
    std::uint64_t concealed = 0;       // frames made by decoder PLC (FEC-recovered frames excluded)
    std::uint64_t fec_recovered = 0;   // frames recovered from in-band FEC
    std::uint64_t reordered = 0;       // arrived after a later packet, still in time
    std::uint64_t underruns = 0;       // jitter buffer ran dry while playing
    std::uint64_t rtcp_sent = 0;       // RTCP compound reports sent
    std::uint64_t rtcp_received = 0;   // RTCP packets from an engine
    std::uint64_t sr_received = 0;     // of which carried an SR
    std::uint64_t decode_errors = 0;   // payloads libopus refused (concealed)
    std::uint64_t overflow = 0;        // packets pushed out of a full jitter buffer
    std::uint64_t ssrc_changes = 0;    // streams started (the first included)
    std::uint64_t samples_played = 0;   // output samples produced (48 kHz)
    std::uint64_t outranked = 0;       // RTP of another SSRC ignored: the playing stream outranks it
    std::uint64_t amp_switches = 0;    // amplifier state changes (on or off) asked for
    std::uint32_t playing_ssrc = 0;
    int buffer_delay_ms = 0;           // audio buffered ahead of the play head (playout's current delay)
    int target_delay_ms = 0;           // the playout's target delay (adaptive or imposed)
    int drift_ppm = 0;                 // the playout's resampling correction
    int volume_pct = 100;              // software volume in force (forced by an alert, else configured)
    bool amplifier_on = false;         // amplifier state the speaker asks for
    bool alert = false;                // the playing stream is an alert

    /// Multi-line human-readable listing (stderr at exit).
    std::string to_text() const;
    /// One JSON object (no newline) with every counter plus cluster_id.
    std::string to_json(const std::string& cluster_id) const;
};

struct Counters {
    std::atomic<std::uint64_t> received{0}, lost{0}, late{0}, duplicate{0}, malformed{0}, foreign{0},
        concealed{0}, fec_recovered{0}, reordered{0}, underruns{0}, rtcp_sent{0}, rtcp_received{0}, sr_received{0},
        decode_errors{0}, overflow{0}, ssrc_changes{0}, samples_played{0}, outranked{0}, amp_switches{0};
    std::atomic<std::uint32_t> playing_ssrc{0};
    std::atomic<int> buffer_delay_ms{0};
    std::atomic<int> target_delay_ms{0};
    std::atomic<int> drift_ppm{0};
    std::atomic<int> volume_pct{100};
    std::atomic<bool> amplifier_on{false};
    std::atomic<bool> alert{false};

    CountersSnapshot snapshot() const noexcept;
};

}  // namespace loa::speaker
