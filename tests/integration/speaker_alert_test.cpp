// A real loa-speaker process and a real engine Program: an alert programme's
// packets (the first ones lost) switch the speaker's amplifier on through
// both hooks (--amp-command script and --amp-gpio file), the report sent at
// once says so with the forced volume, and the amplifier goes off at exit.

#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/stat.h>

#include <array>
#include <chrono>
#include <csignal>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "integration_util.h"
#include "loa/engine/program.h"
#include "loa/transport/cluster_status.h"
#include "loa/transport/rtcp_packet.h"
#include "loa/transport/udp_socket.h"

using namespace loa;
using boost::asio::ip::udp;

namespace {

// Reads RTCP on `s` until a LOAS status satisfies `pred` (10 s deadline).
template <typename Pred>
std::optional<transport::ClusterStatus> wait_status(udp::socket& s, Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::array<std::uint8_t, 1500> buf{};
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd pfd{s.native_handle(), POLLIN, 0};
        if (::poll(&pfd, 1, 100) <= 0) continue;  // wake on a datagram, re-check the deadline
        udp::endpoint from;
        boost::system::error_code ec;
        const std::size_t n = s.receive_from(boost::asio::buffer(buf), from, 0, ec);
        if (ec) continue;
        transport::RtcpCompound c;
        if (transport::parse_rtcp(std::span<const std::uint8_t>(buf.data(), n), c) != transport::Status::Ok) continue;
        if (c.app_count == 0) continue;
        transport::ClusterStatus st;
        if (transport::decode_cluster_status(c.apps[0].data, st) != transport::Status::Ok) continue;
        if (pred(st)) return st;
    }
    return std::nullopt;
}

}  // namespace

TEST_CASE("speaker_alert_switches_amplifier_hooks", "[integration][speaker][alert]") {
    test::TempDir dir("loa-spk-alert");
    const auto gpio = dir / "gpio-value";
    std::ofstream(gpio) << "x";
    const auto log = dir / "amp.log";
    const auto script = dir / "amp.sh";
    std::ofstream(script) << "#!/bin/sh\necho \"$1\" >> '" << log.string() << "'\n";
    REQUIRE(::chmod(script.c_str(), 0755) == 0);

    // The "engine": a Program fanning out from this socket to the speaker.
    boost::asio::io_context io;
    auto sock = transport::open_udp(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    const std::string engine_addr = "127.0.0.1:" + std::to_string(sock.local_endpoint().port());

    // A bad GPIO path is refused at start.
    {
        test::Process bad({LOA_SPEAKER_BIN, "--cluster-id", "x", "--listen", "127.0.0.1:0", "--engine", engine_addr,
                           "--null", "--amp-gpio", (dir / "missing" / "value").string()},
                          (dir / "bad.log").string());
        REQUIRE(bad.wait(20000) == std::optional<int>(2));
    }

    unsigned port = 0;
    auto spk = test::start_speaker("alert-1", dir / "out.wav", engine_addr, port, dir / "speaker.log",
                                   {"--amp-command", script.string(), "--amp-gpio", gpio.string(), "--no-amp-auto",
                                    "--volume", "70", "--report-interval-ms", "60000"});
    // The start report: nothing played, amplifier off, configured volume.
    auto st = wait_status(sock, [](const transport::ClusterStatus& s) { return s.playing_ssrc == 0; });
    REQUIRE(st);
    CHECK_FALSE(st->amplifier_on);
    CHECK(st->volume_pct == 70);
    // The hook switched the amplifier off at start (requests made before the
    // hook's thread gets to them are coalesced, so wait for this one).
    REQUIRE(test::wait_until([&] { return test::read_file(log) == "off\n"; }));
    CHECK(test::read_file(gpio) == "0");

    transport::FanoutSender fanout({}, sock.native_handle(), -1);
    const std::vector<transport::Destination> dests{
        {udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), static_cast<std::uint16_t>(port)), 0}};
    REQUIRE(fanout.set_destinations(0, dests) == 0);
    transport::PacketPool pool(64);
    engine::ManualClock clock;
    engine::ProgramConfig cfg;
    cfg.name = "alert";
    cfg.ssrc = 0xA1E70001;
    cfg.priority = engine::Priority::Emergency;
    cfg.alert = engine::AlertSignal{40};
    engine::SourceConfig tone;
    tone.frequency_hz = 1000;
    cfg.sources.push_back(tone);
    engine::Program prog(cfg, 0, "engine-test");
    // The first 5 packets are lost on the way (sent to nobody), then 20 arrive.
    for (int i = 0; i < 5; ++i) prog.skip_frames(1);
    for (int i = 0; i < 20; ++i) {
        prog.produce_frame(clock.now_ns(), clock.unix_ns(), pool, fanout, clock);
        clock.advance(20'000'000);
    }

    // The report sent at once on the switch: alert SSRC, amplifier on, forced volume.
    st = wait_status(sock, [](const transport::ClusterStatus& s) { return s.playing_ssrc == 0xA1E70001u; });
    REQUIRE(st);
    CHECK(st->amplifier_on);
    CHECK(st->volume_pct == 40);

    // The hook runs on its own thread: wait for the script before stopping
    // (a later "off" would otherwise replace an "on" not yet carried out).
    REQUIRE(test::wait_until([&] { return test::read_file(log) == "off\non\n"; }));
    CHECK(test::read_file(gpio) == "1");

    spk->signal(SIGTERM);
    REQUIRE(spk->wait(20000) == std::optional<int>(0));
    const auto stats = spk->read_all(5000);
    INFO(stats);
    CHECK(test::json_int(stats, "ssrc_changes") == 1);
    CHECK(test::json_int(stats, "malformed") == 0);
    // Off at start, on for the alert, off at exit: through both hooks.
    CHECK(test::read_file(log) == "off\non\noff\n");
    CHECK(test::read_file(gpio) == "0");
}
