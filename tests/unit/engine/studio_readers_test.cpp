// One studio, several readers: every attached reader of a StudioFeed gets
// every accepted packet, in order, through its own queue; a reader that does
// not keep up drops (and counts) only its own packets; a slot detached and
// attached again starts from what arrives after; the fifth reader is refused.
// Two readers on separate threads (the media thread's role) against the
// ingest thread's offers show the queues stay apart under concurrency.

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <thread>
#include <vector>

#include "loa/engine/ingest.h"
#include "loa/transport/rtp_packet.h"

using namespace loa;
using boost::asio::ip::make_address;
using boost::asio::ip::udp;
using engine::StudioFeed;

namespace {

constexpr std::int64_t kMs = 1'000'000;
const udp::endpoint kStudio(make_address("127.0.0.1"), 40000);

std::vector<std::uint8_t> rtp(std::uint16_t seq) {
    std::vector<std::uint8_t> buf(64);
    transport::RtpHeaderFields h;
    h.payload_type = 96;
    h.sequence = seq;
    h.timestamp = seq * 960u;
    h.ssrc = 0x5151;
    const std::array<std::uint8_t, 3> payload{0xF8, 0xFF, 0xFE};
    std::size_t n = 0;
    REQUIRE(transport::write_rtp(buf, h, {}, payload, n) == transport::Status::Ok);
    buf.resize(n);
    return buf;
}

// Sequence numbers of everything queued for `reader`, handed back at once
// (0 for a packet that does not parse). No assertions: also run off the
// test's thread.
std::vector<std::uint16_t> drain(StudioFeed::Reader& reader) {
    std::vector<std::uint16_t> out;
    engine::IngestPacket* p = nullptr;
    while (reader.take(p)) {
        transport::RtpView v;
        const bool ok = transport::RtpView::parse(p->bytes(), v) == transport::Status::Ok;
        out.push_back(ok ? v.sequence() : 0);
        reader.give_back(p);
    }
    return out;
}

std::vector<std::uint16_t> range(std::uint16_t first, std::uint16_t last) {
    std::vector<std::uint16_t> out;
    for (auto s = first; s <= last; ++s) out.push_back(s);
    return out;
}

}  // namespace

TEST_CASE("studio_without_readers_is_idle", "[ingest][studio_readers]") {
    StudioFeed feed({"bv", 0x5151u, std::nullopt});
    CHECK(feed.readers() == 0);
    CHECK(feed.offer(rtp(1), kStudio, 0) == StudioFeed::Offer::Idle);
    CHECK(feed.counters().idle.load() == 1);
    CHECK(feed.counters().accepted.load() == 0);
    // Still latched and seen: a studio nobody reads yet is known to be there.
    REQUIRE(feed.latched_address());
    CHECK(*feed.latched_address() == kStudio);
    CHECK(feed.last_packet_ns() == std::optional<std::int64_t>(0));
}

TEST_CASE("two_readers_both_get_every_packet_in_order", "[ingest][studio_readers]") {
    StudioFeed feed({"bv", 0x5151u, std::nullopt});
    const auto programme = feed.attach();
    const auto alert = feed.attach();
    REQUIRE(programme);
    REQUIRE(alert);
    CHECK(programme.reader != alert.reader);
    CHECK(feed.readers() == 2);

    for (std::uint16_t s = 1; s <= 50; ++s) {
        REQUIRE(feed.offer(rtp(s), kStudio, s * 20 * kMs) == StudioFeed::Offer::Accepted);
        // The programme reads every tick; the alert not until the end.
        CHECK(drain(*programme.reader) == std::vector<std::uint16_t>{s});
    }
    CHECK(drain(*alert.reader) == range(1, 50));
    // Accepted once per datagram; each reader counted what it was given.
    CHECK(feed.counters().accepted.load() == 50);
    CHECK(feed.counters().queue_full.load() == 0);
    CHECK(programme.reader->counters().queued.load() == 50);
    CHECK(alert.reader->counters().queued.load() == 50);
}

TEST_CASE("full_reader_drops_and_counts_for_itself_only", "[ingest][studio_readers]") {
    StudioFeed feed({"bv", 0x5151u, std::nullopt}, 2'000'000'000, 8);
    const auto fast = feed.attach();
    const auto stalled = feed.attach();
    REQUIRE(fast);
    REQUIRE(stalled);
    for (std::uint16_t s = 1; s <= 20; ++s) {
        // Still accepted: the fast reader takes every packet.
        REQUIRE(feed.offer(rtp(s), kStudio, s * 20 * kMs) == StudioFeed::Offer::Accepted);
        CHECK(drain(*fast.reader) == std::vector<std::uint16_t>{s});
    }
    CHECK(fast.reader->counters().queue_full.load() == 0);
    CHECK(stalled.reader->counters().queued.load() == 8);
    CHECK(stalled.reader->counters().queue_full.load() == 12);
    CHECK(feed.counters().accepted.load() == 20);
    CHECK(feed.counters().queue_full.load() == 12);
    // The stalled reader has the oldest eight; once it catches up it gets
    // the packets after that again.
    CHECK(drain(*stalled.reader) == range(1, 8));
    REQUIRE(feed.offer(rtp(21), kStudio, 21 * 20 * kMs) == StudioFeed::Offer::Accepted);
    CHECK(drain(*stalled.reader) == std::vector<std::uint16_t>{21});
    CHECK(drain(*fast.reader) == std::vector<std::uint16_t>{21});

    // Only when every reader is full is the datagram itself dropped.
    for (std::uint16_t s = 22; s < 30; ++s) {
        REQUIRE(feed.offer(rtp(s), kStudio, s * 20 * kMs) == StudioFeed::Offer::Accepted);
    }
    CHECK(feed.offer(rtp(30), kStudio, 30 * 20 * kMs) == StudioFeed::Offer::QueueFull);
    CHECK(feed.counters().accepted.load() == 29);
    CHECK(feed.counters().queue_full.load() == 14);
}

TEST_CASE("reader_detached_and_attached_again", "[ingest][studio_readers]") {
    StudioFeed feed({"bv", 0x5151u, std::nullopt});
    const auto programme = feed.attach();
    const auto alert = feed.attach();
    REQUIRE(programme);
    REQUIRE(alert);
    for (std::uint16_t s = 1; s <= 5; ++s) REQUIRE(feed.offer(rtp(s), kStudio, s * kMs) == StudioFeed::Offer::Accepted);
    CHECK(drain(*programme.reader) == range(1, 5));

    // The alert ends with five packets still queued: its slot is free at
    // once, the programme keeps its feed.
    CHECK(feed.detach(alert));
    CHECK_FALSE(feed.detach(alert));  // a second detach changes nothing
    CHECK_FALSE(alert.current());
    CHECK(feed.readers() == 1);
    for (std::uint16_t s = 6; s <= 8; ++s) REQUIRE(feed.offer(rtp(s), kStudio, s * kMs) == StudioFeed::Offer::Accepted);
    CHECK(drain(*programme.reader) == range(6, 8));
    CHECK(alert.reader->counters().queued.load() == 5);

    // A new alert gets the same slot (no new queue) and only what arrives
    // from now on: the five left by the old one are skipped.
    const auto next = feed.attach();
    REQUIRE(next);
    CHECK(next.reader == alert.reader);
    CHECK(next.generation == alert.generation + 1);
    CHECK(next.current());
    CHECK_FALSE(feed.detach(alert));  // the old attachment cannot free the new one
    CHECK(next.current());
    for (std::uint16_t s = 9; s <= 10; ++s) REQUIRE(feed.offer(rtp(s), kStudio, s * kMs) == StudioFeed::Offer::Accepted);
    CHECK(drain(*next.reader) == range(9, 10));
    CHECK(next.reader->counters().stale.load() == 5);
    CHECK(drain(*programme.reader) == range(9, 10));

    // Every reader gone: idle again.
    CHECK(feed.detach(programme));
    CHECK(feed.detach(next));
    CHECK(feed.readers() == 0);
    CHECK(feed.offer(rtp(11), kStudio, 11 * kMs) == StudioFeed::Offer::Idle);
}

TEST_CASE("studio_refuses_a_reader_beyond_the_limit", "[ingest][studio_readers]") {
    StudioFeed feed({"bv", 0x5151u, std::nullopt});
    std::vector<StudioFeed::Attachment> readers;
    for (std::size_t i = 0; i < StudioFeed::kMaxReaders; ++i) {
        readers.push_back(feed.attach());
        REQUIRE(readers.back());
        CHECK(readers.back().reader->index() == i);
        CHECK(feed.reader(i) == readers.back().reader);
    }
    CHECK_FALSE(feed.attach());
    CHECK(feed.readers() == StudioFeed::kMaxReaders);
    CHECK(feed.reader(StudioFeed::kMaxReaders) == nullptr);
    // Freeing one (not the last) makes room again, in that slot.
    REQUIRE(feed.detach(readers[1]));
    const auto again = feed.attach();
    REQUIRE(again);
    CHECK(again.reader->index() == 1);
}

TEST_CASE("readers_on_their_own_threads_each_get_the_whole_feed", "[ingest][studio_readers]") {
    // The ingest thread offers 2000 packets; two consumers drain their own
    // queues concurrently. Each must see every packet it was given, in
    // order, and given + dropped must add up to what was offered.
    StudioFeed feed({"bv", 0x5151u, std::nullopt}, 2'000'000'000, 16);
    const auto a = feed.attach();
    const auto b = feed.attach();
    REQUIRE(a);
    REQUIRE(b);
    constexpr std::uint16_t kPackets = 2000;
    std::atomic<bool> done{false};
    const auto consume = [&](StudioFeed::Reader& reader, std::vector<std::uint16_t>& seen) {
        for (;;) {
            const bool last = done.load(std::memory_order_acquire);
            const auto got = drain(reader);
            seen.insert(seen.end(), got.begin(), got.end());
            if (last && got.empty()) return;
            if (got.empty()) std::this_thread::yield();
        }
    };
    std::vector<std::uint16_t> seen_a, seen_b;
    std::thread ta([&] { consume(*a.reader, seen_a); });
    std::thread tb([&] { consume(*b.reader, seen_b); });
    std::uint64_t accepted = 0;
    for (std::uint16_t s = 1; s <= kPackets; ++s) {
        accepted += feed.offer(rtp(s), kStudio, s * kMs) == StudioFeed::Offer::Accepted;
        if (s % 8 == 0) std::this_thread::yield();
    }
    done.store(true, std::memory_order_release);
    ta.join();
    tb.join();
    for (const auto* seen : {&seen_a, &seen_b}) {
        CHECK(std::count(seen->begin(), seen->end(), 0) == 0);
        CHECK(std::is_sorted(seen->begin(), seen->end()));
        CHECK(std::adjacent_find(seen->begin(), seen->end()) == seen->end());
    }
    CHECK(seen_a.size() + a.reader->counters().queue_full.load() == kPackets);
    CHECK(seen_b.size() + b.reader->counters().queue_full.load() == kPackets);
    CHECK(feed.counters().accepted.load() == accepted);
    CHECK(feed.counters().queue_full.load() ==
          a.reader->counters().queue_full.load() + b.reader->counters().queue_full.load());
}
