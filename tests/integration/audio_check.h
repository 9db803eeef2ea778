#pragma once
// Shared checks for integration tests: read a WAV a program wrote and judge
// the tone in it with tolerances.

#include <cmath>
#include <filesystem>
#include <span>
#include <utility>
#include <vector>

#include "loa/codecs/clip_reader.h"
#include "loa/codecs/tone_analysis.h"

namespace loa::test {

inline std::vector<float> read_wav(const std::filesystem::path& path) {
    codecs::ClipReader reader(path);
    std::vector<float> all;
    std::vector<float> chunk(48000);
    for (;;) {
        std::size_t got = 0;
        const auto st = reader.read(chunk, got);
        all.insert(all.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(got));
        if (st != codecs::Status::Ok) break;
    }
    return all;
}

struct ToneCheck {
    std::size_t audible_samples = 0;  // between first and last sample above the threshold
    codecs::ToneFit fit;              // over the audible part minus 100 ms at each edge
};

/// Finds the audible stretch of `pcm` and fits a tone over its steady middle.
inline ToneCheck check_tone(const std::vector<float>& pcm, float threshold = 0.05f) {
    ToneCheck out;
    const auto first = codecs::first_above(pcm, threshold);
    if (first >= pcm.size()) return out;
    std::size_t last = pcm.size() - 1;
    while (last > first && std::abs(pcm[last]) <= threshold) --last;
    out.audible_samples = last - first + 1;
    const std::size_t edge = 4800;
    if (out.audible_samples <= 2 * edge + 4800) return out;
    out.fit = codecs::fit_tone(std::span<const float>(pcm.data() + first + edge, out.audible_samples - 2 * edge));
    return out;
}

struct ToneWindows {
    std::size_t good = 0;   ///< windows whose fitted tone is the expected one
    std::size_t total = 0;  ///< windows judged
    [[nodiscard]] double share() const { return total == 0 ? 0.0 : static_cast<double>(good) / static_cast<double>(total); }
};

/// Judges the 100 ms windows of the audible part of `pcm` (edges of
/// 100 ms excluded): a window is good when its fitted tone is `hz` (+-5 Hz)
/// with an SNR of at least `min_snr_db`. Judging short windows keeps the
/// check about the sound, not about slow phase drift from the playouts'
/// clock correction. When `other_hz` is given and some window sounded like
/// it, it is set to -1.
inline ToneWindows tone_windows(const std::vector<float>& pcm, double hz, double min_snr_db, double* other_hz = nullptr) {
    ToneWindows out;
    const auto first = codecs::first_above(pcm, 0.05f);
    if (first >= pcm.size()) return out;
    std::size_t last = pcm.size() - 1;
    while (last > first && std::abs(pcm[last]) <= 0.05f) --last;
    constexpr std::size_t kWin = 4800;
    for (std::size_t at = first + kWin; at + 2 * kWin <= last; at += kWin) {
        const auto fit = codecs::fit_tone(std::span<const float>(pcm.data() + at, kWin));
        ++out.total;
        if (std::abs(fit.frequency_hz - hz) <= 5.0 && fit.snr_db >= min_snr_db) {
            ++out.good;
        } else if (other_hz != nullptr && std::abs(fit.frequency_hz - *other_hz) <= 5.0) {
            *other_hz = -1.0;  // the other tone was heard
        }
    }
    return out;
}

/// Share of good windows, see tone_windows().
inline double tone_window_share(const std::vector<float>& pcm, double hz, double min_snr_db, double* other_hz = nullptr) {
    return tone_windows(pcm, hz, min_snr_db, other_hz).share();
}

/// Label of the attention chime's two steps (960 and 853 Hz) in window_labels().
inline constexpr int kChimeLabel = 1;

/// One label per 100 ms window of `pcm`: the tone of `known` it fits (+-5 Hz,
/// SNR >= 20 dB), the chime's steps both kChimeLabel, 0 for anything else
/// (silence, a switch, a tone not in `known`).
inline std::vector<int> window_labels(const std::vector<float>& pcm, const std::vector<int>& known) {
    constexpr std::size_t kWin = 4800;
    std::vector<int> out;
    for (std::size_t at = 0; at + kWin <= pcm.size(); at += kWin) {
        const auto fit = codecs::fit_tone(std::span<const float>(pcm.data() + at, kWin));
        int label = 0;
        for (const int hz : known) {
            if (fit.snr_db >= 20.0 && std::abs(fit.frequency_hz - hz) <= 5.0) label = hz;
        }
        out.push_back(label == 960 || label == 853 ? kChimeLabel : label);
    }
    return out;
}

/// The order of what was heard: runs of one label (0 ignored), runs shorter
/// than 3 windows dropped (a speaker's playout may stretch a window or two
/// around a switch), equal neighbours merged.
inline std::vector<int> label_sequence(const std::vector<int>& labels) {
    std::vector<std::pair<int, int>> runs;
    for (const int l : labels) {
        if (l == 0) continue;
        if (!runs.empty() && runs.back().first == l) {
            ++runs.back().second;
        } else {
            runs.emplace_back(l, 1);
        }
    }
    std::vector<int> out;
    for (const auto& [label, n] : runs) {
        if (n >= 3 && (out.empty() || out.back() != label)) out.push_back(label);
    }
    return out;
}

/// The tones of `known` heard in `pcm`, in order (see label_sequence()).
inline std::vector<int> tone_sequence(const std::vector<float>& pcm, const std::vector<int>& known) {
    return label_sequence(window_labels(pcm, known));
}

}  // namespace loa::test
