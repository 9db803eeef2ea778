#include "loa/engine/source.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "loa/codecs/clip_reader.h"
#include "loa/engine/playlist.h"
#include "loa/engine/studio_source.h"

namespace loa::engine {

ToneSource::ToneSource(double frequency_hz, double level_db)
    : tone_(frequency_hz, codecs::db_to_gain(level_db)),
      description_("tone " + std::to_string(static_cast<int>(frequency_hz)) + " Hz") {}

bool ToneSource::render(std::span<float> out) noexcept {
    tone_.render(out);
    counters_.frames.fetch_add(1, std::memory_order_relaxed);
    return true;
}

ClipSource::ClipSource(std::filesystem::path path, bool loop, std::size_t frame_samples, std::size_t ring_frames)
    : path_(std::move(path)),
      loop_(loop),
      frame_samples_(frame_samples),
      ring_frames_(ring_frames),
      ring_(std::make_unique<float[]>(frame_samples * ring_frames)),
      description_("clip " + path_.string()) {
    thread_ = std::thread([this] { decode_loop(); });
}

ClipSource::~ClipSource() {
    stop_.store(true, std::memory_order_release);
    wake_.fetch_add(1, std::memory_order_release);
    wake_.notify_all();
    thread_.join();
}

std::string ClipSource::error() const {
    if (!ready()) return {};
    return error_;
}

void ClipSource::decode_loop() {
    std::unique_ptr<codecs::ClipReader> reader;
    try {
        reader = std::make_unique<codecs::ClipReader>(path_);
    } catch (const std::exception& e) {
        error_ = e.what();
        finished_.store(true, std::memory_order_release);
        ready_.store(true, std::memory_order_release);
        return;
    }
    opened_.store(true, std::memory_order_release);
    ready_.store(true, std::memory_order_release);

    std::uint32_t rewinds = 0;  // rewinds done
    bool at_end = false;        // nothing more to decode until a rewind
    auto end_here = [&](std::string error) {
        if (!error.empty()) error_ = std::move(error);
        finished_.store(true, std::memory_order_release);
        at_end = true;
    };
    while (!stop_.load(std::memory_order_acquire)) {
        // Load the wake count first: a rewind asked after this load wakes the wait below.
        const auto wake = wake_.load(std::memory_order_acquire);
        const auto asked = rewinds_asked_.load(std::memory_order_acquire);
        if (asked != rewinds) {
            rewinds = asked;
            if (reader->rewind() != codecs::Status::Ok) {
                end_here("cannot rewind clip '" + path_.string() + "'");
            } else {
                at_end = false;
                finished_.store(false, std::memory_order_release);
            }
            // Frames from here on are the clip from its start.
            rewind_from_.store(produced_.load(std::memory_order_relaxed), std::memory_order_release);
            rewinds_done_.store(asked, std::memory_order_release);
            continue;
        }
        const auto produced = produced_.load(std::memory_order_relaxed);
        const auto consumed = consumed_.load(std::memory_order_acquire);
        if (at_end || produced - consumed >= ring_frames_) {
            // Ring full or clip over: sleep until the media thread consumes a
            // frame, a rewind is asked for, or stop.
            wake_.wait(wake, std::memory_order_acquire);
            continue;
        }
        std::span<float> slot(ring_.get() + (produced % ring_frames_) * frame_samples_, frame_samples_);
        std::size_t got = 0;
        auto st = reader->read(slot, got);
        if (st == codecs::Status::EndOfStream) {
            if (loop_) {
                // Fill the rest of this frame from the start so the loop has no gap.
                if (reader->rewind() != codecs::Status::Ok) {
                    end_here("cannot rewind clip '" + path_.string() + "'");
                    continue;
                }
                if (got == 0) continue;
                std::size_t more = 0;
                st = reader->read(slot.subspan(got), more);
                if (st != codecs::Status::Ok && st != codecs::Status::EndOfStream) {
                    end_here("cannot decode clip '" + path_.string() + "': " + codecs::to_string(st));
                    continue;
                }
            } else {
                if (got > 0) {
                    std::fill(slot.begin() + static_cast<std::ptrdiff_t>(got), slot.end(), 0.0f);
                    produced_.fetch_add(1, std::memory_order_release);
                }
                end_here({});
                continue;
            }
        } else if (st != codecs::Status::Ok) {
            end_here("cannot decode clip '" + path_.string() + "': " + codecs::to_string(st));
            continue;
        }
        produced_.fetch_add(1, std::memory_order_release);
    }
}

bool ClipSource::rewind() {
    if (ready() && !opened_.load(std::memory_order_acquire)) return false;
    rewinds_asked_.fetch_add(1, std::memory_order_acq_rel);
    wake_.fetch_add(1, std::memory_order_release);
    wake_.notify_all();
    return true;
}

bool ClipSource::catch_up_rewind() noexcept {
    const auto done = rewinds_done_.load(std::memory_order_acquire);
    if (done != rewinds_seen_) {
        rewinds_seen_ = done;
        const auto from = rewind_from_.load(std::memory_order_acquire);
        if (from > consumed_.load(std::memory_order_relaxed)) {
            consumed_.store(from, std::memory_order_release);
            wake_.fetch_add(1, std::memory_order_release);
            wake_.notify_one();
        }
        position_.store(0, std::memory_order_relaxed);
    }
    return rewinds_asked_.load(std::memory_order_acquire) == done;
}

void ClipSource::hold() noexcept { (void)catch_up_rewind(); }

bool ClipSource::render(std::span<float> out) noexcept {
    if (!catch_up_rewind()) {
        // The decoder has not gone back to the start yet: nothing stale is played.
        std::fill(out.begin(), out.end(), 0.0f);
        counters_.underruns.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    const auto consumed = consumed_.load(std::memory_order_relaxed);
    const auto produced = produced_.load(std::memory_order_acquire);
    if (produced == consumed) {
        std::fill(out.begin(), out.end(), 0.0f);
        if (finished_.load(std::memory_order_acquire)) {
            // Re-check: the decoder may have published its last frame just now.
            if (produced_.load(std::memory_order_acquire) == consumed) return false;
        } else {
            counters_.underruns.fetch_add(1, std::memory_order_relaxed);
        }
        return true;
    }
    const float* slot = ring_.get() + (consumed % ring_frames_) * frame_samples_;
    const auto n = std::min(out.size(), frame_samples_);
    std::copy(slot, slot + n, out.begin());
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(n), out.end(), 0.0f);
    consumed_.store(consumed + 1, std::memory_order_release);
    wake_.fetch_add(1, std::memory_order_release);
    wake_.notify_one();
    counters_.frames.fetch_add(1, std::memory_order_relaxed);
    position_.fetch_add(1, std::memory_order_relaxed);
    return true;
}

std::unique_ptr<Source> make_source(const SourceConfig& config, std::size_t frame_samples,
                                    const SourceContext& context) {
    switch (config.type) {
        case SourceConfig::Type::Tone:
            return std::make_unique<ToneSource>(config.frequency_hz, config.level_db);
        case SourceConfig::Type::Clip:
            return std::make_unique<ClipSource>(config.path, config.loop, frame_samples);
        case SourceConfig::Type::Playlist:
            if (!config.playlist) throw std::runtime_error("playlist source without a playlist");
            return std::make_unique<PlaylistSource>(*config.playlist, frame_samples);
        case SourceConfig::Type::Studio: {
            std::optional<StudioLink> link;
            if (context.find_studio) link = context.find_studio(config.studio);
            if (!link || link->feed == nullptr || context.clock == nullptr) {
                throw std::runtime_error("studio source '" + config.studio + "': no such studio feed");
            }
            std::unique_ptr<Source> fallback;
            if (config.fallback) fallback = std::make_unique<ClipSource>(*config.fallback, true, frame_samples);
            auto studio = std::make_unique<StudioSource>(*link->feed, *context.clock, frame_samples,
                                                         std::move(fallback), link->playout);
            // A playlist given with a studio plays first (an alert's chime and message).
            if (config.playlist) studio->set_lead_in(std::make_unique<PlaylistSource>(*config.playlist, frame_samples));
            return studio;
        }
    }
    return nullptr;
}

}  // namespace loa::engine
