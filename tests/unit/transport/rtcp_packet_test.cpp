#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "loa/transport/cluster_status.h"
#include "loa/transport/rtcp_packet.h"

using namespace loa::transport;

namespace {

using Bytes = std::vector<std::uint8_t>;

RtcpReportBlock block(std::uint32_t n) {
    RtcpReportBlock b;
    b.ssrc = 0x1000 + n;
    b.fraction_lost = static_cast<std::uint8_t>(n * 7);
    b.cumulative_lost = (n % 2 == 0) ? static_cast<std::int32_t>(n * 1000) : -static_cast<std::int32_t>(n);
    b.highest_seq = 0x00010000u + n;
    b.jitter = n * 3;
    b.lsr = 0xABCD0000u + n;
    b.dlsr = 65536u * n;
    return b;
}

void check_block(const RtcpReportBlock& got, const RtcpReportBlock& want) {
    CHECK(got.ssrc == want.ssrc);
    CHECK(got.fraction_lost == want.fraction_lost);
    CHECK(got.cumulative_lost == want.cumulative_lost);
    CHECK(got.highest_seq == want.highest_seq);
    CHECK(got.jitter == want.jitter);
    CHECK(got.lsr == want.lsr);
    CHECK(got.dlsr == want.dlsr);
}

Status parse(const Bytes& b, bool require_report_first = true) {
    RtcpCompound c;
    return parse_rtcp(b, c, require_report_first);
}

/// A valid RR with no blocks (8 bytes).
Bytes rr_empty(std::uint32_t ssrc = 0x01020304) {
    return {0x80, 201, 0x00, 0x01, static_cast<std::uint8_t>(ssrc >> 24), static_cast<std::uint8_t>(ssrc >> 16),
            static_cast<std::uint8_t>(ssrc >> 8), static_cast<std::uint8_t>(ssrc)};
}

void append(Bytes& to, const Bytes& from) { to.insert(to.end(), from.begin(), from.end()); }

}  // namespace

TEST_CASE("rtcp_sr_sdes_app_compound_round_trip", "[rtcp]") {
    std::array<std::uint8_t, 512> buf{};
    RtcpWriter w(buf);
    RtcpSenderInfo info;
    info.ntp_timestamp = 0xE1234567'89ABCDEFull;
    info.rtp_timestamp = 48000;
    info.packet_count = 50;
    info.octet_count = 6000;
    const std::array<RtcpReportBlock, 2> blocks{block(1), block(2)};
    REQUIRE(w.add_sr(0xAABBCCDD, info, blocks) == Status::Ok);
    REQUIRE(w.add_sdes_cname(0xAABBCCDD, "cluster-042.xa-an-binh") == Status::Ok);
    ClusterStatus st;
    st.playing_ssrc = 0x5555;
    st.volume_pct = 80;
    st.amplifier_on = true;
    std::array<std::uint8_t, kClusterStatusSize> app_data{};
    REQUIRE(encode_cluster_status(st, app_data) == Status::Ok);
    REQUIRE(w.add_app(0xAABBCCDD, kClusterStatusSubtype, "LOAS", app_data) == Status::Ok);
    CHECK(w.size() == 28 + 48 + (4 + 32) + (12 + 40));  // CNAME chunk: 4 + 2 + 22 + 1 -> 32
    CHECK(w.size() % 4 == 0);

    RtcpCompound c;
    REQUIRE(parse_rtcp(w.bytes(), c) == Status::Ok);
    CHECK(c.has_sr);
    CHECK_FALSE(c.has_rr);
    CHECK(c.sender_ssrc == 0xAABBCCDDu);
    CHECK(c.sender_info.ntp_timestamp == info.ntp_timestamp);
    CHECK(c.sender_info.rtp_timestamp == 48000u);
    CHECK(c.sender_info.packet_count == 50u);
    CHECK(c.sender_info.octet_count == 6000u);
    REQUIRE(c.block_count == 2);
    check_block(c.blocks[0], blocks[0]);
    check_block(c.blocks[1], blocks[1]);
    REQUIRE(c.sdes_count == 1);
    CHECK(c.sdes[0].ssrc == 0xAABBCCDDu);
    CHECK(c.sdes[0].cname == "cluster-042.xa-an-binh");
    REQUIRE(c.app_count == 1);
    CHECK(c.apps[0].ssrc == 0xAABBCCDDu);
    CHECK(c.apps[0].subtype == kClusterStatusSubtype);
    CHECK(std::string_view(c.apps[0].name.data(), 4) == "LOAS");
    REQUIRE(c.apps[0].data.size() == kClusterStatusSize);
    ClusterStatus back;
    REQUIRE(decode_cluster_status(c.apps[0].data, back) == Status::Ok);
    CHECK(back.playing_ssrc == 0x5555u);
    CHECK(back.amplifier_on);
    CHECK(c.bye_count == 0);
}

TEST_CASE("rtcp_sdes_chunk_padding", "[rtcp]") {
    // Every CNAME length 0..8 must give a chunk padded to 32 bits that parses back.
    for (std::size_t n = 0; n <= 8; ++n) {
        std::array<std::uint8_t, 64> buf{};
        RtcpWriter w(buf);
        const std::string_view name = std::string_view("abcdefgh").substr(0, n);
        REQUIRE(w.add_sdes_cname(7, name) == Status::Ok);
        CHECK(w.size() % 4 == 0);
        CHECK(w.size() == 4 + (4 + 2 + n + 1 + 3) / 4 * 4);
        CHECK(buf[w.size() - 1] == 0);  // at least one null octet ends the item list
        RtcpCompound c;
        REQUIRE(parse_rtcp(w.bytes(), c, false) == Status::Ok);
        REQUIRE(c.sdes_count == 1);
        CHECK(c.sdes[0].cname == name);
    }
    std::array<std::uint8_t, 512> buf{};
    RtcpWriter w(buf);
    CHECK(w.add_sdes_cname(7, std::string(256, 'x')) == Status::BadLength);
    CHECK(w.size() == 0);
}

TEST_CASE("rtcp_sdes_cname_among_other_items", "[rtcp]") {
    Bytes b = rr_empty();
    // SDES, 2 chunks: chunk 1 = NAME "ab", CNAME "c1", TOOL "t"; chunk 2 = EMAIL only.
    const Bytes sdes{0x82, 202, 0x00, 0x07,
                     0x00, 0x00, 0x00, 0x11, 2, 2, 'a', 'b', 1, 2, 'c', '1', 6, 1, 't', 0,
                     0x00, 0x00, 0x00, 0x22, 3, 3, 'x', '@', 'y', 0, 0, 0};
    append(b, sdes);
    RtcpCompound c;
    REQUIRE(parse_rtcp(b, c) == Status::Ok);
    REQUIRE(c.sdes_count == 2);
    CHECK(c.sdes[0].ssrc == 0x11u);
    CHECK(c.sdes[0].cname == "c1");
    CHECK(c.sdes[1].ssrc == 0x22u);
    CHECK(c.sdes[1].cname.empty());
}

TEST_CASE("rtcp_rr_with_several_blocks", "[rtcp]") {
    std::array<RtcpReportBlock, 5> blocks{};
    for (std::uint32_t i = 0; i < blocks.size(); ++i) blocks[i] = block(i + 3);
    blocks[4].cumulative_lost = -0x800000;  // 24-bit signed extremes
    blocks[3].cumulative_lost = 0x7FFFFF;
    std::array<std::uint8_t, 256> buf{};
    RtcpWriter w(buf);
    REQUIRE(w.add_rr(0x42, blocks) == Status::Ok);
    CHECK(w.size() == 8 + 5 * 24);
    CHECK(buf[0] == 0x85);
    CHECK(buf[3] == (8 + 5 * 24) / 4 - 1);
    RtcpCompound c;
    REQUIRE(parse_rtcp(w.bytes(), c) == Status::Ok);
    CHECK(c.has_rr);
    CHECK_FALSE(c.has_sr);
    CHECK(c.sender_ssrc == 0x42u);
    REQUIRE(c.block_count == 5);
    for (std::size_t i = 0; i < 5; ++i) check_block(c.blocks[i], blocks[i]);

    SECTION("cumulative lost beyond 24 bits is clamped") {
        std::array<RtcpReportBlock, 1> big{block(1)};
        big[0].cumulative_lost = 0x1000000;
        RtcpWriter w2(buf);
        REQUIRE(w2.add_rr(1, big) == Status::Ok);
        RtcpCompound c2;
        REQUIRE(parse_rtcp(w2.bytes(), c2) == Status::Ok);
        CHECK(c2.blocks[0].cumulative_lost == 0x7FFFFF);
    }
    SECTION("more than 31 blocks refused") {
        std::array<RtcpReportBlock, 32> many{};
        std::array<std::uint8_t, 1024> big{};
        RtcpWriter w2(big);
        CHECK(w2.add_rr(1, many) == Status::BadLength);
        CHECK(w2.add_sr(1, {}, many) == Status::BadLength);
        CHECK(w2.size() == 0);
    }
}

TEST_CASE("rtcp_bye", "[rtcp]") {
    std::array<std::uint8_t, 64> buf{};
    RtcpWriter w(buf);
    REQUIRE(w.add_rr(9, {}) == Status::Ok);
    REQUIRE(w.add_bye(9) == Status::Ok);
    RtcpCompound c;
    REQUIRE(parse_rtcp(w.bytes(), c) == Status::Ok);
    REQUIRE(c.bye_count == 1);
    CHECK(c.bye[0] == 9u);

    SECTION("with two sources and a reason") {
        Bytes b = rr_empty();
        append(b, {0x82, 203, 0x00, 0x04, 0, 0, 0, 1, 0, 0, 0, 2, 5, 'b', 'y', 'e', '!', '!', 0, 0});
        RtcpCompound d;
        REQUIRE(parse_rtcp(b, d) == Status::Ok);
        REQUIRE(d.bye_count == 2);
        CHECK(d.bye[1] == 2u);
        b[20] = 8;  // reason length past the sub-packet
        CHECK(parse(b) == Status::BadLength);
    }
}

TEST_CASE("rtcp_unknown_type_skipped", "[rtcp]") {
    Bytes b = rr_empty();
    // RTPFB (205) generic NACK and PSFB (206) PLI: skipped.
    append(b, {0x81, 205, 0x00, 0x03, 0, 0, 0, 1, 0, 0, 0, 2, 0x00, 0x10, 0x00, 0x00});
    append(b, {0x81, 206, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2});
    append(b, {0x81, 203, 0x00, 0x01, 0, 0, 0, 7});
    RtcpCompound c;
    REQUIRE(parse_rtcp(b, c) == Status::Ok);
    CHECK(c.has_rr);
    REQUIRE(c.bye_count == 1);
    CHECK(c.bye[0] == 7u);
    // A malformed unknown packet is still rejected.
    b[8 + 3] = 0x09;
    CHECK(parse(b) == Status::BadLength);
}

TEST_CASE("rtcp_malformed_shapes_rejected", "[rtcp]") {
    SECTION("empty") {
        CHECK(parse({}) == Status::Truncated);
    }
    SECTION("truncated sub-packet header") {
        Bytes b = rr_empty();
        append(b, {0x80, 201});
        CHECK(parse(b) == Status::Truncated);
        CHECK(parse({0x80, 201, 0x00}) == Status::Truncated);
    }
    SECTION("length past the end") {
        Bytes b = rr_empty();
        b[3] = 2;
        CHECK(parse(b) == Status::BadLength);
        Bytes cut = rr_empty();
        append(cut, {0x81, 203, 0x00, 0x01, 0, 0});  // BYE cut mid-SSRC
        CHECK(parse(cut) == Status::BadLength);
    }
    SECTION("report count larger than the length") {
        Bytes b = rr_empty();
        b[0] = 0x81;  // one block declared, none present
        CHECK(parse(b) == Status::BadLength);
        Bytes sr{0x80, 200, 0x00, 0x01, 0, 0, 0, 1};  // SR without sender info
        CHECK(parse(sr) == Status::BadLength);
    }
    SECTION("bad version in second sub-packet") {
        Bytes b = rr_empty();
        append(b, {0x41, 203, 0x00, 0x01, 0, 0, 0, 7});
        CHECK(parse(b) == Status::BadVersion);
        Bytes first{0xC0, 201, 0x00, 0x01, 0, 0, 0, 1};
        CHECK(parse(first) == Status::BadVersion);
    }
    SECTION("first packet not sr or rr") {
        Bytes b{0x81, 203, 0x00, 0x01, 0, 0, 0, 7};
        CHECK(parse(b) == Status::BadPacketType);
        CHECK(parse(b, false) == Status::Ok);
    }
    SECTION("sdes item running past the chunk") {
        Bytes b = rr_empty();
        append(b, {0x81, 202, 0x00, 0x02, 0, 0, 0, 1, 1, 9, 'a', 'b'});
        CHECK(parse(b) == Status::BadLength);
    }
    SECTION("sdes chunk without null item") {
        Bytes b = rr_empty();
        append(b, {0x81, 202, 0x00, 0x02, 0, 0, 0, 1, 1, 2, 'a', 'b'});
        CHECK(parse(b) == Status::BadLength);
    }
    SECTION("sdes with more chunks declared than present") {
        Bytes b = rr_empty();
        append(b, {0x82, 202, 0x00, 0x02, 0, 0, 0, 1, 1, 1, 'a', 0});
        CHECK(parse(b) == Status::BadLength);
    }
    SECTION("app shorter than its name") {
        Bytes b = rr_empty();
        append(b, {0x81, 204, 0x00, 0x01, 0, 0, 0, 1});
        CHECK(parse(b) == Status::BadLength);
    }
    SECTION("padding only on the last sub-packet") {
        Bytes b{0xA0, 201, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 4};  // RR + 4 padding bytes ...
        CHECK(parse(b) == Status::Ok);                            // ... legal alone
        append(b, {0x81, 203, 0x00, 0x01, 0, 0, 0, 7});
        CHECK(parse(b) == Status::BadPadding);  // not legal before another packet
    }
    SECTION("bad padding count on the last") {
        Bytes b = rr_empty();
        append(b, {0xA1, 203, 0x00, 0x02, 0, 0, 0, 7, 0, 0, 0, 0});
        CHECK(parse(b) == Status::BadPadding);  // count 0
        b.back() = 9;
        CHECK(parse(b) == Status::BadPadding);  // more than the 8-byte body
        b.back() = 4;
        RtcpCompound c;
        REQUIRE(parse_rtcp(b, c) == Status::Ok);
        CHECK(c.bye_count == 1);
    }
}

TEST_CASE("rtcp_writer_leaves_buffer_on_failure", "[rtcp]") {
    std::array<std::uint8_t, 40> buf{};
    RtcpWriter w(buf);
    REQUIRE(w.add_rr(1, {}) == Status::Ok);
    const std::array<RtcpReportBlock, 2> blocks{block(1), block(2)};
    CHECK(w.add_rr(2, blocks) == Status::BufferTooSmall);
    CHECK(w.add_sr(2, {}, blocks) == Status::BufferTooSmall);
    CHECK(w.size() == 8);
    const std::array<std::uint8_t, 8> data{};
    CHECK(w.add_app(1, 1, "LOA", data) == Status::BadLength);
    CHECK(w.add_app(1, 1, "LOASX", data) == Status::BadLength);
    CHECK(w.add_app(1, 32, "LOAS", data) == Status::BadPacketType);
    const std::array<std::uint8_t, 6> odd{};
    CHECK(w.add_app(1, 1, "LOAS", odd) == Status::BadLength);
    const std::array<std::uint8_t, 24> big{};
    CHECK(w.add_app(1, 1, "LOAS", big) == Status::BufferTooSmall);
    CHECK(w.size() == 8);
    REQUIRE(w.add_app(1, 31, "LOAS", data) == Status::Ok);
    CHECK(w.size() == 28);
    REQUIRE(w.add_bye(1) == Status::Ok);
    CHECK(w.size() == 36);
    CHECK(w.add_bye(1) == Status::BufferTooSmall);
    RtcpCompound c;
    REQUIRE(parse_rtcp(w.bytes(), c) == Status::Ok);
    REQUIRE(c.app_count == 1);
    CHECK(c.apps[0].subtype == 31);
    CHECK(c.apps[0].data.size() == 8);
}

TEST_CASE("rtcp_capacity_overflow_is_not_an_error", "[rtcp]") {
    // 10 SDES chunks and 6 APPs: the extra ones are skipped, the packet is Ok.
    std::array<std::uint8_t, 1024> buf{};
    RtcpWriter w(buf);
    REQUIRE(w.add_rr(1, {}) == Status::Ok);
    for (std::uint32_t i = 0; i < 10; ++i) REQUIRE(w.add_sdes_cname(i, "c") == Status::Ok);
    for (std::uint32_t i = 0; i < 6; ++i) REQUIRE(w.add_app(i, 0, "TEST", {}) == Status::Ok);
    RtcpCompound c;
    REQUIRE(parse_rtcp(w.bytes(), c) == Status::Ok);
    CHECK(c.sdes_count == RtcpCompound::kMaxSdes);
    CHECK(c.app_count == RtcpCompound::kMaxApp);
    CHECK(c.sdes[7].ssrc == 7u);
}

TEST_CASE("ntp_conversion_known_values", "[rtcp]") {
    // Unix epoch = NTP 2208988800 s.
    CHECK(ntp_from_unix_ns(0) == (2208988800ull << 32));
    // Half a second is fraction 0x80000000.
    CHECK(ntp_from_unix_ns(500'000'000) == ((2208988800ull << 32) | 0x80000000ull));
    // 2024-01-01T00:00:00Z = Unix 1704067200 -> NTP 3913056000 (0xE93C7F00).
    CHECK(ntp_from_unix_ns(1704067200LL * 1'000'000'000) == (0xE93C7F00ull << 32));
    // 0.25 s before the Unix epoch.
    CHECK(ntp_from_unix_ns(-250'000'000) == ((2208988799ull << 32) | 0xC0000000ull));
    // 1 ns is 4.29 fraction units, rounded to 4.
    CHECK((ntp_from_unix_ns(1) & 0xFFFFFFFFull) == 4);
    // Middle 32 bits: low 16 of seconds, high 16 of fraction.
    const std::uint64_t ntp = ntp_from_unix_ns(1704067200LL * 1'000'000'000 + 500'000'000);
    CHECK(ntp_middle32(ntp) == 0x7F008000u);
    // Round trip within a nanosecond.
    for (std::int64_t ns : {0LL, 1LL, 999'999'999LL, 1'700'000'000'123'456'789LL, -1'000'000'001LL}) {
        CHECK(std::llabs(unix_ns_from_ntp(ntp_from_unix_ns(ns)) - ns) <= 1);
    }
}
