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
// Mechanics (see fanout_sender.cpp for the proofs):
//   - A published set holds, per shard, a prebuilt mmsghdr array whose
//     msg_name points at pre-converted sockaddrs owned by the set and whose
//     msg_iov points at the one iovec owned by that shard; a worker sets that
//     iovec once per packet and hands the array to sendmmsg() in chunks of
//     max_batch.
//   - submit() puts {packet, set, submission record} on each shard's bounded
//     SPSC queue and wakes a sleeping worker with a futex (workers never poll).
//   - Retired sets are freed by collect_garbage() once the media thread has
//     finished every submit that could have read them and every shard has
//     consumed what those submits queued (per-shard progress counters).
//   - Errors: every refusal the kernel reports is counted in send_errors.
//     After a short sendmmsg() count or an asynchronous ICMP error
//     (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, ...: a pending report of an
//     earlier datagram, only seen with IP_RECVERR) the message is retried, up
//     to 16 sends in all; any other error (ENOBUFS, EAGAIN, EPERM, ...) drops
//     it at once. A dropped message is counted in datagrams_dropped and the
//     fan-out carries on with the next; it never waits or spins on a socket.
//
// Threads:
//   set_destinations(), clear(), collect_garbage(): one control thread.
//   submit(): one media thread; lock-free, allocation-free, never blocks (its
//     only syscall is a futex wake for a shard that went to sleep).
//   stats(), spread(), destination_count(): any thread (atomic reads).

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
/// from any thread, lock-free; percentiles read from a snapshot. Buckets are
/// exact below 64 us, then 16 per power of two (relative error <= 6.25%), up
/// to 2^34 us (~4.8 h); larger values land in the last bucket. reset() must
/// not race with record().
class MicrosHistogram {
public:
    MicrosHistogram() = default;
    void record(std::int64_t us) noexcept;
    void reset() noexcept;
    /// Value at quantile q (0..1), upper edge of its bucket; 0 when empty.
    std::int64_t quantile(double q) const noexcept;
    std::int64_t max() const noexcept { return max_.load(std::memory_order_relaxed); }
    std::uint64_t count() const noexcept;

    static std::size_t bucket_index(std::int64_t us) noexcept { return bucket_of(us); }
    static std::int64_t bucket_upper_edge(std::size_t b) noexcept { return bucket_upper(b); }

    static constexpr std::size_t kBuckets = 512;

private:
    static std::size_t bucket_of(std::int64_t us) noexcept;
    static std::int64_t bucket_upper(std::size_t b) noexcept;
    std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
    std::atomic<std::int64_t> max_{0};
};

struct FanoutConfig {
    std::size_t threads = 2;          // worker shards (at least 1)
    std::size_t max_batch = 1024;     // messages per sendmmsg() (clamped to 1..1024)
    std::size_t queue_depth = 64;     // packets queued per shard before drops
                                      // (rounded up to a power of two, at least 2)
    std::size_t max_groups = 64;      // programmes
    /// Clock for spread measurements: returns CLOCK_MONOTONIC nanoseconds,
    /// the same clock as PacketSlot::deadline_ns. Injected for tests. Called
    /// by the workers, once per packet per shard after its last sendmmsg().
    std::int64_t (*now_ns)() = nullptr;  // nullptr = CLOCK_MONOTONIC
    /// A frame counts as missed when its fan-out ends later than
    /// deadline + miss_after_ns (normally one packet time).
    std::int64_t miss_after_ns = 20'000'000;
    /// SCHED_FIFO priority for the shard threads (0 = normal scheduling).
    /// If the process may not use it, the shards run normally and
    /// realtime_refused() says so.
    int realtime_priority = 0;
};

struct FanoutStats {
    std::uint64_t packets_submitted = 0;   // frames handed to submit()
    std::uint64_t datagrams_sent = 0;      // accepted by the kernel
    std::uint64_t send_errors = 0;         // refusals reported by the kernel (ICMP unreachable,
                                           // ENOBUFS, EPERM, ...), one per failed call
    std::uint64_t frames_dropped = 0;      // shard copies not queued (queue full)
    std::uint64_t frames_missed = 0;       // fan-out finished after deadline + miss_after_ns
    std::uint64_t sendmmsg_calls = 0;
    std::uint64_t datagrams_dropped = 0;   // messages given up after an error (not sent)
    std::uint64_t sets_reclaimed = 0;      // retired destination sets freed so far
};

class FanoutSender {
public:
    /// `fd_v4` / `fd_v6`: bound UDP sockets owned by the caller (either may be
    /// -1); IPv4 destinations use the first, IPv6 the second; they must stay
    /// open until the destructor returns, and so must the pool of every packet
    /// submitted. Starts the worker threads (allocates; may throw).
    FanoutSender(const FanoutConfig& config, int fd_v4, int fd_v6);
    /// Same, with one socket per shard and family (each span empty, one fd
    /// shared by all shards, or exactly `config.threads` fds; negative fds
    /// count as absent, and every shard must have the same families, else
    /// std::invalid_argument). Shards sharing one socket contend on its kernel
    /// state (measured ~25% fewer packets per CPU-second with 2 threads on
    /// loopback); open the per-shard sockets with UdpOptions::reuse_port on
    /// one port so that clusters still see a single source port.
    FanoutSender(const FanoutConfig& config, std::span<const int> fds_v4,
                 std::span<const int> fds_v6);
    /// Sends what is still queued, then stops and joins the workers. No
    /// submit() may run concurrently.
    ~FanoutSender();
    FanoutSender(const FanoutSender&) = delete;
    FanoutSender& operator=(const FanoutSender&) = delete;

    /// Control thread. Publishes a new destination set for `group`
    /// (< max_groups, else std::out_of_range). Destinations whose family has
    /// no socket are skipped and their count returned. Allocates; frames
    /// submitted after it returns go to the new set, frames already queued
    /// still go to the set they were submitted with. Also runs
    /// collect_garbage().
    std::size_t set_destinations(std::uint32_t group, std::span<const Destination> destinations);
    void clear(std::uint32_t group) { set_destinations(group, {}); }
    /// Control thread. Frees retired sets that no shard can still be using;
    /// returns how many it freed.
    std::size_t collect_garbage();

    /// Media thread. Queues `packet` for every destination of `group`. Takes
    /// one reference per shard; the caller keeps (and must release) its own.
    /// QueueFull if a shard could not take it (that shard's copy is dropped and
    /// counted; other shards still send). Ok with nothing sent when the group
    /// has no destinations. `group` must be < max_groups (our bug otherwise:
    /// asserted, and ignored in release builds). `packet->deadline_ns` is the
    /// reference for the spread measurement.
    [[nodiscard]] Status submit(std::uint32_t group, PacketSlot* packet) noexcept;

    /// Number of destinations currently published for `group`.
    std::size_t destination_count(std::uint32_t group) const noexcept;

    FanoutStats stats() const noexcept;
    /// True if a shard asked for real-time scheduling and was refused.
    bool realtime_refused() const noexcept;
    /// Deadline -> return of the sendmmsg carrying a frame's last destination,
    /// in microseconds (negative spreads count as 0), one sample per submitted
    /// frame that reached at least one shard.
    const MicrosHistogram& spread() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace loa::transport
