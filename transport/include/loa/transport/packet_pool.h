#pragma once
// Fixed pool of reference-counted packet slots, shared without copying by
// every destination of a fan-out. Lock-free and allocation-free after
// construction.
//
// Threads: acquire() is called by one producer thread (the media thread);
// release() by any thread. A slot returns to the pool when its count drops to 0.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "loa/transport/rtp_packet.h"

namespace loa::transport {

struct PacketSlot {
    std::array<std::uint8_t, kMaxRtpPacket> data{};
    std::size_t size = 0;
    std::int64_t deadline_ns = 0;  // media-clock deadline of the frame it carries; 0 = not a
                                   // media frame (RTCP): kept out of spread/missed statistics
    std::atomic<std::uint32_t> refs{0};

    std::span<const std::uint8_t> bytes() const noexcept { return {data.data(), size}; }
};

class PacketPool {
public:
    /// Allocates `slots` (>= 1, else std::invalid_argument) slots with refs 0.
    explicit PacketPool(std::size_t slots);

    /// Producer thread only. Returns a free slot with refs == 1 held by the
    /// caller, or nullptr if every slot is still in use (caller drops the
    /// frame and counts it). Slots are tried round-robin from the one after
    /// the last slot handed out; `size` and `deadline_ns` keep stale values
    /// for the caller to overwrite.
    PacketSlot* acquire() noexcept;

    /// Adds `n` references (before handing the slot to n consumers).
    static void add_refs(PacketSlot* slot, std::uint32_t n) noexcept {
        slot->refs.fetch_add(n, std::memory_order_relaxed);
    }
    /// Drops one reference; any thread. Release ordering: the producer's next
    /// acquire() of this slot sees every read the releasing thread made.
    static void release(PacketSlot* slot) noexcept {
        slot->refs.fetch_sub(1, std::memory_order_acq_rel);
    }

    std::size_t capacity() const noexcept { return count_; }
    /// Any thread: slots with refs == 0 at the moment of reading each one.
    std::size_t free_approx() const noexcept;

private:
    std::unique_ptr<PacketSlot[]> slots_;
    std::size_t count_;
    std::size_t next_ = 0;  // producer-only cursor
};

}  // namespace loa::transport
