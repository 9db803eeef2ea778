#include "loa/codecs/tone_analysis.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <numbers>
#include <vector>

namespace loa::codecs {

namespace {

/// Plain complex product (std::complex's operator* goes through a slow
/// NaN-handling path without -ffast-math).
inline std::complex<double> mul(std::complex<double> a, std::complex<double> b) noexcept {
    return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}

constexpr double kTwoPi = 2.0 * std::numbers::pi;
constexpr std::size_t kMaxCoarseSamples = std::size_t{1} << 19;

/// In-place iterative radix-2 FFT; data.size() must be a power of two.
void fft(std::vector<std::complex<double>>& data) {
    const std::size_t n = data.size();
    for (std::size_t i = 1, j = 0; i < n; ++i) {
        std::size_t bit = n >> 1;
        for (; (j & bit) != 0; bit >>= 1) {
            j ^= bit;
        }
        j ^= bit;
        if (i < j) {
            std::swap(data[i], data[j]);
        }
    }
    for (std::size_t len = 2; len <= n; len <<= 1) {
        const double angle = -kTwoPi / static_cast<double>(len);
        const std::complex<double> wlen(std::cos(angle), std::sin(angle));
        const std::size_t half = len / 2;
        for (std::size_t start = 0; start < n; start += len) {
            std::complex<double> w(1.0, 0.0);
            for (std::size_t k = 0; k < half; ++k) {
                // Recompute the twiddle exactly now and then to bound drift.
                if ((k & 255u) == 0) {
                    const double a = angle * static_cast<double>(k);
                    w = std::complex<double>(std::cos(a), std::sin(a));
                }
                const std::complex<double> u = data[start + k];
                const std::complex<double> v = mul(data[start + k + half], w);
                data[start + k] = u + v;
                data[start + k + half] = u - v;
                w = mul(w, wlen);
            }
        }
    }
}

std::size_t next_pow2(std::size_t n) {
    std::size_t p = 1;
    while (p < n) {
        p <<= 1;
    }
    return p;
}

struct SineProjection {
    double signal_energy = 0.0;     // sum x^2
    double explained_energy = 0.0;  // energy of the least-squares sine
    double amplitude = 0.0;
};

/// Least-squares fit of a*cos(wn) + b*sin(wn) to `x`.
SineProjection project(std::span<const float> x, double frequency_hz, int sample_rate) {
    const double w = kTwoPi * frequency_hz / sample_rate;
    const std::complex<double> step(std::cos(w), std::sin(w));
    std::complex<double> ph(1.0, 0.0);
    double sxx = 0.0, sxc = 0.0, sxs = 0.0, scc = 0.0, sss = 0.0, scs = 0.0;
    for (std::size_t n = 0; n < x.size(); ++n) {
        if ((n & 1023u) == 0) {
            const double a = w * static_cast<double>(n);
            ph = std::complex<double>(std::cos(a), std::sin(a));
        }
        const double c = ph.real();
        const double s = ph.imag();
        const double v = static_cast<double>(x[n]);
        sxx += v * v;
        sxc += v * c;
        sxs += v * s;
        scc += c * c;
        sss += s * s;
        scs += c * s;
        ph = mul(ph, step);
    }
    SineProjection p;
    p.signal_energy = sxx;
    const double det = scc * sss - scs * scs;
    if (det <= 1e-12 * (scc * sss) || det <= 0.0) {
        return p;
    }
    const double a = (sxc * sss - sxs * scs) / det;
    const double b = (sxs * scc - sxc * scs) / det;
    p.explained_energy = std::clamp(a * sxc + b * sxs, 0.0, sxx);
    p.amplitude = std::sqrt(a * a + b * b);
    return p;
}

double coarse_peak_hz(std::span<const float> signal, int sample_rate) {
    const std::size_t m = std::min(signal.size(), kMaxCoarseSamples);
    const std::size_t p = next_pow2(m) * 2;
    std::vector<std::complex<double>> buf(p);
    for (std::size_t i = 0; i < m; ++i) {
        const double hann =
            0.5 - 0.5 * std::cos(kTwoPi * static_cast<double>(i) / static_cast<double>(m - 1));
        buf[i] = std::complex<double>(hann * static_cast<double>(signal[i]), 0.0);
    }
    fft(buf);
    const std::size_t half = p / 2;
    std::size_t best = 1;
    double best_mag = -1.0;
    for (std::size_t k = 1; k < half; ++k) {
        const double mag = std::norm(buf[k]);
        if (mag > best_mag) {
            best_mag = mag;
            best = k;
        }
    }
    double delta = 0.0;
    if (best > 1 && best + 1 < half) {
        const double a = std::log(std::norm(buf[best - 1]) + 1e-300);
        const double b = std::log(best_mag + 1e-300);
        const double c = std::log(std::norm(buf[best + 1]) + 1e-300);
        const double denom = a - 2.0 * b + c;
        if (denom < 0.0) {
            delta = std::clamp(0.5 * (a - c) / denom, -0.5, 0.5);
        }
    }
    return (static_cast<double>(best) + delta) * sample_rate / static_cast<double>(p);
}

}  // namespace

ToneFit fit_tone(std::span<const float> signal, int sample_rate) {
    ToneFit fit;
    if (signal.size() < 16 || sample_rate <= 0) {
        return fit;
    }
    const double coarse = coarse_peak_hz(signal, sample_rate);
    // The least-squares objective has a main lobe of about +-fs/N around the
    // true frequency; search inside a fraction of it with golden sections.
    const double lobe = static_cast<double>(sample_rate) / static_cast<double>(signal.size());
    double lo = std::max(coarse - 0.5 * lobe, 0.0);
    double hi = std::min(coarse + 0.5 * lobe, sample_rate / 2.0);
    const double g = (std::sqrt(5.0) - 1.0) / 2.0;
    double x1 = hi - g * (hi - lo);
    double x2 = lo + g * (hi - lo);
    double f1 = project(signal, x1, sample_rate).explained_energy;
    double f2 = project(signal, x2, sample_rate).explained_energy;
    while (hi - lo > lobe * 1e-6) {
        if (f1 > f2) {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - g * (hi - lo);
            f1 = project(signal, x1, sample_rate).explained_energy;
        } else {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + g * (hi - lo);
            f2 = project(signal, x2, sample_rate).explained_energy;
        }
    }
    const double f = 0.5 * (lo + hi);
    const SineProjection p = project(signal, f, sample_rate);
    fit.frequency_hz = f;
    fit.amplitude = p.amplitude;
    const double residual = p.signal_energy - p.explained_energy;
    if (p.explained_energy <= 0.0) {
        fit.snr_db = -300.0;
    } else if (residual <= p.explained_energy * 1e-30) {
        fit.snr_db = 300.0;
    } else {
        fit.snr_db = 10.0 * std::log10(p.explained_energy / residual);
    }
    return fit;
}

double sine_residual_db(std::span<const float> signal, double frequency_hz, int sample_rate) {
    if (signal.empty() || sample_rate <= 0) {
        return 0.0;
    }
    const SineProjection p = project(signal, frequency_hz, sample_rate);
    if (p.signal_energy <= 0.0) {
        return 0.0;
    }
    const double residual = std::max(p.signal_energy - p.explained_energy, p.signal_energy * 1e-30);
    return 10.0 * std::log10(residual / p.signal_energy);
}

std::size_t first_above(std::span<const float> signal, float threshold) noexcept {
    for (std::size_t i = 0; i < signal.size(); ++i) {
        if (std::fabs(signal[i]) > threshold) {
            return i;
        }
    }
    return signal.size();
}

}  // namespace loa::codecs
