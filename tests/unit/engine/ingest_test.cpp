#include <catch2/catch.hpp>

#include <array>
#include <vector>

#include "loa/engine/ingest.h"
#include "loa/transport/rtp_packet.h"

using namespace loa;
using boost::asio::ip::make_address;
using boost::asio::ip::udp;

namespace {
constexpr std::int64_t kMs = 1'000'000;

std::vector<std::uint8_t> rtp(std::uint32_t ssrc, std::uint16_t seq) {
    std::vector<std::uint8_t> buf(64);
    transport::RtpHeaderFields h;
    h.payload_type = 96;
    h.sequence = seq;
    h.timestamp = seq * 960u;
    h.ssrc = ssrc;
    const std::array<std::uint8_t, 3> payload{0xF8, 0xFF, 0xFE};
    std::size_t n = 0;
    REQUIRE(transport::write_rtp(buf, h, {}, payload, n) == transport::Status::Ok);
    buf.resize(n);
    return buf;
}

const udp::endpoint kStudioA(make_address("127.0.0.1"), 40000);
const udp::endpoint kStudioB(make_address("127.0.0.1"), 40001);  // same host, another port
}  // namespace

TEST_CASE("studio_latches_first_address", "[ingest]") {
    engine::StudioFeed feed({"huyen", 0x5151u, std::nullopt});
    const auto reader = feed.attach();
    REQUIRE(reader);
    engine::IngestRouter router;
    router.add(&feed);
    CHECK(router.route(rtp(0x5151, 1), kStudioA, 0) == engine::IngestRouter::Result::Accepted);
    // Someone else reusing the studio's SSRC from another address is ignored.
    CHECK(router.route(rtp(0x5151, 2), kStudioB, 10 * kMs) == engine::IngestRouter::Result::ForeignAddress);
    CHECK(router.route(rtp(0x5151, 2), kStudioA, 20 * kMs) == engine::IngestRouter::Result::Accepted);
    CHECK(feed.counters().accepted.load() == 2);
    CHECK(feed.counters().foreign_address.load() == 1);
    REQUIRE(feed.latched());
    CHECK(*feed.latched() == kStudioA);

    // Only accepted packets reach the media thread, in order.
    engine::IngestPacket* p = nullptr;
    std::vector<std::uint16_t> seqs;
    while (reader.reader->take(p)) {
        transport::RtpView v;
        REQUIRE(transport::RtpView::parse(p->bytes(), v) == transport::Status::Ok);
        seqs.push_back(v.sequence());
        reader.reader->give_back(p);
    }
    CHECK(seqs == std::vector<std::uint16_t>{1, 2});
}

TEST_CASE("studio_relatches_after_two_seconds_of_silence", "[ingest]") {
    engine::StudioFeed feed({"huyen", 0x5151u, std::nullopt});
    REQUIRE(feed.attach());
    REQUIRE(feed.offer(rtp(0x5151, 1), kStudioA, 0) == engine::StudioFeed::Offer::Accepted);
    CHECK(feed.offer(rtp(0x5151, 2), kStudioB, 2000 * kMs) == engine::StudioFeed::Offer::ForeignAddress);
    // The foreign packets do not keep the old latch alive: silence counts
    // from the latched studio's last packet.
    CHECK(feed.offer(rtp(0x5151, 3), kStudioB, 2001 * kMs) == engine::StudioFeed::Offer::Accepted);
    CHECK(feed.counters().relatched.load() == 1);
    CHECK(*feed.latched() == kStudioB);
    CHECK(feed.offer(rtp(0x5151, 4), kStudioA, 2100 * kMs) == engine::StudioFeed::Offer::ForeignAddress);
}

TEST_CASE("ingest_drops_unknown_and_malformed", "[ingest]") {
    engine::StudioFeed by_ssrc({"a", 1u, std::nullopt});
    engine::StudioFeed by_host({"b", std::nullopt, make_address("127.0.0.9")});
    REQUIRE(by_ssrc.attach());
    REQUIRE(by_host.attach());
    engine::IngestRouter router;
    router.add(&by_ssrc);
    router.add(&by_host);
    CHECK(router.route(rtp(77, 1), kStudioA, 0) == engine::IngestRouter::Result::UnknownStudio);
    CHECK(router.route(rtp(77, 1), udp::endpoint(make_address("127.0.0.9"), 5), 0) ==
          engine::IngestRouter::Result::Accepted);
    const std::array<std::uint8_t, 5> junk{1, 2, 3, 4, 5};
    CHECK(router.route(junk, kStudioA, 0) == engine::IngestRouter::Result::Malformed);
    auto truncated = rtp(1, 1);
    truncated.resize(11);
    CHECK(router.route(truncated, kStudioA, 0) == engine::IngestRouter::Result::Malformed);
    // An RTCP report on the ingest port is recognised, not taken for media.
    const std::array<std::uint8_t, 8> rr{0x80, 201, 0, 1, 0, 0, 0, 5};
    CHECK(router.route(rr, kStudioA, 0) == engine::IngestRouter::Result::Rtcp);
    CHECK(by_ssrc.counters().accepted.load() == 0);
}

TEST_CASE("ingest_queue_full_drops_and_counts", "[ingest]") {
    engine::StudioFeed feed({"a", 1u, std::nullopt}, 2'000'000'000, 4);
    const auto reader = feed.attach();
    REQUIRE(reader);
    int accepted = 0, full = 0;
    for (std::uint16_t i = 0; i < 10; ++i) {
        const auto r = feed.offer(rtp(1, i), kStudioA, i * 20 * kMs);
        accepted += r == engine::StudioFeed::Offer::Accepted;
        full += r == engine::StudioFeed::Offer::QueueFull;
    }
    CHECK(accepted == 4);
    CHECK(full == 6);
    CHECK(feed.counters().queue_full.load() == 6);
    engine::IngestPacket* p = nullptr;
    REQUIRE(reader.reader->take(p));
    reader.reader->give_back(p);
    CHECK(feed.offer(rtp(1, 11), kStudioA, 300 * kMs) == engine::StudioFeed::Offer::Accepted);
}
