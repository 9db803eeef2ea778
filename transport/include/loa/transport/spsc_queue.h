#pragma once
// Bounded single-producer single-consumer ring. Lock-free, wait-free, no
// allocation after construction. push() from the producer thread only, pop()
// and empty() from the consumer thread only; size_approx() and capacity() from
// any thread.
//
// The producer's and the consumer's indices live on separate cache lines, and
// each side keeps a private copy of the other side's index so that a push or
// pop normally touches no line written by the other thread.

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>

namespace loa::transport {

template <typename T>
class SpscQueue {
public:
    /// Capacity is rounded up to a power of two (at least 2). Allocates.
    explicit SpscQueue(std::size_t capacity) {
        std::size_t c = 2;
        while (c < capacity) c <<= 1;
        mask_ = c - 1;
        items_ = std::make_unique<T[]>(c);
    }

    SpscQueue(const SpscQueue&) = delete;
    SpscQueue& operator=(const SpscQueue&) = delete;

    /// Producer only. False (nothing stored) when full.
    bool push(const T& item) noexcept {
        const auto head = head_.load(std::memory_order_relaxed);
        if (head - tail_cache_ > mask_) {
            tail_cache_ = tail_.load(std::memory_order_acquire);
            if (head - tail_cache_ > mask_) return false;
        }
        items_[head & mask_] = item;
        head_.store(head + 1, std::memory_order_release);
        return true;
    }

    /// Consumer only. False when empty (`item` untouched).
    bool pop(T& item) noexcept {
        const auto tail = tail_.load(std::memory_order_relaxed);
        if (tail == head_cache_) {
            head_cache_ = head_.load(std::memory_order_acquire);
            if (tail == head_cache_) return false;
        }
        item = items_[tail & mask_];
        tail_.store(tail + 1, std::memory_order_release);
        return true;
    }

    /// Consumer only. True when nothing is queued (a concurrent push may
    /// make it stale at once).
    bool empty() const noexcept {
        return tail_.load(std::memory_order_relaxed) == head_.load(std::memory_order_acquire);
    }

    /// Any thread; exact only when neither side is running.
    std::size_t size_approx() const noexcept {
        const auto tail = tail_.load(std::memory_order_acquire);
        const auto head = head_.load(std::memory_order_acquire);
        return head >= tail ? head - tail : 0;
    }
    std::size_t capacity() const noexcept { return mask_ + 1; }

private:
    std::unique_ptr<T[]> items_;
    std::size_t mask_ = 0;
    // Producer line: its own index and its view of the consumer's.
    alignas(64) std::atomic<std::size_t> head_{0};
    std::size_t tail_cache_ = 0;
    // Consumer line.
    alignas(64) std::atomic<std::size_t> tail_{0};
    std::size_t head_cache_ = 0;
};

}  // namespace loa::transport
