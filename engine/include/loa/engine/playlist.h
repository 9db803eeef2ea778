#pragma once
// A playlist source: items played in order — a generated tone sequence, a
// clip file with a gain, a gap of silence — the whole list played `repeats`
// times with `interval_ms` of silence between two plays. Alerts use it
// (attention chime, message, repeat); schedules can reuse it.
//
// Like ClipSource, the work is split across two threads: a producer thread
// generates the tones, decodes the clips and writes silence into a bounded
// ring of frames, each tagged with the play and item it belongs to; the
// media thread only copies frames out (render(): no allocation, no lock, no
// blocking). Every item starts on a frame boundary (the last frame of an
// item is padded with silence). A clip that cannot be opened or decoded is
// skipped from there on (counted in PlaylistProgress::skipped_items, its
// message in error()); the rest of the list plays.
//
// Threads: construction, destruction and error() on the control thread;
// render() on the media thread only; PlaylistProgress from any thread.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "loa/engine/source.h"

namespace loa::engine {

/// One step of a generated tone sequence; frequency 0 is silence.
struct ToneStep {
    double frequency_hz = 0.0;
    int duration_ms = 0;
};

struct PlaylistItem {
    enum class Kind { Tones, Clip, Gap };
    Kind kind = Kind::Gap;
    std::vector<ToneStep> tones;  // Tones: played in order, each with 5 ms fades
    double level_db = -12.0;      // Tones: peak level of every step, dBFS
    std::filesystem::path path;   // Clip: the file (decoded to 48 kHz mono)
    double gain_db = 0.0;         // Clip and Tones: extra gain
    int duration_ms = 0;          // Gap

    static PlaylistItem tone_sequence(std::vector<ToneStep> steps, double level_db);
    static PlaylistItem clip(std::filesystem::path path, double gain_db = 0.0);
    static PlaylistItem gap(int duration_ms);
    /// Length in ms of a Tones or Gap item; clips: 0 (unknown here).
    std::int64_t fixed_duration_ms() const noexcept;
};

/// Where a playlist source reports what is heard (updated by the media
/// thread as it plays frames; relaxed atomics, read from any thread).
struct PlaylistProgress {
    /// Index of the play the last frame belonged to (0-based).
    std::atomic<std::uint32_t> play{0};
    /// Item of the last frame; items.size() stands for the interval before `play`.
    std::atomic<std::uint32_t> item{0};
    /// Playlist frames played so far (underruns excluded).
    std::atomic<std::uint64_t> frames{0};
    /// Clips skipped because they could not be read.
    std::atomic<std::uint64_t> skipped_items{0};
    /// Every play has been produced and played out.
    std::atomic<bool> finished{false};
};

struct PlaylistSpec {
    std::vector<PlaylistItem> items;  // one play; may be empty (then only intervals)
    int repeats = 1;                  // plays, >= 1
    int interval_ms = 0;              // silence between two plays, >= 0
    std::shared_ptr<PlaylistProgress> progress;  // optional: shared with whoever watches
    /// Where the first frame is taken from: this much of the whole content
    /// (every play and interval, each item padded to whole frames) is left
    /// out, rounded down to a whole frame. 0 (the default) plays from the
    /// top. Items lying wholly before the offset are not decoded when their
    /// length is known (gaps, tones, clips whose file states its length);
    /// the item the offset falls in is decoded and its head dropped. An
    /// offset past the end plays nothing (the source ends at once).
    /// Negative is taken as 0.
    std::int64_t start_offset_ms = 0;
};

/// The built-in attention chime of alerts: 960 Hz and 853 Hz alternating in
/// 500 ms steps, two seconds in all.
std::vector<ToneStep> attention_chime();
/// Peak level of the attention chime, dBFS.
inline constexpr double kAttentionChimeLevelDb = -6.0;

class PlaylistSource final : public Source {
public:
    /// `frame_samples`: one packet time at 48 kHz; `ring_frames`: how far the
    /// producer may run ahead. Starts the producer thread. Invalid counts
    /// (repeats < 1, negative durations) are taken as 1 and 0.
    PlaylistSource(PlaylistSpec spec, std::size_t frame_samples, std::size_t ring_frames = 64);
    ~PlaylistSource() override;
    PlaylistSource(const PlaylistSource&) = delete;
    PlaylistSource& operator=(const PlaylistSource&) = delete;

    /// Media thread. One frame of the playlist; silence (counted as an
    /// underrun) when the producer is behind. False once every play has been
    /// played (and from then on).
    bool render(std::span<float> out) noexcept override;
    const std::string& description() const noexcept override { return description_; }

    /// Frames produced and not yet played. Any thread.
    std::size_t buffered() const noexcept;
    /// True once the producer has written its last frame. Any thread.
    bool produced_all() const noexcept { return done_.load(std::memory_order_acquire); }
    /// The last clip error, empty when none. Control thread.
    std::string error() const;
    const PlaylistProgress& progress() const noexcept { return *progress_; }

private:
    class Writer;
    void produce();
    bool produce_item(Writer& w, const PlaylistItem& item, std::uint32_t tag);
    void set_error(std::string message);

    PlaylistSpec spec_;
    std::shared_ptr<PlaylistProgress> progress_;
    std::size_t frame_samples_;
    std::size_t ring_frames_;
    std::unique_ptr<float[]> ring_;
    std::unique_ptr<std::uint32_t[]> tags_;  // (play << 16) | item, per ring slot
    std::string description_;
    mutable std::mutex error_mutex_;  // producer and control threads only
    std::string error_;
    alignas(64) std::atomic<std::uint64_t> produced_{0};
    alignas(64) std::atomic<std::uint64_t> consumed_{0};
    std::atomic<std::uint32_t> wake_{0};  // bumped on every consume and on stop
    std::atomic<bool> done_{false};
    std::atomic<bool> stop_{false};
    bool ended_ = false;  // media thread: render() has returned false
    std::thread thread_;
};

}  // namespace loa::engine
