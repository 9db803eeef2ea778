#include "loa/engine/playlist.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <numbers>

#include "loa/codecs/clip_reader.h"
#include "loa/codecs/dsp.h"

namespace loa::engine {

namespace {
constexpr int kRate = 48000;
constexpr std::size_t kFadeSamples = 240;  // 5 ms: no click at a step's edges

std::uint32_t make_tag(std::uint32_t play, std::uint32_t item) {
    return (std::min<std::uint32_t>(play, 0xFFFF) << 16) | std::min<std::uint32_t>(item, 0xFFFF);
}
}  // namespace

PlaylistItem PlaylistItem::tone_sequence(std::vector<ToneStep> steps, double level) {
    PlaylistItem i;
    i.kind = Kind::Tones;
    i.tones = std::move(steps);
    i.level_db = level;
    return i;
}

PlaylistItem PlaylistItem::clip(std::filesystem::path p, double gain) {
    PlaylistItem i;
    i.kind = Kind::Clip;
    i.path = std::move(p);
    i.gain_db = gain;
    return i;
}

PlaylistItem PlaylistItem::gap(int ms) {
    PlaylistItem i;
    i.kind = Kind::Gap;
    i.duration_ms = ms;
    return i;
}

std::int64_t PlaylistItem::fixed_duration_ms() const noexcept {
    switch (kind) {
        case Kind::Tones: {
            std::int64_t total = 0;
            for (const auto& s : tones) total += std::max(0, s.duration_ms);
            return total;
        }
        case Kind::Gap: return std::max(0, duration_ms);
        case Kind::Clip: return 0;
    }
    return 0;
}

std::vector<ToneStep> attention_chime() { return {{960.0, 500}, {853.0, 500}, {960.0, 500}, {853.0, 500}}; }

// Collects samples into whole frames and hands them to the ring, waiting
// while it is full. While frames of the start offset are left to skip, a
// full frame is dropped instead of published. Producer thread only.
class PlaylistSource::Writer {
public:
    Writer(PlaylistSource& s, std::uint64_t skip_frames)
        : s_(s), frame_(s.frame_samples_, 0.0f), skip_(skip_frames) {}

    /// Frames still to drop before the first one is published.
    std::uint64_t skip_left() const noexcept { return skip_; }
    /// Drops `frames` whole frames without producing them (an item known to
    /// lie before the start offset). Only at an item boundary (nothing
    /// pending in the frame); `frames` <= skip_left().
    void skip_whole(std::uint64_t frames) noexcept { skip_ -= std::min(skip_, frames); }

    std::span<float> free_space() { return std::span<float>(frame_).subspan(fill_); }
    /// `n` samples of free_space() were written; publishes the frame when full.
    bool commit(std::size_t n, std::uint32_t tag) {
        fill_ += n;
        if (fill_ < frame_.size()) return true;
        return publish(tag);
    }
    /// Pads a started frame with silence and publishes it (an item's end).
    bool flush(std::uint32_t tag) {
        if (fill_ == 0) return true;
        std::fill(frame_.begin() + static_cast<std::ptrdiff_t>(fill_), frame_.end(), 0.0f);
        return publish(tag);
    }
    bool silence(std::int64_t samples, std::uint32_t tag) {
        while (samples > 0) {
            auto room = free_space();
            const auto n = std::min<std::size_t>(room.size(), static_cast<std::size_t>(samples));
            std::fill_n(room.begin(), n, 0.0f);
            if (!commit(n, tag)) return false;
            samples -= static_cast<std::int64_t>(n);
        }
        return flush(tag);
    }

private:
    bool publish(std::uint32_t tag) {
        if (skip_ > 0) {
            if (s_.stop_.load(std::memory_order_acquire)) return false;
            --skip_;
            fill_ = 0;
            return true;
        }
        for (;;) {
            if (s_.stop_.load(std::memory_order_acquire)) return false;
            const auto wake = s_.wake_.load(std::memory_order_acquire);
            const auto produced = s_.produced_.load(std::memory_order_relaxed);
            if (produced - s_.consumed_.load(std::memory_order_acquire) < s_.ring_frames_) {
                const auto slot = produced % s_.ring_frames_;
                std::copy(frame_.begin(), frame_.end(), s_.ring_.get() + slot * s_.frame_samples_);
                s_.tags_[slot] = tag;
                s_.produced_.store(produced + 1, std::memory_order_release);
                fill_ = 0;
                return true;
            }
            // Ring full: sleep until the media thread consumes a frame (or stop).
            s_.wake_.wait(wake, std::memory_order_acquire);
        }
    }

    PlaylistSource& s_;
    std::vector<float> frame_;
    std::size_t fill_ = 0;
    std::uint64_t skip_ = 0;
};

namespace {
/// Frames a stretch of `samples` takes once padded to whole frames.
std::uint64_t frames_for(std::int64_t samples, std::size_t frame_samples) {
    if (samples <= 0 || frame_samples == 0) return 0;
    const auto f = static_cast<std::uint64_t>(frame_samples);
    return (static_cast<std::uint64_t>(samples) + f - 1) / f;
}

/// Samples at 48 kHz of a tone sequence or gap item (what produce_item writes).
std::int64_t fixed_samples(const PlaylistItem& item) {
    switch (item.kind) {
        case PlaylistItem::Kind::Gap: return std::int64_t{std::max(0, item.duration_ms)} * kRate / 1000;
        case PlaylistItem::Kind::Tones: {
            std::int64_t n = 0;
            for (const auto& step : item.tones) n += std::int64_t{std::max(0, step.duration_ms)} * kRate / 1000;
            return n;
        }
        case PlaylistItem::Kind::Clip: return 0;
    }
    return 0;
}
}  // namespace

PlaylistSource::PlaylistSource(PlaylistSpec spec, std::size_t frame_samples, std::size_t ring_frames)
    : spec_(std::move(spec)),
      progress_(spec_.progress ? spec_.progress : std::make_shared<PlaylistProgress>()),
      frame_samples_(frame_samples),
      ring_frames_(std::max<std::size_t>(ring_frames, 2)),
      ring_(std::make_unique<float[]>(frame_samples * ring_frames_)),
      tags_(std::make_unique<std::uint32_t[]>(ring_frames_)) {
    spec_.repeats = std::max(1, spec_.repeats);
    spec_.interval_ms = std::max(0, spec_.interval_ms);
    description_ = "playlist of " + std::to_string(spec_.items.size()) + " item(s) x " + std::to_string(spec_.repeats);
    if (spec_.start_offset_ms > 0) description_ += " from " + std::to_string(spec_.start_offset_ms) + " ms";
    thread_ = std::thread([this] { produce(); });
}

PlaylistSource::~PlaylistSource() {
    stop_.store(true, std::memory_order_release);
    wake_.fetch_add(1, std::memory_order_release);
    wake_.notify_all();
    thread_.join();
}

std::size_t PlaylistSource::buffered() const noexcept {
    return static_cast<std::size_t>(produced_.load(std::memory_order_acquire) -
                                    consumed_.load(std::memory_order_acquire));
}

std::string PlaylistSource::error() const {
    std::lock_guard lock(error_mutex_);
    return error_;
}

void PlaylistSource::set_error(std::string message) {
    std::lock_guard lock(error_mutex_);
    error_ = std::move(message);
}

void PlaylistSource::produce() {
    const auto offset_samples = std::max<std::int64_t>(0, spec_.start_offset_ms) * (kRate / 1000);
    Writer w(*this, frame_samples_ == 0 ? 0 : static_cast<std::uint64_t>(offset_samples) / frame_samples_);
    const auto items = static_cast<std::uint32_t>(spec_.items.size());
    for (std::uint32_t play = 0; play < static_cast<std::uint32_t>(spec_.repeats); ++play) {
        if (play > 0 && spec_.interval_ms > 0) {
            const auto n = std::int64_t{spec_.interval_ms} * kRate / 1000;
            if (const auto f = frames_for(n, frame_samples_); w.skip_left() >= f) {
                w.skip_whole(f);
            } else if (!w.silence(n, make_tag(play, items))) {
                return;
            }
        }
        for (std::uint32_t i = 0; i < items; ++i) {
            if (!produce_item(w, spec_.items[i], make_tag(play, i))) return;
        }
    }
    done_.store(true, std::memory_order_release);
}

bool PlaylistSource::produce_item(Writer& w, const PlaylistItem& item, std::uint32_t tag) {
    // Before the start offset: a gap or tone sequence that ends before it is
    // not generated at all.
    if (w.skip_left() > 0 && item.kind != PlaylistItem::Kind::Clip) {
        if (const auto f = frames_for(fixed_samples(item), frame_samples_); w.skip_left() >= f) {
            w.skip_whole(f);
            return true;
        }
    }
    switch (item.kind) {
        case PlaylistItem::Kind::Gap:
            return w.silence(std::int64_t{std::max(0, item.duration_ms)} * kRate / 1000, tag);
        case PlaylistItem::Kind::Tones: {
            const double amplitude = codecs::db_to_gain(item.level_db + item.gain_db);
            for (const auto& step : item.tones) {
                const auto n = static_cast<std::size_t>(std::max(0, step.duration_ms)) * kRate / 1000;
                const double dphi = 2.0 * std::numbers::pi * step.frequency_hz / kRate;
                const auto fade = std::min(kFadeSamples, n / 2);
                for (std::size_t k = 0; k < n;) {
                    auto room = w.free_space();
                    const auto take = std::min(room.size(), n - k);
                    for (std::size_t j = 0; j < take; ++j, ++k) {
                        double env = 1.0;
                        if (fade > 0 && k < fade) env = static_cast<double>(k) / static_cast<double>(fade);
                        if (fade > 0 && n - k <= fade) env = static_cast<double>(n - k - 1) / static_cast<double>(fade);
                        room[j] = step.frequency_hz > 0.0
                                      ? static_cast<float>(amplitude * env * std::sin(dphi * static_cast<double>(k)))
                                      : 0.0f;
                    }
                    if (!w.commit(take, tag)) return false;
                }
            }
            return w.flush(tag);
        }
        case PlaylistItem::Kind::Clip: {
            std::unique_ptr<codecs::ClipReader> reader;
            try {
                reader = std::make_unique<codecs::ClipReader>(item.path);
            } catch (const std::exception& e) {
                set_error(e.what());
                progress_->skipped_items.fetch_add(1, std::memory_order_relaxed);
                return true;
            }
            if (w.skip_left() > 0) {
                // A clip that ends before the start offset is not decoded
                // when its file states its length (resampled files: the
                // length is estimated to within a frame).
                const auto& info = reader->info();
                if (info.source_rate > 0 && info.source_frames > 0) {
                    const auto samples =
                        info.source_rate == kRate
                            ? info.source_frames
                            : static_cast<std::int64_t>(std::llround(static_cast<double>(info.source_frames) * kRate /
                                                                     info.source_rate));
                    if (const auto f = frames_for(samples, frame_samples_); w.skip_left() >= f) {
                        w.skip_whole(f);
                        return true;
                    }
                }
            }
            const auto gain = static_cast<float>(codecs::db_to_gain(item.gain_db));
            for (;;) {
                auto room = w.free_space();
                std::size_t got = 0;
                const auto st = reader->read(room, got);
                codecs::apply_gain(room.first(got), gain);
                if (st == codecs::Status::Ok) {
                    if (!w.commit(got, tag)) return false;
                    continue;
                }
                if (!w.commit(got, tag)) return false;
                if (st != codecs::Status::EndOfStream) {
                    set_error("cannot decode clip '" + item.path.string() + "': " + codecs::to_string(st));
                    progress_->skipped_items.fetch_add(1, std::memory_order_relaxed);
                }
                return w.flush(tag);
            }
        }
    }
    return true;
}

bool PlaylistSource::render(std::span<float> out) noexcept {
    if (ended_) {
        std::fill(out.begin(), out.end(), 0.0f);
        return false;
    }
    const auto consumed = consumed_.load(std::memory_order_relaxed);
    if (produced_.load(std::memory_order_acquire) == consumed) {
        // done_ is set after the last frame is published: once it reads true,
        // one more look at produced_ tells whether anything is left.
        if (!done_.load(std::memory_order_acquire)) {
            std::fill(out.begin(), out.end(), 0.0f);
            counters_.underruns.fetch_add(1, std::memory_order_relaxed);
            return true;
        }
        if (produced_.load(std::memory_order_acquire) == consumed) {
            std::fill(out.begin(), out.end(), 0.0f);
            ended_ = true;
            progress_->finished.store(true, std::memory_order_release);
            return false;
        }
    }
    const auto slot = consumed % ring_frames_;
    const float* frame = ring_.get() + slot * frame_samples_;
    const auto n = std::min(out.size(), frame_samples_);
    std::copy(frame, frame + n, out.begin());
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(n), out.end(), 0.0f);
    const auto tag = tags_[slot];
    consumed_.store(consumed + 1, std::memory_order_release);
    wake_.fetch_add(1, std::memory_order_release);
    wake_.notify_one();
    progress_->play.store(tag >> 16, std::memory_order_relaxed);
    progress_->item.store(tag & 0xFFFF, std::memory_order_relaxed);
    progress_->frames.fetch_add(1, std::memory_order_relaxed);
    counters_.frames.fetch_add(1, std::memory_order_relaxed);
    return true;
}

}  // namespace loa::engine
