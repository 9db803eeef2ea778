#pragma once
// RAII wrapper around one libopus encoder (48 kHz mono). Not thread-safe: one
// owner thread (the media thread for a programme). encode() does not allocate.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "loa/codecs/status.h"

namespace loa::codecs {

/// What a programme carries; chooses the Opus signal hint and mode.
enum class Content {
    Speech,  // OPUS_SIGNAL_VOICE, SILK/hybrid modes that carry in-band FEC
    Music,   // OPUS_SIGNAL_MUSIC, CELT, no in-band FEC
};

struct OpusEncoderConfig {
    int bitrate_bps = 64000;
    int complexity = 9;            // 0..10
    int ptime_ms = 20;             // 10, 20, 40 or 60
    Content content = Content::Speech;
    bool inband_fec = true;        // ignored (off) for Content::Music
    int expected_loss_pct = 10;    // 0..100, hint for FEC strength
};

class OpusEncoder {
public:
    /// Throws codecs::Error(BadArgument) on an invalid config.
    explicit OpusEncoder(const OpusEncoderConfig& config);
    ~OpusEncoder();
    OpusEncoder(const OpusEncoder&) = delete;
    OpusEncoder& operator=(const OpusEncoder&) = delete;
    OpusEncoder(OpusEncoder&&) noexcept;
    OpusEncoder& operator=(OpusEncoder&&) noexcept;

    /// Encodes exactly one frame (frame_samples(ptime_ms) samples) into `out`.
    /// On Ok, `written` holds the packet size. Real-time safe.
    [[nodiscard]] Status encode(std::span<const float> pcm, std::span<std::uint8_t> out,
                                std::size_t& written) noexcept;

    /// Updates the expected-loss hint (e.g. from cluster reports). Real-time safe.
    [[nodiscard]] Status set_expected_loss(int pct) noexcept;
    [[nodiscard]] Status set_bitrate(int bps) noexcept;

    const OpusEncoderConfig& config() const noexcept { return config_; }
    std::size_t frame_size() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    OpusEncoderConfig config_;
};

}  // namespace loa::codecs
