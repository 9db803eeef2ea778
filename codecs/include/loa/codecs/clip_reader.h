#pragma once
// Reads an audio file (WAV, FLAC, Ogg Vorbis, Ogg Opus, MP3 through libsndfile),
// downmixes to mono and resamples to 48 kHz (libsamplerate). Blocking I/O:
// call it from a decoder thread, never from the media thread.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "loa/codecs/status.h"

namespace loa::codecs {

struct ClipInfo {
    int source_rate = 0;          // file sample rate, Hz
    int source_channels = 0;
    std::int64_t source_frames = 0;  // frames in the file at its own rate
    std::string format;           // "WAV", "FLAC", "OGG/Vorbis", "OGG/Opus", "MP3", ...
    double duration_s() const noexcept {
        return source_rate > 0 ? static_cast<double>(source_frames) / source_rate : 0.0;
    }
};

class ClipReader {
public:
    /// Opens the file. Throws codecs::Error with a message naming the file
    /// ("cannot open clip '<path>': <reason>"): IoError when it is missing or
    /// unreadable, Unsupported when libsndfile cannot decode it, Internal if the
    /// resampler cannot be created. Files at 48 kHz are not resampled; others
    /// go through libsamplerate SRC_SINC_MEDIUM_QUALITY. Mono = channel average.
    explicit ClipReader(const std::filesystem::path& path);
    ~ClipReader();
    ClipReader(const ClipReader&) = delete;
    ClipReader& operator=(const ClipReader&) = delete;

    const ClipInfo& info() const noexcept;
    const std::filesystem::path& path() const noexcept;

    /// Fills `out` with 48 kHz mono samples. `got` receives how many were
    /// written; Ok means got == out.size(). At the end of the file the rest of
    /// `out` is zero-filled and the call returns EndOfStream (with
    /// got < out.size(), possibly 0); so do all later calls until rewind().
    /// A decode error mid-file returns IoError (Internal for a resampler
    /// failure) with the rest of `out` zero-filled; the reader then stays at
    /// its end.
    [[nodiscard]] Status read(std::span<float> out, std::size_t& got);

    /// Restarts from the beginning (for looping clips); seeks, or reopens the
    /// file when the format cannot seek. Returns the open error's status if
    /// reopening fails.
    [[nodiscard]] Status rewind();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace loa::codecs
