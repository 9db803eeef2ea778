#pragma once
// A programme: its sources mixed into one frame, encoded once with Opus,
// packetised as RTP (one SSRC) and handed to the fan-out group that holds
// every destination hearing it. Also emits the programme's RTCP sender report
// (with SDES CNAME) once a second through the same group.
// Every RTP packet carries the programme's priority level, and for an alert
// programme (config.alert) the forced amplifier/volume state, as RFC 8285
// header extension elements (loa/engine/stream_signal.h); the first packet
// also sets the marker bit.
//
// Ducking: a source with duck_db < 0 is a bed. Each frame the other sources
// are rendered first and their levels measured (before their gain); a bed's
// gain then follows its Ducker's per-sample envelope on top of its gain_db.
// How deep a bed dips is its own duck_db; how fast, how long it holds and
// what counts as voice are the engine's DuckingSettings ([engine] duck_*).
//
// Threads: constructed and destroyed on the control thread; produce_frame()
// only on the media thread (no allocation, no locks, no blocking I/O);
// counters readable from any thread.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "loa/codecs/audio_format.h"
#include "loa/codecs/opus_encoder.h"
#include "loa/engine/clock.h"
#include "loa/engine/config.h"
#include "loa/engine/ducker.h"
#include "loa/engine/source.h"
#include "loa/engine/stream_signal.h"
#include "loa/transport/fanout_sender.h"
#include "loa/transport/packet_pool.h"

namespace loa::engine {

struct ProgramCounters {
    std::atomic<std::uint64_t> frames_encoded{0};
    std::atomic<std::uint64_t> encode_errors{0};
    std::atomic<std::uint64_t> frames_dropped{0};  // no free packet slot or a shard queue full
    std::atomic<std::uint64_t> frames_late{0};     // produced more than one period after their deadline
    std::atomic<std::uint64_t> frames_skipped{0};  // never produced: the media thread fell too far behind
    std::atomic<std::uint64_t> frames_paused{0};   // frame times passed while paused (nothing pulled or sent)
    std::atomic<std::uint64_t> sr_sent{0};
    std::atomic<std::uint64_t> packets_sent{0};    // RTP packets submitted (per programme, not per destination)
    std::atomic<std::uint64_t> octets_sent{0};     // RTP payload octets (for the SR)
    transport::MicrosHistogram encode_us;
};

class Program {
public:
    /// `group`: the fan-out group carrying this programme. `cname`: the
    /// engine's RTCP CNAME. `sources`: what studio sources are joined to.
    /// Throws codecs::Error on an encoder it cannot make, std::runtime_error
    /// on a studio source `sources` cannot provide. `ducking`: the envelope
    /// of its beds (sources with duck_db < 0).
    Program(const ProgramConfig& config, std::uint32_t group, std::string cname, const SourceContext& sources = {},
            const DuckingSettings& ducking = {});

    /// Media thread. Produces the frame due at `deadline_ns` (monotonic) and
    /// submits it; `unix_ns` is the wall-clock time of that deadline, used
    /// for the sender report's NTP timestamp.
    void produce_frame(std::int64_t deadline_ns, std::int64_t unix_ns, transport::PacketPool& pool,
                       transport::FanoutSender& fanout, const Clock& clock) noexcept;

    /// Media thread. Accounts for `frames` frames that were skipped after a
    /// stall: the RTP timestamp and sequence move on as if they were lost.
    void skip_frames(std::uint64_t frames) noexcept;
    /// Media thread. Counts a frame produced more than a period late.
    void count_late() noexcept { counters_.frames_late.fetch_add(1, std::memory_order_relaxed); }

    /// Any thread; takes effect at the next produce_frame(). While paused a
    /// frame pulls no source (each gets Source::hold() instead), encodes and
    /// sends nothing, and is counted in frames_paused; the RTP clock moves on,
    /// so the first packet after the pause carries its real time, the next
    /// sequence number and the marker bit (a new talkspurt). Sources resume
    /// where they stopped.
    void set_paused(bool paused) noexcept { paused_.store(paused, std::memory_order_release); }
    bool paused() const noexcept { return paused_.load(std::memory_order_acquire); }
    /// Control thread. Asks every source to go back to its start
    /// (Source::rewind()); true when at least one will.
    bool rewind();

    const ProgramConfig& config() const noexcept { return config_; }
    const DuckingSettings& ducking() const noexcept { return ducking_; }
    std::uint32_t group() const noexcept { return group_; }
    std::uint32_t ssrc() const noexcept { return config_.ssrc; }
    std::int64_t period_ns() const noexcept { return static_cast<std::int64_t>(config_.ptime_ms) * 1'000'000; }
    const ProgramCounters& counters() const noexcept { return counters_; }
    const std::vector<std::unique_ptr<Source>>& sources() const noexcept { return sources_; }

private:
    void send_sender_report(std::int64_t unix_ns, transport::PacketPool& pool,
                            transport::FanoutSender& fanout) noexcept;

    ProgramConfig config_;
    DuckingSettings ducking_;
    std::uint32_t group_;
    std::string cname_;
    std::size_t frame_samples_;
    std::uint64_t frames_per_report_;
    codecs::OpusEncoder encoder_;
    std::vector<std::unique_ptr<Source>> sources_;
    std::vector<float> gains_;
    std::vector<std::size_t> voices_;  // indices of non-bed sources (rendered first)
    std::vector<std::size_t> beds_;    // indices of bed sources (duck_db < 0)
    std::vector<Ducker> duckers_;      // one per bed, same order as beds_
    std::vector<float> mix_;      // one frame
    std::vector<float> scratch_;  // one frame
    std::vector<float> ramp_;     // one frame of bed gains
    std::vector<std::uint8_t> opus_;
    std::uint16_t sequence_;
    std::uint32_t timestamp_;
    std::uint64_t frame_count_ = 0;
    bool first_packet_ = true;
    bool resumed_ = false;  // media thread: the next packet is the first after a pause
    std::atomic<bool> paused_{false};
    std::array<std::uint8_t, kAlertElementSize> alert_element_{};  // kAlertExtensionId bytes (alert programmes only)
    ProgramCounters counters_;
};

}  // namespace loa::engine
