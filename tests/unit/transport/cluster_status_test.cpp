#include <array>
#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>

#include "loa/transport/cluster_status.h"

using namespace loa::transport;

namespace {

ClusterStatus sample() {
    ClusterStatus s;
    s.playing_ssrc = 0xDEADBEEF;
    s.volume_pct = 73;
    s.amplifier_on = true;
    s.buffer_delay_ms = 0xABCD;
    s.packets_received = 1'000'000;
    s.packets_lost = 12;
    s.packets_late = 3;
    s.packets_malformed = 1;
    s.frames_concealed = 15;
    s.underruns = 2;
    s.uptime_s = 0xFEDCBA98;
    return s;
}

}  // namespace

TEST_CASE("cluster_status_round_trip", "[cluster_status]") {
    static_assert(kClusterStatusSize % 4 == 0);
    std::array<std::uint8_t, kClusterStatusSize> buf{};
    buf.fill(0xEE);
    const ClusterStatus s = sample();
    REQUIRE(encode_cluster_status(s, buf) == Status::Ok);
    // Fixed layout: version, flags, volume, reserved, delay (BE), reserved, SSRC (BE), ...
    CHECK(buf[0] == kClusterStatusVersion);
    CHECK(buf[1] == 0x01);
    CHECK(buf[2] == 73);
    CHECK(buf[3] == 0);
    CHECK(buf[4] == 0xAB);
    CHECK(buf[5] == 0xCD);
    CHECK(buf[6] == 0);
    CHECK(buf[7] == 0);
    CHECK(buf[8] == 0xDE);
    CHECK(buf[11] == 0xEF);
    CHECK(buf[36] == 0xFE);
    CHECK(buf[39] == 0x98);

    ClusterStatus d;
    REQUIRE(decode_cluster_status(buf, d) == Status::Ok);
    CHECK(d.playing_ssrc == s.playing_ssrc);
    CHECK(d.volume_pct == s.volume_pct);
    CHECK(d.amplifier_on == s.amplifier_on);
    CHECK(d.buffer_delay_ms == s.buffer_delay_ms);
    CHECK(d.packets_received == s.packets_received);
    CHECK(d.packets_lost == s.packets_lost);
    CHECK(d.packets_late == s.packets_late);
    CHECK(d.packets_malformed == s.packets_malformed);
    CHECK(d.frames_concealed == s.frames_concealed);
    CHECK(d.underruns == s.underruns);
    CHECK(d.uptime_s == s.uptime_s);

    ClusterStatus off;
    off.amplifier_on = false;
    REQUIRE(encode_cluster_status(off, buf) == Status::Ok);
    REQUIRE(decode_cluster_status(buf, d) == Status::Ok);
    CHECK_FALSE(d.amplifier_on);
    CHECK(d.playing_ssrc == 0);
}

TEST_CASE("cluster_status_truncated_or_bad_version", "[cluster_status]") {
    std::array<std::uint8_t, kClusterStatusSize> buf{};
    REQUIRE(encode_cluster_status(sample(), buf) == Status::Ok);
    ClusterStatus d = sample();
    d.uptime_s = 1;
    CHECK(decode_cluster_status({}, d) == Status::Truncated);
    for (std::size_t n = 1; n < kClusterStatusSize; ++n) {
        CHECK(decode_cluster_status(std::span(buf).first(n), d) == Status::Truncated);
    }
    CHECK(d.uptime_s == 1);  // untouched on failure
    buf[0] = 0;
    CHECK(decode_cluster_status(buf, d) == Status::BadVersion);
    CHECK(decode_cluster_status(std::span(buf).first(1), d) == Status::BadVersion);

    std::array<std::uint8_t, kClusterStatusSize - 1> small{};
    CHECK(encode_cluster_status(sample(), small) == Status::BufferTooSmall);
}

TEST_CASE("cluster_status_newer_version_read_as_v1", "[cluster_status]") {
    std::vector<std::uint8_t> buf(kClusterStatusSize + 8, 0x77);
    REQUIRE(encode_cluster_status(sample(), buf) == Status::Ok);
    buf[0] = 2;
    buf[1] |= 0x80;  // a flag this version does not know
    buf[3] = 0x55;   // reserved byte in use
    ClusterStatus d;
    REQUIRE(decode_cluster_status(buf, d) == Status::Ok);
    CHECK(d.amplifier_on);
    CHECK(d.uptime_s == sample().uptime_s);
    buf[2] = 250;  // out-of-range volume is clamped
    REQUIRE(decode_cluster_status(buf, d) == Status::Ok);
    CHECK(d.volume_pct == 100);
}
