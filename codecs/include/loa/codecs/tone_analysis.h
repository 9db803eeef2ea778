#pragma once
// Measurement helpers used by tests and loa-bench to judge audio with a
// tolerance (frequency, SNR) instead of golden checksums. Allocates; not for
// the media thread.

#include <cstddef>
#include <span>

namespace loa::codecs {

struct ToneFit {
    double frequency_hz = 0.0;  // best-fit sine frequency
    double amplitude = 0.0;     // fitted sine amplitude
    double snr_db = 0.0;        // fitted sine power over residual power
};

/// Estimates the dominant frequency of `signal` (FFT peak refined by
/// interpolation, then a least-squares sine fit) and the SNR of that sine
/// against everything else. Needs at least ~50 ms of audio.
ToneFit fit_tone(std::span<const float> signal, int sample_rate = 48000);

/// Least-squares fit of a sine at a known `frequency_hz` (amplitude and phase
/// free); returns the residual power relative to the signal power in dB
/// (e.g. -40 means the residual is 40 dB below the signal).
double sine_residual_db(std::span<const float> signal, double frequency_hz,
                        int sample_rate = 48000);

/// Index of the first sample whose absolute value exceeds `threshold`, or
/// signal.size() if none does.
std::size_t first_above(std::span<const float> signal, float threshold) noexcept;

}  // namespace loa::codecs
