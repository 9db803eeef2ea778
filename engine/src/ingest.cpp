#include "loa/engine/ingest.h"

#include <algorithm>
#include <memory>

namespace loa::engine {

StudioFeed::Reader::Reader(std::size_t index, std::size_t queue_depth)
    : index_(index), slots_(queue_depth), free_(queue_depth), ready_(queue_depth) {
    for (auto& s : slots_) (void)free_.push(&s);
}

bool StudioFeed::Reader::offer(std::span<const std::uint8_t> packet, std::int64_t now_ns) noexcept {
    IngestPacket* slot = nullptr;
    if (!free_.pop(slot)) {
        counters_.queue_full.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    const auto n = std::min(packet.size(), slot->data.size());
    std::copy_n(packet.begin(), n, slot->data.begin());
    slot->size = static_cast<std::uint16_t>(n);
    slot->arrival_ns = now_ns;
    slot->generation = generation_.load(std::memory_order_acquire);
    (void)ready_.push(slot);  // cannot fail: slots never outnumber the queue
    counters_.queued.fetch_add(1, std::memory_order_relaxed);
    return true;
}

bool StudioFeed::Reader::take(IngestPacket*& out) noexcept {
    IngestPacket* p = nullptr;
    while (ready_.pop(p)) {
        if (p->generation == generation_.load(std::memory_order_acquire)) {
            out = p;
            return true;
        }
        // Left by an earlier attachment of this slot.
        counters_.stale.fetch_add(1, std::memory_order_relaxed);
        (void)free_.push(p);
    }
    return false;
}

void StudioFeed::Reader::give_back(IngestPacket* packet) noexcept { (void)free_.push(packet); }

StudioFeed::StudioFeed(StudioMatch match, std::int64_t relatch_after_ns, std::size_t queue_depth)
    : match_(std::move(match)), relatch_after_ns_(relatch_after_ns), queue_depth_(queue_depth) {}

StudioFeed::~StudioFeed() = default;

StudioFeed::Attachment StudioFeed::attach() {
    for (std::size_t i = 0; i < kMaxReaders; ++i) {
        if (owned_[i] && owned_[i]->attached()) continue;
        if (!owned_[i]) {
            owned_[i] = std::make_unique<Reader>(i, queue_depth_);
            readers_[i].store(owned_[i].get(), std::memory_order_release);
        }
        Reader& r = *owned_[i];
        const auto generation = r.generation_.load(std::memory_order_relaxed) + 1;
        r.generation_.store(generation, std::memory_order_release);
        r.attached_.store(true, std::memory_order_release);
        return {&r, generation};
    }
    return {};
}

bool StudioFeed::detach(const Attachment& a) noexcept {
    if (!a.current()) return false;
    a.reader->attached_.store(false, std::memory_order_release);
    return true;
}

std::size_t StudioFeed::readers() const noexcept {
    std::size_t n = 0;
    for (const auto& slot : readers_) {
        const Reader* r = slot.load(std::memory_order_acquire);
        if (r != nullptr && r->attached()) ++n;
    }
    return n;
}

const StudioFeed::Reader* StudioFeed::reader(std::size_t index) const noexcept {
    if (index >= kMaxReaders) return nullptr;
    return readers_[index].load(std::memory_order_acquire);
}

StudioFeed::Offer StudioFeed::offer(std::span<const std::uint8_t> packet, const boost::asio::ip::udp::endpoint& from,
                                    std::int64_t now_ns) noexcept {
    if (latched_ && *latched_ != from) {
        if (now_ns - last_packet_ns_ <= relatch_after_ns_) {
            counters_.foreign_address.fetch_add(1, std::memory_order_relaxed);
            return Offer::ForeignAddress;
        }
        counters_.relatched.fetch_add(1, std::memory_order_relaxed);
    }
    if (!latched_ || *latched_ != from) {
        std::uint64_t packed = 0;
        if (from.address().is_v4()) {
            packed = (static_cast<std::uint64_t>(from.address().to_v4().to_uint()) << 16) | from.port();
        }
        latched_v4_.store(packed, std::memory_order_relaxed);
    }
    latched_ = from;
    last_packet_ns_ = now_ns;
    last_seen_ns_.store(now_ns, std::memory_order_relaxed);

    // Every attached reader gets its own copy; a full one drops only its own.
    std::size_t attached = 0;
    std::size_t queued = 0;
    for (auto& slot : readers_) {
        Reader* r = slot.load(std::memory_order_acquire);
        if (r == nullptr || !r->attached()) continue;
        ++attached;
        if (r->offer(packet, now_ns)) {
            ++queued;
        } else {
            counters_.queue_full.fetch_add(1, std::memory_order_relaxed);
        }
    }
    if (attached == 0) {
        counters_.idle.fetch_add(1, std::memory_order_relaxed);
        return Offer::Idle;
    }
    if (queued == 0) return Offer::QueueFull;
    counters_.accepted.fetch_add(1, std::memory_order_relaxed);
    return Offer::Accepted;
}

std::optional<boost::asio::ip::udp::endpoint> StudioFeed::latched() const { return latched_; }

std::optional<boost::asio::ip::udp::endpoint> StudioFeed::latched_address() const noexcept {
    const auto packed = latched_v4_.load(std::memory_order_relaxed);
    if (packed == 0) return std::nullopt;
    return boost::asio::ip::udp::endpoint(boost::asio::ip::address_v4(static_cast<std::uint32_t>(packed >> 16)),
                                          static_cast<unsigned short>(packed & 0xFFFF));
}

std::optional<std::int64_t> StudioFeed::last_packet_ns() const noexcept {
    const auto t = last_seen_ns_.load(std::memory_order_relaxed);
    if (t == kNever) return std::nullopt;
    return t;
}

IngestRouter::IngestRouter() = default;

IngestRouter::~IngestRouter() {
    delete table_.load(std::memory_order_relaxed);
    for (const auto& r : retired_) delete r.table;
}

void IngestRouter::add(StudioFeed* feed) {
    auto feeds = current_;
    feeds.push_back(feed);
    (void)publish(std::move(feeds));
}

std::uint64_t IngestRouter::publish(std::vector<StudioFeed*> feeds) {
    auto fresh = std::make_unique<Table>();
    fresh->feeds = feeds;
    retired_.reserve(retired_.size() + 1);  // nothing may throw after the swap
    current_.swap(feeds);
    const Table* old = table_.exchange(fresh.release(), std::memory_order_seq_cst);
    const std::uint64_t ticket = started_.load(std::memory_order_seq_cst);
    if (old != nullptr) retired_.push_back({old, ticket});
    collect_garbage();
    return ticket;
}

bool IngestRouter::released(std::uint64_t ticket) const noexcept {
    return finished_.load(std::memory_order_acquire) >= ticket;
}

std::size_t IngestRouter::collect_garbage() {
    std::size_t freed = 0;
    std::erase_if(retired_, [&](const Retired& r) {
        if (!released(r.ticket)) return false;
        delete r.table;
        ++freed;
        return true;
    });
    return freed;
}

IngestRouter::Result IngestRouter::route(std::span<const std::uint8_t> datagram,
                                         const boost::asio::ip::udp::endpoint& from, std::int64_t now_ns,
                                         StudioFeed** matched) noexcept {
    if (matched != nullptr) *matched = nullptr;
    if (transport::looks_like_rtcp(datagram)) return Result::Rtcp;
    transport::RtpView v;
    if (transport::RtpView::parse(datagram, v) != transport::Status::Ok || v.payload().empty()) {
        return Result::Malformed;
    }
    // Announce the use of the table before loading it (see the header).
    const std::uint64_t seq = started_.load(std::memory_order_relaxed) + 1;
    started_.store(seq, std::memory_order_seq_cst);
    const Table* table = table_.load(std::memory_order_seq_cst);
    Result result = Result::UnknownStudio;
    if (table != nullptr) {
        for (auto* feed : table->feeds) {
            const auto& m = feed->match();
            if (m.ssrc && *m.ssrc != v.ssrc()) continue;
            if (m.source_address && *m.source_address != from.address()) continue;
            if (matched != nullptr) *matched = feed;
            switch (feed->offer(datagram, from, now_ns)) {
                case StudioFeed::Offer::Accepted: result = Result::Accepted; break;
                case StudioFeed::Offer::ForeignAddress: result = Result::ForeignAddress; break;
                case StudioFeed::Offer::QueueFull: result = Result::QueueFull; break;
                case StudioFeed::Offer::Idle: result = Result::Idle; break;
            }
            break;
        }
    }
    finished_.store(seq, std::memory_order_release);
    return result;
}

}  // namespace loa::engine
