#pragma once
// The socket-free heart of loa-studio: takes 10 ms blocks from a source (paced
// by a BlockPacer on absolute deadlines, or as a device delivers them),
// packetises them (Opus + RTP) the moment a packet time is complete, sends an
// RTCP SR + SDES CNAME right after the first packet and then every interval,
// and counts the RTCP that comes back. Time is passed in: tick(now) does what
// is due at `now` and next_wake_ns() says when to call again, so tests drive
// minutes of audio without sleeping.
//
// Threads: one owner (the studio's io thread). tick(), on_datagram() and
// finish() do not allocate (the click-time log is reserved up front and only
// grows past its reservation after hours of clicks), lock or sleep; they call
// the send function synchronously.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "loa-studio/block_source.h"
#include "loa-studio/packetiser.h"
#include "loa-studio/studio_stats.h"

namespace loa::studio {

struct SendLoopConfig {
    PacketiserConfig packetiser;
    std::uint64_t max_samples = 0;                   // stop after this much audio; 0 = no limit
    std::int64_t rtcp_interval_ns = 1'000'000'000;   // SR period
    bool record_click_times = false;                 // keep each click's capture instant
};

class SendLoop {
public:
    /// Sends one datagram; returns false if the kernel refused it.
    using SendFn = std::function<bool(std::span<const std::uint8_t>)>;

    /// `source` must outlive the loop. The stream's first sample is captured
    /// at `start_ns` (paced sources release block i at start + (i+1) * 10 ms).
    /// Throws like Packetiser's constructor.
    SendLoop(const SendLoopConfig& config, BlockSource& source, std::int64_t start_ns, SendFn send);

    /// Does everything due at `now_ns` (monotonic): releases the due blocks,
    /// sends the packets they complete, sends an SR when due (`unix_ns` is the
    /// wall clock for its NTP field). Returns false once the loop has
    /// finished (source ended or failed, or max_samples reached: the last
    /// partial packet is then padded and sent, followed by SR + SDES + BYE).
    bool tick(std::int64_t now_ns, std::int64_t unix_ns) noexcept;

    /// When to call tick() next: the next block deadline (paced) or the next
    /// SR deadline, whichever is first. A driven source also needs polling.
    std::int64_t next_wake_ns() const noexcept;

    /// Stops: flushes the partial packet and sends SR + SDES + BYE. Does
    /// nothing the second time.
    void finish(std::int64_t now_ns, std::int64_t unix_ns) noexcept;

    /// A datagram received on the studio's socket: RTCP (RR, SR, ...) is
    /// parsed and counted, report blocks about our SSRC are kept; anything
    /// else counts as malformed_received. Never throws.
    void on_datagram(std::span<const std::uint8_t> datagram) noexcept;

    bool running() const noexcept { return running_; }
    /// Why the source stopped with an error (empty otherwise).
    const std::string& error() const noexcept { return error_; }
    const StudioStats& stats() const noexcept { return stats_; }
    StudioStats& stats() noexcept { return stats_; }
    LevelMeter& meter() noexcept { return meter_; }
    /// Capture instants (monotonic ns) of every click sent, in order.
    const std::vector<std::int64_t>& click_times() const noexcept { return click_times_; }
    const Packetiser& packetiser() const noexcept { return packetiser_; }
    const BlockPacer& pacer() const noexcept { return pacer_; }

private:
    /// Handles one block with `got` valid samples; returns false when the
    /// sample limit is reached.
    bool process_block(std::size_t got) noexcept;
    void send_rtp(std::span<const std::uint8_t> packet) noexcept;
    void send_rtcp(std::int64_t now_ns, std::int64_t unix_ns, bool bye) noexcept;
    std::uint64_t sample_position(std::int64_t now_ns) const noexcept;

    SendLoopConfig config_;
    BlockSource& source_;
    const ClickSource* clicks_ = nullptr;
    SendFn send_;
    Packetiser packetiser_;
    BlockPacer pacer_;
    std::vector<float> block_;
    std::uint64_t samples_ = 0;
    std::int64_t next_rtcp_ns_;
    bool first_sr_sent_ = false;
    bool running_ = true;
    bool finished_ = false;
    std::string error_;
    StudioStats stats_;
    LevelMeter meter_;
    std::vector<std::int64_t> click_times_;
};

}  // namespace loa::studio
