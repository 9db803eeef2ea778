#pragma once
// PortAudio output for loa-speaker (the only place that touches a sound card).
// The audio callback only reads the FloatRing (lock-free, no allocation) and
// plays zeros for whatever the ring cannot supply (counted as card underruns).
// Start-up calls throw std::runtime_error with PortAudio's message.

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "loa-speaker/float_ring.h"

namespace loa::speaker {

/// Initialises PortAudio for its lifetime (Pa_Initialize / Pa_Terminate).
class PortAudioLibrary {
public:
    PortAudioLibrary();
    ~PortAudioLibrary();
    PortAudioLibrary(const PortAudioLibrary&) = delete;
    PortAudioLibrary& operator=(const PortAudioLibrary&) = delete;

    /// One line per output-capable device: "INDEX: NAME (HOSTAPI)".
    std::string list_output_devices() const;
    /// Device index for `name_or_index` (a number, or a case-sensitive
    /// substring of the name); empty = default output. Throws if none matches.
    int find_output_device(const std::string& name_or_index) const;
};

class AudioOutput {
public:
    /// Opens a 48 kHz mono float output stream on `device` reading from `ring`
    /// (which must outlive this object). Throws std::runtime_error.
    AudioOutput(int device, FloatRing& ring, unsigned long frames_per_buffer = 480);
    ~AudioOutput();  // stops and closes the stream
    AudioOutput(const AudioOutput&) = delete;
    AudioOutput& operator=(const AudioOutput&) = delete;

    void start();
    void stop() noexcept;
    /// Callbacks that found the ring short (zeros played).
    std::uint64_t underruns() const noexcept { return underruns_.load(std::memory_order_relaxed); }

    /// Audio callback thread only: fills `out` from the ring, zeros the rest.
    void fill(std::span<float> out) noexcept;

private:
    void* stream_ = nullptr;
    FloatRing& ring_;
    std::atomic<std::uint64_t> underruns_{0};
};

}  // namespace loa::speaker
