#pragma once
// The media logic of a speaker, free of sockets and clocks: classifies each
// received datagram (engine filter, RTP/RTCP demux, parse), feeds the
// engine's adaptive Playout (jitter buffer, Opus decode with FEC/PLC,
// time-stretch toward the target delay, drift compensation against the
// consumer's clock), keeps the RFC 3550 reception statistics and builds the
// RTCP compound report (RR + SDES CNAME + APP "LOAS" status).
//
// Preemption and alerts (the packet elements are in loa/engine/stream_signal.h):
//   - Each packet's priority level (missing or bad: unknown, below every
//     level) decides between SSRCs. A packet of another SSRC than the playing
//     one switches at once (the playout flushes the old stream: no old audio
//     after the switch) when its level is higher; when the level is equal it
//     switches too (ties go to the newest), except the SSRC played just
//     before, which comes back only with the marker bit (a programme's first
//     packet). At equal level the delivery goes first: a cluster may get a
//     group's programme by multicast and, beside it, its own by unicast,
//     which the engine ranks at least as high. So a unicast packet takes over
//     from a multicast stream at once (even the SSRC played just before),
//     and a multicast packet never takes over from a unicast stream; the
//     newest-wins rule holds between streams of the same delivery. A stream
//     counts as unicast once one of its packets came by unicast. A lower
//     level, and the packets refused at equal level, are ignored and
//     counted as outranked only while the playing stream is alive: its last
//     packet arrived less than its quiet time ago, where the quiet time is
//     the largest of 3 of its packet times (from its RTP timestamps), 60 ms
//     and the playout's target delay (a gap within the jitter the playout
//     absorbs is no end, and the audio still buffered would be flushed), and
//     never more than preempt_hold_ms. Once it has been quiet that long, or
//     an RTCP BYE for its SSRC came, any stream is taken: a cluster returns
//     to a lower programme (marked or not) within a few packet times.
//   - While the playing stream carries the alert element, the software volume
//     is forced to the alert's and the amplifier is switched on. Once seen,
//     the state holds for the stream (a packet without the element does not
//     end it); it ends when a stream without it takes over, or when the alert
//     stream has been silent for preempt_hold_ms plus the playout's target
//     delay (its buffered audio still plays at the forced volume).
//   - Amplifier (with a hook configured and amp_auto): on from the first
//     packet played, off after amp_idle_ms without one; an alert forces it
//     on regardless. Without a hook the reported state is on only while an
//     alert forces it. Every change of playing SSRC, volume or amplifier
//     makes a report due at once.
//
// Threads: one owner thread (the speaker's io thread) calls every method
// except counters(), whose atomics may be read from any thread. Nothing here
// allocates after construction; the amplifier hook runs its program or file
// write on its own thread (request() only stores and wakes).

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <boost/asio/ip/udp.hpp>

#include "loa-speaker/amp_hook.h"
#include "loa-speaker/reception_stats.h"
#include "loa-speaker/speaker_config.h"
#include "loa-speaker/speaker_counters.h"
#include "loa/engine/playout.h"
#include "loa/engine/stream_signal.h"
#include "loa/transport/udp_receive.h"

namespace loa::speaker {

/// What on_datagram() did with a datagram.
enum class DatagramKind {
    Media,      // RTP from an engine, handed to the playout
    Control,    // RTCP from an engine
    Foreign,    // source is not an engine: dropped
    Malformed,  // failed to parse: dropped
    Outranked,  // well-formed RTP of another SSRC that the playing stream outranks: dropped, counted
};

/// Largest RTCP compound report the speaker writes.
inline constexpr std::size_t kMaxReportBytes = 512;

class SpeakerPipeline {
public:
    /// `config` must be validated; `config.ssrc` must be non-zero here.
    /// `start_ns`: monotonic time of start (uptime reference). With an
    /// amplifier hook configured, asks it for "off" at once (a known state).
    SpeakerPipeline(const SpeakerConfig& config, std::int64_t start_ns);

    /// Owner thread. Handles one received datagram. `now_ns`: monotonic
    /// arrival time. `delivery`: whether it was sent to a multicast group or
    /// to this host (decides between streams of the same level).
    DatagramKind on_datagram(std::span<const std::uint8_t> bytes,
                             const boost::asio::ip::udp::endpoint& from, std::int64_t now_ns,
                             transport::Delivery delivery = transport::Delivery::Unicast) noexcept;

    /// Owner thread. Produces exactly out.size() samples (48 kHz mono, at
    /// most 60 ms) of output audio, at the volume in force (a change ramps
    /// over the block). `now_ns`: the consumer's time of this block (the
    /// sink's clock: its pace is what the drift control follows; the same
    /// monotonic clock as on_datagram()'s). Also ends an alert or switches
    /// the amplifier off when their time has come.
    void render(std::span<float> out, std::int64_t now_ns) noexcept;

    /// True once after the played SSRC, the volume in force or the
    /// amplifier state changed (a report is due at once). Check it after
    /// on_datagram() and after render().
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

    /// Owner thread. Sets the configured software volume (0..100, clamped),
    /// in force whenever no alert forces another.
    void set_volume(int pct) noexcept;

    /// Owner thread, at exit: asks the hook for "off" and waits at most
    /// `timeout` for it to be applied (blocks: call it once the io loop has
    /// stopped). True when applied or no hook is configured.
    bool switch_amplifier_off(std::chrono::milliseconds timeout);

    /// Volume in force (forced by an alert, else the configured one).
    int volume_pct() const noexcept { return volume_pct_; }
    /// Amplifier state asked for (reported as amplifier_on).
    bool amplifier_on() const noexcept { return amplifier_on_; }
    /// True while the playing stream is an alert.
    bool alert_active() const noexcept { return alert_.has_value(); }

    std::uint32_t own_ssrc() const noexcept { return config_.ssrc; }
    const SpeakerConfig& config() const noexcept { return config_; }
    const Counters& counters() const noexcept { return counters_; }
    const engine::Playout& playout() const noexcept { return playout_; }
    const AmpHook& amp_hook() const noexcept { return amp_; }
    AmpHook& amp_hook() noexcept { return amp_; }

private:
    /// Level of a packet without a valid priority element: below every level.
    static constexpr int kUnknownLevel = -1;

    DatagramKind on_media_packet(const transport::RtpView& v, std::int64_t now_ns,
                                 transport::Delivery delivery) noexcept;
    bool outranked(std::uint32_t ssrc, int level, bool marker, transport::Delivery delivery,
                   std::int64_t now_ns) const noexcept;
    std::int64_t quiet_after_ns() const noexcept;
    void track_current(const transport::RtpView& v) noexcept;
    void update_state(std::int64_t now_ns) noexcept;
    void publish_playout_stats() noexcept;

    SpeakerConfig config_;
    std::int64_t start_ns_;
    engine::Playout playout_;
    ReceptionStats reception_;
    Counters counters_;
    std::vector<std::optional<boost::asio::ip::udp::endpoint>> destinations_;
    AmpHook amp_;

    // The playing stream, as far as preemption is concerned.
    bool has_current_ = false;
    std::uint32_t current_ssrc_ = 0;
    int current_level_ = kUnknownLevel;
    std::int64_t current_last_ns_ = 0;  // arrival of its last packet
    std::int64_t current_ptime_ns_ = 0;  // its packet time from its timestamps (0: not known yet)
    bool current_seen_ = false;          // current_seq_/current_ts_ hold its newest packet
    std::uint16_t current_seq_ = 0;
    std::uint32_t current_ts_ = 0;
    bool current_bye_ = false;           // an RTCP BYE for it came: it no longer outranks anyone
    bool current_unicast_ = false;       // one of its packets came by unicast
    bool has_previous_ = false;
    std::uint32_t previous_ssrc_ = 0;   // the stream played before it
    std::optional<engine::AlertElement> alert_;  // set while the playing stream is an alert

    std::int64_t hold_ns_;
    std::int64_t idle_ns_;
    bool amp_auto_;

    int base_volume_pct_ = 100;  // configured
    int volume_pct_ = 100;       // in force
    float gain_ = 1.0f;          // applied at the end of the last block
    float target_gain_ = 1.0f;   // volume_pct_ / 100
    bool amplifier_on_ = false;
    bool report_due_ = false;
};

}  // namespace loa::speaker
