#pragma once
// PortAudio capture for loa-studio (the only place it touches a sound card).
// The audio callback only writes the captured samples into a FloatRing
// (lock-free, no allocation); what the ring cannot take is dropped and
// counted as an overrun. Start-up calls throw std::runtime_error with
// PortAudio's message.

#include <atomic>
#include <cstdint>
#include <span>
#include <string>

#include "loa-speaker/float_ring.h"

namespace loa::studio {

/// Initialises PortAudio for its lifetime (Pa_Initialize / Pa_Terminate).
class PortAudioInputs {
public:
    PortAudioInputs();
    ~PortAudioInputs();
    PortAudioInputs(const PortAudioInputs&) = delete;
    PortAudioInputs& operator=(const PortAudioInputs&) = delete;

    /// One line per input-capable device: "INDEX: NAME (HOSTAPI)[ [default]]".
    std::string list_input_devices() const;
    /// Device index for `name_or_index` (a number, or a case-sensitive
    /// substring of the name); empty = default input. Throws if none matches.
    int find_input_device(const std::string& name_or_index) const;
};

class AudioInput {
public:
    /// Opens a 48 kHz mono float input stream on `device` writing into `ring`
    /// (which must outlive this object), 10 ms per callback.
    AudioInput(int device, speaker::FloatRing& ring, unsigned long frames_per_buffer = 480);
    ~AudioInput();  // stops and closes the stream
    AudioInput(const AudioInput&) = delete;
    AudioInput& operator=(const AudioInput&) = delete;

    void start();
    void stop() noexcept;

    /// Callbacks that PortAudio flagged as input underflow.
    std::uint64_t underruns() const noexcept { return underruns_.load(std::memory_order_relaxed); }
    /// Callbacks flagged as input overflow or whose samples did not all fit
    /// in the ring (audio lost).
    std::uint64_t overruns() const noexcept { return overruns_.load(std::memory_order_relaxed); }

    /// Audio callback thread only.
    void capture(std::span<const float> in, bool underflow, bool overflow) noexcept;

private:
    void* stream_ = nullptr;
    speaker::FloatRing& ring_;
    std::atomic<std::uint64_t> underruns_{0};
    std::atomic<std::uint64_t> overruns_{0};
};

}  // namespace loa::studio
