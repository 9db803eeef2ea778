// Run-time programmes through loactl against a real engine: clusters
// registered with the addresses of two loa-speaker processes hear exactly
// the programme the arbiter gives them, and move when a higher level starts
// and stops.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "audio_check.h"
#include "integration_util.h"
#include "loa/codecs/tone_analysis.h"
#include "process.h"
#include "temp_dir.h"

using namespace loa;

namespace {
const std::string kEngine = LOA_ENGINE_BIN;

struct Ctl {
    std::string socket;
    test::CommandResult run(std::vector<std::string> args, const std::string& token = {}) const {
        return test::run_command(test::loactl_argv("--socket", socket, args, token));
    }
    std::string ok(std::vector<std::string> args, const std::string& token = {}) const {
        const auto r = run(args, token);
        INFO(r.out);
        REQUIRE(r.status == 0);
        return r.out;
    }
};

std::uintmax_t size_of(const std::filesystem::path& p) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(p, ec);
    return ec ? 0 : n;
}

// Waits until the speaker's WAV (pcm16 mono, 48 kHz, written in real time)
// holds `seconds` more audio than `from` bytes.
bool grows(const std::filesystem::path& wav, std::uintmax_t from, double seconds) {
    const auto want = from + static_cast<std::uintmax_t>(seconds * 48000 * 2);
    return test::wait_until([&] { return size_of(wav) >= want; }, std::chrono::seconds(30));
}

// The tones heard, in order: 100 ms windows fitted to 440 or 880 Hz (others
// ignored), runs of one tone collapsed, runs shorter than 3 windows dropped.
std::vector<int> tone_sequence(const std::vector<float>& pcm) {
    constexpr std::size_t kWin = 4800;
    std::vector<std::pair<int, int>> runs;
    for (std::size_t at = 0; at + kWin <= pcm.size(); at += kWin) {
        const auto fit = codecs::fit_tone(std::span<const float>(pcm.data() + at, kWin));
        int tone = 0;
        if (fit.snr_db >= 20.0 && std::abs(fit.frequency_hz - 440.0) <= 5.0) tone = 440;
        if (fit.snr_db >= 20.0 && std::abs(fit.frequency_hz - 880.0) <= 5.0) tone = 880;
        if (tone == 0) continue;
        if (!runs.empty() && runs.back().first == tone) {
            ++runs.back().second;
        } else {
            runs.emplace_back(tone, 1);
        }
    }
    std::vector<int> out;
    for (const auto& [tone, n] : runs) {
        if (n >= 3 && (out.empty() || out.back() != tone)) out.push_back(tone);
    }
    return out;
}
}  // namespace

TEST_CASE("programmes_follow_priority_to_real_speakers", "[integration][control][programmes]") {
    test::TempDir dir("loa-prog");
    unsigned port_a = 0, port_b = 0;
    auto speaker_a = test::start_speaker("sp-a", dir / "a.wav", "127.0.0.1", port_a, dir / "a.log");
    auto speaker_b = test::start_speaker("sp-b", dir / "b.wav", "127.0.0.1", port_b, dir / "b.log");

    std::ofstream(dir / "engine.toml") << "[engine]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\n"
                                       << "realtime_priority = 0\n[control]\nsocket = \"run/control.sock\"\n";
    test::Process engine({kEngine, "--config", (dir / "engine.toml").string()}, (dir / "engine.log").string());
    REQUIRE(engine.read_line(20000));
    REQUIRE(engine.read_line(20000));
    Ctl ctl{(dir / "run/control.sock").string()};

    ctl.ok({"zones", "create", "p", "--name", "P", "--kind", "province"});
    ctl.ok({"zones", "create", "p.d", "--name", "D", "--kind", "district", "--parent", "p"});
    ctl.ok({"zones", "create", "p.d.a", "--name", "A", "--kind", "commune", "--parent", "p.d"});
    ctl.ok({"zones", "create", "p.d.b", "--name", "B", "--kind", "commune", "--parent", "p.d"});
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

    const auto a0 = size_of(dir / "a.wav");
    const auto first = std::stoull(
        ctl.ok({"programmes", "start", "--zone", "p.d.a", "--level", "commune", "--tone", "440"}, token));
    REQUIRE(grows(dir / "a.wav", a0, 1.5));

    const auto a1 = size_of(dir / "a.wav");
    const auto b1 = size_of(dir / "b.wav");
    const auto second = std::stoull(ctl.ok(
        {"programmes", "start", "--zone", "p", "--level", "province", "--tone", "880", "--name", "province-test"}));
    REQUIRE(second != first);
    REQUIRE(grows(dir / "a.wav", a1, 1.5));
    REQUIRE(grows(dir / "b.wav", b1, 1.5));
    auto list = ctl.ok({"programmes", "list"});
    INFO(list);
    CHECK(list.find("preempted") != std::string::npos);
    CHECK(list.find("province-test") != std::string::npos);

    const auto a2 = size_of(dir / "a.wav");
    CHECK(ctl.ok({"programmes", "stop", std::to_string(second)}).find("stopped") != std::string::npos);
    REQUIRE(grows(dir / "a.wav", a2, 1.5));
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
    engine.signal(SIGTERM);
    REQUIRE(engine.wait(20000) == std::optional<int>(0));

    // The engine rebuilds its programmes from the database: the commune
    // programme is back, with its id; the stopped one is not.
    {
        test::Process again({kEngine, "--config", (dir / "engine.toml").string()}, (dir / "engine2.log").string());
        REQUIRE(again.read_line(20000));
        REQUIRE(again.read_line(20000));
        const auto restored = ctl.ok({"--json", "programmes", "list"});
        INFO(restored);
        CHECK(restored.find("\"id\":\"" + std::to_string(first) + "\"") != std::string::npos);
        CHECK(restored.find("\"id\":\"" + std::to_string(second) + "\"") == std::string::npos);
        CHECK(restored.find("PROGRAMME_PLAYING") != std::string::npos);
        again.signal(SIGTERM);
        REQUIRE(again.wait(20000) == std::optional<int>(0));
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
    std::ofstream(dir / "engine.toml") << "[engine]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\n"
                                       << "realtime_priority = 0\n[control]\nsocket = \"run/control.sock\"\n";
    test::Process engine({kEngine, "--config", (dir / "engine.toml").string()}, (dir / "engine.log").string());
    REQUIRE(engine.read_line(20000));
    REQUIRE(engine.read_line(20000));
    Ctl ctl{(dir / "run/control.sock").string()};
    // 2 s of 880 Hz: played once it is followed by silence.
    const auto wav = (dir / "jingle.wav").string();
    REQUIRE(test::run_command({"sox", "-n", "-r", "48000", "-c", "1", "-b", "16", wav, "synth", "2", "sine", "880",
                               "gain", "-12"})
                .status == 0);
    ctl.ok({"zones", "create", "p", "--name", "P", "--kind", "province"});
    ctl.ok({"clips", "upload", wav, "--name", "jingle"});
    // The cluster is registered after the programme starts: it joins at once.
    const auto id = ctl.ok({"programmes", "start", "--zone", "p", "--level", "province", "--clip-id", "1"});
    const auto a0 = size_of(dir / "a.wav");
    ctl.ok({"clusters", "register", "sp-a", "--zone", "p", "--address", "127.0.0.1:" + std::to_string(port)});
    CHECK(ctl.run({"clips", "delete", "1"}).status == 9);  // FAILED_PRECONDITION: in use
    REQUIRE(grows(dir / "a.wav", a0, 4.0));
    ctl.ok({"programmes", "stop", std::to_string(std::stoull(id))});
    ctl.ok({"clips", "delete", "1"});

    speaker->signal(SIGTERM);
    REQUIRE(speaker->wait(20000) == std::optional<int>(0));
    engine.signal(SIGTERM);
    REQUIRE(engine.wait(20000) == std::optional<int>(0));
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
