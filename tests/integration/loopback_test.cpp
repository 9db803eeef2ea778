// Multi-process tests on loopback: the real loa-engine feeding real
// loa-speaker processes, and interop with GStreamer as a reference peer.

#include <catch2/catch.hpp>

#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "audio_check.h"
#include "integration_util.h"
#include "process.h"
#include "temp_dir.h"
#include "udp_receiver.h"

using namespace loa;

namespace {

using test::read_file;
using test::start_speaker;
using test::json_int;

const std::string kEngine = LOA_ENGINE_BIN;

void make_tone_clip(const std::filesystem::path& path, int seconds, int hz = 1000) {
    const auto cmd = "sox -q -n -r 48000 -c 1 -b 16 '" + path.string() + "' synth " + std::to_string(seconds) +
                     " sine " + std::to_string(hz) + " gain -6";
    REQUIRE(test::run_shell(cmd) == 0);
}

unsigned engine_port(test::Process& engine) {
    const auto line = engine.read_line(10000);
    REQUIRE(line);
    std::smatch m;
    const std::string l = *line;
    REQUIRE(std::regex_match(l, m, std::regex("listening [0-9.]+:([0-9]+)")));
    return static_cast<unsigned>(std::stoul(m[1]));
}

}  // namespace

TEST_CASE("engine_plays_tone_to_50_speakers", "[integration]") {
    test::TempDir dir("loa-fanout50");
    make_tone_clip(dir / "tone.wav", 10);
    constexpr int kSpeakers = 50;

    std::vector<std::unique_ptr<test::Process>> speakers;
    std::ostringstream cfg;
    cfg << "[engine]\nlisten = \"127.0.0.1:0\"\nfanout_threads = 2\n\n";
    std::ostringstream ids;
    for (int i = 0; i < kSpeakers; ++i) {
        const auto id = "sp-" + std::to_string(i);
        unsigned port = 0;
        // 51 processes share two cores here: a 60 ms floor under the adaptive
        // delay absorbs the scheduler's stalls, which are not what this test is about.
        speakers.push_back(start_speaker(id, dir / (id + ".wav"), "127.0.0.1", port, dir / (id + ".log"),
                                         {"--min-delay-ms", "60"}));
        cfg << "[[cluster]]\nid = \"" << id << "\"\naddress = \"127.0.0.1:" << port << "\"\n";
        ids << (i ? ", " : "") << '"' << id << '"';
    }
    cfg << "\n[[program]]\nname = \"tone\"\nclusters = [" << ids.str() << "]\n"
        << "  [[program.source]]\n  type = \"clip\"\n  path = \"tone.wav\"\n  loop = false\n";
    std::ofstream(dir / "engine.toml") << cfg.str();

    test::Process engine({kEngine, "--config", (dir / "engine.toml").string(), "--duration", "5", "--stats-out",
                          (dir / "stats.json").string()},
                         (dir / "engine.log").string());
    (void)engine_port(engine);
    const auto rc = engine.wait(30000);
    REQUIRE(rc);
    CHECK(*rc == 0);

    const auto stats = read_file(dir / "stats.json");
    INFO(stats);
    CHECK(json_int(stats, "send_errors") == 0);
    CHECK(json_int(stats, "frames_dropped") == 0);
    // Every speaker reported back (RTCP RR + SDES + LOAS) and is online.
    CHECK(std::regex_search(stats, std::regex("\"online\":false")) == false);

    for (auto& s : speakers) s->signal(SIGTERM);
    for (int i = 0; i < kSpeakers; ++i) {
        const auto id = "sp-" + std::to_string(i);
        INFO(id);
        const auto out = speakers[static_cast<std::size_t>(i)]->read_all(20000);
        const auto src = speakers[static_cast<std::size_t>(i)]->wait(20000);
        REQUIRE(src);
        CHECK(*src == 0);
        CHECK(json_int(out, "lost") == 0);
        CHECK(json_int(out, "received") >= 240);  // 5 s of 20 ms packets, less start-up
        CHECK(json_int(out, "malformed") == 0);
        const auto check = test::check_tone(test::read_wav(dir / (id + ".wav")));
        CHECK(check.audible_samples >= 4 * 48000);
        CHECK(check.fit.frequency_hz == Approx(1000).margin(2));
        // Judged in 100 ms windows: the adaptive playout may stretch by whole
        // pitch periods while it settles, which a single 4 s sine fit would
        // count as noise although nothing audible happened.
        CHECK(test::tone_window_share(test::read_wav(dir / (id + ".wav")), 1000.0, 20.0) >= 0.97);
    }
}

TEST_CASE("bad_config_exits_78_naming_the_key", "[integration]") {
    test::TempDir dir("loa-badcfg");
    std::ofstream(dir / "bad.toml") << "[engine]\nfanout_threads = \"many\"\n";
    test::Process engine({kEngine, "--config", (dir / "bad.toml").string()}, (dir / "err.log").string());
    const auto rc = engine.wait(10000);
    REQUIRE(rc);
    CHECK(*rc == 78);
    const auto err = read_file(dir / "err.log");
    CHECK(err.find("bad.toml") != std::string::npos);
    CHECK(err.find("engine.fanout_threads") != std::string::npos);
}

TEST_CASE("unreadable_clip_named_other_programmes_play", "[integration]") {
    test::TempDir dir("loa-badclip");
    std::ofstream(dir / "broken.wav") << "this is not audio";
    unsigned port = 0;
    auto speaker = start_speaker("ok-1", dir / "ok.wav", "127.0.0.1", port, dir / "speaker.log");
    std::ostringstream cfg;
    cfg << "[engine]\nlisten = \"127.0.0.1:0\"\n"
        << "[[cluster]]\nid = \"ok-1\"\naddress = \"127.0.0.1:" << port << "\"\n"
        << "[[program]]\nname = \"broken\"\ndestinations = [\"127.0.0.1:9\"]\n"
        << "  [[program.source]]\n  type = \"clip\"\n  path = \"broken.wav\"\n"
        << "[[program]]\nname = \"fine\"\nclusters = [\"ok-1\"]\n"
        << "  [[program.source]]\n  type = \"tone\"\n  frequency = 1000\n";
    std::ofstream(dir / "engine.toml") << cfg.str();
    test::Process engine({kEngine, "--config", (dir / "engine.toml").string(), "--duration", "3"},
                         (dir / "engine.log").string());
    const auto rc = engine.wait(20000);
    REQUIRE(rc);
    CHECK(*rc == 0);
    const auto log = read_file(dir / "engine.log");
    CHECK(log.find((dir / "broken.wav").string()) != std::string::npos);
    speaker->signal(SIGTERM);
    REQUIRE(speaker->wait(20000));
    const auto check = test::check_tone(test::read_wav(dir / "ok.wav"));
    CHECK(check.audible_samples >= 2 * 48000);
    CHECK(check.fit.frequency_hz == Approx(1000).margin(2));
}

TEST_CASE("refused_destination_counted_fanout_continues", "[integration]") {
    test::TempDir dir("loa-refused");
    unsigned port = 0;
    auto speaker = start_speaker("live", dir / "live.wav", "127.0.0.1", port, dir / "speaker.log");
    unsigned dead_port = 0;
    {
        test::UdpReceiver closed;  // bound then closed: nobody listens there
        dead_port = closed.endpoint().port();
    }
    std::ostringstream cfg;
    cfg << "[engine]\nlisten = \"127.0.0.1:0\"\n"
        << "[[program]]\nname = \"p\"\ndestinations = [\"127.0.0.1:" << dead_port << "\", \"127.0.0.1:" << port
        << "\"]\n  [[program.source]]\n  type = \"tone\"\n";
    std::ofstream(dir / "engine.toml") << cfg.str();
    test::Process engine({kEngine, "--config", (dir / "engine.toml").string(), "--duration", "3", "--stats-out",
                          (dir / "stats.json").string()},
                         (dir / "engine.log").string());
    REQUIRE(engine.wait(20000) == std::optional<int>(0));
    const auto stats = read_file(dir / "stats.json");
    INFO(stats);
    // The refusals (ICMP port unreachable) were seen and counted.
    CHECK(json_int(stats, "send_errors") + json_int(stats, "receive_errors") > 0);
    speaker->signal(SIGTERM);
    const auto out = speaker->read_all(20000);
    REQUIRE(speaker->wait(20000));
    CHECK(json_int(out, "lost") == 0);
    CHECK(json_int(out, "received") >= 140);
}
