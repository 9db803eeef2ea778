#pragma once
// A simple packet jitter buffer with a fixed target delay. It holds RTP
// payloads (never decodes them) by extended sequence number, restores their
// order, drops duplicates and packets that arrive after their play time, and
// hands out one packet per pop(). An SSRC change flushes the old stream and
// restarts on the new one at once (preemption: never drain old audio).
//
// Storage is a fixed ring of `capacity` slots of kMaxRtpPacket bytes each,
// allocated in the constructor; push() and pop() never allocate, lock or
// block. Time is passed in by the caller (monotonic nanoseconds).
//
// Threads: one owner thread calls every method (push, pop, peek, stats).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "loa/transport/rtp_packet.h"

namespace loa::transport {

struct JitterBufferConfig {
    /// Slots in the ring; also the widest sequence window held (packets more
    /// than `capacity` ahead of the play position push older ones out).
    std::size_t capacity = 128;
    /// Target delay. Converted to packets with the packet time learned from
    /// RTP timestamps (until learned: `default_packet_samples`).
    int target_delay_ms = 60;
    /// RTP clock rate (Opus: always 48000, RFC 7587).
    int clock_rate = 48000;
    /// Samples per packet assumed before two consecutive packets are seen.
    std::uint32_t default_packet_samples = 960;  // 20 ms
    /// After an SSRC change, packets of the previous SSRC arriving within this
    /// time (reordered around the switch) are dropped as late instead of
    /// switching back; a previous-SSRC packet with the marker bit switches at once.
    std::int64_t stale_ssrc_guard_ns = 200'000'000;
    /// Owner-paced mode (used by engine::Playout): the owner decides when to
    /// start and when to pop. pop() then has no buffering gate and no target:
    /// it returns Buffering only while nothing of the stream is held yet,
    /// Packet / Missing as usual, and Empty (not counted, play position kept)
    /// when nothing is held at or after the play position: the packet may
    /// still come and is then played, not dropped as late.
    bool owner_paced = false;
};

/// Result of push().
enum class JitterPush {
    Accepted,    // stored in order
    NewStream,   // first packet of a new SSRC: old packets flushed, stored
    Duplicate,   // same sequence already held or already played: dropped
    Late,        // its play time has passed (or stale SSRC): dropped
};

/// Result of pop().
enum class JitterPop {
    Packet,      // `out` holds the next packet
    Missing,     // the next packet is lost or not here yet while later ones are:
                 // conceal (decoder PLC, or FEC from peek_next())
    Buffering,   // no stream yet, or (re)filling to the target delay: play silence
    Empty,       // was playing and ran dry (underrun, counted): play silence;
                 // the buffer refills to the target delay before playing again
};

/// A packet handed out by pop()/peek_next(). `payload` points into the
/// buffer's own storage and stays valid until the next push() or flush().
struct JitterPacket {
    std::span<const std::uint8_t> payload;
    std::int64_t ext_seq = 0;
    std::uint32_t timestamp = 0;
    std::uint32_t ssrc = 0;
    std::uint16_t sequence = 0;
    bool marker = false;
};

/// Counters, monotonically increasing over the buffer's life.
struct JitterBufferStats {
    std::uint64_t accepted = 0;      // packets stored
    std::uint64_t duplicate = 0;
    std::uint64_t late = 0;
    std::uint64_t lost = 0;          // sequence numbers never played (Missing, or skipped on restart)
    std::uint64_t played = 0;        // Packet results
    std::uint64_t underruns = 0;     // Empty results
    std::uint64_t overflow = 0;      // stored packets pushed out by a packet too far ahead
    std::uint64_t ssrc_changes = 0;  // NewStream results (the first stream included)
    std::uint64_t reordered = 0;     // accepted after a higher sequence number (in time)
};

class JitterBuffer {
public:
    /// Allocates all storage. `config.capacity` must be >= 2.
    explicit JitterBuffer(const JitterBufferConfig& config = {});
    ~JitterBuffer();
    JitterBuffer(const JitterBuffer&) = delete;
    JitterBuffer& operator=(const JitterBuffer&) = delete;

    /// Stores a copy of `packet`'s payload. `now_ns`: arrival time.
    JitterPush push(const RtpView& packet, std::int64_t now_ns) noexcept;

    /// Called once per packet time by the playout. On Packet fills `out`.
    JitterPop pop(std::int64_t now_ns, JitterPacket& out) noexcept;

    /// The packet at the play position, if present (after a Missing result:
    /// the packet following the lost one, whose in-band FEC may recover it).
    std::optional<JitterPacket> peek_next() const noexcept;

    /// Drops every packet and forgets the stream (next push starts anew).
    void flush() noexcept;

    /// SSRC of the current stream; 0 (and has_stream() false) before the first packet.
    std::uint32_t ssrc() const noexcept { return ssrc_; }
    bool has_stream() const noexcept { return has_stream_; }
    bool playing() const noexcept { return state_ == State::Playing; }

    /// Packet time learned from timestamps (or the default), in RTP units.
    std::uint32_t packet_samples() const noexcept { return packet_samples_; }
    /// Target delay in packets at the current packet time (>= 1).
    std::size_t target_packets() const noexcept { return target_packets_; }
    /// Packets between the play position and the newest held one (incl. holes).
    std::size_t buffered_packets() const noexcept;
    /// buffered_packets() in milliseconds.
    int buffered_ms() const noexcept;
    /// Extended sequence number of the next packet to play (meaningless
    /// without a stream).
    std::int64_t play_position() const noexcept { return play_pos_; }
    /// Newest (highest) packet held, if any; its timestamp gives the newest
    /// media time buffered.
    std::optional<JitterPacket> newest() const noexcept;

    const JitterBufferStats& stats() const noexcept { return stats_; }
    std::size_t capacity() const noexcept { return capacity_; }

private:
    enum class State { Idle, Buffering, Playing };
    struct Slot;

    Slot& slot_of(std::int64_t ext) noexcept;
    const Slot& slot_of(std::int64_t ext) const noexcept;
    bool holds(std::int64_t ext) const noexcept;
    void start_stream(std::uint32_t ssrc, std::int64_t now_ns) noexcept;
    void clear_slots() noexcept;
    void learn_packet_time(std::int64_t ext, std::uint32_t timestamp) noexcept;
    void update_target() noexcept;
    bool ready_to_play(std::int64_t now_ns) const noexcept;
    void store(const RtpView& packet, std::int64_t ext) noexcept;

    JitterBufferConfig config_;
    std::size_t capacity_;
    std::unique_ptr<Slot[]> slots_;
    SequenceUnwrapper unwrapper_;
    JitterBufferStats stats_;

    State state_ = State::Idle;
    bool has_stream_ = false;
    bool played_any_ = false;         // current stream has played or skipped a position
    std::uint32_t ssrc_ = 0;
    std::uint32_t prev_ssrc_ = 0;
    bool has_prev_ssrc_ = false;
    std::int64_t switch_ns_ = 0;
    std::int64_t play_pos_ = 0;       // extended sequence of the next packet to play
    std::int64_t highest_ = 0;        // highest extended sequence stored (valid if any_stored_)
    bool any_stored_ = false;         // highest_ meaningful for this stream
    std::int64_t fill_start_ns_ = 0;  // arrival of the first packet since (re)buffering began
    bool fill_started_ = false;
    std::int64_t last_ext_ = 0;       // last pushed packet, for packet-time learning
    std::uint32_t last_ts_ = 0;
    bool has_last_ = false;
    std::uint32_t packet_samples_;
    std::size_t target_packets_ = 1;
};

}  // namespace loa::transport
