#pragma once
// Bounded single-producer single-consumer ring of float samples for the
// PortAudio hand-off: the io thread writes decoded frames, the audio callback
// reads them. Lock-free and wait-free, no allocation after construction.
//
// Threads: write() and writable() from the producer only; read() from the
// consumer only; size() from either (approximate for the other side).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <memory>
#include <span>

namespace loa::speaker {

class FloatRing {
public:
    /// Capacity is rounded up to a power of two (at least 2).
    explicit FloatRing(std::size_t capacity) {
        std::size_t c = 2;
        while (c < capacity) c <<= 1;
        mask_ = c - 1;
        data_ = std::make_unique<float[]>(c);
    }

    std::size_t capacity() const noexcept { return mask_ + 1; }

    std::size_t size() const noexcept {
        return head_.load(std::memory_order_acquire) - tail_.load(std::memory_order_acquire);
    }

    /// Producer. Free space in samples.
    std::size_t writable() const noexcept {
        return capacity() - (head_.load(std::memory_order_relaxed) - tail_.load(std::memory_order_acquire));
    }

    /// Producer. Appends as many samples as fit; returns how many were written.
    std::size_t write(std::span<const float> in) noexcept {
        const std::size_t head = head_.load(std::memory_order_relaxed);
        const std::size_t n = std::min(in.size(), writable());
        for (std::size_t i = 0; i < n; ++i) data_[(head + i) & mask_] = in[i];
        head_.store(head + n, std::memory_order_release);
        return n;
    }

    /// Consumer. Fills `out` from the ring; returns how many samples were read
    /// (the caller zero-fills the rest on underrun).
    std::size_t read(std::span<float> out) noexcept {
        const std::size_t tail = tail_.load(std::memory_order_relaxed);
        const std::size_t avail = head_.load(std::memory_order_acquire) - tail;
        const std::size_t n = std::min(out.size(), avail);
        for (std::size_t i = 0; i < n; ++i) out[i] = data_[(tail + i) & mask_];
        tail_.store(tail + n, std::memory_order_release);
        return n;
    }

private:
    std::unique_ptr<float[]> data_;
    std::size_t mask_ = 0;
    alignas(64) std::atomic<std::size_t> head_{0};
    alignas(64) std::atomic<std::size_t> tail_{0};
};

}  // namespace loa::speaker
