// FanoutSender: destination sets (built by the control thread, retired and
// freed safely), submission by the media thread, and the counters.
// The worker threads are in fanout_shard.cpp, MicrosHistogram in micros_histogram.cpp.
#include "loa/transport/fanout_sender.h"
#include "loa/transport/thread_priority.h"

#include <pthread.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include "fanout_internal.h"

namespace loa::transport {

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
