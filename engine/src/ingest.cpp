#include "loa/engine/ingest.h"

#include <algorithm>

namespace loa::engine {

StudioFeed::StudioFeed(StudioMatch match, std::int64_t relatch_after_ns, std::size_t queue_depth)
    : match_(std::move(match)),
      relatch_after_ns_(relatch_after_ns),
      slots_(queue_depth),
      free_(queue_depth),
      ready_(queue_depth) {
    for (auto& s : slots_) (void)free_.push(&s);
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
    latched_ = from;
    last_packet_ns_ = now_ns;

    IngestPacket* slot = nullptr;
    if (!free_.pop(slot)) {
        counters_.queue_full.fetch_add(1, std::memory_order_relaxed);
        return Offer::QueueFull;
    }
    const auto n = std::min(packet.size(), slot->data.size());
    std::copy_n(packet.begin(), n, slot->data.begin());
    slot->size = static_cast<std::uint16_t>(n);
    slot->arrival_ns = now_ns;
    (void)ready_.push(slot);  // cannot fail: slots never outnumber the queue
    counters_.accepted.fetch_add(1, std::memory_order_relaxed);
    return Offer::Accepted;
}

bool StudioFeed::take(IngestPacket*& out) noexcept { return ready_.pop(out); }

void StudioFeed::give_back(IngestPacket* packet) noexcept { (void)free_.push(packet); }

std::optional<boost::asio::ip::udp::endpoint> StudioFeed::latched() const { return latched_; }

IngestRouter::Result IngestRouter::route(std::span<const std::uint8_t> datagram,
                                         const boost::asio::ip::udp::endpoint& from, std::int64_t now_ns) noexcept {
    if (transport::looks_like_rtcp(datagram)) return Result::Rtcp;
    transport::RtpView v;
    if (transport::RtpView::parse(datagram, v) != transport::Status::Ok || v.payload().empty()) {
        return Result::Malformed;
    }
    for (auto* feed : feeds_) {
        const auto& m = feed->match();
        if (m.ssrc && *m.ssrc != v.ssrc()) continue;
        if (m.source_address && *m.source_address != from.address()) continue;
        switch (feed->offer(datagram, from, now_ns)) {
            case StudioFeed::Offer::Accepted: return Result::Accepted;
            case StudioFeed::Offer::ForeignAddress: return Result::ForeignAddress;
            case StudioFeed::Offer::QueueFull: return Result::QueueFull;
        }
    }
    return Result::UnknownStudio;
}

}  // namespace loa::engine
