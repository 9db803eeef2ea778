// One studio on air twice, end to end on loopback: a province programme plays
// run-time studio "prov" to two loa-speaker processes (one in commune A, one
// in commune B of district D); an emergency alert with the same studio, raised for commune
// A while the programme plays it, is accepted. loa-studio then pushes a tone:
// sp-a hears it through the alert (and confirms the alert), sp-b through the
// programme. The alert is cancelled while the tone goes on: the programme
// still reads the studio and sp-a hears the rest through it. Judged by the
// tones in the speakers' WAV output and the engine's counters, not by timing.
#include <catch2/catch.hpp>

#include <filesystem>

#include "audio_check.h"
#include "integration_util.h"
#include "process.h"
#include "temp_dir.h"

using namespace loa;

namespace {
constexpr std::uint32_t kSsrc = 0x13579;
}  // namespace

TEST_CASE("studio_feeds_a_programme_and_an_emergency_alert_at_once", "[integration][control][studios][alerts]") {
    REQUIRE(std::filesystem::exists(LOA_STUDIO_BIN));
    test::TempDir dir("loa-studio-share");
    unsigned port_a = 0, port_b = 0;
    auto speaker_a = test::start_speaker("sp-a", dir / "a.wav", "127.0.0.1", port_a, dir / "a.log");
    auto speaker_b = test::start_speaker("sp-b", dir / "b.wav", "127.0.0.1", port_b, dir / "b.log");

    const auto seed = "[[zone]]\nid = \"p\"\nname = \"P\"\nkind = \"province\"\n"
                      "[[zone]]\nid = \"p.d\"\nname = \"D\"\nkind = \"district\"\nparent = \"p\"\n"
                      "[[zone]]\nid = \"p.a\"\nname = \"A\"\nkind = \"commune\"\nparent = \"p.d\"\n"
                      "[[zone]]\nid = \"p.b\"\nname = \"B\"\nkind = \"commune\"\nparent = \"p.d\"\n" +
                      test::cluster_seed("sp-a", port_a, "p.a") + test::cluster_seed("sp-b", port_b, "p.b");
    auto engine = test::start_control_engine(
        dir, test::control_engine_toml("ingest_listen = \"127.0.0.1:0\"\nrealtime_priority = 0\n", seed));
    const unsigned ingest_port = engine.read_ingest_port();
    REQUIRE(ingest_port != 0);
    const auto& ctl = engine.ctl;

    ctl.ok({"studios", "declare", "prov", "--zone", "p", "--ssrc", std::to_string(kSsrc), "--max-delay-ms", "400"});
    ctl.ok({"programmes", "start", "--zone", "p", "--level", "province", "--studio", "prov", "--name", "news"});
    // The studio is on air: the emergency takes it as well.
    const auto alert_id = std::to_string(std::stoull(ctl.ok(
        {"alerts", "raise", "--zone", "p.a", "--studio", "prov", "--no-tone", "--duration", "120", "--name", "flood"})));
    auto listed = ctl.ok({"--json", "studios", "list"});
    CHECK(test::json_int(listed, "readers") == 2);

    // loa-studio pushes a 440 Hz tone for 5 s (250 packets).
    test::Process studio({LOA_STUDIO_BIN, "--to", "127.0.0.1:" + std::to_string(ingest_port), "--tone", "440",
                          "--duration", "5", "--ssrc", std::to_string(kSsrc)},
                         (dir / "studio.log").string());
    // sp-a plays the alert (its SSRC, amplifier on) ...
    std::string status;
    CHECK(test::wait_until([&] {
        status = ctl.run({"--json", "alerts", "status", alert_id}).out;
        return test::json_int(status, "clusters_confirmed") == 1;
    }));
    INFO(status);
    CHECK(status.find("\"confirmed\":[\"sp-a\"]") != std::string::npos);
    // ... while the programme reads the studio too: a second of the tone.
    CHECK(test::wait_until([&] {
        listed = ctl.ok({"--json", "studios", "list"});
        return test::json_int(listed, "received") >= 50;
    }));

    // Cancelled during the tone: the programme keeps reading the studio
    // (its playout goes on receiving) and sp-a goes back to it.
    ctl.ok({"alerts", "cancel", alert_id});
    listed = ctl.ok({"--json", "studios", "list"});
    CHECK(test::json_int(listed, "readers") == 1);
    const auto received = test::json_int(listed, "received");
    CHECK(test::wait_until([&] {
        listed = ctl.ok({"--json", "studios", "list"});
        return test::json_int(listed, "received") >= received + 25;
    }));
    (void)studio.read_all(30000);
    REQUIRE(studio.wait(30000) == std::optional<int>(0));
    listed = ctl.ok({"--json", "studios", "list"});
    INFO(listed);
    CHECK(test::json_int(listed, "accepted") >= 240);  // 250 sent on loopback, counted once each
    CHECK(test::json_int(listed, "queue_full") <= 0);  // 0 (left out of the JSON)

    speaker_a->signal(SIGTERM);
    speaker_b->signal(SIGTERM);
    REQUIRE(speaker_a->wait(20000) == std::optional<int>(0));
    REQUIRE(speaker_b->wait(20000) == std::optional<int>(0));
    engine.stop();

    // Both speakers heard the tone throughout (5 s, 50 windows): sp-a first
    // through the alert, after the cancel through the programme.
    for (const auto* wav : {"a.wav", "b.wav"}) {
        INFO(wav);
        const auto windows = test::tone_windows(test::read_wav(dir / wav), 440.0, 20.0);
        CHECK(windows.good >= 38);  // 43..45 of 47 seen; without the programme after the cancel sp-a had < 30
    }
}
