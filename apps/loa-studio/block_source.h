#pragma once
// Audio sources of loa-studio. Every source hands out 10 ms blocks (480
// samples, 48 kHz mono) the way a sound card does:
//
//  - generated and file sources are *paced*: a BlockPacer says how many blocks
//    are due at the passed-in time (block i is released at start + (i+1) *
//    10 ms, once its last sample has been "captured"), and the source renders
//    them on demand;
//  - the device source is *driven* by the card: the PortAudio callback writes
//    into a FloatRing and the source yields a block whenever one is complete.
//
// Threads: one owner (the studio's io thread); RingSource's ring is written
// by the audio callback. No method here reads a clock or sleeps.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "loa-speaker/float_ring.h"
#include "loa/codecs/dsp.h"

namespace loa::codecs {
class ClipReader;
}

namespace loa::studio {

/// Samples in one source block (10 ms at 48 kHz).
inline constexpr std::size_t kBlockSamples = 480;
inline constexpr std::int64_t kBlockNs = 10'000'000;

/// Absolute deadlines of a 10 ms block clock on a monotonic time line.
class BlockPacer {
public:
    /// Block i (0-based) is due at start_ns + (i + 1) * block_ns. When a
    /// caller falls more than `max_behind` blocks behind (a suspended
    /// process), the excess is skipped: the time line moves forward instead
    /// of bursting seconds of audio (counted by resyncs()).
    explicit BlockPacer(std::int64_t start_ns, std::int64_t block_ns = kBlockNs,
                        std::uint64_t max_behind = 100) noexcept;

    /// Number of blocks due at `now_ns` that were not taken yet; they count as
    /// taken. 0 before the first deadline.
    std::uint64_t take_due(std::int64_t now_ns) noexcept;
    /// Deadline of the next block not taken yet.
    std::int64_t next_deadline_ns() const noexcept;
    /// Blocks taken so far.
    std::uint64_t taken() const noexcept { return taken_; }
    /// Instant sample `n` (counted from the first block's first sample) was
    /// "captured": start + n / 48 kHz (after resyncs, start has moved on).
    std::int64_t sample_time_ns(std::uint64_t n) const noexcept;
    /// Stream sample position at `now_ns` (may be fractional-truncated;
    /// negative times clamp to 0).
    std::uint64_t samples_at(std::int64_t now_ns) const noexcept;
    std::int64_t start_ns() const noexcept { return start_ns_; }
    std::uint64_t resyncs() const noexcept { return resyncs_; }

private:
    std::int64_t start_ns_;
    std::int64_t block_ns_;
    std::uint64_t max_behind_;
    std::uint64_t taken_ = 0;
    std::uint64_t resyncs_ = 0;
};

enum class SourceStatus {
    Ok,        // the block is filled
    NotReady,  // driven source: no complete block yet (block untouched)
    End,       // no more audio; the block holds `got` valid samples, rest zeros
    Error,     // read failure; the block is zeroed, error() says why
};

/// A source of 10 ms blocks.
class BlockSource {
public:
    virtual ~BlockSource() = default;
    /// True if the source must be paced by a BlockPacer (generated, file);
    /// false if it yields blocks as a device delivers them.
    virtual bool paced() const noexcept = 0;
    /// Fills `block` (kBlockSamples long). `got` receives the number of valid
    /// samples (kBlockSamples on Ok). No allocation for generated and ring
    /// sources; the file source does blocking reads (a small file read per
    /// block, like any clip player).
    virtual SourceStatus read(std::span<float> block, std::size_t& got) noexcept = 0;
    /// Message of the last Error (empty otherwise).
    virtual std::string error() const { return {}; }
};

/// A continuous sine (`--tone HZ`).
class ToneSource final : public BlockSource {
public:
    ToneSource(double frequency_hz, double amplitude) noexcept : tone_(frequency_hz, amplitude) {}
    bool paced() const noexcept override { return true; }
    SourceStatus read(std::span<float> block, std::size_t& got) noexcept override;

private:
    codecs::ToneGenerator tone_;
};

/// A click train (`--clicks INTERVAL_MS`): a short burst (a 1 kHz sine
/// starting at phase 0, `click_samples` long) at every multiple k >= 1 of the
/// interval; silence between. The first click is one interval in, so a
/// receiver's start-up never hides it.
class ClickSource final : public BlockSource {
public:
    /// `interval_samples` > `click_samples` > 0.
    ClickSource(std::uint64_t interval_samples, double amplitude, std::size_t click_samples = 240) noexcept;
    bool paced() const noexcept override { return true; }
    SourceStatus read(std::span<float> block, std::size_t& got) noexcept override;

    std::uint64_t interval_samples() const noexcept { return interval_; }
    /// Sample index of the first click onset in [first, first + count), or
    /// UINT64_MAX if none.
    std::uint64_t onset_in(std::uint64_t first, std::uint64_t count) const noexcept;
    /// Sample value of the train at stream position `n`.
    float sample_at(std::uint64_t n) const noexcept;

private:
    std::uint64_t interval_;
    double amplitude_;
    std::size_t click_samples_;
    std::uint64_t position_ = 0;
};

/// A file (WAV, FLAC, Ogg, MP3 through codecs::ClipReader), optionally looped.
class FileSource final : public BlockSource {
public:
    /// Throws codecs::Error naming the file when it cannot be opened.
    FileSource(const std::filesystem::path& path, bool loop);
    ~FileSource() override;
    bool paced() const noexcept override { return true; }
    SourceStatus read(std::span<float> block, std::size_t& got) noexcept override;
    std::string error() const override { return error_; }

private:
    std::unique_ptr<codecs::ClipReader> reader_;
    bool loop_;
    bool ended_ = false;
    std::string error_;
};

/// Blocks written into a FloatRing by a capture device's callback.
class RingSource final : public BlockSource {
public:
    /// `ring` must outlive the source.
    explicit RingSource(speaker::FloatRing& ring) noexcept : ring_(ring) {}
    bool paced() const noexcept override { return false; }
    SourceStatus read(std::span<float> block, std::size_t& got) noexcept override;

private:
    speaker::FloatRing& ring_;
};

}  // namespace loa::studio
