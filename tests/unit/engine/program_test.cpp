#include <catch2/catch.hpp>

#include <vector>

#include "loa/codecs/opus_decoder.h"
#include "loa/codecs/tone_analysis.h"
#include "loa/engine/program.h"
#include "loa/transport/rtcp_packet.h"
#include "loa/transport/rtp_packet.h"
#include "loa/transport/udp_socket.h"
#include "udp_receiver.h"

using namespace loa;

namespace {
engine::ProgramConfig tone_programme(int ptime_ms) {
    engine::ProgramConfig p;
    p.name = "tone";
    p.ssrc = 0x10AA01;
    p.ptime_ms = ptime_ms;
    p.priority = engine::Priority::District;
    engine::SourceConfig s;
    s.type = engine::SourceConfig::Type::Tone;
    s.frequency_hz = 1000;
    s.level_db = -6;
    p.sources.push_back(s);
    return p;
}
}  // namespace

TEST_CASE("programme_encodes_once_and_packetises", "[program]") {
    boost::asio::io_context io;
    auto sock = transport::open_udp(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    test::UdpReceiver rx_a, rx_b;

    transport::FanoutConfig fc;
    fc.threads = 2;
    transport::FanoutSender fanout(fc, sock.native_handle(), -1);
    const std::vector<transport::Destination> dests{{rx_a.endpoint(), 0}, {rx_b.endpoint(), 0}};
    REQUIRE(fanout.set_destinations(0, dests) == 0);
    transport::PacketPool pool(64);

    engine::ManualClock clock;
    engine::Program prog(tone_programme(20), 0, "engine-test");
    const int frames = 120;  // 2.4 s
    for (int i = 0; i < frames; ++i) {
        prog.produce_frame(clock.now_ns(), clock.unix_ns(), pool, fanout, clock);
        clock.advance(20'000'000);
    }
    CHECK(prog.counters().frames_encoded.load() == frames);
    CHECK(prog.counters().encode_errors.load() == 0);

    // Both destinations get the same bytes: RTP frames plus one SR per second.
    for (auto* rx : {&rx_a, &rx_b}) {
        codecs::OpusDecoder dec;
        std::vector<float> pcm;
        std::vector<std::uint8_t> d;
        int rtp = 0, sr = 0;
        std::uint16_t last_seq = 0;
        std::uint32_t last_ts = 0;
        while (rtp < frames || sr < 3) {
            REQUIRE(rx->receive(d));
            if (transport::looks_like_rtcp(d)) {
                transport::RtcpCompound c;
                REQUIRE(transport::parse_rtcp(d, c) == transport::Status::Ok);
                CHECK(c.has_sr);
                CHECK(c.sender_ssrc == 0x10AA01u);
                REQUIRE(c.sdes_count == 1);
                CHECK(c.sdes[0].cname == "engine-test");
                ++sr;
                continue;
            }
            transport::RtpView v;
            REQUIRE(transport::RtpView::parse(d, v) == transport::Status::Ok);
            CHECK(v.ssrc() == 0x10AA01u);
            CHECK(v.payload_type() == 96);
            CHECK(v.marker() == (rtp == 0));
            const auto level = v.find_extension(engine::kPriorityExtensionId);
            REQUIRE(level);
            REQUIRE(level->size() == 1);
            CHECK((*level)[0] == static_cast<std::uint8_t>(engine::Priority::District));
            if (rtp > 0) {
                CHECK(transport::seq_delta(last_seq, v.sequence()) == 1);
                CHECK(v.timestamp() - last_ts == 960u);
            }
            last_seq = v.sequence();
            last_ts = v.timestamp();
            std::vector<float> frame(codecs::kMaxFrameSamples);
            std::size_t n = 0;
            REQUIRE(dec.decode(v.payload(), frame, n) == codecs::Status::Ok);
            CHECK(n == 960);
            pcm.insert(pcm.end(), frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(n));
            ++rtp;
        }
        CHECK(sr == 3);
        // Skip the codec's start-up, then the tone must be clean.
        const std::span<const float> steady(pcm.data() + 4800, pcm.size() - 4800);
        const auto fit = codecs::fit_tone(steady);
        CHECK(fit.frequency_hz == Approx(1000).margin(2));
        CHECK(fit.snr_db >= 20);
    }
    CHECK(prog.counters().sr_sent.load() == 3);
}

TEST_CASE("programme_skipped_frames_advance_rtp_time", "[program]") {
    boost::asio::io_context io;
    auto sock = transport::open_udp(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    test::UdpReceiver rx;
    transport::FanoutSender fanout({}, sock.native_handle(), -1);
    const std::vector<transport::Destination> dests{{rx.endpoint(), 0}};
    (void)fanout.set_destinations(0, dests);
    transport::PacketPool pool(16);
    engine::ManualClock clock;
    engine::Program prog(tone_programme(10), 0, "e");

    prog.produce_frame(0, 0, pool, fanout, clock);
    prog.skip_frames(3);
    prog.produce_frame(40'000'000, 0, pool, fanout, clock);
    std::vector<std::uint8_t> d;
    std::vector<std::vector<std::uint8_t>> keep;
    while (keep.size() < 2) {
        REQUIRE(rx.receive(d));
        if (!transport::looks_like_rtcp(d)) keep.push_back(d);
    }
    transport::RtpView a, b;
    REQUIRE(transport::RtpView::parse(keep[0], a) == transport::Status::Ok);
    REQUIRE(transport::RtpView::parse(keep[1], b) == transport::Status::Ok);
    CHECK(transport::seq_delta(a.sequence(), b.sequence()) == 4);
    CHECK(b.timestamp() - a.timestamp() == 4u * 480u);
    CHECK(prog.counters().frames_skipped.load() == 3);
}
