// Arbiter: one cluster at a time. put_cluster() and erase_cluster() change
// the previous decision for just that cluster when they can, else decide again.
#include <algorithm>
#include <string>
#include <utility>

#include "arbiter_util.h"
#include "loa/engine/arbiter.h"

namespace loa::engine {

using arbiter_util::index_of;

namespace {

// Shifts the unicast ranges of the slots after `slot` by one.
void shift_after(std::vector<ProgrammeFanout>& programmes, std::size_t slot, bool grow) noexcept {
    for (std::size_t r = slot + 1; r < programmes.size(); ++r) {
        if (grow) {
            ++programmes[r].unicast_begin;
            ++programmes[r].unicast_end;
        } else {
            --programmes[r].unicast_begin;
            --programmes[r].unicast_end;
        }
    }
}

}  // namespace

// Takes a cluster out of the programme it hears in `a`.
void Arbiter::detach_cluster(Assignment& a, std::uint32_t c) {
    const auto s = a.cluster_programme_[c];
    if (s == kNoIndex) return;
    auto& p = a.programmes_[s];
    --p.listeners;
    if (a.cluster_delivery_[c] == Delivery::Unicast) {
        const auto first = a.unicast_.begin() + p.unicast_begin;
        const auto last = a.unicast_.begin() + p.unicast_end;
        const auto it = std::lower_bound(first, last, c);
        assert(it != last && *it == c);
        a.unicast_.erase(it);
        --p.unicast_end;
        shift_after(a.programmes_, s, false);
    }
    a.cluster_programme_[c] = kNoIndex;
    a.cluster_delivery_[c] = Delivery::None;
}

// Gives a cluster slot `s` by unicast in `a` (kNoIndex: nothing).
void Arbiter::attach_cluster(Assignment& a, std::uint32_t c, std::uint32_t s) {
    if (s == kNoIndex) return;
    auto& p = a.programmes_[s];
    ++p.listeners;
    const auto first = a.unicast_.begin() + p.unicast_begin;
    const auto last = a.unicast_.begin() + p.unicast_end;
    a.unicast_.insert(std::lower_bound(first, last, c), c);
    ++p.unicast_end;
    shift_after(a.programmes_, s, true);
    a.cluster_programme_[c] = s;
    a.cluster_delivery_[c] = Delivery::Unicast;
}

// Cluster `from` takes index `to` in `a` (same programme and delivery).
void Arbiter::renumber_cluster(Assignment& a, std::uint32_t from, std::uint32_t to) {
    const auto s = a.cluster_programme_[from];
    if (s != kNoIndex && a.cluster_delivery_[from] == Delivery::Unicast) {
        const auto& p = a.programmes_[s];
        const auto first = a.unicast_.begin() + p.unicast_begin;
        const auto last = a.unicast_.begin() + p.unicast_end;
        auto it = std::lower_bound(first, last, from);
        assert(it != last && *it == from);
        *it = to;
        std::sort(first, last);
    }
    a.cluster_programme_[to] = s;
    a.cluster_delivery_[to] = a.cluster_delivery_[from];
}

std::uint32_t Arbiter::best_slot(std::uint32_t cluster) const noexcept {
    if (!topology_.cluster_has_unicast(cluster)) return kNoIndex;
    const auto zone = topology_.cluster_zone(cluster);
    for (std::size_t r = 0; r < ranked_.size(); ++r) {
        if (covers(ranked_[r]->targets, zone)) return index_of(r);
    }
    return kNoIndex;
}

Decision Arbiter::finish_incremental(std::uint32_t cluster) {
    last_->version_ = ++version_;
    Decision d;
    if (cluster != kNoIndex) {
        const auto now_id = last_->programme_id_of(cluster);
        if (now_id != last_cluster_programme_[cluster]) {
            d.moves.push_back({cluster, last_cluster_programme_[cluster], now_id});
        }
        last_cluster_programme_[cluster] = now_id;
    }
    auto out = std::unique_ptr<Assignment>(new Assignment(*last_));
    settle(ranked_, *out, d);
    d.assignment = std::move(out);
    return d;
}

Result<Decision> Arbiter::put_cluster(ClusterSpec spec) {
    const auto old = topology_.cluster_index(spec.id);
    const bool grouped = !spec.multicast_zone.empty() || (old && topology_.cluster_group(*old) != kNoIndex);
    if (stale_ || !last_ || grouped) {
        Topology next = topology_;
        if (auto put = next.put_cluster(std::move(spec)); !put) return put.error();
        set_topology(std::move(next));
        return decide();
    }
    const auto put = topology_.put_cluster(std::move(spec));
    if (!put) return put.error();
    const auto c = put.value();
    Assignment& a = *last_;
    if (c == a.cluster_programme_.size()) {
        a.cluster_programme_.push_back(kNoIndex);
        a.cluster_delivery_.push_back(Delivery::None);
        last_cluster_programme_.push_back(0);
    }
    detach_cluster(a, c);
    attach_cluster(a, c, best_slot(c));
    return finish_incremental(c);
}

Result<Decision> Arbiter::erase_cluster(std::string_view id) {
    const auto found = topology_.cluster_index(id);
    if (!found) return Outcome::failure(RpcCode::NotFound, "no cluster '" + std::string(id) + "'");
    const auto c = *found;
    if (stale_ || !last_ || topology_.cluster_group(c) != kNoIndex) {
        Topology next = topology_;
        (void)next.erase_cluster(id);
        set_topology(std::move(next));
        return decide();
    }
    const auto last = index_of(topology_.cluster_count() - 1);
    (void)topology_.erase_cluster(id);
    Assignment& a = *last_;
    detach_cluster(a, c);
    if (c != last) {
        renumber_cluster(a, last, c);
        last_cluster_programme_[c] = last_cluster_programme_[last];
    }
    a.cluster_programme_.pop_back();
    a.cluster_delivery_.pop_back();
    last_cluster_programme_.pop_back();
    return finish_incremental(kNoIndex);
}

}  // namespace loa::engine
