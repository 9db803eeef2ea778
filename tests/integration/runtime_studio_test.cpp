// A studio declared at run time through loactl: a programme started from it
// with `programmes start --studio` carries loa-studio's live tone, pushed to
// the engine's ingest port, to a loa-speaker registered as a cluster; a
// second programme may read the same studio; the studio cannot be removed
// while a programme plays it.
#include <catch2/catch.hpp>

#include <filesystem>

#include "audio_check.h"
#include "integration_util.h"
#include "process.h"
#include "temp_dir.h"

using namespace loa;

namespace {
constexpr std::uint32_t kSsrc = 305419896;
}  // namespace

TEST_CASE("runtime_studio_feeds_a_programme_to_a_speaker", "[integration][control][studios]") {
    REQUIRE(std::filesystem::exists(LOA_STUDIO_BIN));
    test::TempDir dir("loa-rt-studio");
    unsigned speaker_port = 0;
    auto speaker = test::start_speaker("sp-a", dir / "a.wav", "127.0.0.1", speaker_port, dir / "speaker.log");

    // No [[studio]] in the config: the ingest socket opens for the control plane.
    auto engine = test::start_control_engine(
        dir, test::control_engine_toml("ingest_listen = \"127.0.0.1:0\"\nrealtime_priority = 0\n"));
    const unsigned ingest_port = engine.read_ingest_port();
    REQUIRE(ingest_port != 0);
    const auto& ctl = engine.ctl;

    ctl.ok({"zones", "create", "p", "--name", "P", "--kind", "province"});
    ctl.ok({"clusters", "register", "sp-a", "--zone", "p", "--address", "127.0.0.1:" + std::to_string(speaker_port)});
    CHECK(ctl.run({"studios", "declare", "district-7", "--zone", "p"}).status == 3);  // INVALID_ARGUMENT: no match
    ctl.ok({"studios", "declare", "district-7", "--zone", "p", "--ssrc", std::to_string(kSsrc), "--max-delay-ms",
            "400"});
    const auto id = std::stoull(
        ctl.ok({"programmes", "start", "--zone", "p", "--level", "province", "--studio", "district-7"}));
    // A second programme may read it too (each has its own queue); stopped again at once.
    const auto second = std::stoull(
        ctl.ok({"programmes", "start", "--zone", "p", "--level", "commune", "--studio", "district-7"}));
    CHECK(test::json_int(ctl.ok({"--json", "studios", "list"}), "readers") == 2);
    ctl.ok({"programmes", "stop", std::to_string(second)});

    test::Process studio({LOA_STUDIO_BIN, "--to", "127.0.0.1:" + std::to_string(ingest_port), "--tone", "440",
                          "--duration", "3", "--ssrc", std::to_string(kSsrc), "--stats-json"},
                         (dir / "studio.log").string());
    const auto studio_out = studio.read_all(30000);
    REQUIRE(studio.wait(30000) == std::optional<int>(0));

    const auto listed = ctl.ok({"--json", "studios", "list"});
    INFO(listed);
    CHECK(listed.find("\"latched_address\":\"127.0.0.1:") != std::string::npos);
    CHECK(test::json_int(listed, "programme_id") == static_cast<long>(id));
    CHECK(test::json_int(listed, "accepted") >= 140);  // 150 sent on loopback
    CHECK(ctl.run({"studios", "remove", "district-7"}).status == 9);  // FAILED_PRECONDITION: playing
    CHECK(ctl.ok({"studios", "list"}).find("district-7") != std::string::npos);

    ctl.ok({"programmes", "stop", std::to_string(id)});
    ctl.ok({"studios", "remove", "district-7"});
    // Every event so far (the speaker's cluster may also have come online).
    const auto last = test::json_int(ctl.ok({"--json", "status"}), "last_event_seq");
    REQUIRE(last >= 6);
    INFO("last_event_seq " << last);
    const auto events = ctl.ok({"watch", "--after", "0", "--count", std::to_string(last)});
    INFO(events);
    CHECK(events.find("studio_declared") != std::string::npos);
    CHECK(events.find("studio_removed") != std::string::npos);

    speaker->signal(SIGTERM);
    REQUIRE(speaker->wait(20000) == std::optional<int>(0));
    engine.stop();

    const auto pcm = test::read_wav(dir / "a.wav");
    const auto check = test::check_tone(pcm);
    CHECK(check.audible_samples >= static_cast<std::size_t>(2.5 * 48000));
    CHECK(check.fit.frequency_hz == Approx(440).margin(2));
    CHECK(test::tone_window_share(pcm, 440.0, 20.0) >= 0.85);
}
