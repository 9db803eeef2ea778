// Run-time programmes through loactl against a real engine: clusters
// registered with the addresses of two loa-speaker processes hear exactly
// the programme the arbiter gives them, and move when a higher level starts
// and stops.
#include <catch2/catch.hpp>

#include <filesystem>
#include <regex>

#include "audio_check.h"
#include "integration_util.h"
#include "process.h"
#include "temp_dir.h"

using namespace loa;

namespace {

// The tones heard, in order: 440 or 880 Hz (others ignored), see test::tone_sequence().
std::vector<int> tone_sequence(const std::vector<float>& pcm) { return test::tone_sequence(pcm, {440, 880}); }

}  // namespace

TEST_CASE("programmes_follow_priority_to_real_speakers", "[integration][control][programmes]") {
    test::TempDir dir("loa-prog");
    unsigned port_a = 0, port_b = 0;
    auto speaker_a = test::start_speaker("sp-a", dir / "a.wav", "127.0.0.1", port_a, dir / "a.log");
    auto speaker_b = test::start_speaker("sp-b", dir / "b.wav", "127.0.0.1", port_b, dir / "b.log");

    auto engine = test::start_control_engine(dir);
    const auto& ctl = engine.ctl;

    test::create_zone_tree(ctl);
    ctl.ok({"clusters", "register", "sp-a", "--zone", "p.d.a", "--address", "127.0.0.1:" + std::to_string(port_a)});
    ctl.ok({"clusters", "register", "sp-b", "--zone", "p.d.b", "--address", "127.0.0.1:" + std::to_string(port_b)});

    // A commune operator may not go above its level or outside its commune.
    const auto token_out = ctl.ok({"operators", "create", "op-a", "--role", "operator", "--zone", "p.d.a", "--level",
                                   "commune"});
    std::smatch m;
    REQUIRE(std::regex_search(token_out, m, std::regex("loa1_[0-9a-f]{64}")));
    const std::string token = m[0];
    CHECK(ctl.run({"programmes", "start", "--zone", "p.d.b", "--level", "commune", "--tone", "500"}, token).status ==
          7);
    CHECK(ctl.run({"programmes", "start", "--zone", "p.d.a", "--level", "district", "--tone", "500"}, token).status ==
          7);

    const auto a0 = test::file_size_or_0(dir / "a.wav");
    const auto first = std::stoull(
        ctl.ok({"programmes", "start", "--zone", "p.d.a", "--level", "commune", "--tone", "440"}, token));
    REQUIRE(test::wav_grows(dir / "a.wav", a0, 1.5));

    const auto a1 = test::file_size_or_0(dir / "a.wav");
    const auto b1 = test::file_size_or_0(dir / "b.wav");
    const auto second = std::stoull(ctl.ok(
        {"programmes", "start", "--zone", "p", "--level", "province", "--tone", "880", "--name", "province-test"}));
    REQUIRE(second != first);
    REQUIRE(test::wav_grows(dir / "a.wav", a1, 1.5));
    REQUIRE(test::wav_grows(dir / "b.wav", b1, 1.5));
    auto list = ctl.ok({"programmes", "list"});
    INFO(list);
    CHECK(list.find("preempted") != std::string::npos);
    CHECK(list.find("province-test") != std::string::npos);

    const auto a2 = test::file_size_or_0(dir / "a.wav");
    CHECK(ctl.ok({"programmes", "stop", std::to_string(second)}).find("stopped") != std::string::npos);
    REQUIRE(test::wav_grows(dir / "a.wav", a2, 1.5));
    list = ctl.ok({"programmes", "list"});
    CHECK(list.find("playing") != std::string::npos);
    CHECK(list.find("province-test") == std::string::npos);
    CHECK(ctl.run({"programmes", "stop", std::to_string(second)}).status == 5);  // NOT_FOUND

    // 4 zones, 2 clusters, 1 operator, 2 programmes started (then 1 stopped).
    const auto events = ctl.ok({"watch", "--after", "0", "--count", "9"});
    INFO(events);
    CHECK(events.find("started programme " + std::to_string(first)) != std::string::npos);

    speaker_a->signal(SIGTERM);
    speaker_b->signal(SIGTERM);
    REQUIRE(speaker_a->wait(20000) == std::optional<int>(0));
    REQUIRE(speaker_b->wait(20000) == std::optional<int>(0));
    engine.stop();

    // The engine rebuilds its programmes from the database: the commune
    // programme is back, with its id; the stopped one is not.
    {
        auto again = test::restart_control_engine(dir, "engine2.log");
        const auto restored = ctl.ok({"--json", "programmes", "list"});
        INFO(restored);
        CHECK(restored.find("\"id\":\"" + std::to_string(first) + "\"") != std::string::npos);
        CHECK(restored.find("\"id\":\"" + std::to_string(second) + "\"") == std::string::npos);
        CHECK(restored.find("PROGRAMME_PLAYING") != std::string::npos);
        again.stop();
    }

    const auto pcm_a = test::read_wav(dir / "a.wav");
    const auto pcm_b = test::read_wav(dir / "b.wav");
    // A: its commune programme, then the province programme, then back.
    CHECK(tone_sequence(pcm_a) == std::vector<int>{440, 880, 440});
    // B: only the province programme, clean.
    CHECK(tone_sequence(pcm_b) == std::vector<int>{880});
    CHECK(test::tone_window_share(pcm_b, 880.0, 20.0) >= 0.85);
}

TEST_CASE("catalogue_clip_programme_plays_once_and_pins_the_clip", "[integration][control][programmes][clips]") {
    test::TempDir dir("loa-progclip");
    unsigned port = 0;
    auto speaker = test::start_speaker("sp-a", dir / "a.wav", "127.0.0.1", port, dir / "a.log");
    auto engine = test::start_control_engine(dir);
    const auto& ctl = engine.ctl;
    // 2 s of 880 Hz: played once it is followed by silence.
    const auto wav = (dir / "jingle.wav").string();
    REQUIRE(test::run_command({"sox", "-n", "-r", "48000", "-c", "1", "-b", "16", wav, "synth", "2", "sine", "880",
                               "gain", "-12"})
                .status == 0);
    ctl.ok({"zones", "create", "p", "--name", "P", "--kind", "province"});
    ctl.ok({"clips", "upload", wav, "--name", "jingle"});
    // The cluster is registered after the programme starts: it joins at once.
    const auto id = ctl.ok({"programmes", "start", "--zone", "p", "--level", "province", "--clip-id", "1"});
    const auto a0 = test::file_size_or_0(dir / "a.wav");
    ctl.ok({"clusters", "register", "sp-a", "--zone", "p", "--address", "127.0.0.1:" + std::to_string(port)});
    CHECK(ctl.run({"clips", "delete", "1"}).status == 9);  // FAILED_PRECONDITION: in use
    REQUIRE(test::wav_grows(dir / "a.wav", a0, 4.0));
    ctl.ok({"programmes", "stop", std::to_string(std::stoull(id))});
    ctl.ok({"clips", "delete", "1"});

    speaker->signal(SIGTERM);
    REQUIRE(speaker->wait(20000) == std::optional<int>(0));
    engine.stop();
    const auto pcm = test::read_wav(dir / "a.wav");
    // The jingle is heard (at most its 2 s: it joined after the start), then
    // the programme stays on air silent.
    const auto heard = tone_sequence(pcm);
    CHECK(heard == std::vector<int>{880});
    std::size_t loud = 0;
    for (const float v : pcm) loud += std::abs(v) > 0.05f ? 1u : 0u;
    CHECK(loud > 0);
    CHECK(loud < 48000 * 24 / 10);  // not looped: under 2.4 s of signal
}
