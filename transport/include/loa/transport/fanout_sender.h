#pragma once
// Fan-out of RTP packets to many destinations.
//
// Destinations are grouped (one group per programme). A group's destination
// set is immutable once published and pre-split over the worker shards; the
// control thread swaps in a new set at any time without locking the senders
// (the old one is reclaimed once every shard has moved past it).
//
// The media thread submits one packet per frame per group; each shard worker
// sends that same packet (shared bytes, no per-destination copy) to its slice
// of the group with batched sendmmsg(). Each message of a batch points at the
// shard's iovec for the packet; a destination with a non-zero `transform`
// slot will instead point at its own protected copy in the shard's scratch
// area (per-cluster SRTP, a later issue; today every transform is 0).
//
// Threads:
//   set_destinations(), clear(), collect_garbage(): one control thread.
//   submit(): one media thread; lock-free, allocation-free, never blocks.
//   stats(): any thread (atomic reads).

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include <boost/asio/ip/udp.hpp>

#include "loa/transport/packet_pool.h"
#include "loa/transport/status.h"

namespace loa::transport {

struct Destination {
    boost::asio::ip::udp::endpoint endpoint;
    std::uint32_t transform = 0;  // per-destination transform slot; 0 = shared plaintext
};

/// Log-linear histogram of microsecond values with atomic buckets: record()
/// from any thread, lock-free; percentiles read from a snapshot.
class MicrosHistogram {
public:
    MicrosHistogram() = default;
    void record(std::int64_t us) noexcept;
    void reset() noexcept;
    /// Value at quantile q (0..1), upper edge of its bucket; 0 when empty.
    std::int64_t quantile(double q) const noexcept;
    std::int64_t max() const noexcept { return max_.load(std::memory_order_relaxed); }
    std::uint64_t count() const noexcept;

    static constexpr std::size_t kBuckets = 512;

private:
    static std::size_t bucket_of(std::int64_t us) noexcept;
    static std::int64_t bucket_upper(std::size_t b) noexcept;
    std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
    std::atomic<std::int64_t> max_{0};
};

struct FanoutConfig {
    std::size_t threads = 2;          // worker shards
    std::size_t max_batch = 1024;     // messages per sendmmsg()
    std::size_t queue_depth = 64;     // packets queued per shard before drops
    std::size_t max_groups = 64;      // programmes
    /// Clock for spread measurements: returns CLOCK_MONOTONIC nanoseconds,
    /// the same clock as PacketSlot::deadline_ns. Injected for tests.
    std::int64_t (*now_ns)() = nullptr;  // nullptr = CLOCK_MONOTONIC
    /// A frame counts as missed when its fan-out ends later than
    /// deadline + miss_after_ns (normally one packet time).
    std::int64_t miss_after_ns = 20'000'000;
};

struct FanoutStats {
    std::uint64_t packets_submitted = 0;   // frames handed to submit()
    std::uint64_t datagrams_sent = 0;      // accepted by the kernel
    std::uint64_t send_errors = 0;         // refused (ICMP unreachable, ENOBUFS, ...)
    std::uint64_t frames_dropped = 0;      // a shard queue was full
    std::uint64_t frames_missed = 0;       // fan-out finished after the next deadline
    std::uint64_t sendmmsg_calls = 0;
};

class FanoutSender {
public:
    /// `fd_v4` / `fd_v6`: bound UDP sockets owned by the caller (either may be
    /// -1); IPv4 destinations use the first, IPv6 the second. Starts the
    /// worker threads.
    FanoutSender(const FanoutConfig& config, int fd_v4, int fd_v6);
    ~FanoutSender();  // stops and joins workers
    FanoutSender(const FanoutSender&) = delete;
    FanoutSender& operator=(const FanoutSender&) = delete;

    /// Control thread. Publishes a new destination set for `group`
    /// (< max_groups). Destinations whose family has no socket are skipped
    /// and their count returned.
    std::size_t set_destinations(std::uint32_t group, std::span<const Destination> destinations);
    void clear(std::uint32_t group) { set_destinations(group, {}); }
    /// Control thread. Frees sets that no shard can still be using.
    void collect_garbage();

    /// Media thread. Queues `packet` for every destination of `group`. Takes
    /// one reference per shard; the caller keeps (and must release) its own.
    /// QueueFull if a shard could not take it (that shard's copy is dropped and
    /// counted; other shards still send).
    [[nodiscard]] Status submit(std::uint32_t group, PacketSlot* packet) noexcept;

    /// Number of destinations currently published for `group`.
    std::size_t destination_count(std::uint32_t group) const noexcept;

    FanoutStats stats() const noexcept;
    /// Deadline -> return of the sendmmsg carrying a frame's last destination.
    const MicrosHistogram& spread() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace loa::transport
