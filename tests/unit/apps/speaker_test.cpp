// loa-speaker's receiver: the socket-free pipeline driven with passed-in time,
// and the whole Speaker in-process on 127.0.0.1 with an "engine" socket.

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>

#include "loa-speaker/speaker.h"
#include "loa-speaker/speaker_config.h"
#include "loa-speaker/speaker_pipeline.h"
#include "loa/codecs/audio_format.h"
#include "loa/codecs/dsp.h"
#include "loa/codecs/opus_encoder.h"
#include "loa/codecs/tone_analysis.h"
#include "loa/transport/cluster_status.h"
#include "loa/transport/rtcp_packet.h"
#include "loa/transport/rtp_packet.h"
#include "tone_rtp_stream.h"

using namespace loa;
using boost::asio::ip::udp;

namespace {

constexpr std::int64_t kMs = 1'000'000;
constexpr std::size_t kFrame = 960;

// Opus packets of a continuous tone, wrapped in RTP.
class ToneStream : public test::ToneRtpStream {
public:
    ToneStream(std::uint32_t ssrc, std::uint16_t first_seq, double hz = 1000.0)
        : ToneRtpStream({ssrc, first_seq, 12345, hz, 111, 20}) {}
};

speaker::SpeakerConfig pipeline_config() {
    speaker::SpeakerConfig c;
    c.cluster_id = "cluster-42";
    c.engines.push_back(speaker::parse_engine_address("127.0.0.1:5004"));
    c.jitter_ms = 40;
    c.ssrc = 0xC0FFEE;
    return c;
}

const udp::endpoint kEngine(boost::asio::ip::make_address("127.0.0.1"), 5004);

std::span<const std::uint8_t> bytes(const std::vector<std::uint8_t>& v) { return {v.data(), v.size()}; }

// The decoded tone after its onset (skips the codec's start-up).
std::vector<float> after_onset(const std::vector<float>& audio, std::size_t skip, std::size_t length) {
    const std::size_t onset = codecs::first_above(audio, 0.05f);
    REQUIRE(onset + skip + length <= audio.size());
    return {audio.begin() + static_cast<std::ptrdiff_t>(onset + skip),
            audio.begin() + static_cast<std::ptrdiff_t>(onset + skip + length)};
}

}  // namespace

TEST_CASE("engine_address_parsing", "[speaker]") {
    auto a = speaker::parse_engine_address("127.1.2.3");
    CHECK(a.address.to_string() == "127.1.2.3");
    CHECK_FALSE(a.port.has_value());
    a = speaker::parse_engine_address("127.1.2.3:5004");
    CHECK(a.port == std::optional<std::uint16_t>(5004));
    a = speaker::parse_engine_address("::1");
    CHECK(a.address.is_v6());
    a = speaker::parse_engine_address("[fd00::7]:6000");
    CHECK(a.address.to_string() == "fd00::7");
    CHECK(a.port == std::optional<std::uint16_t>(6000));
    CHECK_THROWS_AS(speaker::parse_engine_address("engine.example:5004"), std::invalid_argument);
    CHECK_THROWS_AS(speaker::parse_engine_address("127.1.2.3:99999"), std::invalid_argument);
    // A v4-mapped source matches a plain IPv4 engine.
    CHECK(speaker::parse_engine_address("127.0.0.1").matches(
        udp::endpoint(boost::asio::ip::make_address("::ffff:127.0.0.1"), 40000)));
}

TEST_CASE("pipeline_decodes_tone_and_recovers_loss_with_fec", "[speaker]") {
    speaker::SpeakerPipeline p(pipeline_config(), 0);
    ToneStream stream(0xAAAA, 65500);  // wraps during the test
    std::vector<float> audio;
    std::array<float, kFrame> frame{};
    std::int64_t now = 0;
    for (int i = 0; i < 100; ++i) {
        const auto pkt = stream.next();
        if (i != 50) CHECK(p.on_datagram(bytes(pkt), kEngine, now) == speaker::DatagramKind::Media);
        p.render(frame, now);
        audio.insert(audio.end(), frame.begin(), frame.end());
        now += 20 * kMs;
    }
    const auto c = p.counters().snapshot();
    CHECK(c.received == 99);
    CHECK(c.lost == 1);
    CHECK(c.fec_recovered == 1);
    CHECK(c.concealed == 0);
    CHECK(c.underruns == 0);
    CHECK(c.playing_ssrc == 0xAAAA);
    const auto tail = after_onset(audio, 4800, 48000);  // spans the recovered frame
    const auto fit = codecs::fit_tone(tail);
    CHECK(fit.frequency_hz == Approx(1000.0).margin(2.0));
    CHECK(fit.amplitude == Approx(0.5).margin(0.1));
    CHECK(fit.snr_db > 15.0);
}

TEST_CASE("pipeline_conceals_without_next_packet_and_silences_long_gaps", "[speaker]") {
    auto cfg = pipeline_config();
    cfg.jitter_ms = 20;
    speaker::SpeakerPipeline p(cfg, 0);
    ToneStream stream(0xAAAA, 100);
    std::array<float, kFrame> frame{};
    std::int64_t now = 0;
    for (int i = 0; i < 20; ++i) {
        (void)p.on_datagram(bytes(stream.next()), kEngine, now);
        p.render(frame, now);
        now += 20 * kMs;
    }
    CHECK(codecs::rms(frame) > 0.2);
    // 40 packets (800 ms) lost on the way while the speaker plays on, then
    // the stream goes on: the hole is concealed for about 200 ms (plus a
    // 20 ms fade), then silent, and the stream plays again when it is back.
    std::vector<double> levels;
    for (int i = 0; i < 40; ++i) {
        (void)stream.next();
        p.render(frame, now);
        levels.push_back(codecs::rms(frame));
        now += 20 * kMs;
    }
    for (int i = 0; i < 10; ++i) {
        (void)p.on_datagram(bytes(stream.next()), kEngine, now);
        p.render(frame, now);
        levels.push_back(codecs::rms(frame));
        now += 20 * kMs;
    }
    const auto c = p.counters().snapshot();
    CHECK(c.lost == 40);
    CHECK(c.concealed + c.fec_recovered <= 12);  // 200 ms + the fade, in 20 ms frames
    CHECK(c.concealed + c.fec_recovered >= 9);
    CHECK(levels[1] > 0.1);                      // early in the gap: concealment sounds
    CHECK(levels[30] == 0.0);                    // deep in the gap: silence
    CHECK(levels[45] > 0.2);                     // the stream after the gap plays
}

TEST_CASE("pipeline_counts_foreign_and_malformed", "[speaker]") {
    speaker::SpeakerPipeline p(pipeline_config(), 0);
    ToneStream stream(0xAAAA, 1);
    const auto pkt = stream.next();
    const udp::endpoint other_port(kEngine.address(), 5005);
    const udp::endpoint other_host(boost::asio::ip::make_address("127.0.0.2"), 5004);
    CHECK(p.on_datagram(bytes(pkt), other_port, 0) == speaker::DatagramKind::Foreign);
    CHECK(p.on_datagram(bytes(pkt), other_host, 0) == speaker::DatagramKind::Foreign);
    const std::vector<std::uint8_t> garbage{0x40, 0x00, 0x01};
    CHECK(p.on_datagram(bytes(garbage), kEngine, 0) == speaker::DatagramKind::Malformed);
    const std::vector<std::uint8_t> bad_rtcp{0x80, 0xC9, 0x00, 0x09, 0, 0, 0, 1};  // length past the end
    CHECK(p.on_datagram(bytes(bad_rtcp), kEngine, 0) == speaker::DatagramKind::Malformed);
    const auto c = p.counters().snapshot();
    CHECK(c.foreign == 2);
    CHECK(c.malformed == 2);
    CHECK(c.received == 0);
}

TEST_CASE("pipeline_report_has_rr_cname_and_status", "[speaker]") {
    speaker::SpeakerPipeline p(pipeline_config(), 0);
    ToneStream stream(0xAAAA, 1000);
    std::array<float, kFrame> frame{};
    // An SR from the engine, then 10 packets with #5 lost.
    std::array<std::uint8_t, 128> sr_buf{};
    transport::RtcpWriter srw(sr_buf);
    transport::RtcpSenderInfo si;
    si.ntp_timestamp = 0x0123456789ABCDEFull;
    REQUIRE(srw.add_sr(0xAAAA, si) == transport::Status::Ok);
    CHECK(p.on_datagram(srw.bytes(), kEngine, 0) == speaker::DatagramKind::Control);
    for (int i = 0; i < 10; ++i) {
        const auto pkt = stream.next();
        if (i != 5) (void)p.on_datagram(bytes(pkt), kEngine, i * 20 * kMs);
    }
    CHECK(p.take_report_request());  // SSRC changed from none to 0xAAAA
    CHECK_FALSE(p.take_report_request());
    for (int i = 0; i < 6; ++i) p.render(frame, 200 * kMs + i * 20 * kMs);

    std::array<std::uint8_t, speaker::kMaxReportBytes> buf{};
    const std::size_t n = p.build_report(buf, 500 * kMs);
    REQUIRE(n > 0);
    transport::RtcpCompound c;
    REQUIRE(transport::parse_rtcp(std::span<const std::uint8_t>(buf.data(), n), c) == transport::Status::Ok);
    CHECK(c.has_rr);
    CHECK(c.sender_ssrc == 0xC0FFEE);
    REQUIRE(c.block_count == 1);
    CHECK(c.blocks[0].ssrc == 0xAAAA);
    CHECK(c.blocks[0].cumulative_lost == 1);
    CHECK(c.blocks[0].highest_seq == 1009);
    CHECK(c.blocks[0].fraction_lost == 256 / 10);
    CHECK(c.blocks[0].lsr == transport::ntp_middle32(si.ntp_timestamp));
    CHECK(c.blocks[0].dlsr == 65536 / 2);  // 500 ms after the SR
    REQUIRE(c.sdes_count == 1);
    CHECK(c.sdes[0].cname == "cluster-42");
    REQUIRE(c.app_count == 1);
    CHECK(std::string(c.apps[0].name.data(), 4) == "LOAS");
    CHECK(c.apps[0].subtype == transport::kClusterStatusSubtype);
    transport::ClusterStatus st;
    REQUIRE(transport::decode_cluster_status(c.apps[0].data, st) == transport::Status::Ok);
    CHECK(st.playing_ssrc == 0xAAAA);
    CHECK(st.volume_pct == 100);
    CHECK(st.packets_received == 9);
    CHECK(st.packets_lost == 1);
    CHECK_FALSE(st.amplifier_on);
}

TEST_CASE("jitter_interarrival_per_rfc3550", "[speaker]") {
    speaker::ReceptionStats rs;
    rs.reset(1);
    // Packets 20 ms apart in RTP time, arriving alternately 0 and 2 ms late.
    for (int i = 0; i < 400; ++i) {
        const std::int64_t arrival = i * 20 * kMs + (i % 2) * 2 * kMs;
        rs.on_packet(static_cast<std::uint16_t>(i), static_cast<std::uint32_t>(i * 960), arrival);
    }
    // |D| is always 2 ms = 96 RTP units; J converges to 96.
    CHECK(rs.jitter() == Approx(96.0).margin(1.0));
}

// ---------------------------------------------------------------------------
// In-process speaker on loopback.

namespace {

struct Harness {
    boost::asio::io_context io;
    udp::socket engine{io, udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)};
    udp::socket stranger{io, udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)};
    std::optional<speaker::Speaker> spk;
    std::thread thread;

    std::mutex mu;
    std::condition_variable cv;
    std::vector<float> audio;

    Harness() {
        speaker::SpeakerConfig c;
        c.cluster_id = "vn-hn-cluster-0001";
        c.engines.push_back(speaker::parse_engine_address(
            "127.0.0.1:" + std::to_string(engine.local_endpoint().port())));
        c.jitter_ms = 60;
        c.report_interval_ms = 60000;  // only the start and SSRC-change reports in this test
        spk.emplace(io, c, udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
        audio.reserve(48000 * 20);
        spk->start();
        spk->start_clocked_playout([this](std::span<const float> f) {
            std::lock_guard lock(mu);
            audio.insert(audio.end(), f.begin(), f.end());
            cv.notify_all();
        });
        thread = std::thread([this] { io.run(); });
    }
    ~Harness() {
        boost::asio::post(io, [this] { spk->stop(); });
        thread.join();
    }

    udp::endpoint target() const { return spk->local_endpoint(); }

    // Waits (generous deadline) until `pred(audio)` holds.
    template <typename Pred>
    bool wait_audio(Pred pred, std::chrono::seconds limit = std::chrono::seconds(10)) {
        std::unique_lock lock(mu);
        return cv.wait_for(lock, limit, [&] { return pred(audio); });
    }
    template <typename Pred>
    bool wait_counters(Pred pred, std::chrono::seconds limit = std::chrono::seconds(10)) {
        std::unique_lock lock(mu);
        return cv.wait_for(lock, limit, [&] { return pred(spk->counters().snapshot()); });
    }
};

// Receives RTCP on the engine socket (blocking with a deadline) until one
// carries a LOAS status satisfying `pred`.
template <typename Pred>
std::optional<transport::ClusterStatus> wait_report(udp::socket& s, std::string& cname, Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    s.non_blocking(true);
    std::array<std::uint8_t, 1500> buf{};
    while (std::chrono::steady_clock::now() < deadline) {
        udp::endpoint from;
        boost::system::error_code ec;
        const std::size_t n = s.receive_from(boost::asio::buffer(buf), from, 0, ec);
        if (ec == boost::asio::error::would_block) {
            pollfd pfd{s.native_handle(), POLLIN, 0};
            (void)::poll(&pfd, 1, 100);  // wake on a datagram, re-check the deadline
            continue;
        }
        REQUIRE_FALSE(ec);
        transport::RtcpCompound c;
        if (transport::parse_rtcp(std::span<const std::uint8_t>(buf.data(), n), c) != transport::Status::Ok) continue;
        if (c.app_count == 0 || c.sdes_count == 0) continue;
        transport::ClusterStatus st;
        if (transport::decode_cluster_status(c.apps[0].data, st) != transport::Status::Ok) continue;
        if (pred(st)) {
            cname = std::string(c.sdes[0].cname);
            return st;
        }
    }
    return std::nullopt;
}

}  // namespace

TEST_CASE("speaker_plays_engine_stream_and_reports_ssrc_change", "[speaker][loopback]") {
    Harness h;
    const auto to = h.target();
    REQUIRE(to.port() != 0);

    // The report sent at start reaches the engine address with the CNAME.
    std::string cname;
    auto st = wait_report(h.engine, cname, [](const transport::ClusterStatus& s) { return s.playing_ssrc == 0; });
    REQUIRE(st.has_value());
    CHECK(cname == "vn-hn-cluster-0001");

    // 1.5 s of tone sent in real time (as the engine does: one packet per
    // 20 ms on absolute deadlines), plus a foreign copy and malformed datagrams.
    ToneStream a(0xAAAA0001, 65500);
    const auto send_start = std::chrono::steady_clock::now();
    for (int i = 0; i < 75; ++i) {
        std::this_thread::sleep_until(send_start + std::chrono::milliseconds(20 * i));
        const auto pkt = a.next();
        h.engine.send_to(boost::asio::buffer(pkt), to);
        if (i == 3) h.stranger.send_to(boost::asio::buffer(pkt), to);
    }
    const std::vector<std::uint8_t> garbage{0x12, 0x34, 0x56};
    h.engine.send_to(boost::asio::buffer(garbage), to);
    const std::vector<std::uint8_t> bad_rtcp{0x80, 0xC8, 0x00, 0x20, 1, 2, 3, 4};
    h.engine.send_to(boost::asio::buffer(bad_rtcp), to);

    st = wait_report(h.engine, cname, [](const transport::ClusterStatus& s) { return s.playing_ssrc == 0xAAAA0001; });
    REQUIRE(st.has_value());
    CHECK(cname == "vn-hn-cluster-0001");

    // Wait until the whole tone has been played.
    REQUIRE(h.wait_audio([](const std::vector<float>& audio) {
        const std::size_t onset = codecs::first_above(audio, 0.05f);
        return onset < audio.size() && audio.size() - onset >= 48000 + 4800;
    }));
    {
        std::lock_guard lock(h.mu);
        const auto tone = after_onset(h.audio, 4800, 48000);
        const auto fit = codecs::fit_tone(tone);
        CHECK(fit.frequency_hz == Approx(1000.0).margin(2.0));
        CHECK(fit.snr_db > 15.0);
    }

    // A new programme preempts: the speaker reports the new SSRC at once
    // (the periodic report is a minute away).
    ToneStream b(0xBBBB0002, 7, 500.0);
    for (int i = 0; i < 5; ++i) h.engine.send_to(boost::asio::buffer(b.next(i == 0)), to);
    st = wait_report(h.engine, cname, [](const transport::ClusterStatus& s) { return s.playing_ssrc == 0xBBBB0002; });
    REQUIRE(st.has_value());
    CHECK(cname == "vn-hn-cluster-0001");
    CHECK(st->packets_received == 76);  // sent on B's first packet
    CHECK(st->packets_malformed == 2);

    REQUIRE(h.wait_counters([](const speaker::CountersSnapshot& c) { return c.received == 80; }));
    const auto c = h.spk->counters().snapshot();
    CHECK(c.foreign == 1);
    CHECK(c.malformed == 2);
    CHECK(c.playing_ssrc == 0xBBBB0002);
    CHECK(c.ssrc_changes == 2);
    CHECK(c.rtcp_sent >= 3);
    CHECK(c.lost == 0);
}

// ---------------------------------------------------------------------------
// Clock drift: the engine's media clock and the speaker's sound card differ.

namespace {

// 10 simulated minutes of a sender whose clock runs `ppm` fast (negative:
// slow) against the speaker's consumer clock, which renders one 20 ms block
// every 20 ms of its own time. Returns the counters at the end and the last
// second of audio.
struct DriftRun {
    speaker::CountersSnapshot counters;
    std::vector<float> last_second;
    int rejected = 0;  // packets the pipeline did not take as media
};

// RTP packets of a steady 1 kHz tone: 20 ms holds exactly 20 periods, so a
// cycle of encoded payloads repeats seamlessly; headers are made per packet.
class ToneCycle {
public:
    explicit ToneCycle(std::uint32_t ssrc) : ssrc_(ssrc) {
        ToneStream warm(ssrc, 0);
        for (int i = 0; i < 10; ++i) (void)warm.next();  // past the encoder's start-up
        for (int i = 0; i < 50; ++i) {
            auto pkt = warm.next();
            payloads_.emplace_back(pkt.begin() + 12, pkt.end());
        }
    }

    std::span<const std::uint8_t> next() {
        const auto& payload = payloads_[index_ % payloads_.size()];
        transport::RtpHeaderFields h;
        h.payload_type = 111;
        h.sequence = static_cast<std::uint16_t>(index_);
        h.timestamp = static_cast<std::uint32_t>(index_ * kFrame);
        h.ssrc = ssrc_;
        std::size_t n = 0;
        (void)transport::write_rtp(buf_, h, {}, payload, n);
        ++index_;
        return {buf_.data(), n};
    }

private:
    std::uint32_t ssrc_;
    std::vector<std::vector<std::uint8_t>> payloads_;
    std::array<std::uint8_t, transport::kMaxRtpPacket> buf_{};
    std::uint64_t index_ = 0;
};

DriftRun run_drift(double ppm) {
    auto cfg = pipeline_config();
    cfg.jitter_ms = 0;  // adaptive
    speaker::SpeakerPipeline p(cfg, 0);
    ToneCycle stream(0xD1F7);
    // A sender `ppm` fast sends a packet every 20 ms / (1 + ppm e-6) of true time.
    const double send_period_ns = 20e6 / (1.0 + ppm * 1e-6);
    constexpr std::int64_t kRenderPeriod = 20 * kMs;
    constexpr std::int64_t kDuration = 600'000 * kMs;  // 10 minutes
    std::int64_t sends = 0;
    std::int64_t render_at = 5 * kMs;  // the card starts a little after the first packet
    std::array<float, kFrame> frame{};
    DriftRun run;
    run.last_second.reserve(48000);
    while (render_at < kDuration) {
        // Deliver every packet sent before this render (1 ms network transit).
        for (;;) {
            const auto at = static_cast<std::int64_t>(static_cast<double>(sends) * send_period_ns) + 1 * kMs;
            if (at > render_at) break;
            if (p.on_datagram(stream.next(), kEngine, at) != speaker::DatagramKind::Media) ++run.rejected;
            ++sends;
        }
        p.render(frame, render_at);
        if (render_at >= kDuration - 1000 * kMs) run.last_second.insert(run.last_second.end(), frame.begin(), frame.end());
        render_at += kRenderPeriod;
    }
    run.counters = p.counters().snapshot();
    return run;
}

}  // namespace

TEST_CASE("speaker_drift_200ppm", "[speaker][drift]") {
    for (const double ppm : {200.0, -200.0}) {
        INFO("sender clock " << ppm << " ppm against the speaker's");
        const auto run = run_drift(ppm);
        const auto& c = run.counters;
        CHECK(run.rejected == 0);
        INFO("buffer " << c.buffer_delay_ms << " ms, target " << c.target_delay_ms << " ms, drift " << c.drift_ppm
                       << " ppm, concealed " << c.concealed << ", late " << c.late);
        CHECK(c.underruns == 0);
        CHECK(c.overflow == 0);
        CHECK(c.lost == 0);
        CHECK(c.late == 0);
        CHECK(c.target_delay_ms > 0);
        CHECK(std::abs(c.buffer_delay_ms - c.target_delay_ms) <= 5);
        // The resampler carries the correction (about the sender's drift).
        CHECK(std::abs(c.drift_ppm) >= 100);
        CHECK(std::abs(c.drift_ppm) <= 400);
        const auto fit = codecs::fit_tone(run.last_second);
        CHECK(fit.frequency_hz == Approx(1000.0).margin(2.0));
        CHECK(fit.snr_db > 20.0);
    }
}
