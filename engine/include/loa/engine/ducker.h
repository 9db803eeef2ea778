#pragma once
// Ducking: the gain envelope of a background bed that dips under voice.
//
// Fed once per frame with whether any voice source of the programme carried
// voice in that frame (voice_present()), a Ducker writes one gain per sample
// of the frame: the bed's gain moves towards the ducked gain (duck_db) while
// voice is present or was present less than `hold_ms` ago, and back towards
// full gain otherwise. The gain moves at a constant rate in dB (the whole
// dip takes `attack_ms` going down, `release_ms` coming back up), so
// consecutive samples never step by more than a tiny amount: no clicks, and
// the short pauses between words (shorter than the hold) do not pump.
//
// Threads: constructed on the control thread; process() on the media thread
// (no allocation, no locks). Not shared between threads.

#include <cstddef>
#include <span>

namespace loa::engine {

struct DuckerConfig {
    double duck_db = -15.0;          // how far the bed dips (< 0; 0 = never dips)
    double attack_ms = 50.0;         // full dip from full gain
    double release_ms = 500.0;       // full return from the dip
    double hold_ms = 300.0;          // stays down this long after the last voice frame
    double threshold_dbfs = -45.0;   // a frame whose RMS is above this carries voice
    int sample_rate = 48000;
};

class Ducker {
public:
    explicit Ducker(const DuckerConfig& config) noexcept;

    /// True when `frame`'s RMS level (dBFS, full scale = 1.0) is above
    /// `threshold_dbfs`.
    static bool voice_present(std::span<const float> frame, double threshold_dbfs) noexcept;

    /// Advances the envelope by one frame: `voice` tells whether voice was
    /// present in it; `gains` (the frame's length) receives the linear gain
    /// of every sample.
    void process(bool voice, std::span<float> gains) noexcept;

    /// The linear gain of the last sample produced (1 before any).
    float gain() const noexcept { return static_cast<float>(gain_); }
    /// The linear gain of the full dip.
    float ducked_gain() const noexcept { return static_cast<float>(floor_); }
    /// Control or media thread: back to full gain, no hold.
    void reset() noexcept {
        gain_ = 1.0;
        hold_left_ = 0;
    }

private:
    double floor_;          // linear ducked gain
    double down_factor_;    // per-sample multiplier while going down (<= 1)
    double up_factor_;      // per-sample multiplier while coming back (>= 1)
    std::size_t hold_samples_;
    std::size_t hold_left_ = 0;
    double gain_ = 1.0;
};

}  // namespace loa::engine
