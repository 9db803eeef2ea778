#pragma once
// Shared by the preemption tests (tests/unit/apps/preemption*_test.cpp): the
// RTP packets of real engine Programs (priority and alert header extensions,
// marker on the first packet) and a socket-free speaker pipeline driven on a
// 20 ms grid of injected time, with helpers to judge its output by its tones.

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <complex>
#include <cstdint>
#include <initializer_list>
#include <numbers>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "loa-speaker/speaker_config.h"
#include "loa-speaker/speaker_pipeline.h"
#include "loa/engine/clock.h"
#include "loa/engine/program.h"
#include "loa/transport/cluster_status.h"
#include "loa/transport/fanout_sender.h"
#include "loa/transport/packet_pool.h"
#include "loa/transport/rtcp_packet.h"
#include "loa/transport/udp_receive.h"
#include "loa/transport/udp_socket.h"
#include "udp_receiver.h"

namespace loa::test::preempt {

using boost::asio::ip::udp;

inline constexpr std::int64_t kMs = 1'000'000;
inline constexpr std::size_t kFrame = 960;
inline const udp::endpoint kEngine(boost::asio::ip::make_address("127.0.0.1"), 5004);

using Packets = std::vector<std::vector<std::uint8_t>>;

inline engine::ProgramConfig programme(std::uint32_t ssrc, engine::Priority level, double hz,
                                std::optional<engine::AlertSignal> alert = std::nullopt) {
    engine::ProgramConfig p;
    p.name = "p" + std::to_string(ssrc);
    p.ssrc = ssrc;
    p.priority = level;
    p.alert = alert;
    engine::SourceConfig s;
    s.type = engine::SourceConfig::Type::Tone;
    s.frequency_hz = hz;
    s.level_db = -6.0;  // a sine of amplitude 0.5
    p.sources.push_back(s);
    return p;
}

// The RTP packets of `frames` frames (of config.ptime_ms) of a programme, as
// the engine sends them to one cluster.
inline Packets engine_packets(const engine::ProgramConfig& config, int frames) {
    boost::asio::io_context io;
    auto sock = transport::open_udp(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    test::UdpReceiver rx;
    transport::FanoutSender fanout({}, sock.native_handle(), -1);
    const std::vector<transport::Destination> dests{{rx.endpoint(), 0}};
    REQUIRE(fanout.set_destinations(0, dests) == 0);
    transport::PacketPool pool(16);
    engine::ManualClock clock;
    engine::Program prog(config, 0, "engine-test");
    Packets out;
    std::vector<std::uint8_t> d;
    for (int i = 0; i < frames; ++i) {
        prog.produce_frame(clock.now_ns(), clock.unix_ns(), pool, fanout, clock);
        clock.advance(config.ptime_ms * kMs);
        do {
            REQUIRE(rx.receive(d));
        } while (transport::looks_like_rtcp(d));  // sender reports are not needed here
        out.push_back(d);
    }
    return out;
}

inline speaker::SpeakerConfig config() {
    speaker::SpeakerConfig c;
    c.cluster_id = "cluster-7";
    c.engines.push_back(speaker::parse_engine_address("127.0.0.1:5004"));
    c.jitter_ms = 40;
    c.ssrc = 0x5EAC;
    return c;
}

// A speaker on a 20 ms grid of injected time: in slot k the packets handed to
// slot() arrive at k*20+1 ms, then a 20 ms block is rendered at k*20+5 ms.
struct Rig {
    speaker::SpeakerPipeline p;
    std::int64_t now = 0;
    std::vector<float> audio;
    std::size_t slots = 0;
    bool report_requested = false;

    explicit Rig(const speaker::SpeakerConfig& c) : p(c, 0) {
        audio.reserve(48000 * 30);
        // Let a hook carry out its "off" at start first: requests it has not
        // reached yet are coalesced, and the tests count the changes.
        REQUIRE(p.amp_hook().wait_applied(std::chrono::seconds(10)));
    }

    // A packet and how it reached the speaker.
    struct Sent {
        const std::vector<std::uint8_t>* packet;
        transport::Delivery delivery;
    };

    // Packets all sent by unicast.
    void slot(std::initializer_list<const std::vector<std::uint8_t>*> packets,
              std::vector<speaker::DatagramKind>* kinds = nullptr) {
        std::array<Sent, 4> sent{};
        REQUIRE(packets.size() <= sent.size());
        std::size_t n = 0;
        for (const auto* pkt : packets) sent[n++] = {pkt, transport::Delivery::Unicast};
        slot(std::span<const Sent>(sent.data(), n), kinds);
    }
    void slot(std::initializer_list<Sent> packets, std::vector<speaker::DatagramKind>* kinds = nullptr) {
        slot(std::span<const Sent>(packets.begin(), packets.size()), kinds);
    }
    void slot(std::span<const Sent> packets, std::vector<speaker::DatagramKind>* kinds = nullptr) {
        for (const auto& [pkt, delivery] : packets) {
            const auto k = p.on_datagram(std::span<const std::uint8_t>(pkt->data(), pkt->size()), kEngine, now + kMs,
                                         delivery);
            if (kinds != nullptr) kinds->push_back(k);
            report_requested = p.take_report_request() || report_requested;
        }
        std::array<float, kFrame> frame{};
        p.render(frame, now + 5 * kMs);
        report_requested = p.take_report_request() || report_requested;
        audio.insert(audio.end(), frame.begin(), frame.end());
        now += 20 * kMs;
        ++slots;
    }
    void silent_slots(int n) {
        for (int i = 0; i < n; ++i) slot(std::span<const Sent>{});
    }
    bool take_report_requested() { return std::exchange(report_requested, false); }

    transport::ClusterStatus report() {
        std::array<std::uint8_t, speaker::kMaxReportBytes> buf{};
        const std::size_t n = p.build_report(buf, now);
        REQUIRE(n > 0);
        transport::RtcpCompound c;
        REQUIRE(transport::parse_rtcp(std::span<const std::uint8_t>(buf.data(), n), c) == transport::Status::Ok);
        REQUIRE(c.app_count == 1);
        transport::ClusterStatus st;
        REQUIRE(transport::decode_cluster_status(c.apps[0].data, st) == transport::Status::Ok);
        return st;
    }
    // Output from slot `from` (inclusive) to slot `to` (exclusive).
    std::span<const float> slots_audio(std::size_t from, std::size_t to) const {
        return std::span<const float>(audio.data() + from * kFrame, (to - from) * kFrame);
    }
};

// Amplitude of the `hz` component of `x` (projection on a complex sinusoid;
// use windows holding whole periods of the tones compared).
inline double tone_amplitude(std::span<const float> x, double hz) {
    std::complex<double> acc = 0.0;
    const double w = 2.0 * std::numbers::pi * hz / 48000.0;
    for (std::size_t n = 0; n < x.size(); ++n) {
        acc += static_cast<double>(x[n]) * std::polar(1.0, -w * static_cast<double>(n));
    }
    return 2.0 * std::abs(acc) / static_cast<double>(x.size());
}

// Largest `hz` amplitude over consecutive 100 ms windows of `x`.
inline double max_window_amplitude(std::span<const float> x, double hz) {
    double m = 0.0;
    for (std::size_t at = 0; at + 4800 <= x.size(); at += 4800) m = std::max(m, tone_amplitude(x.subspan(at, 4800), hz));
    return m;
}

}  // namespace loa::test::preempt
