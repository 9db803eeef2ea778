#pragma once
// The media logic of a speaker, free of sockets and clocks: classifies each
// received datagram (engine filter, RTP/RTCP demux, parse), feeds the
// engine's adaptive Playout (jitter buffer, Opus decode with FEC/PLC,
// time-stretch toward the target delay, drift compensation against the
// consumer's clock), keeps the RFC 3550 reception statistics and builds the
// RTCP compound report (RR + SDES CNAME + APP "LOAS" status).
//
// Threads: one owner thread (the speaker's io thread) calls every method
// except counters(), whose atomics may be read from any thread. Nothing here
// allocates after construction.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <boost/asio/ip/udp.hpp>

#include "loa-speaker/reception_stats.h"
#include "loa-speaker/speaker_config.h"
#include "loa-speaker/speaker_counters.h"
#include "loa/engine/playout.h"

namespace loa::speaker {

/// What on_datagram() did with a datagram.
enum class DatagramKind {
    Media,      // RTP from an engine, handed to the playout
    Control,    // RTCP from an engine
    Foreign,    // source is not an engine: dropped
    Malformed,  // failed to parse: dropped
};

/// Largest RTCP compound report the speaker writes.
inline constexpr std::size_t kMaxReportBytes = 512;

class SpeakerPipeline {
public:
    /// `config` must be validated; `config.ssrc` must be non-zero here.
    /// `start_ns`: monotonic time of start (uptime reference).
    SpeakerPipeline(const SpeakerConfig& config, std::int64_t start_ns);

    /// Owner thread. Handles one received datagram. `now_ns`: monotonic
    /// arrival time.
    DatagramKind on_datagram(std::span<const std::uint8_t> bytes,
                             const boost::asio::ip::udp::endpoint& from, std::int64_t now_ns) noexcept;

    /// Owner thread. Produces exactly out.size() samples (48 kHz mono, at
    /// most 60 ms) of output audio. `now_ns`: the consumer's time of this
    /// block (the sink's clock: its pace is what the drift control follows).
    void render(std::span<float> out, std::int64_t now_ns) noexcept;

    /// True once after the played SSRC changed (a report is due at once).
    /// Check it after on_datagram() and after render().
    bool take_report_request() noexcept;

    /// Owner thread. Writes the RTCP compound report into `out`; returns its
    /// size (0 if `out` is too small).
    std::size_t build_report(std::span<std::uint8_t> out, std::int64_t now_ns) noexcept;

    /// Where reports go: per engine, its address:port if a port was given,
    /// else the source last seen from it (nullopt until then).
    std::span<const std::optional<boost::asio::ip::udp::endpoint>> report_destinations() const noexcept {
        return destinations_;
    }

    /// Owner thread. Counts one report handed to the socket.
    void count_report_sent() noexcept;

    void set_volume(int pct) noexcept;
    void set_amplifier(bool on) noexcept { amplifier_on_ = on; }

    std::uint32_t own_ssrc() const noexcept { return config_.ssrc; }
    const SpeakerConfig& config() const noexcept { return config_; }
    const Counters& counters() const noexcept { return counters_; }
    const engine::Playout& playout() const noexcept { return playout_; }

private:
    bool on_media_packet(const transport::RtpView& v, std::int64_t now_ns) noexcept;
    void publish_playout_stats() noexcept;

    SpeakerConfig config_;
    std::int64_t start_ns_;
    engine::Playout playout_;
    ReceptionStats reception_;
    Counters counters_;
    std::vector<std::optional<boost::asio::ip::udp::endpoint>> destinations_;

    float gain_ = 1.0f;
    int volume_pct_ = 100;
    bool amplifier_on_ = false;
};

}  // namespace loa::speaker
