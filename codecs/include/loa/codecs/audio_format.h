#pragma once
// The engine's internal audio format: 48 kHz, mono, float samples in [-1, 1],
// handled in frames of one packet time.

#include <cstddef>

namespace loa::codecs {

inline constexpr int kSampleRate = 48000;
inline constexpr int kChannels = 1;

/// Packet times Opus and Loa accept, in milliseconds.
inline constexpr bool is_valid_ptime_ms(int ms) noexcept {
    return ms == 10 || ms == 20 || ms == 40 || ms == 60;
}

/// Samples in one frame of `ptime_ms` at 48 kHz (480 for 10 ms).
inline constexpr std::size_t frame_samples(int ptime_ms) noexcept {
    return static_cast<std::size_t>(kSampleRate / 1000 * ptime_ms);
}

/// Largest frame we ever handle (60 ms).
inline constexpr std::size_t kMaxFrameSamples = frame_samples(60);

/// Largest Opus packet we ever produce or accept (RFC 6716 allows 1275 bytes
/// per frame; 60 ms may hold several frames).
inline constexpr std::size_t kMaxOpusPacketBytes = 4000;

}  // namespace loa::codecs
