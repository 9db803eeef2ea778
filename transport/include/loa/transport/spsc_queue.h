#pragma once
// Bounded single-producer single-consumer ring. Lock-free, wait-free, no
// allocation after construction. push() from the producer thread only, pop()
// from the consumer thread only.

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>

namespace loa::transport {

template <typename T>
class SpscQueue {
public:
    /// Capacity is rounded up to a power of two.
    explicit SpscQueue(std::size_t capacity) {
        std::size_t c = 2;
        while (c < capacity) c <<= 1;
        mask_ = c - 1;
        items_ = std::make_unique<T[]>(c);
    }

    /// Producer only. False (nothing stored) when full.
    bool push(const T& item) noexcept {
        const auto head = head_.load(std::memory_order_relaxed);
        if (head - tail_.load(std::memory_order_acquire) > mask_) return false;
        items_[head & mask_] = item;
        head_.store(head + 1, std::memory_order_release);
        return true;
    }

    /// Consumer only. False when empty.
    bool pop(T& item) noexcept {
        const auto tail = tail_.load(std::memory_order_relaxed);
        if (tail == head_.load(std::memory_order_acquire)) return false;
        item = items_[tail & mask_];
        tail_.store(tail + 1, std::memory_order_release);
        return true;
    }

    std::size_t size_approx() const noexcept {
        return head_.load(std::memory_order_acquire) - tail_.load(std::memory_order_acquire);
    }
    std::size_t capacity() const noexcept { return mask_ + 1; }

private:
    std::unique_ptr<T[]> items_;
    std::size_t mask_ = 0;
    alignas(64) std::atomic<std::size_t> head_{0};
    alignas(64) std::atomic<std::size_t> tail_{0};
};

}  // namespace loa::transport
