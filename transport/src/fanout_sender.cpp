#include "loa/transport/fanout_sender.h"
#include "loa/transport/thread_priority.h"

#include <linux/futex.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>

#include "loa/transport/spsc_queue.h"

namespace loa::transport {

// ---------------------------------------------------------------------------
// MicrosHistogram

namespace {

constexpr std::int64_t kExactLimit = 64;  // values below it are their own bucket
constexpr int kFirstPower = 6;            // log2(kExactLimit)
constexpr int kSubBits = 4;               // 16 sub-buckets per power of two
constexpr std::size_t kSubBuckets = std::size_t{1} << kSubBits;

}  // namespace

std::size_t MicrosHistogram::bucket_of(std::int64_t us) noexcept {
    if (us < kExactLimit) return us < 0 ? 0 : static_cast<std::size_t>(us);
    const auto u = static_cast<std::uint64_t>(us);
    const int power = static_cast<int>(std::bit_width(u)) - 1;  // >= kFirstPower
    const auto sub = static_cast<std::size_t>((u >> (power - kSubBits)) & (kSubBuckets - 1));
    const std::size_t b = static_cast<std::size_t>(kExactLimit) +
                          static_cast<std::size_t>(power - kFirstPower) * kSubBuckets + sub;
    return std::min(b, kBuckets - 1);
}

std::int64_t MicrosHistogram::bucket_upper(std::size_t b) noexcept {
    if (b < static_cast<std::size_t>(kExactLimit)) return static_cast<std::int64_t>(b);
    const std::size_t offset = b - static_cast<std::size_t>(kExactLimit);
    const int power = kFirstPower + static_cast<int>(offset / kSubBuckets);
    const auto sub = static_cast<std::int64_t>(offset % kSubBuckets);
    const std::int64_t width = std::int64_t{1} << (power - kSubBits);
    return (static_cast<std::int64_t>(kSubBuckets) + sub) * width + width - 1;
}

void MicrosHistogram::record(std::int64_t us) noexcept {
    if (us < 0) us = 0;
    buckets_[bucket_of(us)].fetch_add(1, std::memory_order_relaxed);
    std::int64_t seen = max_.load(std::memory_order_relaxed);
    while (us > seen && !max_.compare_exchange_weak(seen, us, std::memory_order_relaxed)) {
    }
}

void MicrosHistogram::reset() noexcept {
    for (auto& b : buckets_) b.store(0, std::memory_order_relaxed);
    max_.store(0, std::memory_order_relaxed);
}

std::uint64_t MicrosHistogram::count() const noexcept {
    std::uint64_t n = 0;
    for (const auto& b : buckets_) n += b.load(std::memory_order_relaxed);
    return n;
}

std::int64_t MicrosHistogram::quantile(double q) const noexcept {
    std::array<std::uint64_t, kBuckets> snapshot{};
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
        snapshot[i] = buckets_[i].load(std::memory_order_relaxed);
        total += snapshot[i];
    }
    if (total == 0) return 0;
    q = std::clamp(q, 0.0, 1.0);
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total)));
    rank = std::clamp<std::uint64_t>(rank, 1, total);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
        seen += snapshot[i];
        if (seen >= rank) return std::min(bucket_upper(i), max());
    }
    return max();
}

// ---------------------------------------------------------------------------
// FanoutSender
//
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

namespace {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "futex word must be a plain 32-bit integer");

void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected,
              nullptr, nullptr, 0);
}

void futex_wake_one(std::atomic<std::uint32_t>& word) noexcept {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr,
              nullptr, 0);
}

std::int64_t monotonic_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// Errors that report an earlier datagram's ICMP (pending sk_err) rather
/// than a fault of the message being sent: that message is retried.
bool asynchronous_error(int err) noexcept {
    switch (err) {
        case ECONNREFUSED:
        case EHOSTUNREACH:
        case ENETUNREACH:
        case EHOSTDOWN:
        case ENETDOWN:
        case EPROTO:
            return true;
        default:
            return false;
    }
}

/// Errors of the socket itself: every further message would fail too.
bool socket_error(int err) noexcept {
    return err == EBADF || err == ENOTSOCK || err == EFAULT || err == EOPNOTSUPP;
}

constexpr std::int64_t kNoFinish = std::numeric_limits<std::int64_t>::min();
constexpr std::size_t kMaxBatch = 1024;  // UIO_MAXIOV: the kernel's cap per sendmmsg()
/// Sends of one message before it is dropped. Asynchronous errors each
/// consume one ICMP report; on a socket shared by several shards another
/// shard's reports can hit this shard's retry, so allow a few in a row.
constexpr unsigned kMaxAttempts = 16;

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

}  // namespace

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

void FanoutSender::Impl::wake(Shard& shard) noexcept {
    if (shard.sleeping.exchange(0, std::memory_order_acq_rel) != 0) {
        shard.wake_word.fetch_add(1, std::memory_order_release);
        futex_wake_one(shard.wake_word);
    }
}

void FanoutSender::Impl::run(std::size_t index) noexcept {
    Shard& shard = *shards[index];
    Work work;
    for (;;) {
        while (shard.queue.pop(work)) process(shard, index, work);
        const std::uint32_t word = shard.wake_word.load(std::memory_order_acquire);
        if (stopping.load(std::memory_order_acquire)) {
            if (shard.queue.empty()) return;
            continue;
        }
        shard.sleeping.exchange(1, std::memory_order_acq_rel);
        if (!shard.queue.empty() || stopping.load(std::memory_order_relaxed)) {
            shard.sleeping.store(0, std::memory_order_relaxed);
            continue;
        }
        futex_wait(shard.wake_word, word);
        shard.sleeping.store(0, std::memory_order_relaxed);
    }
}

void FanoutSender::Impl::send_range(int fd, mmsghdr* msgs, std::size_t count,
                                    Totals& totals) const noexcept {
    std::size_t i = 0;
    unsigned failures = 0;  // consecutive failures of msgs[i]
    while (i < count) {
        const auto chunk = static_cast<unsigned int>(std::min(count - i, max_batch));
        const int r = ::sendmmsg(fd, msgs + i, chunk, 0);
        ++totals.calls;
        if (r > 0) {
            const auto sent = static_cast<std::size_t>(r);
            totals.sent += sent;
            i += sent;
            failures = 0;
            if (sent < chunk) {
                // Short count: msgs[i] failed with an errno the kernel does
                // not report, typically a pending ICMP error of an earlier
                // datagram that this attempt consumed: retry it.
                ++totals.errors;
                failures = 1;
            }
            continue;
        }
        const int err = r < 0 ? errno : EIO;
        if (err == EINTR) continue;
        ++totals.errors;
        if (socket_error(err)) {
            totals.dropped += count - i;
            return;
        }
        // Each asynchronous error consumed one pending ICMP report (another
        // shard's datagrams can raise more on the shared socket), so retrying
        // a few times is bounded and keeps live destinations served.
        if (asynchronous_error(err) && ++failures < kMaxAttempts) continue;
        ++totals.dropped;  // EAGAIN, ENOBUFS, EPERM, EMSGSIZE, repeated failure...
        ++i;
        failures = 0;
    }
}

void FanoutSender::Impl::process(Shard& shard, std::size_t index, const Work& work) noexcept {
    Slice& slice = work.set->slices[index];
    shard.iov.iov_base = work.packet->data.data();
    shard.iov.iov_len = work.packet->size;
    // Per-destination transforms (transform != 0) would be applied here: for
    // each such message of the next chunk, protect the packet into its scratch
    // slot and leave msg_iov pointing there. Today every transform is 0.
    Totals totals;
    const std::size_t v4_count = slice.v4.size();
    if (v4_count != 0) send_range(shard.fd_v4, slice.msgs.data(), v4_count, totals);
    if (slice.msgs.size() > v4_count) {
        send_range(shard.fd_v6, slice.msgs.data() + v4_count, slice.msgs.size() - v4_count, totals);
    }
    const std::int64_t finish_ns = now();

    bump(shard.datagrams_sent, totals.sent);
    bump(shard.send_errors, totals.errors);
    bump(shard.datagrams_dropped, totals.dropped);
    bump(shard.sendmmsg_calls, totals.calls);

    PacketPool::release(work.packet);
    Submission& submission = *work.submission;
    std::int64_t seen = submission.max_finish.load(std::memory_order_relaxed);
    while (finish_ns > seen && !submission.max_finish.compare_exchange_weak(
                                   seen, finish_ns, std::memory_order_relaxed)) {
    }
    finish(submission, 1);
    shard.consumed_seq.store(work.seq, std::memory_order_release);  // last use of work.set
}

void FanoutSender::Impl::finish(Submission& submission, std::uint32_t shards_done) noexcept {
    if (submission.remaining.fetch_sub(shards_done, std::memory_order_acq_rel) != shards_done) {
        return;
    }
    const std::int64_t last = submission.max_finish.load(std::memory_order_relaxed);
    const std::int64_t deadline = submission.deadline_ns;
    submission.busy.store(false, std::memory_order_release);
    if (last == kNoFinish) return;  // no shard took it
    if (deadline == 0) return;      // not a media frame (e.g. an RTCP report): not measured
    const std::int64_t spread_ns = last - deadline;
    spread.record(spread_ns / 1000);
    if (spread_ns > config.miss_after_ns) frames_missed.fetch_add(1, std::memory_order_relaxed);
}

Status FanoutSender::Impl::dispatch(DestSet* set, PacketSlot* packet, std::uint64_t seq) noexcept {
    Submission& submission = submissions[seq % submission_count];
    if (submission.busy.load(std::memory_order_acquire)) {
        // Some shard is so far behind that it still holds a frame from
        // submission_count frames ago: it is dropping anyway.
        bump(frames_dropped, set->active_shards);
        return Status::QueueFull;
    }
    submission.busy.store(true, std::memory_order_relaxed);
    submission.deadline_ns = packet->deadline_ns;
    submission.max_finish.store(kNoFinish, std::memory_order_relaxed);
    // One extra unit held by this thread until every push is done.
    submission.remaining.store(set->active_shards + 1, std::memory_order_relaxed);
    PacketPool::add_refs(packet, set->active_shards);

    std::uint32_t refused = 0;
    const Work work{packet, set, &submission, seq};
    for (std::size_t s = 0; s < shards.size(); ++s) {
        if (set->slices[s].msgs.empty()) continue;
        Shard& shard = *shards[s];
        if (shard.queue.push(work)) {
            shard.pushed_seq.store(seq, std::memory_order_release);
            wake(shard);
        } else {
            ++refused;
            PacketPool::release(packet);
        }
    }
    bump(frames_dropped, refused);
    finish(submission, refused + 1);
    return refused == 0 ? Status::Ok : Status::QueueFull;
}

DestSet* FanoutSender::Impl::build(std::span<const Destination> destinations,
                                   std::size_t& skipped) const {
    const std::size_t n = shards.size();
    auto set = std::make_unique<DestSet>();
    set->slices.resize(n);
    std::vector<std::size_t> v4_counts(n, 0);
    std::vector<std::size_t> v6_counts(n, 0);
    // Round-robin over shards in input order, so shards get equal slices.
    std::size_t k = 0;
    skipped = 0;
    for (const auto& d : destinations) {
        const bool v6 = d.endpoint.address().is_v6();
        if (!(v6 ? has_v6 : has_v4)) {
            ++skipped;
            continue;
        }
        ++(v6 ? v6_counts : v4_counts)[k % n];
        ++k;
    }
    for (std::size_t s = 0; s < n; ++s) {
        Slice& slice = set->slices[s];
        slice.v4.reserve(v4_counts[s]);
        slice.v6.reserve(v6_counts[s]);
        slice.transform.reserve(v4_counts[s] + v6_counts[s]);
    }
    std::vector<std::vector<std::uint32_t>> v6_transforms(n);
    k = 0;
    for (const auto& d : destinations) {
        const bool v6 = d.endpoint.address().is_v6();
        if (!(v6 ? has_v6 : has_v4)) continue;
        Slice& slice = set->slices[k % n];
        if (v6) {
            sockaddr_in6 sa{};
            std::memcpy(&sa, d.endpoint.data(), sizeof sa);
            slice.v6.push_back(sa);
            v6_transforms[k % n].push_back(d.transform);
        } else {
            sockaddr_in sa{};
            std::memcpy(&sa, d.endpoint.data(), sizeof sa);
            slice.v4.push_back(sa);
            slice.transform.push_back(d.transform);
        }
        ++k;
    }
    for (std::size_t s = 0; s < n; ++s) {
        Slice& slice = set->slices[s];
        slice.transform.insert(slice.transform.end(), v6_transforms[s].begin(),
                               v6_transforms[s].end());
        slice.msgs.resize(slice.v4.size() + slice.v6.size());
        iovec* iov = &shards[s]->iov;
        std::size_t m = 0;
        for (auto& sa : slice.v4) {
            msghdr& h = slice.msgs[m++].msg_hdr;
            h.msg_name = &sa;
            h.msg_namelen = sizeof sa;
            h.msg_iov = iov;
            h.msg_iovlen = 1;
        }
        for (auto& sa : slice.v6) {
            msghdr& h = slice.msgs[m++].msg_hdr;
            h.msg_name = &sa;
            h.msg_namelen = sizeof sa;
            h.msg_iov = iov;
            h.msg_iovlen = 1;
        }
        if (!slice.msgs.empty()) ++set->active_shards;
        set->total += slice.msgs.size();
    }
    if (set->total == 0) return nullptr;
    return set.release();
}

std::size_t FanoutSender::Impl::collect() {
    const std::uint64_t done = finished.load(std::memory_order_acquire);
    std::size_t freed = 0;
    std::erase_if(retired, [&](const Retired& r) {
        if (done < r.started_at_swap) return false;
        for (const auto& shard : shards) {
            const std::uint64_t pushed = shard->pushed_seq.load(std::memory_order_acquire);
            const std::uint64_t consumed = shard->consumed_seq.load(std::memory_order_acquire);
            if (consumed < r.started_at_swap && consumed < pushed) return false;
        }
        delete r.set;
        ++freed;
        return true;
    });
    sets_reclaimed.fetch_add(freed, std::memory_order_relaxed);
    return freed;
}

FanoutSender::FanoutSender(const FanoutConfig& config, int fd_v4, int fd_v6)
    : FanoutSender(config, fd_v4 >= 0 ? std::span<const int>(&fd_v4, 1) : std::span<const int>(),
                   fd_v6 >= 0 ? std::span<const int>(&fd_v6, 1) : std::span<const int>()) {}

FanoutSender::FanoutSender(const FanoutConfig& config, std::span<const int> fds_v4,
                           std::span<const int> fds_v6)
    : impl_(std::make_unique<Impl>(config, fds_v4, fds_v6)) {
    try {
        for (std::size_t i = 0; i < impl_->shards.size(); ++i) {
            Shard& shard = *impl_->shards[i];
            shard.thread = std::thread([impl = impl_.get(), i] {
                if (impl->config.realtime_priority > 0 && !set_realtime_priority(impl->config.realtime_priority)) {
                    impl->realtime_refused.store(true, std::memory_order_relaxed);
                }
                impl->run(i);
            });
            const std::string name = "loa-fanout-" + std::to_string(i);
            ::pthread_setname_np(shard.thread.native_handle(), name.c_str());
        }
    } catch (...) {
        impl_->stop();
        throw;
    }
}

void FanoutSender::Impl::stop() noexcept {
    stopping.store(true, std::memory_order_seq_cst);
    for (auto& shard : shards) {
        shard->wake_word.fetch_add(1, std::memory_order_release);
        futex_wake_one(shard->wake_word);
    }
    for (auto& shard : shards) {
        if (shard->thread.joinable()) shard->thread.join();
    }
}

FanoutSender::~FanoutSender() {
    Impl& m = *impl_;
    m.stop();
    for (std::size_t g = 0; g < m.config.max_groups; ++g) {
        delete m.groups[g].exchange(nullptr, std::memory_order_relaxed);
    }
    for (const auto& r : m.retired) delete r.set;
}

std::size_t FanoutSender::set_destinations(std::uint32_t group,
                                           std::span<const Destination> destinations) {
    Impl& m = *impl_;
    if (group >= m.config.max_groups) {
        throw std::out_of_range("FanoutSender: group " + std::to_string(group) +
                                " >= max_groups " + std::to_string(m.config.max_groups));
    }
    std::size_t skipped = 0;
    DestSet* fresh = destinations.empty() ? nullptr : m.build(destinations, skipped);
    m.retired.reserve(m.retired.size() + 1);  // no throw after the swap
    DestSet* old = m.groups[group].exchange(fresh, std::memory_order_seq_cst);
    m.group_sizes[group].store(fresh != nullptr ? fresh->total : 0, std::memory_order_relaxed);
    if (old != nullptr) {
        m.retired.push_back({old, m.started.load(std::memory_order_seq_cst)});
    }
    m.collect();
    return skipped;
}

std::size_t FanoutSender::collect_garbage() { return impl_->collect(); }

Status FanoutSender::submit(std::uint32_t group, PacketSlot* packet) noexcept {
    Impl& m = *impl_;
    bump(m.packets_submitted, 1);
    assert(group < m.config.max_groups);
    if (group >= m.config.max_groups) return Status::Ok;
    const std::uint64_t seq = m.started.load(std::memory_order_relaxed) + 1;
    m.started.store(seq, std::memory_order_seq_cst);
    DestSet* set = m.groups[group].load(std::memory_order_seq_cst);
    const Status status = set != nullptr ? m.dispatch(set, packet, seq) : Status::Ok;
    m.finished.store(seq, std::memory_order_release);
    return status;
}

std::size_t FanoutSender::destination_count(std::uint32_t group) const noexcept {
    if (group >= impl_->config.max_groups) return 0;
    return impl_->group_sizes[group].load(std::memory_order_relaxed);
}

bool FanoutSender::realtime_refused() const noexcept {
    return impl_->realtime_refused.load(std::memory_order_relaxed);
}

FanoutStats FanoutSender::stats() const noexcept {
    const Impl& m = *impl_;
    FanoutStats s;
    s.packets_submitted = m.packets_submitted.load(std::memory_order_relaxed);
    s.frames_dropped = m.frames_dropped.load(std::memory_order_relaxed);
    s.frames_missed = m.frames_missed.load(std::memory_order_relaxed);
    s.sets_reclaimed = m.sets_reclaimed.load(std::memory_order_relaxed);
    for (const auto& shard : m.shards) {
        s.datagrams_sent += shard->datagrams_sent.load(std::memory_order_relaxed);
        s.send_errors += shard->send_errors.load(std::memory_order_relaxed);
        s.datagrams_dropped += shard->datagrams_dropped.load(std::memory_order_relaxed);
        s.sendmmsg_calls += shard->sendmmsg_calls.load(std::memory_order_relaxed);
    }
    return s;
}

const MicrosHistogram& FanoutSender::spread() const noexcept { return impl_->spread; }

}  // namespace loa::transport
