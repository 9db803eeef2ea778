// Emergency alerts through loactl against a real engine and two loa-speaker
// processes on loopback: the speaker of the targeted commune leaves the
// schedule for the attention chime and the alert's clip, confirms it (its
// report names the alert's SSRC with the amplifier on), and returns to the
// schedule when the alert has played; the other commune's speaker never
// hears the alert. Checked by the order of the tones in the speakers' WAV
// output, not by timing.
#include <catch2/catch.hpp>

#include <filesystem>
#include <regex>

#include "audio_check.h"
#include "integration_util.h"
#include "process.h"
#include "sine_wav.h"
#include "temp_dir.h"

using namespace loa;

TEST_CASE("alert_switches_targeted_speakers_and_back", "[integration][control][alerts]") {
    test::TempDir dir("loa-alerts");
    unsigned port_a = 0, port_b = 0;
    auto speaker_a = test::start_speaker("sp-a", dir / "a.wav", "127.0.0.1", port_a, dir / "a.log");
    auto speaker_b = test::start_speaker("sp-b", dir / "b.wav", "127.0.0.1", port_b, dir / "b.log");

    // Zones and clusters come from the config's seed, so the engine knows
    // the clusters' reports (live state, confirmation).
    const auto seed = test::zone_tree_seed() + test::cluster_seed("sp-a", port_a, "p.d.a") +
                      test::cluster_seed("sp-b", port_b, "p.d.b");
    auto engine = test::start_control_engine(dir, test::control_engine_toml("realtime_priority = 0\n", seed));
    const auto& ctl = engine.ctl;

    test::write_sine(dir / "message.wav", 660.0, 1.0, 0.4);
    const auto clip = test::json_int(ctl.ok({"--json", "clips", "upload", (dir / "message.wav").string()}), "id");
    REQUIRE(clip > 0);

    // The schedule: a 440 Hz programme to the whole province.
    const auto a0 = test::file_size_or_0(dir / "a.wav");
    const auto b0 = test::file_size_or_0(dir / "b.wav");
    ctl.ok({"programmes", "start", "--zone", "p", "--level", "scheduled", "--tone", "440", "--name", "schedule"});
    REQUIRE(test::wav_grows(dir / "a.wav", a0, 1.5));
    REQUIRE(test::wav_grows(dir / "b.wav", b0, 1.5));

    // A commune operator cannot raise an emergency alert, nor bad input pass.
    const auto token_out =
        ctl.ok({"operators", "create", "op-a", "--role", "operator", "--zone", "p.d.a", "--level", "commune"});
    std::smatch m;
    REQUIRE(std::regex_search(token_out, m, std::regex("loa1_[0-9a-f]{64}")));
    const std::string token = m[0];
    const auto clip_arg = std::to_string(clip);
    CHECK(ctl.run({"alerts", "raise", "--zone", "p.d.a", "--clip-id", clip_arg}, token).status == 7);
    CHECK(ctl.run({"alerts", "raise", "--zone", "p.d.a", "--clip-id", clip_arg, "--volume", "120"}).status == 3);
    CHECK(ctl.run({"alerts", "raise", "--zone", "p.d.a", "--clip-id", clip_arg, "--expires", "2001-01-01T00:00:00Z"})
              .status == 3);
    CHECK(ctl.run({"alerts", "raise", "--zone", "p.d.a", "--clip-id", clip_arg, "--expires", "tomorrow"}).status == 64);

    // The alert: chime + clip once, to commune A only, forced to 80 %.
    const auto id = ctl.ok({"alerts", "raise", "--zone", "p.d.a", "--clip-id", clip_arg, "--volume", "80",
                            "--duration", "60", "--name", "flood"});
    const std::string alert_id = std::to_string(std::stoull(id));
    // sp-a confirms it (reports the alert's SSRC with the amplifier on).
    std::string status;
    CHECK(test::wait_until([&] {
        status = ctl.run({"--json", "alerts", "status", alert_id}).out;
        return test::json_int(status, "clusters_confirmed") == 1;
    }));
    INFO(status);
    CHECK(status.find("\"confirmed\":[\"sp-a\"]") != std::string::npos);
    CHECK(test::json_int(status, "clusters_targeted") == 1);
    const auto human = ctl.ok({"alerts", "list"});
    CHECK(human.find("flood") != std::string::npos);

    // It ends by itself after its play; sp-a returns to the schedule.
    REQUIRE(test::wait_until([&] { return ctl.ok({"--json", "alerts", "list"}).find("\"alerts\"") == std::string::npos; },
                             std::chrono::seconds(30)));
    const auto a1 = test::file_size_or_0(dir / "a.wav");
    REQUIRE(test::wav_grows(dir / "a.wav", a1, 1.5));
    CHECK(ctl.run({"alerts", "cancel", alert_id}).status == 5);  // NOT_FOUND: already over

    // The event log tells the story.
    const auto last = test::json_int(ctl.ok({"--json", "status"}), "last_event_seq");
    REQUIRE(last > 0);
    const auto events = ctl.ok({"watch", "--after", "0", "--count", std::to_string(last)});
    INFO(events);
    CHECK(events.find("alert_raised  alert/" + alert_id) != std::string::npos);
    CHECK(events.find("alert_confirmation  alert/" + alert_id) != std::string::npos);
    CHECK(events.find("alert_ended  alert/" + alert_id) != std::string::npos);
    CHECK(events.find("every play done") != std::string::npos);

    speaker_a->signal(SIGTERM);
    speaker_b->signal(SIGTERM);
    REQUIRE(speaker_a->wait(20000) == std::optional<int>(0));
    REQUIRE(speaker_b->wait(20000) == std::optional<int>(0));
    engine.stop();

    const std::vector<int> known{440, 660, 853, 960};
    constexpr int kChime = test::kChimeLabel;
    // A: the schedule, the attention chime, the message, the schedule again;
    // no schedule audio between the chime and the message.
    CHECK(test::tone_sequence(test::read_wav(dir / "a.wav"), known) == std::vector<int>{440, kChime, 660, 440});
    // B: only the schedule.
    CHECK(test::tone_sequence(test::read_wav(dir / "b.wav"), known) == std::vector<int>{440});
}
