// FanoutSender's worker threads: each shard sleeps on a futex until the media
// thread queues work, then sends its slice with sendmmsg and records the spread.
#include <linux/futex.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "fanout_internal.h"

namespace loa::transport {

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

}  // namespace

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

}  // namespace loa::transport
