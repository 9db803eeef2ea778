#pragma once
// RAII wrapper around one libopus encoder (48 kHz mono). Not thread-safe: one
// owner thread (the media thread for a programme). encode() does not allocate.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "loa/codecs/status.h"

namespace loa::codecs {

/// What a programme carries; chooses the Opus application, signal hint and mode.
///
/// Speech: OPUS_APPLICATION_VOIP + OPUS_SIGNAL_VOICE, so libopus picks SILK or
/// hybrid modes, which carry in-band FEC (LBRR) when `inband_fec` is on and the
/// expected loss is > 0. At 40/60 ms with FEC on, the audio bandwidth is capped
/// at wideband (8 kHz): that keeps SILK's native 40/60 ms frames, whose FEC
/// covers the whole lost packet (a 40/60 ms hybrid packet is 20 ms frames and
/// its FEC would cover only the last 20 ms of the lost one). SILK sends FEC
/// only for frames its VAD rates as active (not for silence or steady noise).
/// Music: OPUS_APPLICATION_AUDIO + OPUS_SIGNAL_MUSIC, CELT, no in-band FEC.
enum class Content {
    Speech,
    Music,
};

struct OpusEncoderConfig {
    int bitrate_bps = 64000;       // 6000..510000
    int complexity = 9;            // 0..10
    int ptime_ms = 20;             // 10, 20, 40 or 60
    Content content = Content::Speech;
    bool inband_fec = true;        // ignored (off) for Content::Music
    int expected_loss_pct = 10;    // 0..100, hint for FEC strength
};

class OpusEncoder {
public:
    /// Throws codecs::Error(BadArgument) on an invalid config (ptime not
    /// 10/20/40/60, bitrate outside 6000..510000, complexity outside 0..10,
    /// loss outside 0..100), Error(Internal) if libopus fails. config() then
    /// reports inband_fec = false for Content::Music.
    explicit OpusEncoder(const OpusEncoderConfig& config);
    ~OpusEncoder();
    OpusEncoder(const OpusEncoder&) = delete;
    OpusEncoder& operator=(const OpusEncoder&) = delete;
    OpusEncoder(OpusEncoder&&) noexcept;
    OpusEncoder& operator=(OpusEncoder&&) noexcept;

    /// Encodes exactly one frame (frame_samples(ptime_ms) samples) into `out`
    /// (at most kMaxOpusPacketBytes of it are used). On Ok, `written` holds the
    /// packet size; otherwise it is 0. BadArgument: wrong frame length;
    /// BufferTooSmall: `out` too small; Internal: libopus failure.
    /// Real-time safe: no allocation, no locks.
    [[nodiscard]] Status encode(std::span<const float> pcm, std::span<std::uint8_t> out,
                                std::size_t& written) noexcept;

    /// Updates the expected-loss hint (e.g. from cluster reports); 0 turns
    /// speech FEC off until raised again. BadArgument outside 0..100.
    /// Real-time safe.
    [[nodiscard]] Status set_expected_loss(int pct) noexcept;
    /// BadArgument outside 6000..510000. Real-time safe.
    [[nodiscard]] Status set_bitrate(int bps) noexcept;

    const OpusEncoderConfig& config() const noexcept { return config_; }
    /// Samples per frame (frame_samples(ptime_ms)); 0 on a moved-from encoder.
    std::size_t frame_size() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    OpusEncoderConfig config_;
};

}  // namespace loa::codecs
