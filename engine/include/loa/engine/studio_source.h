#pragma once
// A live studio as a programme source: the studio's packets, queued by the
// ingest I/O thread for this source's own reader of the StudioFeed (one of
// the studio's kMaxReaders: a studio may feed a programme and an alert at
// once, each with its own queue), go through this source's own Playout
// (adaptive jitter buffer, Opus decode with FEC/PLC, drift compensation) and
// come out one frame per render() on the engine's media clock.
//
// The mix never waits for the studio: render() plays whatever the Playout has
// at the tick. When the studio has been silent for `silent_after_ns` after
// its last packet was due to play (arrival + the playout's target delay),
// the source plays its fallback (a looped
// clip, or silence when there is none) and returns to the live feed as soon
// as packets come back. Every switch is crossfaded over one frame.
//
// Packets that arrived before the source was made (left in the reader's
// queue by a programme that held the same slot before) are skipped: a new
// programme starts from the live edge.
//
// Lead-in (set_lead_in(), e.g. an alert's attention chime and message): a
// source played first, until its render() returns false; the studio is
// heard from the next frame on. Meanwhile the feed is still drained and the
// studio's playout kept running at the live edge, unheard: what the studio
// said during the lead-in is not replayed later.
//
// Threads: constructed and destroyed on the control thread (attaching and
// detaching the reader); render() only on the media thread (the reader's
// consumer): no allocation, no locks, no blocking. Counters and the
// Playout's stats from any thread.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "loa/engine/clock.h"
#include "loa/engine/ingest.h"
#include "loa/engine/playout.h"
#include "loa/engine/source.h"

namespace loa::engine {

struct StudioSourceCounters {
    std::atomic<std::uint64_t> live_frames{0};      // frames rendered from the live feed
    std::atomic<std::uint64_t> fallback_frames{0};  // frames of fallback (clip or silence)
    std::atomic<std::uint64_t> went_silent{0};      // live -> fallback switches
    std::atomic<std::uint64_t> resumed{0};          // fallback -> live switches (the first start included)
    std::atomic<std::uint64_t> malformed{0};        // queued packets that did not parse (not expected)
    std::atomic<std::uint64_t> stale{0};            // queued before this source existed (left by a former consumer): skipped
    std::atomic<bool> live{false};                  // playing the live feed now
    std::atomic<std::uint64_t> lead_in_frames{0};   // frames of the lead-in (studio unheard meanwhile)
    std::atomic<bool> lead_in_done{false};          // the lead-in has ended (false while it plays or without one)
};

class StudioSource final : public Source {
public:
    /// How long a studio may send nothing before the fallback plays.
    static constexpr std::int64_t kSilentAfterNs = 500'000'000;

    /// `feed`: the studio; the source attaches a reader of it (detached by
    /// the destructor, or earlier by whoever calls feed.detach(attachment())).
    /// `clock`: the engine's media clock; IngestPacket::arrival_ns must come
    /// from the same clock. `frame_samples`: the largest block render() is
    /// given. `fallback`: played while the studio is silent (nullptr =
    /// silence). Throws std::runtime_error when the studio already has
    /// StudioFeed::kMaxReaders readers, and what Playout's constructor throws.
    StudioSource(StudioFeed& feed, const Clock& clock, std::size_t frame_samples,
                 std::unique_ptr<Source> fallback = nullptr, const PlayoutConfig& playout = {},
                 std::int64_t silent_after_ns = kSilentAfterNs);
    ~StudioSource() override;
    StudioSource(const StudioSource&) = delete;
    StudioSource& operator=(const StudioSource&) = delete;

    /// Control thread, before the source is handed to the media thread.
    /// `lead_in` plays before the studio (see above); nullptr = none.
    void set_lead_in(std::unique_ptr<Source> lead_in) noexcept { lead_in_ = std::move(lead_in); }
    /// The lead-in source, or nullptr (any thread; it is never replaced while rendering).
    const Source* lead_in() const noexcept { return lead_in_.get(); }

    /// Media thread. Drains its reader into the Playout (nothing once the
    /// attachment has been detached), then renders one
    /// block (at most `frame_samples`; the rest of a longer `out` is
    /// silence): the lead-in while it lasts, then the studio. Always returns
    /// true: a studio never ends.
    bool render(std::span<float> out) noexcept override;
    const std::string& description() const noexcept override { return description_; }

    const StudioFeed& feed() const noexcept { return feed_; }
    /// This source's reader of the feed (control thread: to detach it early).
    const StudioFeed::Attachment& attachment() const noexcept { return attachment_; }
    /// Counters and gauges of the studio's playout (any thread).
    const PlayoutStats& playout_stats() const noexcept { return playout_->stats(); }
    /// The fallback clip source, or nullptr for silence.
    const Source* fallback() const noexcept { return fallback_.get(); }
    bool live() const noexcept { return counters_studio_.live.load(std::memory_order_relaxed); }
    const StudioSourceCounters& studio_counters() const noexcept { return counters_studio_; }

private:
    void render_live(std::span<float> out, std::int64_t now_ns) noexcept;
    void render_fallback(std::span<float> out) noexcept;

    StudioFeed& feed_;
    StudioFeed::Attachment attachment_;
    const Clock& clock_;
    std::unique_ptr<Playout> playout_;
    std::unique_ptr<Source> fallback_;
    std::unique_ptr<Source> lead_in_;  // played first; kept (not freed) on the media thread once ended
    bool lead_in_over_ = false;        // media thread
    std::int64_t silent_after_ns_;
    std::string description_;
    std::vector<float> scratch_;  // one frame: the other side of a crossfade
    bool live_ = false;
    std::int64_t last_packet_ns_ = 0;
    std::int64_t created_ns_ = 0;
    StudioSourceCounters counters_studio_;
};

}  // namespace loa::engine
