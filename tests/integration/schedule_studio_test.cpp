// A schedule with a studio window through loactl against a real engine, a
// real loa-studio and one loa-speaker on loopback: `schedules create
// --studio` with a window open now puts the studio on the air at once, the
// speaker plays loa-studio's live tone, the schedule is listed with its
// studio, the studio cannot be removed while the schedule names it, and bad
// requests are refused. Checked by the tone in the speaker's WAV output,
// not by timing.
#include <catch2/catch.hpp>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <regex>

#include "audio_check.h"
#include "integration_util.h"
#include "process.h"
#include "temp_dir.h"

using namespace loa;

namespace {
constexpr std::uint32_t kSsrc = 305419896;
}  // namespace

TEST_CASE("schedule_studio_window_plays_loa_studio_to_a_speaker", "[integration][control][schedules][studios]") {
    REQUIRE(std::filesystem::exists(LOA_STUDIO_BIN));
    test::TempDir dir("loa-sched-studio");
    unsigned speaker_port = 0;
    auto speaker = test::start_speaker("sp-a", dir / "a.wav", "127.0.0.1", speaker_port, dir / "speaker.log");

    // Schedules without a time zone take the engine's: UTC here, so the
    // test can name "now" from its own clock.
    std::ofstream(dir / "engine.toml") << "[engine]\nlisten = \"127.0.0.1:0\"\ningest_listen = \"127.0.0.1:0\"\n"
                                       << "state_dir = \"state\"\nrealtime_priority = 0\ntime_zone = \"UTC\"\n"
                                       << "[control]\nsocket = \"run/control.sock\"\n";
    test::Process engine({LOA_ENGINE_BIN, "--config", (dir / "engine.toml").string()}, (dir / "engine.log").string());
    unsigned ingest_port = 0;
    for (int i = 0; i < 5 && ingest_port == 0; ++i) {
        const auto line = engine.read_line(20000);
        REQUIRE(line);
        std::smatch m;
        const std::string l = *line;
        if (std::regex_match(l, m, std::regex("ingest 127\\.0\\.0\\.1:([0-9]+)"))) {
            ingest_port = static_cast<unsigned>(std::stoul(m[1]));
        }
    }
    REQUIRE(ingest_port != 0);
    test::LoactlClient ctl{(dir / "run/control.sock").string()};

    ctl.ok({"zones", "create", "p", "--name", "P", "--kind", "province"});
    ctl.ok({"clusters", "register", "sp-a", "--zone", "p", "--address", "127.0.0.1:" + std::to_string(speaker_port)});
    ctl.ok({"studios", "declare", "district-7", "--zone", "p", "--ssrc", std::to_string(kSsrc)});

    // Now, in UTC, to the second.
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    REQUIRE(gmtime_r(&now, &tm) != nullptr);
    char date[16], hms[16];
    std::strftime(date, sizeof date, "%Y-%m-%d", &tm);
    std::strftime(hms, sizeof hms, "%H:%M:%S", &tm);
    const std::vector<std::string> create{"schedules", "create", "--name", "live hour", "--zone", "p", "--date", date,
                                          "--start", hms, "--duration", "600", "--studio", "district-7"};

    // Refused, nothing stored: no window end (INVALID_ARGUMENT), an unknown
    // studio (NOT_FOUND), neither playlist nor studio (usage).
    auto bad = create;
    bad.erase(bad.begin() + 10, bad.begin() + 12);  // --duration 600
    CHECK(ctl.run(bad).status == 3);
    bad = create;
    bad.back() = "nope";
    CHECK(ctl.run(bad).status == 5);
    bad = create;
    bad.resize(bad.size() - 2);
    CHECK(ctl.run(bad).status == 64);
    CHECK(ctl.ok({"--json", "schedules", "list"}).find("\"schedules\"") == std::string::npos);

    // The window is open now: the studio goes on the air with the call.
    const auto id = std::stoull(ctl.ok(create));
    const auto listed = ctl.ok({"--json", "schedules", "list"});
    INFO(listed);
    CHECK(listed.find("\"studio\":\"district-7\"") != std::string::npos);
    CHECK(test::json_int(listed, "programme_id") > 0);
    const auto table = ctl.ok({"schedules", "list"});
    INFO(table);
    CHECK(table.find("studio district-7") != std::string::npos);
    CHECK(table.find("on air (live)") != std::string::npos);
    CHECK(ctl.ok({"--json", "programmes", "list"}).find("schedule:live hour") != std::string::npos);
    CHECK(ctl.run({"studios", "remove", "district-7"}).status == 9);  // FAILED_PRECONDITION: the schedule

    test::Process studio({LOA_STUDIO_BIN, "--to", "127.0.0.1:" + std::to_string(ingest_port), "--tone", "440",
                          "--duration", "3", "--ssrc", std::to_string(kSsrc), "--stats-json"},
                         (dir / "studio.log").string());
    (void)studio.read_all(30000);
    REQUIRE(studio.wait(30000) == std::optional<int>(0));
    CHECK(test::json_int(ctl.ok({"--json", "studios", "list"}), "accepted") >= 140);  // 150 sent on loopback

    // Deleting the schedule takes the studio off the air; then it may go.
    ctl.ok({"schedules", "delete", std::to_string(id)});
    CHECK(ctl.ok({"--json", "programmes", "list"}).find("schedule:live hour") == std::string::npos);
    ctl.ok({"studios", "remove", "district-7"});

    speaker->signal(SIGTERM);
    REQUIRE(speaker->wait(20000) == std::optional<int>(0));
    engine.signal(SIGTERM);
    REQUIRE(engine.wait(20000) == std::optional<int>(0));

    const auto pcm = test::read_wav(dir / "a.wav");
    const auto check = test::check_tone(pcm);
    CHECK(check.audible_samples >= static_cast<std::size_t>(2.5 * 48000));
    CHECK(check.fit.frequency_hz == Approx(440).margin(2));
    CHECK(test::tone_window_share(pcm, 440.0, 20.0) >= 0.85);
}
