#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <vector>

#include "loa/transport/jitter_buffer.h"
#include "loa/transport/rtp_packet.h"

using namespace loa::transport;

namespace {

constexpr std::int64_t kMs = 1'000'000;

// Builds and parses one RTP packet whose 2-byte payload is the sequence
// number, so a popped packet can be matched to what was pushed.
struct TestPacket {
    std::array<std::uint8_t, 64> bytes{};
    std::size_t size = 0;
    RtpView view;
};

TestPacket make_packet(std::uint16_t seq, std::uint32_t ssrc = 0x1111, std::uint32_t samples = 960,
                       bool marker = false, std::uint32_t ts_base = 5000) {
    TestPacket p;
    const std::array<std::uint8_t, 2> payload{static_cast<std::uint8_t>(seq >> 8),
                                              static_cast<std::uint8_t>(seq & 0xFF)};
    RtpHeaderFields h;
    h.marker = marker;
    h.payload_type = 111;
    h.sequence = seq;
    h.timestamp = ts_base + static_cast<std::uint32_t>(seq) * samples;
    h.ssrc = ssrc;
    REQUIRE(write_rtp(p.bytes, h, {}, payload, p.size) == Status::Ok);
    REQUIRE(RtpView::parse(std::span<const std::uint8_t>(p.bytes.data(), p.size), p.view) == Status::Ok);
    return p;
}

JitterPush push(JitterBuffer& jb, std::uint16_t seq, std::int64_t now, std::uint32_t ssrc = 0x1111,
                bool marker = false) {
    const auto p = make_packet(seq, ssrc, 960, marker);
    return jb.push(p.view, now);
}

std::uint16_t payload_seq(const JitterPacket& p) {
    REQUIRE(p.payload.size() == 2);
    return static_cast<std::uint16_t>((p.payload[0] << 8) | p.payload[1]);
}

JitterBufferConfig config(int delay_ms = 60) {
    JitterBufferConfig c;
    c.capacity = 32;
    c.target_delay_ms = delay_ms;
    return c;
}

}  // namespace

TEST_CASE("jitter_buffer/target delay is converted to packets of the learned packet time", "[jitter_buffer]") {
    JitterBuffer jb(config(60));
    CHECK(jb.target_packets() == 3);  // default 20 ms
    // 40 ms packets: 1920 samples apart.
    for (std::uint16_t s = 0; s < 3; ++s) {
        const auto p = make_packet(s, 0x1111, 1920);
        jb.push(p.view, 0);
    }
    CHECK(jb.packet_samples() == 1920);
    CHECK(jb.target_packets() == 2);
}

TEST_CASE("jitter_buffer/seqnum_wrap", "[jitter_buffer]") {
    JitterBuffer jb(config(60));
    std::vector<std::uint16_t> seqs;
    for (int i = 0; i < 8; ++i) seqs.push_back(static_cast<std::uint16_t>(65532 + i));  // 65532..3

    std::int64_t now = 0;
    for (auto s : seqs) REQUIRE(jb.push(make_packet(s).view, now) != JitterPush::Late);

    std::vector<std::uint16_t> played;
    JitterPacket out;
    for (int i = 0; i < 8; ++i) {
        REQUIRE(jb.pop(now, out) == JitterPop::Packet);
        played.push_back(payload_seq(out));
        now += 20 * kMs;
    }
    CHECK(played == seqs);
    CHECK(jb.stats().lost == 0);
    CHECK(jb.stats().late == 0);
    // Extended sequence numbers keep increasing across the wrap.
    CHECK(out.ext_seq > 65535);
}

TEST_CASE("jitter_buffer/ssrc_change_flushes", "[jitter_buffer]") {
    JitterBuffer jb(config(40));
    std::int64_t now = 0;
    REQUIRE(push(jb, 100, now, 0xAAAA) == JitterPush::NewStream);
    for (std::uint16_t s = 101; s < 110; ++s) REQUIRE(push(jb, s, now, 0xAAAA) == JitterPush::Accepted);
    JitterPacket out;
    REQUIRE(jb.pop(now, out) == JitterPop::Packet);
    CHECK(out.ssrc == 0xAAAA);
    CHECK(jb.buffered_packets() == 9);

    // New programme: old audio is dropped at once, not drained.
    now += 20 * kMs;
    REQUIRE(push(jb, 7000, now, 0xBBBB) == JitterPush::NewStream);
    CHECK(jb.ssrc() == 0xBBBB);
    CHECK(jb.buffered_packets() == 1);
    CHECK(jb.stats().ssrc_changes == 2);
    REQUIRE(push(jb, 7001, now, 0xBBBB) == JitterPush::Accepted);

    std::vector<std::uint16_t> played;
    for (int i = 0; i < 2; ++i) {
        REQUIRE(jb.pop(now, out) == JitterPop::Packet);
        CHECK(out.ssrc == 0xBBBB);
        played.push_back(payload_seq(out));
    }
    CHECK(played == std::vector<std::uint16_t>{7000, 7001});

    // A reordered straggler of the old stream does not switch back ...
    REQUIRE(push(jb, 110, now + 5 * kMs, 0xAAAA) == JitterPush::Late);
    CHECK(jb.ssrc() == 0xBBBB);
    // ... but the old programme resuming (marker) does, at once.
    REQUIRE(push(jb, 111, now + 6 * kMs, 0xAAAA, true) == JitterPush::NewStream);
    CHECK(jb.ssrc() == 0xAAAA);
}

TEST_CASE("jitter_buffer/previous ssrc switches back after the guard time", "[jitter_buffer]") {
    JitterBuffer jb(config(40));
    REQUIRE(push(jb, 1, 0, 0xAAAA) == JitterPush::NewStream);
    REQUIRE(push(jb, 1, 10 * kMs, 0xBBBB) == JitterPush::NewStream);
    REQUIRE(push(jb, 2, 20 * kMs, 0xAAAA) == JitterPush::Late);
    REQUIRE(push(jb, 3, 500 * kMs, 0xAAAA) == JitterPush::NewStream);
}

TEST_CASE("jitter_buffer/reordered_packets_restored", "[jitter_buffer]") {
    JitterBuffer jb(config(100));  // 5 packets
    const std::vector<std::uint16_t> arrival{12, 10, 11, 14, 13, 16, 15, 17, 19, 18};
    std::int64_t now = 0;
    for (auto s : arrival) {
        const auto r = push(jb, s, now);
        CHECK((r == JitterPush::Accepted || r == JitterPush::NewStream));
    }
    std::vector<std::uint16_t> played;
    JitterPacket out;
    for (int i = 0; i < 10; ++i) {
        REQUIRE(jb.pop(now, out) == JitterPop::Packet);
        played.push_back(payload_seq(out));
        now += 20 * kMs;
    }
    CHECK(played == std::vector<std::uint16_t>{10, 11, 12, 13, 14, 15, 16, 17, 18, 19});
    CHECK(jb.stats().lost == 0);
}

TEST_CASE("jitter_buffer/seeded reordering and duplication play every packet once in order", "[jitter_buffer]") {
    std::mt19937 rng(1234);
    JitterBuffer jb(config(100));  // 5 packets of delay absorb a shuffle window of 4
    std::vector<std::uint16_t> order;
    for (int i = 0; i < 400; ++i) order.push_back(static_cast<std::uint16_t>(65400 + i));
    for (std::size_t i = 0; i + 4 <= order.size(); i += 4) {
        std::shuffle(order.begin() + static_cast<std::ptrdiff_t>(i),
                     order.begin() + static_cast<std::ptrdiff_t>(i + 4), rng);
    }
    std::int64_t now = 0;
    std::vector<std::uint16_t> played;
    JitterPacket out;
    std::size_t dups = 0;
    for (std::size_t i = 0; i < order.size(); ++i) {
        push(jb, order[i], now);
        if (rng() % 10 == 0) {
            ++dups;
            CHECK(push(jb, order[i], now) == JitterPush::Duplicate);
        }
        if (i % 4 == 3) {
            // Four packets arrived; play four (after the initial fill).
            for (int k = 0; k < 4; ++k) {
                if (jb.pop(now, out) == JitterPop::Packet) played.push_back(payload_seq(out));
                now += 20 * kMs;
            }
        }
    }
    while (jb.pop(now, out) == JitterPop::Packet) played.push_back(payload_seq(out));
    std::vector<std::uint16_t> expected;
    for (int i = 0; i < 400; ++i) expected.push_back(static_cast<std::uint16_t>(65400 + i));
    CHECK(played == expected);
    CHECK(jb.stats().duplicate == dups);
    CHECK(jb.stats().lost == 0);
}

TEST_CASE("jitter_buffer/duplicate_dropped", "[jitter_buffer]") {
    JitterBuffer jb(config(40));
    REQUIRE(push(jb, 1, 0) == JitterPush::NewStream);
    REQUIRE(push(jb, 2, 0) == JitterPush::Accepted);
    CHECK(push(jb, 2, 0) == JitterPush::Duplicate);
    JitterPacket out;
    REQUIRE(jb.pop(0, out) == JitterPop::Packet);
    CHECK(payload_seq(out) == 1);
    // A copy of an already played packet is still recognised as a duplicate.
    CHECK(push(jb, 1, 0) == JitterPush::Duplicate);
    REQUIRE(jb.pop(0, out) == JitterPop::Packet);
    CHECK(payload_seq(out) == 2);
    CHECK(jb.pop(0, out) == JitterPop::Empty);
    CHECK(jb.stats().duplicate == 2);
    CHECK(jb.stats().played == 2);
}

TEST_CASE("jitter_buffer/late_packet_dropped", "[jitter_buffer]") {
    JitterBuffer jb(config(40));
    push(jb, 1, 0);
    push(jb, 3, 0);
    push(jb, 4, 0);
    JitterPacket out;
    REQUIRE(jb.pop(0, out) == JitterPop::Packet);
    REQUIRE(jb.pop(20 * kMs, out) == JitterPop::Missing);  // 2 is not here at its play time
    REQUIRE(jb.pop(40 * kMs, out) == JitterPop::Packet);
    CHECK(payload_seq(out) == 3);
    // 2 finally arrives: too late.
    CHECK(push(jb, 2, 50 * kMs) == JitterPush::Late);
    CHECK(jb.stats().late == 1);
    REQUIRE(jb.pop(60 * kMs, out) == JitterPop::Packet);
    CHECK(payload_seq(out) == 4);
}

TEST_CASE("jitter_buffer/missing_packet_reported", "[jitter_buffer]") {
    JitterBuffer jb(config(60));
    for (const std::uint16_t s : std::array<std::uint16_t, 4>{1, 2, 4, 5}) push(jb, s, 0);
    JitterPacket out;
    REQUIRE(jb.pop(0, out) == JitterPop::Packet);
    CHECK(payload_seq(out) == 1);
    REQUIRE(jb.pop(0, out) == JitterPop::Packet);
    CHECK(payload_seq(out) == 2);
    REQUIRE(jb.pop(0, out) == JitterPop::Missing);
    // The packet after the hole is available for FEC recovery without consuming it.
    const auto next = jb.peek_next();
    REQUIRE(next.has_value());
    CHECK(payload_seq(*next) == 4);
    REQUIRE(jb.pop(0, out) == JitterPop::Packet);
    CHECK(payload_seq(out) == 4);
    REQUIRE(jb.pop(0, out) == JitterPop::Packet);
    CHECK(payload_seq(out) == 5);
    CHECK(jb.stats().lost == 1);
    CHECK_FALSE(jb.peek_next().has_value());
}

TEST_CASE("jitter_buffer/underrun_counted", "[jitter_buffer]") {
    JitterBuffer jb(config(60));  // 3 packets
    JitterPacket out;
    CHECK(jb.pop(0, out) == JitterPop::Buffering);  // no stream: not an underrun
    push(jb, 1, 0);
    push(jb, 2, 0);
    CHECK(jb.pop(0, out) == JitterPop::Buffering);  // below target, target time not reached
    push(jb, 3, 0);
    for (int i = 0; i < 3; ++i) REQUIRE(jb.pop(0, out) == JitterPop::Packet);
    CHECK(jb.pop(0, out) == JitterPop::Empty);
    CHECK(jb.stats().underruns == 1);
    CHECK(jb.pop(0, out) == JitterPop::Buffering);  // refilling, counted once
    CHECK(jb.stats().underruns == 1);

    // The stream resumes: refills to the target delay (or its time) before playing.
    push(jb, 4, 100 * kMs);
    CHECK(jb.pop(120 * kMs, out) == JitterPop::Buffering);
    REQUIRE(jb.pop(160 * kMs, out) == JitterPop::Packet);  // 60 ms after the refill began
    CHECK(payload_seq(out) == 4);
    CHECK(jb.pop(180 * kMs, out) == JitterPop::Empty);
    CHECK(jb.stats().underruns == 2);
    CHECK(jb.stats().lost == 0);
}

TEST_CASE("jitter_buffer/packets delayed past an underrun are still played", "[jitter_buffer]") {
    JitterBuffer jb(config(40));
    push(jb, 1, 0);
    push(jb, 2, 0);
    JitterPacket out;
    REQUIRE(jb.pop(0, out) == JitterPop::Packet);
    REQUIRE(jb.pop(0, out) == JitterPop::Packet);
    REQUIRE(jb.pop(0, out) == JitterPop::Empty);
    // Packets 3.. arrive after the stall: not late, nothing lost.
    CHECK(push(jb, 3, 10 * kMs) == JitterPush::Accepted);
    CHECK(push(jb, 4, 10 * kMs) == JitterPush::Accepted);
    REQUIRE(jb.pop(20 * kMs, out) == JitterPop::Packet);
    CHECK(payload_seq(out) == 3);
    CHECK(jb.stats().lost == 0);
    CHECK(jb.stats().late == 0);
}

TEST_CASE("jitter_buffer/sequence jump beyond the window resynchronises", "[jitter_buffer]") {
    JitterBuffer jb(config(40));
    push(jb, 1, 0);
    push(jb, 2, 0);
    JitterPacket out;
    REQUIRE(jb.pop(0, out) == JitterPop::Packet);
    // Same SSRC, sequence jumps by 10000: start over on the new numbering.
    CHECK(push(jb, 10002, 0) == JitterPush::Accepted);
    CHECK(push(jb, 10003, 0) == JitterPush::Accepted);
    REQUIRE(jb.pop(0, out) == JitterPop::Packet);
    CHECK(payload_seq(out) == 10002);
    CHECK(jb.stats().overflow == 1);  // packet 2 was dropped
}

TEST_CASE("jitter_buffer/too many packets ahead push the oldest out", "[jitter_buffer]") {
    JitterBufferConfig c = config(40);
    c.capacity = 8;
    JitterBuffer jb(c);
    for (std::uint16_t s = 0; s < 10; ++s) push(jb, s, 0);
    CHECK(jb.stats().overflow == 2);
    CHECK(jb.buffered_packets() == 8);
    JitterPacket out;
    REQUIRE(jb.pop(0, out) == JitterPop::Packet);
    CHECK(payload_seq(out) == 2);
}

TEST_CASE("jitter_buffer/reordered packets are counted", "[jitter_buffer]") {
    JitterBuffer jb(config(100));
    for (const std::uint16_t s : std::array<std::uint16_t, 6>{10, 12, 11, 13, 15, 14}) push(jb, s, 0);
    CHECK(jb.stats().reordered == 2);
    CHECK(jb.stats().duplicate == 0);
    REQUIRE(jb.newest().has_value());
    CHECK(payload_seq(*jb.newest()) == 15);
}

TEST_CASE("jitter_buffer/owner paced mode has no gate and keeps waiting on a dry buffer", "[jitter_buffer]") {
    JitterBufferConfig c = config(200);  // the target is ignored in this mode
    c.owner_paced = true;
    JitterBuffer jb(c);
    JitterPacket out;
    CHECK(jb.pop(0, out) == JitterPop::Buffering);  // no stream
    push(jb, 1, 0);
    REQUIRE(jb.pop(0, out) == JitterPop::Packet);  // plays at once: the owner decided
    CHECK(payload_seq(out) == 1);
    CHECK(jb.play_position() == out.ext_seq + 1);
    // Dry: Empty, not counted, and the play position waits for packet 2.
    CHECK(jb.pop(0, out) == JitterPop::Empty);
    CHECK(jb.pop(0, out) == JitterPop::Empty);
    CHECK(jb.stats().underruns == 0);
    CHECK(push(jb, 2, 50 * kMs) == JitterPush::Accepted);  // not late
    REQUIRE(jb.pop(50 * kMs, out) == JitterPop::Packet);
    CHECK(payload_seq(out) == 2);
    // A hole with later packets held is still Missing.
    push(jb, 4, 60 * kMs);
    CHECK(jb.pop(60 * kMs, out) == JitterPop::Missing);
    REQUIRE(jb.pop(60 * kMs, out) == JitterPop::Packet);
    CHECK(payload_seq(out) == 4);
    CHECK(jb.stats().lost == 1);
    CHECK(push(jb, 3, 70 * kMs) == JitterPush::Late);
}
