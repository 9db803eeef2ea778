// Playout::Impl: the FIFO of decoded audio and what leaves it (fades on
// the way in, time-stretching toward the target, the drift resampler).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "playout_impl.h"

namespace loa::engine {

using namespace playout_detail;

void Playout::Impl::reset_resampler() noexcept {
    resampler.reset();
    held_in_resampler = 0.0;
}

void Playout::Impl::consume(std::size_t n) noexcept {
    n = std::min(n, fifo_len);
    if (n == 0) return;
    fifo_len -= n;
    if (fifo_len > 0) std::memmove(fifo.data(), fifo.data() + n, fifo_len * sizeof(float));
}

void Playout::Impl::append(std::size_t from, std::size_t to, bool concealed) noexcept {
    std::size_t n = std::min(to - std::min(from, to), kFifoCapacity - fifo_len);
    float* dst = fifo.data() + fifo_len;
    const float* src = frame.data() + from;
    const double fade_after = config.fade_after_ms * kSamplesPerMs;
    const double fade_len = kFadeOutMs * kSamplesPerMs;
    if (concealed) {
        for (std::size_t i = 0; i < n; ++i) {
            const double pos = static_cast<double>(conceal_run + i);
            float g = 1.0f;
            if (pos > fade_after) g = static_cast<float>(std::max(0.0, 1.0 - (pos - fade_after) / fade_len));
            g = std::min(g, gain < 1.0f ? gain : g);  // never fade back up while concealing
            dst[i] = src[i] * g;
            gain = g;
        }
        conceal_run += n;
    } else {
        if (gain < 1.0f) {
            const double in_len = kFadeInMs * kSamplesPerMs;
            const float g0 = gain;
            for (std::size_t i = 0; i < n; ++i) {
                const double t = std::min(1.0, static_cast<double>(i + 1) / in_len);
                const float g = g0 + (1.0f - g0) * static_cast<float>(t);
                dst[i] = src[i] * g;
            }
        } else {
            std::memcpy(dst, src, n * sizeof(float));
        }
        gain = 1.0f;
        conceal_run = 0;
    }
    fifo_len += n;
}

void Playout::Impl::stretch(PlayoutStats& stats) noexcept {
    const double err = render_error_ms + stretched_ms;
    const std::span<float> region(fifo.data(), fifo_len);
    if (err > kStretchOnMs || (accelerating && err > kStretchOffMs)) {
        expanding = false;
        const auto max_remove = static_cast<std::size_t>(std::max(0.0, (err - 0.5) * kSamplesPerMs));
        const auto r = stretcher.accelerate(region, max_remove);
        accelerating = r.samples > 0;
        if (r.samples > 0) {
            fifo_len -= r.samples;
            stretched_ms -= static_cast<double>(r.samples) / kSamplesPerMs;
            stats.accelerated_samples.fetch_add(r.samples, std::memory_order_relaxed);
        }
    } else if (err < -kStretchOnMs || (expanding && err < -kStretchOffMs)) {
        accelerating = false;
        const auto max_insert = static_cast<std::size_t>(std::max(0.0, (-err + 0.5) * kSamplesPerMs));
        const std::span<float> room(fifo.data(), kFifoCapacity);
        const auto r = stretcher.expand(room, fifo_len, max_insert);
        expanding = r.samples > 0;
        if (r.samples > 0) {
            fifo_len += r.samples;
            stretched_ms += static_cast<double>(r.samples) / kSamplesPerMs;
            stats.expanded_samples.fetch_add(r.samples, std::memory_order_relaxed);
        }
    } else {
        accelerating = false;
        expanding = false;
    }
}

void Playout::Impl::produce(std::span<float> dst, PlayoutStats& stats) noexcept {
    std::size_t done = 0;
    int guard = 0;
    const double in_per_out = 1.0 + ppm * 1e-6;
    const double ratio = 1.0 / in_per_out;
    while (done < dst.size()) {
        if (++guard > 256) {
            std::fill(dst.begin() + static_cast<std::ptrdiff_t>(done), dst.end(), 0.0f);
            return;
        }
        const std::size_t remaining = dst.size() - done;
        if (!config.drift_compensation) {
            if (fifo_len == 0) {
                next_frame(remaining, stats);
                continue;
            }
            const std::size_t k = std::min(fifo_len, remaining);
            std::memcpy(dst.data() + done, fifo.data(), k * sizeof(float));
            consume(k);
            done += k;
            continue;
        }
        const auto need_in = static_cast<std::size_t>(std::ceil(static_cast<double>(remaining) * in_per_out));
        if (fifo_len == 0) {
            next_frame(need_in + kResamplerSlack / 2, stats);
            continue;
        }
        const auto need = static_cast<std::size_t>(std::ceil(static_cast<double>(remaining) * in_per_out)) +
                          kResamplerSlack;
        std::size_t used = 0;
        std::size_t gen = 0;
        // Offer only what this block needs, so the converter's own store stays small.
        const std::size_t offer = std::min(fifo_len, need);
        if (resampler.process(std::span<const float>(fifo.data(), offer), dst.subspan(done), ratio, used,
                              gen) != codecs::Status::Ok) {
            reset_resampler();
            continue;
        }
        consume(used);
        done += gen;
        held_in_resampler += static_cast<double>(used) - static_cast<double>(gen) * in_per_out;
        if (done < dst.size() && (used == 0 || fifo_len == 0)) {
            const std::size_t left = dst.size() - done;
            const auto want = static_cast<std::size_t>(std::ceil(static_cast<double>(left) * in_per_out));
            next_frame(want + kResamplerSlack / 2, stats);
        }
    }
}

}  // namespace loa::engine
