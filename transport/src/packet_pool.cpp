#include "loa/transport/packet_pool.h"

#include <stdexcept>

namespace loa::transport {

PacketPool::PacketPool(std::size_t slots) : count_(slots) {
    if (slots == 0) throw std::invalid_argument("PacketPool: needs at least one slot");
    slots_ = std::make_unique<PacketSlot[]>(slots);
}

PacketSlot* PacketPool::acquire() noexcept {
    for (std::size_t i = 0; i < count_; ++i) {
        std::size_t index = next_ + i;
        if (index >= count_) index -= count_;
        PacketSlot& slot = slots_[index];
        // Acquire pairs with release(): the last holder's reads are done.
        if (slot.refs.load(std::memory_order_acquire) == 0) {
            slot.refs.store(1, std::memory_order_relaxed);
            next_ = index + 1 == count_ ? 0 : index + 1;
            return &slot;
        }
    }
    return nullptr;
}

std::size_t PacketPool::free_approx() const noexcept {
    std::size_t n = 0;
    for (std::size_t i = 0; i < count_; ++i) {
        if (slots_[i].refs.load(std::memory_order_relaxed) == 0) ++n;
    }
    return n;
}

}  // namespace loa::transport
