// loa-studio as a process: a tone pushed to a loa-speaker on loopback comes out
// as that tone; the click train's send-time log; bad command lines rejected
// with exit 64 and a message naming the problem.

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "audio_check.h"
#include "integration_util.h"
#include "process.h"
#include "temp_dir.h"

using namespace loa;

namespace {
const std::string kStudio = LOA_STUDIO_BIN;

using test::read_file;

std::uint64_t json_number(const std::string& json, const std::string& key) {
    std::smatch m;
    REQUIRE(std::regex_search(json, m, std::regex("\"" + key + "\":([0-9]+)")));
    return std::stoull(m[1]);
}

std::int64_t monotonic_now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}
}  // namespace

TEST_CASE("studio_tone_plays_on_speaker", "[integration][studio]") {
    REQUIRE(std::filesystem::exists(kStudio));
    test::TempDir dir("loa-studio-tone");
    unsigned speaker_port = 0;
    const auto speaker_proc =
        test::start_speaker("studio-peer", dir / "speaker.wav", "127.0.0.1", speaker_port, dir / "speaker.log");
    test::Process& speaker = *speaker_proc;
    const auto port = std::to_string(speaker_port);

    test::Process studio({kStudio, "--to", "127.0.0.1:" + port, "--tone", "440", "--duration", "3", "--ssrc",
                          "305419896", "--cname", "district-7", "--stats-json"},
                         (dir / "studio.log").string());
    const auto studio_out = studio.read_all(20000);
    REQUIRE(studio.wait(20000) == std::optional<int>(0));
    INFO(studio_out);
    CHECK(studio_out.rfind("sending 127.0.0.1:" + port + " from ", 0) == 0);
    CHECK(json_number(studio_out, "packets_sent") == 150);
    CHECK(json_number(studio_out, "frames_encoded") == 150);
    CHECK(json_number(studio_out, "send_errors") == 0);
    CHECK(json_number(studio_out, "rtcp_sent") >= 4);
    CHECK(json_number(studio_out, "rtcp_received") >= 1);  // the speaker's reports come back
    CHECK(json_number(studio_out, "rr_blocks") >= 1);

    speaker.signal(SIGTERM);
    const auto out = speaker.read_all(20000);
    REQUIRE(speaker.wait(20000) == std::optional<int>(0));
    INFO(out);
    CHECK(json_number(out, "playing_ssrc") == 305419896);
    CHECK(json_number(out, "received") == 150);
    CHECK(json_number(out, "sr_received") >= 3);
    const auto check = test::check_tone(test::read_wav(dir / "speaker.wav"));
    CHECK(check.audible_samples >= static_cast<std::size_t>(2.8 * 48000));
    CHECK(check.fit.frequency_hz == Approx(440).margin(2));
    // Judged in 100 ms windows: the speaker's adaptive playout may stretch by
    // whole pitch periods while it settles, which a single sine fit over the
    // whole output counts as noise although nothing audible happened.
    CHECK(test::tone_window_share(test::read_wav(dir / "speaker.wav"), 440.0, 20.0) >= 0.9);
}

TEST_CASE("studio_click_send_times_logged", "[integration][studio]") {
    REQUIRE(std::filesystem::exists(kStudio));
    test::TempDir dir("loa-studio-clicks");
    const auto before = monotonic_now_ns();
    // Nobody listens on the destination: sends still succeed on loopback UDP.
    test::Process studio({kStudio, "--to", "127.0.0.1:9", "--clicks", "100", "--duration", "1.05", "--ptime", "10",
                          "--print-send-times", (dir / "times.txt").string(), "--stats-json"},
                         (dir / "studio.log").string());
    const auto out = studio.read_all(20000);
    REQUIRE(studio.wait(20000) == std::optional<int>(0));
    const auto after = monotonic_now_ns();
    INFO(out << read_file(dir / "studio.log"));
    CHECK(json_number(out, "clicks") == 10);
    CHECK(json_number(out, "packets_sent") == 105);
    std::ifstream in(dir / "times.txt");
    std::vector<std::int64_t> times;
    for (std::int64_t t = 0; in >> t;) times.push_back(t);
    REQUIRE(times.size() == 10);
    CHECK(times.front() > before);
    CHECK(times.back() < after);
    for (std::size_t i = 1; i < times.size(); ++i) CHECK(times[i] - times[i - 1] == 100'000'000);
}

TEST_CASE("studio_bad_options_rejected", "[integration][studio]") {
    REQUIRE(std::filesystem::exists(kStudio));
    test::TempDir dir("loa-studio-bad");
    struct Case {
        std::vector<std::string> args;
        std::string message;
    };
    const std::vector<Case> cases = {
        {{"--tone", "440"}, "--to"},
        {{"--to", "127.0.0.1:5004", "--tone", "440", "--ptime", "30"}, "--ptime"},
        {{"--to", "127.0.0.1:5004", "--tone", "440", "--payload-type", "200"}, "--payload-type"},
        {{"--to", "127.0.0.1:5004", "--tone", "440", "--content", "noise"}, "--content"},
        {{"--to", "127.0.0.1:5004", "--tone", "440", "--clicks", "100"}, "excludes"},
        {{"--to", "127.0.0.1:5004", "--tone", "440", "--loop"}, "--file"},
        {{"--to", "127.0.0.1:5004", "--tone", "440", "--print-send-times", "x"}, "--clicks"},
        {{"--to", "127.0.0.1:5004", "--file", (dir / "missing.wav").string()}, "missing.wav"},
        {{"--to", "localhost:5004", "--tone", "440"}, "localhost"},
        {{"--to", "127.0.0.1:0", "--tone", "440"}, "port 0"},
        {{"--to", "127.0.0.1:5004", "--tone", "440", "--bitrate", "100"}, "--bitrate"},
        {{"--to", "127.0.0.1:5004", "--tone", "440", "--bogus"}, "--bogus"},
    };
    for (const auto& c : cases) {
        std::vector<std::string> argv{kStudio};
        argv.insert(argv.end(), c.args.begin(), c.args.end());
        std::string cmd;
        for (const auto& a : c.args) cmd += a + " ";
        INFO("loa-studio " << cmd);
        test::Process p(argv, (dir / "err.txt").string());
        const auto out = p.read_all(10000);
        REQUIRE(p.wait(10000) == std::optional<int>(64));
        const auto err = read_file(dir / "err.txt");
        INFO("stderr: " << err << "stdout: " << out);
        CHECK(err.find(c.message) != std::string::npos);
    }
}
