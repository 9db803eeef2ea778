#pragma once
// Writes 48 kHz mono float frames to a WAV file through libsndfile, as 16-bit
// PCM (clipped to [-1, 1]) or 32-bit float. Blocking file I/O: call it from a
// sink or tool thread, never from the media thread of the engine.
//
// Threads: one owner thread. RAII: the destructor finalises the header and
// closes the file (errors there are swallowed; call close() to see them).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>

#include "loa/codecs/status.h"

namespace loa::codecs {

enum class WavSampleFormat {
    Pcm16,    // 16-bit signed integer PCM
    Float32,  // IEEE float
};

class WavWriter {
public:
    /// Creates (or truncates) `path`. Throws codecs::Error(IoError) naming
    /// the file when it cannot be created, BadArgument for a bad rate/channels.
    explicit WavWriter(const std::filesystem::path& path,
                       WavSampleFormat format = WavSampleFormat::Pcm16,
                       int sample_rate = 48000, int channels = 1);
    ~WavWriter();
    WavWriter(const WavWriter&) = delete;
    WavWriter& operator=(const WavWriter&) = delete;
    WavWriter(WavWriter&&) noexcept;
    WavWriter& operator=(WavWriter&&) noexcept;

    /// Appends interleaved samples (size a multiple of channels). IoError if
    /// libsndfile wrote fewer than asked (disk full), BadArgument if closed.
    [[nodiscard]] Status write(std::span<const float> samples) noexcept;

    /// Writes the header and pending data to disk (file stays open).
    void flush() noexcept;

    /// Finalises and closes; later writes return BadArgument. Idempotent.
    [[nodiscard]] Status close() noexcept;

    bool is_open() const noexcept;
    /// Frames (samples per channel) written so far.
    std::int64_t frames_written() const noexcept;
    const std::filesystem::path& path() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace loa::codecs
