#include <catch2/catch.hpp>

#include "loa/engine/sdp.h"

using namespace loa::engine;
using boost::asio::ip::make_address;
using boost::asio::ip::udp;

TEST_CASE("sdp_describes_unicast_programme", "[sdp]") {
    ProgramConfig p;
    p.name = "tin-tuc";
    p.ssrc = 1234;
    p.payload_type = 111;
    p.ptime_ms = 20;
    p.destinations.push_back(udp::endpoint(make_address("127.0.0.1"), 7000));
    const auto sdp = make_sdp(p, "127.0.0.1", "engine-1");
    CHECK(sdp.rfind("v=0\r\n", 0) == 0);
    CHECK(sdp.find("c=IN IP4 127.0.0.1\r\n") != std::string::npos);
    CHECK(sdp.find("m=audio 7000 RTP/AVP 111\r\n") != std::string::npos);
    CHECK(sdp.find("a=rtpmap:111 opus/48000/2\r\n") != std::string::npos);
    CHECK(sdp.find("useinbandfec=1") != std::string::npos);
    CHECK(sdp.find("a=ptime:20\r\n") != std::string::npos);
    CHECK(sdp.find("a=ssrc:1234 cname:engine-1\r\n") != std::string::npos);
    CHECK(sdp.find("a=extmap:1 urn:x-loa:rtp-hdrext:priority\r\n") != std::string::npos);
}

TEST_CASE("sdp_multicast_has_ttl", "[sdp]") {
    ProgramConfig p;
    p.name = "m";
    p.content = loa::codecs::Content::Music;
    p.multicast = udp::endpoint(make_address("239.255.0.9"), 5004);
    const auto sdp = make_sdp(p, "127.1.1.1", "e", std::nullopt, 16);
    CHECK(sdp.find("c=IN IP4 239.255.0.9/16\r\n") != std::string::npos);
    CHECK(sdp.find("useinbandfec=0") != std::string::npos);
}

TEST_CASE("sdp_ipv6_receiver", "[sdp]") {
    ProgramConfig p;
    p.name = "v6";
    const auto sdp = make_sdp(p, "::1", "e", udp::endpoint(make_address("::1"), 9000));
    CHECK(sdp.find("o=- 0 1 IN IP6 ::1\r\n") != std::string::npos);
    CHECK(sdp.find("c=IN IP6 ::1\r\n") != std::string::npos);
    CHECK(sdp.find("m=audio 9000 ") != std::string::npos);
}
