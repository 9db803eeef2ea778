#include "loa-studio/block_source.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "loa/codecs/audio_format.h"
#include "loa/codecs/clip_reader.h"

namespace loa::studio {

BlockPacer::BlockPacer(std::int64_t start_ns, std::int64_t block_ns, std::uint64_t max_behind) noexcept
    : start_ns_(start_ns), block_ns_(block_ns > 0 ? block_ns : kBlockNs), max_behind_(max_behind) {}

std::uint64_t BlockPacer::take_due(std::int64_t now_ns) noexcept {
    if (now_ns < start_ns_ + block_ns_) return 0;
    const auto due_total = static_cast<std::uint64_t>((now_ns - start_ns_) / block_ns_);
    if (due_total <= taken_) return 0;
    std::uint64_t due = due_total - taken_;
    if (max_behind_ > 0 && due > max_behind_) {
        // Skip what lies beyond the allowed backlog: the time line moves on.
        const std::uint64_t skip = due - max_behind_;
        start_ns_ += static_cast<std::int64_t>(skip) * block_ns_;
        due = max_behind_;
        ++resyncs_;
    }
    taken_ += due;
    return due;
}

std::int64_t BlockPacer::next_deadline_ns() const noexcept {
    return start_ns_ + static_cast<std::int64_t>(taken_ + 1) * block_ns_;
}

std::int64_t BlockPacer::sample_time_ns(std::uint64_t n) const noexcept {
    // n * 1e9 / 48000 = n * 62500 / 3, exact in 64 bits for centuries of audio.
    return start_ns_ + static_cast<std::int64_t>(n * 62500 / 3);
}

std::uint64_t BlockPacer::samples_at(std::int64_t now_ns) const noexcept {
    if (now_ns <= start_ns_) return 0;
    return static_cast<std::uint64_t>(now_ns - start_ns_) * 3 / 62500;
}

SourceStatus ToneSource::read(std::span<float> block, std::size_t& got) noexcept {
    tone_.render(block);
    got = block.size();
    return SourceStatus::Ok;
}

ClickSource::ClickSource(std::uint64_t interval_samples, double amplitude, std::size_t click_samples) noexcept
    : interval_(std::max<std::uint64_t>(interval_samples, 2)),
      amplitude_(amplitude),
      click_samples_(std::clamp<std::size_t>(click_samples, 1, static_cast<std::size_t>(interval_ - 1))) {}

float ClickSource::sample_at(std::uint64_t n) const noexcept {
    if (n < interval_) return 0.0f;
    const std::uint64_t offset = n % interval_;
    if (offset >= click_samples_) return 0.0f;
    const double phase = 2.0 * std::numbers::pi * 1000.0 * static_cast<double>(offset) / codecs::kSampleRate;
    return static_cast<float>(amplitude_ * std::sin(phase));
}

std::uint64_t ClickSource::onset_in(std::uint64_t first, std::uint64_t count) const noexcept {
    std::uint64_t k = (first + interval_ - 1) / interval_;
    if (k < 1) k = 1;
    const std::uint64_t onset = k * interval_;
    return onset < first + count ? onset : std::numeric_limits<std::uint64_t>::max();
}

SourceStatus ClickSource::read(std::span<float> block, std::size_t& got) noexcept {
    for (std::size_t i = 0; i < block.size(); ++i) block[i] = sample_at(position_ + i);
    position_ += block.size();
    got = block.size();
    return SourceStatus::Ok;
}

FileSource::FileSource(const std::filesystem::path& path, bool loop)
    : reader_(std::make_unique<codecs::ClipReader>(path)), loop_(loop) {}

FileSource::~FileSource() = default;

SourceStatus FileSource::read(std::span<float> block, std::size_t& got) noexcept {
    got = 0;
    if (ended_) {
        std::fill(block.begin(), block.end(), 0.0f);
        return SourceStatus::End;
    }
    bool rewound = false;
    while (got < block.size()) {
        std::size_t n = 0;
        const auto st = reader_->read(block.subspan(got), n);
        got += n;
        if (st == codecs::Status::Ok) break;
        if (st == codecs::Status::EndOfStream) {
            // A second end in a row without audio: an empty file; stop looping.
            if (!loop_ || (rewound && n == 0)) {
                ended_ = true;
                return SourceStatus::End;
            }
            if (reader_->rewind() != codecs::Status::Ok) {
                error_ = "cannot rewind '" + reader_->path().string() + "'";
                ended_ = true;
                std::fill(block.begin(), block.end(), 0.0f);
                got = 0;
                return SourceStatus::Error;
            }
            rewound = true;
            continue;
        }
        error_ = "reading '" + reader_->path().string() + "' failed: " + codecs::to_string(st);
        ended_ = true;
        std::fill(block.begin(), block.end(), 0.0f);
        got = 0;
        return SourceStatus::Error;
    }
    return SourceStatus::Ok;
}

SourceStatus RingSource::read(std::span<float> block, std::size_t& got) noexcept {
    got = 0;
    if (ring_.size() < block.size()) return SourceStatus::NotReady;
    got = ring_.read(block);
    return SourceStatus::Ok;
}

}  // namespace loa::studio
