#pragma once
// FanoutSender's private parts shared by fanout_sender.cpp (control and media
// threads) and fanout_shard.cpp (the worker threads). Private to transport/src.

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <stdexcept>
#include <thread>
#include <vector>

#include "loa/transport/fanout_sender.h"
#include "loa/transport/spsc_queue.h"

namespace loa::transport {

namespace fanout_detail {

inline std::int64_t monotonic_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline constexpr std::int64_t kNoFinish = std::numeric_limits<std::int64_t>::min();
inline constexpr std::size_t kMaxBatch = 1024;  // UIO_MAXIOV: the kernel's cap per sendmmsg()
/// Sends of one message before it is dropped. Asynchronous errors each
/// consume one ICMP report; on a socket shared by several shards another
/// shard's reports can hit this shard's retry, so allow a few in a row.
inline constexpr unsigned kMaxAttempts = 16;

/// One shard's part of a destination set. Built once by the control thread;
/// afterwards only shard s touches slice s, and only the msg_len fields of
/// `msgs` (written by the kernel) ever change.
struct Slice {
    std::vector<sockaddr_in> v4;
    std::vector<sockaddr_in6> v6;
    /// [0, v4.size()) go to the shard's IPv4 socket, the rest to its IPv6 one. msg_name points into
    /// v4/v6; msg_iov points at the owning shard's iovec. A destination with
    /// a non-zero transform will point msg_iov at its own iovec in the shard's
    /// scratch area instead (see Shard).
    std::vector<mmsghdr> msgs;
    std::vector<std::uint32_t> transform;  // parallel to msgs; all 0 today
};

struct DestSet {
    std::vector<Slice> slices;  // one per shard
    std::size_t total = 0;
    std::uint32_t active_shards = 0;  // slices with at least one destination
};

/// Per-submission record: the shards still sending it and their latest
/// finish time. Reused round-robin; `busy` until the last shard is done.
struct alignas(64) Submission {
    std::atomic<bool> busy{false};
    std::atomic<std::uint32_t> remaining{0};
    std::int64_t deadline_ns = 0;
    std::atomic<std::int64_t> max_finish{kNoFinish};
};

struct Work {
    PacketSlot* packet = nullptr;
    DestSet* set = nullptr;
    Submission* submission = nullptr;
    std::uint64_t seq = 0;
};

struct Shard {
    explicit Shard(std::size_t depth) : queue(depth) {}

    SpscQueue<Work> queue;
    int fd_v4 = -1;  // this shard's sockets (-1: family not sent); set before start
    int fd_v6 = -1;

    // Worker-owned line. `iov` is the one iovec every shared-plaintext message
    // of this shard's slices points at; set once per packet. Per-destination
    // transforms (per-cluster SRTP) get their own area here later: a scratch
    // slot per transformed destination (packet buffer + iovec) that the worker
    // protects the packet into before sending the batch holding it.
    alignas(64) iovec iov{};
    std::atomic<std::uint64_t> consumed_seq{0};
    std::atomic<std::uint64_t> datagrams_sent{0};
    std::atomic<std::uint64_t> send_errors{0};
    std::atomic<std::uint64_t> datagrams_dropped{0};
    std::atomic<std::uint64_t> sendmmsg_calls{0};

    // Wake line: written by the worker going to sleep and the media thread waking it.
    alignas(64) std::atomic<std::uint32_t> wake_word{0};
    std::atomic<std::uint32_t> sleeping{0};

    // Media-owned line.
    alignas(64) std::atomic<std::uint64_t> pushed_seq{0};

    alignas(64) std::thread thread;
};

struct Totals {
    std::uint64_t sent = 0;
    std::uint64_t errors = 0;
    std::uint64_t dropped = 0;
    std::uint64_t calls = 0;
};

/// Single-writer counter increment: no locked instruction needed.
inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
    if (n != 0) counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

struct Retired {
    DestSet* set;
    std::uint64_t started_at_swap;
};

}  // namespace fanout_detail

// Progress protocol (why a retired set is safe to free):
//   media thread, per submit: started = seq (seq_cst); set = groups[g] (seq_cst);
//     push {set, seq} to shards, pushed_seq[s] = seq (release); finished = seq (release).
//   control thread, on swap: old = groups[g].exchange(new) (seq_cst);
//     s0 = started (seq_cst). A submit that read `old` stored its seq before
//     the exchange in the single total order, so its seq <= s0.
//   worker s: after the last use of an item's set, consumed_seq[s] = seq (release).
//   The set is freed when finished >= s0 (every submit that could have read it
//   has queued its items) and, for every shard, consumed >= s0 or consumed >=
//   pushed (read after `finished`): each shard has consumed every item that
//   such a submit queued to it.
//
// Wake protocol (no lost wake-up, no polling, no fences so TSan can check it):
//   worker: w = word; sleeping.exchange(1); if queue empty: futex_wait(word, w).
//   media:  push (release); if sleeping.exchange(0) == 1: ++word; futex_wake(word).
//   Both exchanges are acq_rel read-modify-writes of one atomic, so one reads
//   the other. If the worker's reads the media thread's, it synchronizes with
//   it and sees the push; otherwise the media thread reads 1 and bumps `word`
//   after the worker read it, so the futex wait returns at once or is woken.

// The types above are this header's own; both of its files use them unqualified.
using namespace fanout_detail;

struct FanoutSender::Impl {
    Impl(const FanoutConfig& c, std::span<const int> v4, std::span<const int> v6)
        : config(c),
          now(c.now_ns != nullptr ? c.now_ns : &monotonic_ns),
          max_batch(std::clamp<std::size_t>(c.max_batch, 1, kMaxBatch)),
          groups(std::make_unique<std::atomic<DestSet*>[]>(c.max_groups)),
          group_sizes(std::make_unique<std::atomic<std::size_t>[]>(c.max_groups)) {
        const std::size_t thread_count = std::max<std::size_t>(config.threads, 1);
        shards.reserve(thread_count);
        const auto pick = [thread_count](std::span<const int> fds, std::size_t i) {
            if (fds.empty()) return -1;
            if (fds.size() != 1 && fds.size() != thread_count) {
                throw std::invalid_argument("FanoutSender: need 1 socket or one per shard");
            }
            return fds[fds.size() == 1 ? 0 : i];
        };
        for (std::size_t i = 0; i < thread_count; ++i) {
            shards.push_back(std::make_unique<Shard>(config.queue_depth));
            shards.back()->fd_v4 = pick(v4, i);
            shards.back()->fd_v6 = pick(v6, i);
            if ((shards.back()->fd_v4 < 0) != (shards.front()->fd_v4 < 0) ||
                (shards.back()->fd_v6 < 0) != (shards.front()->fd_v6 < 0)) {
                throw std::invalid_argument("FanoutSender: every shard needs the same families");
            }
        }
        has_v4 = shards.front()->fd_v4 >= 0;
        has_v6 = shards.front()->fd_v6 >= 0;
        // A record stays busy while some shard still has its item queued or
        // in hand: at most capacity + 1 per shard ahead of the producer.
        submission_count = 2 * shards.front()->queue.capacity() + 2;
        submissions = std::make_unique<Submission[]>(submission_count);
    }

    void run(std::size_t index) noexcept;
    void stop() noexcept;  // stops and joins the workers (they drain their queues first)
    void process(Shard& shard, std::size_t index, const Work& work) noexcept;
    void send_range(int fd, mmsghdr* msgs, std::size_t count, Totals& totals) const noexcept;
    void finish(Submission& submission, std::uint32_t shards_done) noexcept;
    Status dispatch(DestSet* set, PacketSlot* packet, std::uint64_t seq) noexcept;
    static void wake(Shard& shard) noexcept;
    DestSet* build(std::span<const Destination> destinations, std::size_t& skipped) const;
    std::size_t collect();

    const FanoutConfig config;
    bool has_v4 = false;
    bool has_v6 = false;
    std::int64_t (*const now)();
    const std::size_t max_batch;

    std::vector<std::unique_ptr<Shard>> shards;
    std::unique_ptr<std::atomic<DestSet*>[]> groups;
    std::unique_ptr<std::atomic<std::size_t>[]> group_sizes;
    std::unique_ptr<Submission[]> submissions;
    std::size_t submission_count = 0;

    // Media-thread line.
    alignas(64) std::atomic<std::uint64_t> started{0};
    std::atomic<std::uint64_t> finished{0};
    std::atomic<std::uint64_t> packets_submitted{0};
    std::atomic<std::uint64_t> frames_dropped{0};

    // Written by whichever thread completes a submission.
    alignas(64) std::atomic<std::uint64_t> frames_missed{0};
    MicrosHistogram spread;

    alignas(64) std::atomic<bool> stopping{false};
    std::atomic<bool> realtime_refused{false};
    std::atomic<std::uint64_t> sets_reclaimed{0};
    std::vector<Retired> retired;  // control thread only
};

}  // namespace loa::transport
