// Live studio feeds end to end, as processes on loopback: loa-studio pushes a
// tone through the impairment proxy to loa-engine's ingest socket; the engine
// plays it through the studio's adaptive playout into a programme, encodes it
// once and fans it out to loa-speaker processes. And the ingest port under
// bad input: random bytes, malformed RTP and an impostor reusing the
// studio's SSRC are dropped and counted while the live programme plays on.

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include "audio_check.h"
#include "integration_util.h"
#include "loa/codecs/audio_format.h"
#include "loa/codecs/dsp.h"
#include "loa/codecs/opus_encoder.h"
#include "loa/transport/impair_proxy.h"
#include "loa/transport/rtp_packet.h"
#include "process.h"
#include "temp_dir.h"

using namespace loa;
using boost::asio::ip::udp;

namespace {

using test::read_file;
using test::start_speaker;
using test::json_int;
using test::json_object;
using test::wait_until;

const std::string kEngine = LOA_ENGINE_BIN;
const std::string kStudio = LOA_STUDIO_BIN;
constexpr std::uint32_t kStudioSsrc = 305419896;

/// An engine with one studio feeding programme "live" heard by `clusters`.
/// Returns the engine's ingest port (from its "ingest HOST:PORT" line).
std::unique_ptr<test::Process> start_engine(const test::TempDir& dir,
                                            const std::vector<std::pair<std::string, unsigned>>& clusters,
                                            unsigned& ingest_port) {
    std::ostringstream cfg;
    cfg << "[engine]\nlisten = \"127.0.0.1:0\"\ningest_listen = \"127.0.0.1:0\"\n\n";
    std::string ids;
    for (const auto& [id, port] : clusters) {
        cfg << "[[cluster]]\nid = \"" << id << "\"\naddress = \"127.0.0.1:" << port << "\"\n";
        ids += (ids.empty() ? "\"" : ", \"") + id + "\"";
    }
    cfg << "\n[[studio]]\nname = \"district-7\"\nssrc = " << kStudioSsrc << "\nprogram = \"live\"\n"
        << "\n[[program]]\nname = \"live\"\nclusters = [" << ids << "]\n"
        << "  [[program.source]]\n  type = \"studio\"\n  studio = \"district-7\"\n  fallback = \"silence\"\n";
    std::ofstream(dir / "engine.toml") << cfg.str();
    auto engine = std::make_unique<test::Process>(
        std::vector<std::string>{kEngine, "--config", (dir / "engine.toml").string(), "--stats-out",
                                 (dir / "stats.json").string()},
        (dir / "engine.log").string());
    const auto l1 = engine->read_line(10000);
    REQUIRE(l1);
    REQUIRE(l1->rfind("listening ", 0) == 0);
    const auto l2 = engine->read_line(10000);
    REQUIRE(l2);
    std::smatch m;
    const std::string l = *l2;
    REQUIRE(std::regex_match(l, m, std::regex("ingest 127\\.0\\.0\\.1:([0-9]+)")));
    ingest_port = static_cast<unsigned>(std::stoul(m[1]));
    return engine;
}


// RTP packets of a tone with the studio's SSRC, as an impostor would send them.
std::vector<std::vector<std::uint8_t>> impostor_packets(int count) {
    codecs::OpusEncoderConfig ec;
    codecs::OpusEncoder encoder(ec);
    codecs::ToneGenerator tone(1000.0, 0.8);
    std::vector<std::vector<std::uint8_t>> out;
    std::vector<float> pcm(960);
    std::vector<std::uint8_t> opus(codecs::kMaxOpusPacketBytes);
    for (int i = 0; i < count; ++i) {
        tone.render(pcm);
        std::size_t n = 0;
        REQUIRE(encoder.encode(pcm, opus, n) == codecs::Status::Ok);
        transport::RtpHeaderFields h;
        h.payload_type = 96;
        h.sequence = static_cast<std::uint16_t>(30000 + i);
        h.timestamp = static_cast<std::uint32_t>(i) * 960u;
        h.ssrc = kStudioSsrc;
        std::vector<std::uint8_t> pkt(transport::kMaxRtpPacket);
        std::size_t written = 0;
        REQUIRE(transport::write_rtp(pkt, h, {}, std::span<const std::uint8_t>(opus.data(), n), written) ==
                transport::Status::Ok);
        pkt.resize(written);
        out.push_back(std::move(pkt));
    }
    return out;
}

}  // namespace

TEST_CASE("live_studio_through_impairment_to_10_speakers", "[integration][ingest]") {
    REQUIRE(std::filesystem::exists(kStudio));
    test::TempDir dir("loa-live");
    constexpr int kSpeakers = 10;
    std::vector<std::unique_ptr<test::Process>> speakers;
    std::vector<std::pair<std::string, unsigned>> clusters;
    for (int i = 0; i < kSpeakers; ++i) {
        const auto id = "sp-" + std::to_string(i);
        unsigned port = 0;
        speakers.push_back(start_speaker(id, dir / (id + ".wav"), "127.0.0.1", port, dir / (id + ".log")));
        clusters.emplace_back(id, port);
    }
    unsigned ingest_port = 0;
    auto engine = start_engine(dir, clusters, ingest_port);

    // Studio -> engine over a mildly bad network: 2 % loss, 5 ms delay plus
    // up to ~20 ms of jitter (so some reordering). Seeded.
    transport::ImpairProxyConfig pc;
    pc.listen = udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0);
    pc.target = udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(ingest_port));
    pc.forward.seed = 4;
    pc.forward.loss = transport::LossModel::Uniform;
    pc.forward.uniform_loss = 0.02;
    pc.forward.delay_ns = 5'000'000;
    pc.forward.jitter = transport::JitterDistribution::Normal;
    pc.forward.jitter_spread_ns = 20'000'000;
    transport::ImpairProxy proxy(pc);
    proxy.start();

    test::Process studio({kStudio, "--to", "127.0.0.1:" + std::to_string(proxy.local_port()), "--tone", "440",
                          "--duration", "4", "--ssrc", std::to_string(kStudioSsrc), "--cname", "district-7",
                          "--stats-json"},
                         (dir / "studio.log").string());
    const auto studio_out = studio.read_all(30000);
    REQUIRE(studio.wait(30000) == std::optional<int>(0));
    INFO(studio_out);
    CHECK(json_int(studio_out, "packets_sent") == 200);
    // Let what is still in the proxy and the engine's buffer drain before stopping.
    REQUIRE(wait_until([&] { return proxy.stats().held == 0; }));
    const auto ps = proxy.stats();
    proxy.stop();

    engine->signal(SIGTERM);
    REQUIRE(engine->wait(20000) == std::optional<int>(0));
    const auto stats = read_file(dir / "stats.json");
    INFO(stats);
    const auto ingest = json_object(stats, "ingest");
    // Everything the proxy let through was the studio's RTP or its sender reports.
    const long accepted = json_int(ingest, "accepted");
    CHECK(accepted + json_int(ingest, "rtcp") == static_cast<long>(ps.forwarded));
    CHECK(accepted >= 180);  // 200 sent, 2 % loss
    CHECK(json_int(ingest, "malformed") == 0);
    CHECK(json_int(ingest, "unknown_studio") == 0);
    CHECK(json_int(ingest, "foreign_address") == 0);
    CHECK(json_int(ingest, "queue_full") == 0);
    const auto studio_stats = json_object(stats, "studios");
    CHECK(json_int(studio_stats, "accepted") == accepted);
    CHECK(json_int(studio_stats, "received") == accepted);
    CHECK(studio_stats.find("\"latched_address\":\"127.0.0.1:") != std::string::npos);
    // FEC repairs most single losses; what is left is concealed.
    CHECK(json_int(studio_stats, "recovered_fec") + json_int(studio_stats, "concealed") >= 1);
    CHECK(json_int(stats, "frames_dropped") == 0);

    for (auto& s : speakers) s->signal(SIGTERM);
    for (int i = 0; i < kSpeakers; ++i) {
        const auto id = "sp-" + std::to_string(i);
        INFO(id);
        const auto out = speakers[static_cast<std::size_t>(i)]->read_all(20000);
        REQUIRE(speakers[static_cast<std::size_t>(i)]->wait(20000) == std::optional<int>(0));
        INFO(out);
        CHECK(json_int(out, "lost") == 0);  // engine -> speaker is clean loopback
        CHECK(json_int(out, "malformed") == 0);
        const auto pcm = test::read_wav(dir / (id + ".wav"));
        const auto check = test::check_tone(pcm);
        CHECK(check.audible_samples >= static_cast<std::size_t>(3.5 * 48000));
        CHECK(check.fit.frequency_hz == Approx(440).margin(2));
        // Through 2 % loss (FEC, PLC) and jitter: nearly every 100 ms is a clean tone.
        CHECK(test::tone_window_share(pcm, 440.0, 20.0) >= 0.85);
    }
}

TEST_CASE("ingest_bad_input_dropped_live_programme_undisturbed", "[integration][ingest]") {
    REQUIRE(std::filesystem::exists(kStudio));
    test::TempDir dir("loa-ingest-bad");
    unsigned speaker_port = 0;
    auto speaker = start_speaker("victim", dir / "victim.wav", "127.0.0.1", speaker_port, dir / "speaker.log");
    unsigned ingest_port = 0;
    auto engine = start_engine(dir, {{"victim", speaker_port}}, ingest_port);
    const udp::endpoint ingest(boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(ingest_port));

    // The real studio goes through an unimpaired proxy so that the test
    // knows when it has latched (its packets have reached the engine).
    transport::ImpairProxyConfig pc;
    pc.listen = udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0);
    pc.target = ingest;
    transport::ImpairProxy proxy(pc);
    proxy.start();
    test::Process studio({kStudio, "--to", "127.0.0.1:" + std::to_string(proxy.local_port()), "--tone", "440",
                          "--duration", "4", "--ssrc", std::to_string(kStudioSsrc), "--stats-json"},
                         (dir / "studio.log").string());
    REQUIRE(wait_until([&] { return proxy.stats().forwarded >= 25; }));  // half a second of live audio

    boost::asio::io_context io;
    udp::socket attacker(io, udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    std::mt19937 rng(20240607);
    // 1. Random bytes of random lengths.
    constexpr int kRandom = 300;
    for (int i = 0; i < kRandom; ++i) {
        std::vector<std::uint8_t> junk(1 + rng() % 1400);
        for (auto& b : junk) b = static_cast<std::uint8_t>(rng());
        attacker.send_to(boost::asio::buffer(junk), ingest);
    }
    // 2. Malformed RTP: too short, CSRCs past the end, no payload, padding
    //    longer than the packet, version 1.
    const auto good = impostor_packets(1).front();
    std::vector<std::vector<std::uint8_t>> malformed;
    malformed.push_back({0x80, 0x60, 0x00, 0x01, 0x00});
    {
        auto p = good;
        p.resize(12);
        p[0] = 0x8F;  // 15 CSRCs announced, none there
        malformed.push_back(p);
    }
    {
        auto p = good;
        p.resize(12);  // header only
        malformed.push_back(p);
    }
    {
        auto p = good;
        p[0] |= 0x20;    // padding
        p.back() = 0xFF;  // 255 bytes of it
        malformed.push_back(p);
    }
    {
        auto p = good;
        p[0] = 0x40;  // version 1
        malformed.push_back(p);
    }
    constexpr int kRounds = 20;
    for (int r = 0; r < kRounds; ++r) {
        for (const auto& m : malformed) attacker.send_to(boost::asio::buffer(m), ingest);
    }
    // 3. An impostor reusing the studio's SSRC from another address: 2 s of a
    //    loud 1 kHz tone, sent in real time.
    const auto fake = impostor_packets(100);
    for (const auto& p : fake) {
        attacker.send_to(boost::asio::buffer(p), ingest);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // allowed: paces the impostor like a real sender
    }

    const auto studio_out = studio.read_all(30000);
    REQUIRE(studio.wait(30000) == std::optional<int>(0));
    CHECK(json_int(studio_out, "packets_sent") == 200);
    // Everything the studio sent has passed the proxy before the engine stops
    // (the engine counts what reached its socket even while stopping).
    const auto studio_datagrams =
        static_cast<std::uint64_t>(json_int(studio_out, "packets_sent") + json_int(studio_out, "rtcp_sent"));
    REQUIRE(wait_until([&] {
        const auto ps = proxy.stats();
        return ps.held == 0 && ps.forwarded >= studio_datagrams;
    }));
    proxy.stop();
    engine->signal(SIGTERM);
    REQUIRE(engine->wait(20000) == std::optional<int>(0));
    const auto stats = read_file(dir / "stats.json");
    INFO(stats);
    const auto ingest_stats = json_object(stats, "ingest");
    const long studio_packets = json_int(studio_out, "packets_sent");
    const long rtcp_sent = json_int(studio_out, "rtcp_sent");
    // Every datagram sent reached the engine's socket (loopback, and the
    // proxy forwarded all of the studio's) and was counted.
    const long expected_received = studio_packets + rtcp_sent + kRandom +
                                   kRounds * static_cast<long>(malformed.size()) + static_cast<long>(fake.size());
    const long in_flight = expected_received - json_int(ingest_stats, "received");
    CHECK(in_flight == 0);
    CHECK(json_int(ingest_stats, "accepted") >= studio_packets - in_flight);
    CHECK(json_int(ingest_stats, "foreign_address") == static_cast<long>(fake.size()));
    // Every junk datagram is accounted for: malformed, or (random bytes that
    // happen to look like RTP/RTCP) an unknown studio or RTCP.
    CHECK(json_int(ingest_stats, "malformed") >= kRounds * static_cast<long>(malformed.size()));
    CHECK(json_int(ingest_stats, "malformed") + json_int(ingest_stats, "unknown_studio") +
              json_int(ingest_stats, "rtcp") >=
          kRandom + kRounds * static_cast<long>(malformed.size()) + rtcp_sent - in_flight);
    const auto studio_stats = json_object(stats, "studios");
    CHECK(json_int(studio_stats, "foreign_address") == static_cast<long>(fake.size()));
    CHECK(json_int(studio_stats, "relatched") == 0);
    CHECK(json_int(studio_stats, "received") >= studio_packets - in_flight);
    CHECK(json_int(studio_stats, "lost") == 0);

    speaker->signal(SIGTERM);
    const auto out = speaker->read_all(20000);
    REQUIRE(speaker->wait(20000) == std::optional<int>(0));
    INFO(out);
    // The speaker heard the studio's tone, cleanly, and nothing of the impostor's.
    const auto pcm = test::read_wav(dir / "victim.wav");
    const auto check = test::check_tone(pcm);
    CHECK(check.audible_samples >= static_cast<std::size_t>(3.5 * 48000));
    CHECK(check.fit.frequency_hz == Approx(440).margin(2));
    double impostor_hz = 1000.0;
    const auto windows = test::tone_windows(pcm, 440.0, 25.0, &impostor_hz);
    CHECK(impostor_hz == 1000.0);  // no window sounded like the impostor's tone
    // Every window is the clean tone except one at an edge and those the
    // playouts themselves report disturbing: on a loaded machine the studio
    // process can be descheduled past the ingest's target delay (an
    // underrun, whose fallback frames and fades touch at most two 100 ms
    // windows). Bad input must add none: it never reaches a playout.
    const long disturbances = json_int(studio_stats, "underruns") + json_int(out, "underruns");
    INFO("windows " << windows.good << "/" << windows.total << ", playout underruns " << disturbances);
    REQUIRE(windows.total >= 30);
    CHECK(windows.total - windows.good <= static_cast<std::size_t>(1 + 2 * disturbances));
}
