#include <array>
#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>

#include "loa/transport/rtp_packet.h"

using namespace loa::transport;

namespace {

using Bytes = std::vector<std::uint8_t>;

/// A minimal valid RTP header: V=2, PT 111, seq 0x1234, ts 0x01020304, SSRC 0xCAFEBABE.
Bytes base_header() {
    return {0x80, 111, 0x12, 0x34, 0x01, 0x02, 0x03, 0x04, 0xCA, 0xFE, 0xBA, 0xBE};
}

Status parse(const Bytes& b) {
    RtpView v;
    return RtpView::parse(b, v);
}

Bytes build(const RtpHeaderFields& h, std::span<const RtpExtensionElement> ext,
            std::span<const std::uint8_t> payload) {
    Bytes out(kMaxRtpPacket);
    std::size_t written = 0;
    REQUIRE(write_rtp(out, h, ext, payload, written) == Status::Ok);
    REQUIRE(written > 0);
    out.resize(written);
    return out;
}

}  // namespace

TEST_CASE("rtp_minimal_header_parses", "[rtp]") {
    Bytes b = base_header();
    b.push_back(0xAA);
    RtpView v;
    REQUIRE(RtpView::parse(b, v) == Status::Ok);
    CHECK(v.payload_type() == 111);
    CHECK_FALSE(v.marker());
    CHECK(v.sequence() == 0x1234);
    CHECK(v.timestamp() == 0x01020304u);
    CHECK(v.ssrc() == 0xCAFEBABEu);
    CHECK(v.csrc_count() == 0);
    CHECK(v.csrc(0) == 0);
    CHECK_FALSE(v.has_extension());
    CHECK_FALSE(v.has_padding());
    REQUIRE(v.payload().size() == 1);
    CHECK(v.payload()[0] == 0xAA);
    CHECK(v.bytes().size() == b.size());

    // A header with no payload at all is a valid (empty) packet.
    RtpView empty;
    REQUIRE(RtpView::parse(base_header(), empty) == Status::Ok);
    CHECK(empty.payload().empty());
}

TEST_CASE("rtp_malformed_shapes_rejected", "[rtp]") {
    SECTION("zero length") {
        CHECK(parse({}) == Status::Truncated);
    }
    SECTION("truncated header") {
        Bytes b = base_header();
        for (std::size_t n = 1; n < kRtpHeaderSize; ++n) {
            CHECK(parse(Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n))) == Status::Truncated);
        }
    }
    SECTION("bad version") {
        for (const int version : {0, 1, 3}) {
            Bytes b = base_header();
            b[0] = static_cast<std::uint8_t>(version << 6);
            CHECK(parse(b) == Status::BadVersion);
        }
    }
    SECTION("rtcp on the same port") {
        Bytes b = base_header();
        b[1] = 200;  // SR
        CHECK(looks_like_rtcp(b));
        CHECK(parse(b) == Status::NotRtp);
        b[1] = 0x80 | 111;  // marker + PT 111 = 239: RTP
        CHECK_FALSE(looks_like_rtcp(b));
        CHECK(parse(b) == Status::Ok);
    }
    SECTION("csrc count past the end") {
        Bytes b = base_header();
        b[0] = 0x80 | 2;                       // two CSRCs declared
        b.insert(b.end(), {0, 0, 0, 1, 0, 0});  // one and a half present
        CHECK(parse(b) == Status::BadCsrcCount);
        b.insert(b.end(), {0, 2});
        CHECK(parse(b) == Status::Ok);
        b[0] = 0x80 | 15;
        CHECK(parse(b) == Status::BadCsrcCount);
    }
    SECTION("extension header past the end") {
        Bytes b = base_header();
        b[0] = 0x90;
        b.insert(b.end(), {0xBE, 0xDE, 0x00});  // 3 of 4 extension header bytes
        CHECK(parse(b) == Status::BadExtension);
    }
    SECTION("extension length past the end") {
        Bytes b = base_header();
        b[0] = 0x90;
        b.insert(b.end(), {0xBE, 0xDE, 0x00, 0x02, 0x10, 0xAA, 0x00, 0x00});  // declares 2 words, has 1
        CHECK(parse(b) == Status::BadExtension);
        b.insert(b.end(), {0, 0, 0, 0});
        CHECK(parse(b) == Status::Ok);
    }
    SECTION("extension element past the block") {
        Bytes b = base_header();
        b[0] = 0x90;
        b.insert(b.end(), {0xBE, 0xDE, 0x00, 0x01, 0x14, 0xAA, 0xBB, 0xCC});  // id 1 len 5 in 4 bytes
        CHECK(parse(b) == Status::BadExtension);
        Bytes t = base_header();
        t[0] = 0x90;
        t.insert(t.end(), {0x10, 0x00, 0x00, 0x01, 0x01, 0x04, 0xAA, 0xBB});  // two-byte id 1 len 4 in 2
        CHECK(parse(t) == Status::BadExtension);
        // A profile that is not RFC 8285 is opaque: any content is accepted.
        t[12] = 0x12;
        CHECK(parse(t) == Status::Ok);
    }
    SECTION("padding larger than payload") {
        Bytes b = base_header();
        b[0] = 0xA0;
        b.insert(b.end(), {0xAA, 0xBB, 0x00, 0x04});  // 4 bytes after header, pad = 4: ok, empty payload
        RtpView v;
        REQUIRE(RtpView::parse(b, v) == Status::Ok);
        CHECK(v.payload().empty());
        b.back() = 5;
        CHECK(parse(b) == Status::BadPadding);
    }
    SECTION("padding count zero") {
        Bytes b = base_header();
        b[0] = 0xA0;
        b.insert(b.end(), {0xAA, 0xBB, 0x00, 0x00});
        CHECK(parse(b) == Status::BadPadding);
    }
    SECTION("padding bit with no byte after the header") {
        Bytes b = base_header();
        b[0] = 0xA0;
        CHECK(parse(b) == Status::BadPadding);
    }
    SECTION("padding may not reach into the extension") {
        Bytes b = base_header();
        b[0] = 0xB0;
        b.insert(b.end(), {0xBE, 0xDE, 0x00, 0x01, 0x10, 0xAA, 0x00, 0x00, 0x03});  // 1 byte after ext
        CHECK(parse(b) == Status::BadPadding);
        b.back() = 1;
        RtpView v;
        REQUIRE(RtpView::parse(b, v) == Status::Ok);
        CHECK(v.payload().empty());
    }
}

TEST_CASE("rtp_padding_stripped_from_payload", "[rtp]") {
    Bytes b = base_header();
    b[0] = 0xA0;
    b.insert(b.end(), {1, 2, 3, 0, 0, 3});
    RtpView v;
    REQUIRE(RtpView::parse(b, v) == Status::Ok);
    CHECK(v.has_padding());
    REQUIRE(v.payload().size() == 3);
    CHECK(v.payload()[2] == 3);
}

TEST_CASE("rtp_header_round_trip", "[rtp]") {
    const std::array<std::uint32_t, 3> csrcs{0x11111111, 0x22222222, 0xFFFFFFFE};
    const std::array<std::uint8_t, 5> payload{9, 8, 7, 6, 5};
    RtpHeaderFields h;
    h.marker = true;
    h.payload_type = 96;
    h.sequence = 65535;
    h.timestamp = 0xDEADBEEF;
    h.ssrc = 0x01234567;
    h.csrcs = csrcs;
    const Bytes b = build(h, {}, payload);
    CHECK(b.size() == kRtpHeaderSize + 12 + payload.size());
    CHECK(b[0] == 0x83);  // V=2, no P/X, CC=3

    RtpView v;
    REQUIRE(RtpView::parse(b, v) == Status::Ok);
    CHECK(v.marker());
    CHECK(v.payload_type() == 96);
    CHECK(v.sequence() == 65535);
    CHECK(v.timestamp() == 0xDEADBEEF);
    CHECK(v.ssrc() == 0x01234567u);
    REQUIRE(v.csrc_count() == 3);
    CHECK(v.csrc(0) == 0x11111111u);
    CHECK(v.csrc(1) == 0x22222222u);
    CHECK(v.csrc(2) == 0xFFFFFFFEu);
    CHECK(v.csrc(3) == 0);
    CHECK_FALSE(v.has_extension());
    CHECK(std::equal(v.payload().begin(), v.payload().end(), payload.begin(), payload.end()));
    CHECK(v.payload().data() == b.data() + 24);
}

TEST_CASE("rtp_one_byte_extension_round_trip", "[rtp]") {
    const std::array<std::uint8_t, 1> prio{3};
    const std::array<std::uint8_t, 16> big{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    const std::array<std::uint8_t, 3> three{0xA, 0xB, 0xC};
    const std::array<RtpExtensionElement, 3> ext{{{1, prio}, {14, big}, {7, three}}};
    const std::array<std::uint8_t, 2> payload{0x55, 0x66};
    RtpHeaderFields h;
    h.payload_type = 111;
    const Bytes b = build(h, ext, payload);
    // Block: 2 + 17 + 4 = 23 bytes -> padded to 24.
    CHECK(b.size() == kRtpHeaderSize + 4 + 24 + payload.size());

    RtpView v;
    REQUIRE(RtpView::parse(b, v) == Status::Ok);
    CHECK(v.has_extension());
    CHECK(v.extension_profile() == kOneByteExtensionProfile);
    CHECK(v.extension_data().size() == 24);
    auto e1 = v.find_extension(1);
    REQUIRE(e1);
    REQUIRE(e1->size() == 1);
    CHECK((*e1)[0] == 3);
    auto e14 = v.find_extension(14);
    REQUIRE(e14);
    CHECK(std::equal(e14->begin(), e14->end(), big.begin(), big.end()));
    auto e7 = v.find_extension(7);
    REQUIRE(e7);
    CHECK(std::equal(e7->begin(), e7->end(), three.begin(), three.end()));
    CHECK_FALSE(v.find_extension(2));
    CHECK_FALSE(v.find_extension(0));
    CHECK(std::equal(v.payload().begin(), v.payload().end(), payload.begin(), payload.end()));

    std::size_t n = 0;
    RtpExtensionReader r = v.extensions();
    RtpExtensionElement e;
    while (r.next(e)) ++n;
    CHECK(n == 3);
    CHECK_FALSE(r.malformed());
}

TEST_CASE("rtp_two_byte_extension_round_trip", "[rtp]") {
    std::vector<std::uint8_t> long_data(200);
    for (std::size_t i = 0; i < long_data.size(); ++i) long_data[i] = static_cast<std::uint8_t>(i);
    const std::array<std::uint8_t, 2> two{0xEE, 0xFF};
    const std::array<RtpExtensionElement, 3> ext{{{1, two}, {200, long_data}, {15, {}}}};
    RtpHeaderFields h;
    h.payload_type = 111;
    const Bytes b = build(h, ext, {});
    RtpView v;
    REQUIRE(RtpView::parse(b, v) == Status::Ok);
    CHECK((v.extension_profile() & kTwoByteExtensionProfileMask) == kTwoByteExtensionProfile);
    CHECK(v.extension_data().size() % 4 == 0);
    auto a = v.find_extension(1);
    REQUIRE(a);
    CHECK(std::equal(a->begin(), a->end(), two.begin(), two.end()));
    auto l = v.find_extension(200);
    REQUIRE(l);
    CHECK(std::equal(l->begin(), l->end(), long_data.begin(), long_data.end()));
    auto z = v.find_extension(15);  // zero-length element, legal in the two-byte form
    REQUIRE(z);
    CHECK(z->empty());
    CHECK(v.payload().empty());

    SECTION("a single zero-length element forces the two-byte form") {
        const std::array<RtpExtensionElement, 1> one{{{3, {}}}};
        const Bytes c = build(h, one, {});
        RtpView w;
        REQUIRE(RtpView::parse(c, w) == Status::Ok);
        CHECK(w.extension_profile() == kTwoByteExtensionProfile);
        REQUIRE(w.find_extension(3));
    }
}

TEST_CASE("rtp_extension_padding_between_elements", "[rtp]") {
    SECTION("one-byte form") {
        Bytes b = base_header();
        b[0] = 0x90;
        // id 1 len 1, two padding bytes, id 2 len 2, padding, terminator id 15, then junk.
        b.insert(b.end(), {0xBE, 0xDE, 0x00, 0x03, 0x10, 0x42, 0x00, 0x00, 0x21, 0xAB, 0xCD, 0x00,
                           0xF0, 0x31, 0xFF, 0xFF});
        RtpView v;
        REQUIRE(RtpView::parse(b, v) == Status::Ok);
        auto e1 = v.find_extension(1);
        REQUIRE(e1);
        CHECK((*e1)[0] == 0x42);
        auto e2 = v.find_extension(2);
        REQUIRE(e2);
        REQUIRE(e2->size() == 2);
        CHECK((*e2)[1] == 0xCD);
        CHECK_FALSE(v.find_extension(3));  // after the id-15 terminator: ignored
    }
    SECTION("two-byte form") {
        Bytes b = base_header();
        b[0] = 0x90;
        b.insert(b.end(), {0x10, 0x05, 0x00, 0x02, 0x00, 0x00, 0x09, 0x01, 0x77, 0x00, 0x00, 0x00});
        RtpView v;
        REQUIRE(RtpView::parse(b, v) == Status::Ok);
        CHECK(v.extension_profile() == 0x1005);
        auto e9 = v.find_extension(9);
        REQUIRE(e9);
        REQUIRE(e9->size() == 1);
        CHECK((*e9)[0] == 0x77);
    }
    SECTION("two-byte element header cut by the block end") {
        Bytes b = base_header();
        b[0] = 0x90;
        b.insert(b.end(), {0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07});
        CHECK(parse(b) == Status::BadExtension);
    }
}

TEST_CASE("rtp_writer_rejects_bad_arguments", "[rtp]") {
    Bytes out(kMaxRtpPacket);
    std::size_t written = 99;
    RtpHeaderFields h;
    h.payload_type = 111;
    SECTION("buffer too small") {
        const std::array<std::uint8_t, 20> payload{};
        Bytes small(kRtpHeaderSize + payload.size() - 1);
        CHECK(write_rtp(small, h, {}, payload, written) == Status::BufferTooSmall);
        CHECK(written == 0);
        Bytes exact(kRtpHeaderSize + payload.size());
        CHECK(write_rtp(exact, h, {}, payload, written) == Status::Ok);
        CHECK(written == exact.size());
        const std::array<std::uint8_t, 1> d{1};
        const std::array<RtpExtensionElement, 1> ext{{{1, d}}};
        CHECK(write_rtp(exact, h, ext, payload, written) == Status::BufferTooSmall);
    }
    SECTION("bad payload type") {
        h.payload_type = 128;
        CHECK(write_rtp(out, h, {}, {}, written) == Status::BadPacketType);
        h.payload_type = 72;  // with the marker: second byte 200 (SR)
        h.marker = true;
        CHECK(write_rtp(out, h, {}, {}, written) == Status::BadPacketType);
    }
    SECTION("too many csrcs") {
        const std::array<std::uint32_t, 16> csrcs{};
        h.csrcs = csrcs;
        CHECK(write_rtp(out, h, {}, {}, written) == Status::BadCsrcCount);
    }
    SECTION("bad extension element") {
        const std::array<std::uint8_t, 1> d{1};
        const std::array<RtpExtensionElement, 1> zero{{{0, d}}};
        CHECK(write_rtp(out, h, zero, {}, written) == Status::BadExtension);
        const std::vector<std::uint8_t> huge(256);
        const std::array<RtpExtensionElement, 1> big{{{1, huge}}};
        CHECK(write_rtp(out, h, big, {}, written) == Status::BadExtension);
    }
}

TEST_CASE("rtp_seqnum_wrap", "[rtp]") {
    CHECK(seq_delta(65535, 0) == 1);
    CHECK(seq_delta(0, 65535) == -1);
    CHECK(seq_delta(100, 100) == 0);
    CHECK(seq_delta(65530, 5) == 11);
    CHECK(seq_delta(5, 65530) == -11);
    CHECK(seq_delta(0, 32767) == 32767);
    CHECK(seq_delta(0, 32768) == -32768);

    SequenceUnwrapper u;
    CHECK(u.unwrap(65533) == 65533);
    CHECK(u.unwrap(65534) == 65534);
    CHECK(u.unwrap(65535) == 65535);
    CHECK(u.unwrap(0) == 65536);
    CHECK(u.unwrap(1) == 65537);
    // Late packets from before the wrap map below the highest, which stays put.
    CHECK(u.unwrap(65534) == 65534);
    CHECK(u.highest() == 65537);
    CHECK(u.unwrap(2) == 65538);
    // A second wrap keeps counting.
    std::int64_t last = 0;
    for (std::uint32_t i = 3; i <= 65535u + 10; ++i) last = u.unwrap(static_cast<std::uint16_t>(i));
    CHECK(last == 65536 + 65535 + 10);

    SECTION("reordering around the first value") {
        SequenceUnwrapper r;
        CHECK(r.unwrap(0) == 0);
        CHECK(r.unwrap(65535) == -1);  // one before the first
        CHECK(r.unwrap(1) == 1);
        r.reset();
        CHECK(r.unwrap(500) == 500);
    }
}
