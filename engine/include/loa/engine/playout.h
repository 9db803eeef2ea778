#pragma once
// Adaptive playout of one live Opus/RTP stream: the NetEq-class receiver used
// by the engine's studio ingest and by loa-speaker alike.
//
// It joins the packet jitter buffer (transport), the Opus decoder with FEC and
// PLC (codecs) and the controller that decides when to play what:
//   - target delay: a high percentile of the packets' relative arrival delay
//     (a forgetting histogram, as NetEq does), plus one packet time, clamped
//     to [min_delay_ms, max_delay_ms]; on a clean network it settles at about
//     one packet time. set_target_delay_ms() imposes a fixed target instead.
//   - moving toward a new target without audible jumps: frame-wise
//     accelerate (drop whole pitch periods) and expand (repeat them), chosen
//     by the buffer level against the target.
//   - loss: the next packet's in-band FEC when it has some, else Opus PLC;
//     a long run of concealment fades to silence. A packet that is missing
//     while later ones are here may only be late: its frame is concealed a
//     piece at a time (at most PlayoutConfig::late_wait_ms), and if the
//     packet or the next one (with its FEC copy) comes meanwhile, the frame
//     is played whole from it; the delay grew by the concealment already
//     played, and accelerate takes it back. What is played is never cut
//     short to hold the delay.
//   - drift: the sender's clock and the consumer's clock differ by up to
//     +-200 ppm; a variable-ratio resampler (libsamplerate) driven by a slow
//     controller on the filtered buffer level keeps the level at the target.
//   - an SSRC change flushes the old stream and plays the new one at once
//     (preemption never drains old audio).
//
// Threads: one owner thread calls push(), render(), flush() and the setters;
// stats() may be read from any thread (atomics). push() and render() never
// allocate, lock, block or throw; all storage is sized in the constructor.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "loa/transport/rtp_packet.h"

namespace loa::engine {

struct PlayoutConfig {
    /// Lowest adaptive target delay, in ms, added on top of nothing: the
    /// adaptive target never goes below max(min_delay_ms, one packet time).
    int min_delay_ms = 0;
    /// Highest target delay (adaptive or imposed), ms.
    int max_delay_ms = 500;
    /// Percentile of the relative-delay histogram the target covers.
    double delay_quantile = 0.97;
    /// Imposed target delay (ms) from the start; unset = adaptive.
    std::optional<int> fixed_delay_ms;
    /// Packet slots held by the jitter buffer.
    std::size_t capacity = 256;
    /// Concealment longer than this fades to silence (ms).
    int fade_after_ms = 100;
    /// Keep the buffer at the target with the variable-ratio resampler.
    bool drift_compensation = true;
    /// Largest resampling correction the drift controller applies (ppm).
    int max_drift_ppm = 1000;
    /// Per-packet forgetting factor of the delay histogram: how fast the
    /// target falls back after jitter calms down (0.9983: a packet's weight
    /// halves after ~400 packets; the 97 % quantile forgets a jittery spell
    /// in ~40 s of clean 20 ms packets).
    double histogram_forget_factor = 0.9983;
    /// Longest concealment played while waiting for a packet that is missing
    /// while later ones are here and whose FEC copy is not here either (ms);
    /// unset: one packet time, the missing frame's own play time (waiting
    /// that long costs nothing when the packet is really lost: its frame
    /// would have been concealed anyway). Longer waits rescue more late
    /// packets but stretch real losses and add delay.
    std::optional<int> late_wait_ms;
};

enum class PlayoutPush {
    Accepted,   // stored
    NewStream,  // first packet of a new SSRC: the old stream was flushed
    Duplicate,  // dropped
    Late,       // arrived after its play time: dropped (still feeds the delay estimate)
    Malformed,  // not something the decoder can take (e.g. wrong payload size): dropped
};

/// Counters (monotonic) and gauges, readable from any thread.
struct PlayoutStats {
    std::atomic<std::uint64_t> received{0};       // packets offered to push()
    std::atomic<std::uint64_t> lost{0};           // sequence numbers never received in time
    std::atomic<std::uint64_t> recovered_fec{0};  // frames rebuilt from the next packet's in-band FEC
    std::atomic<std::uint64_t> concealed{0};      // frames made by PLC (loss or underrun), FEC excluded
    std::atomic<std::uint64_t> late{0};           // dropped: came after their frame was given up (or stale SSRC)
    std::atomic<std::uint64_t> late_played{0};    // arrived after their frame was due, still played (waited for)
    std::atomic<std::uint64_t> duplicate{0};
    std::atomic<std::uint64_t> reordered{0};      // arrived after a higher sequence number, in time
    std::atomic<std::uint64_t> underruns{0};      // ran dry while playing
    std::atomic<std::uint64_t> overflows{0};      // packets pushed out by a full buffer
    std::atomic<std::uint64_t> ssrc_changes{0};
    std::atomic<std::uint64_t> frames_decoded{0}; // frames decoded from their own packet
    std::atomic<std::uint64_t> accelerated_samples{0};  // removed by accelerate
    std::atomic<std::uint64_t> expanded_samples{0};     // inserted by expand
    std::atomic<std::uint64_t> decode_errors{0};
    std::atomic<std::int32_t> current_delay_ms{0};  // audio buffered ahead of the play head
    std::atomic<std::int32_t> target_delay_ms{0};
    std::atomic<std::int32_t> drift_ppm{0};         // current resampling correction
    std::atomic<std::uint32_t> ssrc{0};             // stream being played (0: none)
};

class Playout {
public:
    /// Allocates everything (jitter buffer, decoder, resampler, scratch).
    /// Throws std::runtime_error if libsamplerate cannot be set up.
    explicit Playout(const PlayoutConfig& config = {});
    ~Playout();
    Playout(const Playout&) = delete;
    Playout& operator=(const Playout&) = delete;

    /// Owner thread. Offers one parsed RTP packet (Opus payload, 48 kHz
    /// timestamps). `arrival_ns`: monotonic arrival time on the same clock as
    /// render()'s `now_ns`.
    PlayoutPush push(const transport::RtpView& packet, std::int64_t arrival_ns) noexcept;

    /// Owner thread. Writes exactly out.size() samples (48 kHz mono, any
    /// length up to 60 ms) of output: decoded audio, FEC/PLC, or silence
    /// while buffering or after a long gap. `now_ns`: the consumer's time of
    /// this block.
    void render(std::span<float> out, std::int64_t now_ns) noexcept;

    /// Owner thread. Imposes a fixed target delay (clamped to
    /// [one packet time, max_delay_ms]); nullopt returns to the adaptive target.
    void set_target_delay_ms(std::optional<int> ms) noexcept;

    /// Owner thread. Drops everything; the next packet starts a new stream.
    void flush() noexcept;

    /// Owner thread. True once after the played SSRC changed.
    bool take_stream_change() noexcept;

    /// True while a stream is known (packets arrived and no flush since).
    bool has_stream() const noexcept;

    const PlayoutStats& stats() const noexcept { return stats_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    PlayoutStats stats_;
};

}  // namespace loa::engine
