// The priority and alert header-extension elements: written by a Program on
// every packet, read back by read_stream_signal(), bad elements read as absent.

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "loa/engine/program.h"
#include "loa/engine/stream_signal.h"
#include "loa/transport/rtp_packet.h"
#include "loa/transport/udp_socket.h"
#include "udp_receiver.h"

using namespace loa;

namespace {

engine::ProgramConfig tone_programme(engine::Priority level, std::optional<engine::AlertSignal> alert) {
    engine::ProgramConfig p;
    p.name = "signal";
    p.ssrc = 0x5161A1;
    p.priority = level;
    p.alert = alert;
    engine::SourceConfig s;
    s.type = engine::SourceConfig::Type::Tone;
    s.frequency_hz = 1000;
    p.sources.push_back(s);
    return p;
}

// The RTP packets of `frames` frames of a programme, as sent to one destination.
std::vector<std::vector<std::uint8_t>> send_frames(const engine::ProgramConfig& config, int frames) {
    boost::asio::io_context io;
    auto sock = transport::open_udp(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    test::UdpReceiver rx;
    transport::FanoutSender fanout({}, sock.native_handle(), -1);
    const std::vector<transport::Destination> dests{{rx.endpoint(), 0}};
    REQUIRE(fanout.set_destinations(0, dests) == 0);
    transport::PacketPool pool(16);
    engine::ManualClock clock;
    engine::Program prog(config, 0, "engine-test");
    std::vector<std::vector<std::uint8_t>> out;
    std::vector<std::uint8_t> d;
    for (int i = 0; i < frames; ++i) {
        prog.produce_frame(clock.now_ns(), clock.unix_ns(), pool, fanout, clock);
        clock.advance(20'000'000);
        do {
            REQUIRE(rx.receive(d));
        } while (transport::looks_like_rtcp(d));  // the sender reports
        out.push_back(d);
    }
    return out;
}

std::vector<std::uint8_t> packet_with(std::span<const transport::RtpExtensionElement> ext) {
    std::vector<std::uint8_t> buf(transport::kMaxRtpPacket);
    transport::RtpHeaderFields h;
    h.payload_type = 96;
    h.ssrc = 7;
    const std::array<std::uint8_t, 3> payload{0xF8, 0xFF, 0xFE};
    std::size_t n = 0;
    REQUIRE(transport::write_rtp(buf, h, ext, payload, n) == transport::Status::Ok);
    buf.resize(n);
    return buf;
}

engine::StreamSignal read(const std::vector<std::uint8_t>& bytes) {
    transport::RtpView v;
    REQUIRE(transport::RtpView::parse(bytes, v) == transport::Status::Ok);
    return engine::read_stream_signal(v);
}

}  // namespace

TEST_CASE("alert_programme_marks_every_packet", "[program][alert]") {
    const auto packets = send_frames(tone_programme(engine::Priority::Emergency, engine::AlertSignal{35}), 30);
    REQUIRE(packets.size() == 30);
    for (std::size_t i = 0; i < packets.size(); ++i) {
        INFO("packet " << i);
        transport::RtpView v;
        REQUIRE(transport::RtpView::parse(packets[i], v) == transport::Status::Ok);
        CHECK(v.marker() == (i == 0));
        const auto alert = v.find_extension(engine::kAlertExtensionId);
        REQUIRE(alert);
        REQUIRE(alert->size() == engine::kAlertElementSize);
        CHECK((*alert)[0] == engine::kAlertFlagAmplifierOn);
        CHECK((*alert)[1] == 35);
        const auto s = engine::read_stream_signal(v);
        CHECK(s.level == engine::Priority::Emergency);
        REQUIRE(s.alert);
        CHECK(s.alert->amplifier_on);
        CHECK(s.alert->volume_pct == 35);
    }
}

TEST_CASE("plain_programme_carries_level_only", "[program][alert]") {
    const auto packets = send_frames(tone_programme(engine::Priority::Commune, std::nullopt), 5);
    for (const auto& p : packets) {
        const auto s = read(p);
        CHECK(s.level == engine::Priority::Commune);
        CHECK_FALSE(s.alert);
    }
}

TEST_CASE("alert_element_volume_clamped", "[program][alert]") {
    const auto e = engine::encode_alert_element(engine::AlertSignal{250});
    CHECK(e[0] == engine::kAlertFlagAmplifierOn);
    CHECK(e[1] == 100);
}

TEST_CASE("stream_signal_bad_elements_read_as_absent", "[program][alert]") {
    using E = transport::RtpExtensionElement;
    const std::array<std::uint8_t, 1> level_bad{9};
    const std::array<std::uint8_t, 1> level_ok{3};
    const std::array<std::uint8_t, 1> alert_short{1};
    const std::array<std::uint8_t, 2> alert_loud{1, 101};
    const std::array<std::uint8_t, 2> alert_no_amp{0, 60};
    const std::array<std::uint8_t, 4> alert_longer{0x81, 70, 9, 9};  // reserved bit and appended bytes ignored

    // No extension at all.
    auto s = read(packet_with({}));
    CHECK_FALSE(s.level);
    CHECK_FALSE(s.alert);

    // Out-of-range level, too short / too loud alert: absent, packet still good.
    std::array<E, 2> ext{{{engine::kPriorityExtensionId, level_bad}, {engine::kAlertExtensionId, alert_short}}};
    s = read(packet_with(ext));
    CHECK_FALSE(s.level);
    CHECK_FALSE(s.alert);
    ext = {{{engine::kPriorityExtensionId, level_ok}, {engine::kAlertExtensionId, alert_loud}}};
    s = read(packet_with(ext));
    CHECK(s.level == engine::Priority::District);
    CHECK_FALSE(s.alert);

    ext = {{{engine::kPriorityExtensionId, level_ok}, {engine::kAlertExtensionId, alert_no_amp}}};
    s = read(packet_with(ext));
    REQUIRE(s.alert);
    CHECK_FALSE(s.alert->amplifier_on);
    CHECK(s.alert->volume_pct == 60);

    ext = {{{engine::kPriorityExtensionId, level_ok}, {engine::kAlertExtensionId, alert_longer}}};
    s = read(packet_with(ext));
    REQUIRE(s.alert);
    CHECK(s.alert->amplifier_on);
    CHECK(s.alert->volume_pct == 70);

    // The two-byte form (forced by an id above 14) reads the same.
    const std::array<std::uint8_t, 1> other{0};
    const std::array<E, 3> two_byte{{{engine::kPriorityExtensionId, level_ok},
                                     {engine::kAlertExtensionId, alert_no_amp},
                                     {200, other}}};
    const auto pkt = packet_with(two_byte);
    REQUIRE(((pkt[12] << 8) | pkt[13]) == transport::kTwoByteExtensionProfile);
    s = read(pkt);
    CHECK(s.level == engine::Priority::District);
    REQUIRE(s.alert);
    CHECK(s.alert->volume_pct == 60);
}
