#pragma once
// The arbiter's decision as an immutable snapshot for the media thread, and
// the hand-off that carries it there.
//
// An Assignment says, for every programme, which clusters it reaches by
// unicast and which multicast groups carry it, and for every cluster which
// programme it hears and how. It is built entirely on the control thread
// (Arbiter::decide()); once published it is never modified, so the media
// thread reads it without locks and switches every fan-out set at one frame
// boundary by swapping one pointer (SnapshotMailbox).
//
// Indices: clusters and groups are numbered as in the Topology the arbiter
// decided with (Topology::cluster_index(), group order); programmes as slots
// 0..programme_count()-1 of this snapshot, highest-ranked first.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "loa/engine/priority.h"
#include "loa/transport/spsc_queue.h"

namespace loa::engine {

/// "No programme" / "no group" / "no zone" in index fields.
inline constexpr std::uint32_t kNoIndex = 0xFFFF'FFFFu;

/// How a cluster hears its programme.
enum class Delivery : std::uint8_t {
    None,       // hears nothing (no programme, or unreachable)
    Unicast,    // its own copy to its unicast address
    Multicast,  // through its multicast group, which carries its programme
};

/// One programme of a snapshot: its fan-out ranges.
struct ProgrammeFanout {
    std::uint64_t id = 0;
    Priority level = Priority::Background;
    std::uint32_t unicast_begin = 0;    // [begin, end) into Assignment::unicast_clusters()
    std::uint32_t unicast_end = 0;
    std::uint32_t multicast_begin = 0;  // [begin, end) into Assignment::multicast_groups()
    std::uint32_t multicast_end = 0;
    std::uint32_t listeners = 0;        // clusters hearing it (unicast + through groups)
};

/// Immutable once built. Every accessor is noexcept, allocation-free and safe
/// from any thread (the object never changes after publication).
class Assignment {
public:
    /// Strictly increasing per Arbiter.
    std::uint64_t version() const noexcept { return version_; }

    std::size_t programme_count() const noexcept { return programmes_.size(); }
    std::span<const ProgrammeFanout> programmes() const noexcept { return programmes_; }
    const ProgrammeFanout& programme(std::size_t slot) const noexcept { return programmes_[slot]; }
    /// Cluster indices that `slot` sends to by unicast, ascending.
    std::span<const std::uint32_t> unicast_clusters(std::size_t slot) const noexcept {
        const auto& p = programmes_[slot];
        return std::span(unicast_).subspan(p.unicast_begin, p.unicast_end - p.unicast_begin);
    }
    /// Multicast group indices that carry `slot`, ascending.
    std::span<const std::uint32_t> multicast_groups(std::size_t slot) const noexcept {
        const auto& p = programmes_[slot];
        return std::span(multicast_).subspan(p.multicast_begin, p.multicast_end - p.multicast_begin);
    }

    std::size_t cluster_count() const noexcept { return cluster_programme_.size(); }
    /// Programme slot the cluster hears, or kNoIndex.
    std::uint32_t programme_of(std::uint32_t cluster) const noexcept { return cluster_programme_[cluster]; }
    Delivery delivery_of(std::uint32_t cluster) const noexcept { return cluster_delivery_[cluster]; }

    std::size_t group_count() const noexcept { return group_programme_.size(); }
    /// Programme slot a multicast group carries, or kNoIndex.
    std::uint32_t group_programme(std::uint32_t group) const noexcept { return group_programme_[group]; }

    /// Slot of programme `id`, or kNoIndex. Linear in programme_count().
    std::uint32_t find(std::uint64_t id) const noexcept {
        for (std::size_t i = 0; i < programmes_.size(); ++i) {
            if (programmes_[i].id == id) return static_cast<std::uint32_t>(i);
        }
        return kNoIndex;
    }
    /// Id of the programme the cluster hears, 0 when none.
    std::uint64_t programme_id_of(std::uint32_t cluster) const noexcept {
        const auto slot = cluster_programme_[cluster];
        return slot == kNoIndex ? 0 : programmes_[slot].id;
    }

private:
    friend class Arbiter;
    Assignment() = default;

    std::uint64_t version_ = 0;
    std::vector<ProgrammeFanout> programmes_;
    std::vector<std::uint32_t> unicast_;
    std::vector<std::uint32_t> multicast_;
    std::vector<std::uint32_t> cluster_programme_;
    std::vector<Delivery> cluster_delivery_;
    std::vector<std::uint32_t> group_programme_;
};

/// Hands immutable snapshots from one control thread to one media thread.
///
/// publish() (control thread) leaves the newest snapshot waiting; a snapshot
/// still waiting when a newer one arrives is replaced and freed at once.
/// acquire() (media thread, at a frame boundary) takes the waiting one if any
/// and retires the one it replaces to the control thread; it never allocates,
/// frees, locks or blocks. Retired snapshots are freed by the control thread
/// in publish() and collect(). A snapshot returned by acquire() stays valid
/// until a later acquire() returns a different one.
///
/// Retirement never overflows while the control thread calls publish() (which
/// collects first): between two publishes the media thread can take at most
/// one snapshot, so at most two wait to be freed. If the control thread
/// stalls regardless, acquire() keeps the current snapshot rather than lose
/// one, and takes the waiting one at a later frame.
template <typename T>
class SnapshotMailbox {
public:
    SnapshotMailbox() : retired_(kRetiredCapacity) {}
    /// Frees every snapshot. Neither side may run concurrently.
    ~SnapshotMailbox() {
        delete pending_.load(std::memory_order_acquire);
        delete current_;
        collect();
    }
    SnapshotMailbox(const SnapshotMailbox&) = delete;
    SnapshotMailbox& operator=(const SnapshotMailbox&) = delete;

    /// Control thread. Frees retired snapshots, then makes `next` the waiting
    /// one (freeing a waiting one the media thread never took).
    void publish(std::unique_ptr<const T> next) {
        collect();
        const T* replaced = pending_.exchange(next.release(), std::memory_order_acq_rel);
        delete replaced;
    }

    /// Control thread. Frees the snapshots the media thread retired; returns
    /// how many.
    std::size_t collect() {
        std::size_t n = 0;
        const T* old = nullptr;
        while (retired_.pop(old)) {
            delete old;
            ++n;
        }
        return n;
    }

    /// Media thread. Switches to the waiting snapshot if there is one and
    /// returns the current snapshot (nullptr before the first publish).
    /// Lock-free, allocation-free; never frees.
    const T* acquire() noexcept {
        if (pending_.load(std::memory_order_relaxed) == nullptr) return current_;
        // size_approx() never under-counts for the producer, so a push after
        // this check cannot fail.
        if (current_ != nullptr && retired_.size_approx() >= retired_.capacity()) return current_;
        const T* next = pending_.exchange(nullptr, std::memory_order_acq_rel);
        if (next == nullptr) return current_;
        if (current_ != nullptr) {
            [[maybe_unused]] const bool pushed = retired_.push(current_);
        }
        current_ = next;
        return current_;
    }

    /// Media thread. The snapshot in use (nullptr before the first acquire()).
    const T* current() const noexcept { return current_; }

private:
    static constexpr std::size_t kRetiredCapacity = 8;
    std::atomic<const T*> pending_{nullptr};
    const T* current_ = nullptr;  // media thread only (and the destructor)
    transport::SpscQueue<const T*> retired_;  // media thread -> control thread
};

using AssignmentMailbox = SnapshotMailbox<Assignment>;

}  // namespace loa::engine
