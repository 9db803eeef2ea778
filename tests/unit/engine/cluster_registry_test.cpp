#include <catch2/catch.hpp>

#include <array>
#include <vector>

#include "loa/engine/cluster_registry.h"
#include "loa/transport/rtcp_packet.h"

using namespace loa;
using boost::asio::ip::make_address;
using boost::asio::ip::udp;

namespace {
constexpr std::int64_t kSecond = 1'000'000'000;

std::vector<std::uint8_t> report(const std::string& cname, std::uint32_t playing, bool with_status = true) {
    std::vector<std::uint8_t> buf(512);
    transport::RtcpWriter w(buf);
    transport::RtcpReportBlock b;
    b.ssrc = playing;
    b.fraction_lost = 64;  // 25 %
    b.cumulative_lost = 7;
    b.jitter = 480;
    REQUIRE(w.add_rr(0xABCD0001, std::span(&b, 1)) == transport::Status::Ok);
    REQUIRE(w.add_sdes_cname(0xABCD0001, cname) == transport::Status::Ok);
    if (with_status) {
        transport::ClusterStatus st;
        st.playing_ssrc = playing;
        st.volume_pct = 80;
        st.amplifier_on = true;
        st.buffer_delay_ms = 60;
        st.packets_received = 1234;
        std::array<std::uint8_t, transport::kClusterStatusSize> app{};
        REQUIRE(transport::encode_cluster_status(st, app) == transport::Status::Ok);
        REQUIRE(w.add_app(0xABCD0001, transport::kClusterStatusSubtype, "LOAS", app) == transport::Status::Ok);
    }
    buf.resize(w.size());
    return buf;
}

std::vector<engine::ClusterConfig> two_clusters() {
    return {{"xa-01", udp::endpoint(make_address("127.0.0.1"), 6001)},
            {"xa-02", udp::endpoint(make_address("127.0.0.1"), 6002)}};
}
}  // namespace

TEST_CASE("cluster_report_updates_live_state", "[cluster_registry]") {
    engine::ClusterRegistry reg(two_clusters(), 15 * kSecond);
    CHECK(reg.online_count() == 0);
    const udp::endpoint from(make_address("127.0.0.1"), 40000);
    std::string id;
    bool came_online = false;
    const auto pkt = report("xa-02", 0x1111);
    REQUIRE(reg.on_rtcp(pkt, from, 3 * kSecond, 0, id, came_online) == engine::ClusterRegistry::Result::Accepted);
    CHECK(id == "xa-02");
    CHECK(came_online);
    const auto s = reg.find("xa-02");
    REQUIRE(s);
    CHECK(s->online);
    CHECK(s->report_address == from);
    CHECK(s->has_status);
    CHECK(s->status.playing_ssrc == 0x1111);
    CHECK(s->status.volume_pct == 80);
    CHECK(s->status.amplifier_on);
    CHECK(s->fraction_lost == Approx(0.25));
    CHECK(s->cumulative_lost == 7);
    CHECK(s->jitter_rtp == 480);
    CHECK_FALSE(reg.find("xa-01")->online);

    // A second report is not a new "online" event.
    REQUIRE(reg.on_rtcp(pkt, from, 4 * kSecond, 0, id, came_online) == engine::ClusterRegistry::Result::Accepted);
    CHECK_FALSE(came_online);
    CHECK(reg.find("xa-02")->reports == 2);
}

TEST_CASE("cluster_offline_after_timeout", "[cluster_registry]") {
    engine::ClusterRegistry reg(two_clusters(), 15 * kSecond);
    const udp::endpoint from(make_address("127.0.0.1"), 40000);
    std::string id;
    bool came_online = false;
    REQUIRE(reg.on_rtcp(report("xa-01", 1), from, 10 * kSecond, 0, id, came_online) ==
            engine::ClusterRegistry::Result::Accepted);
    CHECK(reg.sweep(25 * kSecond).empty());  // exactly 15 s: still online
    const auto gone = reg.sweep(25 * kSecond + 1);
    REQUIRE(gone.size() == 1);
    CHECK(gone[0] == "xa-01");
    CHECK_FALSE(reg.find("xa-01")->online);
    CHECK(reg.sweep(40 * kSecond).empty());  // reported once only
    // It comes back with its next report.
    REQUIRE(reg.on_rtcp(report("xa-01", 1), from, 41 * kSecond, 0, id, came_online) ==
            engine::ClusterRegistry::Result::Accepted);
    CHECK(came_online);
}

TEST_CASE("cluster_bad_reports_rejected", "[cluster_registry]") {
    engine::ClusterRegistry reg(two_clusters(), 15 * kSecond);
    const udp::endpoint from(make_address("127.0.0.1"), 40000);
    std::string id;
    bool came_online = false;
    CHECK(reg.on_rtcp(report("stranger", 1), from, 0, 0, id, came_online) ==
          engine::ClusterRegistry::Result::UnknownCluster);
    auto pkt = report("xa-01", 1);
    pkt.resize(pkt.size() - 3);
    CHECK(reg.on_rtcp(pkt, from, 0, 0, id, came_online) == engine::ClusterRegistry::Result::Malformed);
    const std::array<std::uint8_t, 4> junk{0xde, 0xad, 0xbe, 0xef};
    CHECK(reg.on_rtcp(junk, from, 0, 0, id, came_online) == engine::ClusterRegistry::Result::Malformed);
    // A bare RR without SDES cannot be attributed to a cluster.
    std::vector<std::uint8_t> buf(64);
    transport::RtcpWriter w(buf);
    REQUIRE(w.add_rr(5, {}) == transport::Status::Ok);
    buf.resize(w.size());
    CHECK(reg.on_rtcp(buf, from, 0, 0, id, came_online) == engine::ClusterRegistry::Result::NoCname);
    CHECK(reg.online_count() == 0);
    // Without a LOAS status the report still counts as a sign of life.
    REQUIRE(reg.on_rtcp(report("xa-01", 9, false), from, 0, 0, id, came_online) ==
            engine::ClusterRegistry::Result::Accepted);
    CHECK_FALSE(reg.find("xa-01")->has_status);
}

TEST_CASE("clusters_registered_through_the_api_report_and_keep_their_state", "[cluster_registry]") {
    engine::ClusterRegistry reg(two_clusters(), 15 * kSecond);
    const udp::endpoint from(make_address("127.0.0.1"), 40000);
    std::string id;
    bool came_online = false;
    const auto pkt = report("api-1", 0x2222);
    // Unknown until registered.
    CHECK(reg.on_rtcp(pkt, from, kSecond, 0, id, came_online) == engine::ClusterRegistry::Result::UnknownCluster);
    reg.set_registered({{"api-1", udp::endpoint(make_address("127.0.0.1"), 7001)}, {"api-2", udp::endpoint()}});
    REQUIRE(reg.on_rtcp(pkt, from, 2 * kSecond, 0, id, came_online) == engine::ClusterRegistry::Result::Accepted);
    CHECK(id == "api-1");
    CHECK(came_online);
    CHECK(reg.snapshot().size() == 4);
    // Registered again (e.g. after another change): the live state stays.
    reg.set_registered({{"api-1", udp::endpoint(make_address("127.0.0.1"), 7002)}});
    const auto s = reg.find("api-1");
    REQUIRE(s);
    CHECK(s->online);
    CHECK(s->status.playing_ssrc == 0x2222);
    CHECK(s->configured_address.port() == 7002);
    CHECK_FALSE(reg.find("api-2"));
    // Config clusters are never dropped; removed API clusters are forgotten.
    reg.set_registered({});
    CHECK_FALSE(reg.find("api-1"));
    CHECK(reg.find("xa-01"));
    CHECK(reg.snapshot().size() == 2);
    CHECK(reg.on_rtcp(pkt, from, 3 * kSecond, 0, id, came_online) == engine::ClusterRegistry::Result::UnknownCluster);
}
