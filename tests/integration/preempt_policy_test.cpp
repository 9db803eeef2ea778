// A clip programme preempted on every cluster it reaches waits where it is
// and a real speaker hears the rest of it afterwards; with policy drop it
// ends instead (loactl programmes start --on-preempt).
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>

#include "audio_check.h"
#include "integration_util.h"
#include "process.h"
#include "sine_wav.h"
#include "temp_dir.h"

using namespace loa;

namespace {

// Waits until the speaker's WAV holds `seconds` more audio than it does now.
bool grows(const std::filesystem::path& wav, double seconds) {
    return test::wav_grows(wav, test::file_size_or_0(wav), seconds);
}

// 100 ms windows that hold a clean `hz` tone.
long windows_of(const std::vector<float>& pcm, int hz) {
    const auto labels = test::window_labels(pcm, {hz});
    return std::count(labels.begin(), labels.end(), hz);
}

}  // namespace

TEST_CASE("preempted_clip_resumes_on_a_speaker_and_drop_policy_ends_it", "[integration][control][programmes][preempt]") {
    test::TempDir dir("loa-preempt-policy");
    unsigned port = 0;
    auto speaker = test::start_speaker("sp-a", dir / "a.wav", "127.0.0.1", port, dir / "a.log");
    auto engine = test::start_control_engine(dir);
    const auto& ctl = engine.ctl;
    test::create_zone_tree(ctl, {"a"});
    ctl.ok({"clusters", "register", "sp-a", "--zone", "p.d.a", "--address", "127.0.0.1:" + std::to_string(port)});
    test::write_sine(dir / "clip.wav", 440.0, 2.0, 0.4);
    const auto clip = std::to_string(test::json_int(ctl.ok({"--json", "clips", "upload", (dir / "clip.wav").string()}), "id"));

    // Two seconds of 440 Hz played once, preempted for a second after half a second.
    ctl.ok({"programmes", "start", "--zone", "p.d.a", "--level", "commune", "--clip-id", clip, "--on-preempt",
            "resume", "--name", "clip"});
    REQUIRE(grows(dir / "a.wav", 0.5));
    const auto alarm = ctl.ok({"programmes", "start", "--zone", "p", "--level", "province", "--tone", "880"});
    REQUIRE(grows(dir / "a.wav", 1.0));
    auto list = ctl.ok({"programmes", "list"});
    INFO(list);
    CHECK(list.find("paused") != std::string::npos);
    ctl.ok({"programmes", "stop", alarm.substr(0, alarm.find('\n'))});
    REQUIRE(grows(dir / "a.wav", 2.0));

    // Policy drop: fully preempted, it is gone.
    ctl.ok({"programmes", "start", "--zone", "p.d.a", "--level", "commune", "--clip-id", clip, "--on-preempt", "drop",
            "--name", "dropper"});
    CHECK(ctl.ok({"programmes", "list"}).find("dropper") != std::string::npos);
    ctl.ok({"programmes", "start", "--zone", "p", "--level", "province", "--tone", "880"});
    list = ctl.ok({"--json", "programmes", "list"});
    CHECK(list.find("dropper") == std::string::npos);

    speaker->signal(SIGTERM);
    REQUIRE(speaker->wait(20000) == std::optional<int>(0));
    engine.stop();

    // The speaker heard most of the clip: it waited through the alarm
    // instead of running on unheard. Of its 2 s, the speaker drops the first
    // 0.5 s after the alarm (its preempt hold: a lower level is ignored until
    // the higher one has been quiet that long), so about 1.4 s is heard;
    // run on unheard, at most the 0.5 s before the alarm would be.
    const auto pcm = test::read_wav(dir / "a.wav");
    CHECK(windows_of(pcm, 440) >= 11);
    CHECK(windows_of(pcm, 880) >= 8);
}
