// A clip programme preempted on every cluster it reaches waits where it is
// and a real speaker hears the rest of it afterwards; with policy drop it
// ends instead (loactl programmes start --on-preempt).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "audio_check.h"
#include "integration_util.h"
#include "loa/codecs/tone_analysis.h"
#include "loa/codecs/wav_writer.h"
#include "process.h"
#include "temp_dir.h"

using namespace loa;

namespace {

struct Ctl {
    std::string socket;
    std::string ok(std::vector<std::string> args) const {
        const auto r = test::run_command(test::loactl_argv("--socket", socket, args, {}));
        INFO(r.out);
        REQUIRE(r.status == 0);
        return r.out;
    }
};

void write_sine(const std::filesystem::path& path, double hz, double seconds) {
    codecs::WavWriter w(path, codecs::WavSampleFormat::Pcm16, 48000, 1);
    std::vector<float> buf(static_cast<std::size_t>(seconds * 48000));
    for (std::size_t i = 0; i < buf.size(); ++i) {
        buf[i] = static_cast<float>(0.4 * std::sin(2.0 * M_PI * hz * static_cast<double>(i) / 48000.0));
    }
    REQUIRE(w.write(buf) == codecs::Status::Ok);
    REQUIRE(w.close() == codecs::Status::Ok);
}

std::uintmax_t size_of(const std::filesystem::path& p) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(p, ec);
    return ec ? 0 : n;
}

// Waits until the speaker's WAV (pcm16 mono, 48 kHz, written in real time)
// holds `seconds` more audio than it does now.
bool grows(const std::filesystem::path& wav, double seconds) {
    const auto want = size_of(wav) + static_cast<std::uintmax_t>(seconds * 48000 * 2);
    return test::wait_until([&] { return size_of(wav) >= want; }, std::chrono::seconds(30));
}

// 100 ms windows that hold a clean `hz` tone.
int windows_of(const std::vector<float>& pcm, double hz) {
    constexpr std::size_t kWin = 4800;
    int n = 0;
    for (std::size_t at = 0; at + kWin <= pcm.size(); at += kWin) {
        const auto fit = codecs::fit_tone(std::span<const float>(pcm.data() + at, kWin));
        if (fit.snr_db >= 20.0 && std::abs(fit.frequency_hz - hz) <= 5.0) ++n;
    }
    return n;
}

}  // namespace

TEST_CASE("preempted_clip_resumes_on_a_speaker_and_drop_policy_ends_it", "[integration][control][programmes][preempt]") {
    test::TempDir dir("loa-preempt-policy");
    unsigned port = 0;
    auto speaker = test::start_speaker("sp-a", dir / "a.wav", "127.0.0.1", port, dir / "a.log");
    std::ofstream(dir / "engine.toml") << "[engine]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\n"
                                       << "realtime_priority = 0\n[control]\nsocket = \"run/control.sock\"\n";
    test::Process engine({LOA_ENGINE_BIN, "--config", (dir / "engine.toml").string()}, (dir / "engine.log").string());
    REQUIRE(engine.read_line(20000));
    REQUIRE(engine.read_line(20000));
    Ctl ctl{(dir / "run/control.sock").string()};
    ctl.ok({"zones", "create", "p", "--name", "P", "--kind", "province"});
    ctl.ok({"zones", "create", "p.d", "--name", "D", "--kind", "district", "--parent", "p"});
    ctl.ok({"zones", "create", "p.d.a", "--name", "A", "--kind", "commune", "--parent", "p.d"});
    ctl.ok({"clusters", "register", "sp-a", "--zone", "p.d.a", "--address", "127.0.0.1:" + std::to_string(port)});
    write_sine(dir / "clip.wav", 440.0, 2.0);
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
    engine.signal(SIGTERM);
    REQUIRE(engine.wait(20000) == std::optional<int>(0));

    // The speaker heard most of the clip: it waited through the alarm
    // instead of running on unheard. Of its 2 s, the speaker drops the first
    // 0.5 s after the alarm (its preempt hold: a lower level is ignored until
    // the higher one has been quiet that long), so about 1.4 s is heard;
    // run on unheard, at most the 0.5 s before the alarm would be.
    const auto pcm = test::read_wav(dir / "a.wav");
    CHECK(windows_of(pcm, 440.0) >= 11);
    CHECK(windows_of(pcm, 880.0) >= 8);
}
