#pragma once
// Audio sources a programme mixes. render() runs on the media thread: it must
// not allocate, lock, block or log. Construction and destruction happen on
// the control thread.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>

#include "loa/codecs/dsp.h"
#include "loa/engine/clock.h"
#include "loa/engine/config.h"
#include "loa/engine/playout.h"

namespace loa::engine {

struct SourceCounters {
    std::atomic<std::uint64_t> frames{0};
    std::atomic<std::uint64_t> underruns{0};  // no audio ready: silence played instead
};

class Source {
public:
    virtual ~Source() = default;
    /// Media thread. Overwrites `out` (one frame) with the source's audio;
    /// silence when it has none. Returns false once the source has ended for
    /// good (a clip played once), true otherwise.
    virtual bool render(std::span<float> out) noexcept = 0;
    /// Media thread, in place of render() while its programme is paused: the
    /// source keeps its place and pulls nothing (a rewind asked for meanwhile
    /// may take effect). The default does nothing.
    virtual void hold() noexcept {}
    /// Control thread. Asks the source to play from its start again, from
    /// its next render(); false when it cannot (the default: it carries on
    /// from where it is).
    virtual bool rewind() { return false; }
    virtual const std::string& description() const noexcept = 0;
    const SourceCounters& counters() const noexcept { return counters_; }

protected:
    SourceCounters counters_;
};

/// A continuous sine.
class ToneSource final : public Source {
public:
    ToneSource(double frequency_hz, double level_db);
    bool render(std::span<float> out) noexcept override;
    const std::string& description() const noexcept override { return description_; }

private:
    codecs::ToneGenerator tone_;
    std::string description_;
};

/// A clip file decoded by its own thread into a bounded frame ring that the
/// media thread drains. If the file cannot be read the source stays silent
/// and error() says why; the programme plays on. It can be rewound: the
/// decoder goes back to the start of the file (also after the end of a clip
/// played once) and the media thread skips the frames decoded before, so
/// the next frame played is the clip's first.
class ClipSource final : public Source {
public:
    /// `frame_samples`: one packet time at 48 kHz. `ring_frames`: how far
    /// the decoder may run ahead. Starts the decoder thread.
    ClipSource(std::filesystem::path path, bool loop, std::size_t frame_samples, std::size_t ring_frames = 64);
    ~ClipSource() override;
    ClipSource(const ClipSource&) = delete;
    ClipSource& operator=(const ClipSource&) = delete;

    bool render(std::span<float> out) noexcept override;
    /// Media thread: applies a rewind the decoder has done, pulls nothing.
    void hold() noexcept override;
    /// False when the file could not be opened.
    bool rewind() override;
    const std::string& description() const noexcept override { return description_; }
    /// Empty while the clip is readable; else the decoder's error message.
    /// Control thread; valid once ready() is true.
    std::string error() const;
    /// True once the decoder has opened the file (or failed to).
    bool ready() const noexcept { return ready_.load(std::memory_order_acquire); }
    /// Frames of the clip played since its start (or its last rewind; a
    /// looping clip counts on across loops). Any thread.
    std::uint64_t position() const noexcept { return position_.load(std::memory_order_relaxed); }

private:
    void decode_loop();
    // Media thread: skips the frames decoded before the last rewind done;
    // false while a rewind asked for is not done yet.
    bool catch_up_rewind() noexcept;

    std::filesystem::path path_;
    bool loop_;
    std::size_t frame_samples_;
    std::size_t ring_frames_;
    std::unique_ptr<float[]> ring_;
    std::string description_;
    std::string error_;
    alignas(64) std::atomic<std::uint64_t> produced_{0};  // frames written by the decoder
    alignas(64) std::atomic<std::uint64_t> consumed_{0};  // frames read by the media thread
    std::atomic<std::uint32_t> wake_{0};  // bumped on every consume and on stop
    std::atomic<bool> finished_{false};  // decoder reached the end (not looping) or failed
    std::atomic<bool> ready_{false};
    std::atomic<bool> stop_{false};
    std::atomic<bool> opened_{false};              // the decoder has the file open
    std::atomic<std::uint32_t> rewinds_asked_{0};  // control thread
    std::atomic<std::uint32_t> rewinds_done_{0};   // decoder
    std::atomic<std::uint64_t> rewind_from_{0};    // decoder: first frame decoded after the last rewind
    std::uint32_t rewinds_seen_ = 0;               // media thread
    std::atomic<std::uint64_t> position_{0};       // media thread writes
    std::thread thread_;
};

class StudioFeed;

/// What a live studio source is joined to: the studio's ingest queue and the
/// settings of its playout.
struct StudioLink {
    StudioFeed* feed = nullptr;
    PlayoutConfig playout;
};

/// What make_source() needs beyond the config entry: the engine's clock and
/// its studio feeds. Only studio sources use it.
struct SourceContext {
    const Clock* clock = nullptr;
    /// The feed of the studio named so; nullopt when there is none.
    std::function<std::optional<StudioLink>(const std::string& studio)> find_studio;
};

/// Builds the source a config entry describes. Throws std::runtime_error
/// for a studio source whose studio `context` cannot provide.
std::unique_ptr<Source> make_source(const SourceConfig& config, std::size_t frame_samples,
                                    const SourceContext& context = {});

}  // namespace loa::engine
