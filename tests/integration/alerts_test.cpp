// Emergency alerts through loactl against a real engine and two loa-speaker
// processes on loopback: the speaker of the targeted commune leaves the
// schedule for the attention chime and the alert's clip, confirms it (its
// report names the alert's SSRC with the amplifier on), and returns to the
// schedule when the alert has played; the other commune's speaker never
// hears the alert. Checked by the order of the tones in the speakers' WAV
// output, not by timing.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>

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

// What was heard, in order: 100 ms windows fitted to one of `known` (+-5 Hz,
// SNR >= 20 dB; others ignored) and named by it, the two steps of the
// attention chime (960 and 853 Hz) both named kChime; runs of one name
// collapsed, runs shorter than 3 windows dropped. (The chime's exact steps
// are checked sample by sample in the unit tests; here a speaker's playout
// may stretch a window or two around the switch.)
constexpr int kChime = 1;
std::vector<int> tone_sequence(const std::vector<float>& pcm, const std::vector<int>& known) {
    constexpr std::size_t kWin = 4800;
    std::vector<std::pair<int, int>> runs;
    for (std::size_t at = 0; at + kWin <= pcm.size(); at += kWin) {
        const auto fit = codecs::fit_tone(std::span<const float>(pcm.data() + at, kWin));
        int tone = 0;
        for (const int hz : known) {
            if (fit.snr_db >= 20.0 && std::abs(fit.frequency_hz - hz) <= 5.0) tone = hz;
        }
        if (tone == 960 || tone == 853) tone = kChime;
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

void write_sine(const std::filesystem::path& path, double hz, double seconds) {
    codecs::WavWriter w(path, codecs::WavSampleFormat::Pcm16, 48000, 1);
    std::vector<float> buf(static_cast<std::size_t>(seconds * 48000));
    for (std::size_t i = 0; i < buf.size(); ++i) {
        buf[i] = static_cast<float>(0.4 * std::sin(2.0 * M_PI * hz * static_cast<double>(i) / 48000.0));
    }
    REQUIRE(w.write(buf) == codecs::Status::Ok);
    REQUIRE(w.close() == codecs::Status::Ok);
}

}  // namespace

TEST_CASE("alert_switches_targeted_speakers_and_back", "[integration][control][alerts]") {
    test::TempDir dir("loa-alerts");
    unsigned port_a = 0, port_b = 0;
    auto speaker_a = test::start_speaker("sp-a", dir / "a.wav", "127.0.0.1", port_a, dir / "a.log");
    auto speaker_b = test::start_speaker("sp-b", dir / "b.wav", "127.0.0.1", port_b, dir / "b.log");

    // Zones and clusters come from the config's seed, so the engine knows
    // the clusters' reports (live state, confirmation).
    std::ofstream(dir / "engine.toml")
        << "[engine]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\nrealtime_priority = 0\n"
        << "[control]\nsocket = \"run/control.sock\"\n"
        << "[[zone]]\nid = \"p\"\nname = \"P\"\nkind = \"province\"\n"
        << "[[zone]]\nid = \"p.d\"\nname = \"D\"\nkind = \"district\"\nparent = \"p\"\n"
        << "[[zone]]\nid = \"p.d.a\"\nname = \"A\"\nkind = \"commune\"\nparent = \"p.d\"\n"
        << "[[zone]]\nid = \"p.d.b\"\nname = \"B\"\nkind = \"commune\"\nparent = \"p.d\"\n"
        << "[[cluster]]\nid = \"sp-a\"\naddress = \"127.0.0.1:" << port_a << "\"\nzone = \"p.d.a\"\n"
        << "[[cluster]]\nid = \"sp-b\"\naddress = \"127.0.0.1:" << port_b << "\"\nzone = \"p.d.b\"\n";
    test::Process engine({LOA_ENGINE_BIN, "--config", (dir / "engine.toml").string()}, (dir / "engine.log").string());
    REQUIRE(engine.read_line(20000));
    REQUIRE(engine.read_line(20000));
    Ctl ctl{(dir / "run/control.sock").string()};

    write_sine(dir / "message.wav", 660.0, 1.0);
    const auto clip = test::json_int(ctl.ok({"--json", "clips", "upload", (dir / "message.wav").string()}), "id");
    REQUIRE(clip > 0);

    // The schedule: a 440 Hz programme to the whole province.
    const auto a0 = size_of(dir / "a.wav");
    const auto b0 = size_of(dir / "b.wav");
    ctl.ok({"programmes", "start", "--zone", "p", "--level", "scheduled", "--tone", "440", "--name", "schedule"});
    REQUIRE(grows(dir / "a.wav", a0, 1.5));
    REQUIRE(grows(dir / "b.wav", b0, 1.5));

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
    const auto a1 = size_of(dir / "a.wav");
    REQUIRE(grows(dir / "a.wav", a1, 1.5));
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
    engine.signal(SIGTERM);
    REQUIRE(engine.wait(20000) == std::optional<int>(0));

    const std::vector<int> known{440, 660, 853, 960};
    // A: the schedule, the attention chime, the message, the schedule again;
    // no schedule audio between the chime and the message.
    CHECK(tone_sequence(test::read_wav(dir / "a.wav"), known) == std::vector<int>{440, kChime, 660, 440});
    // B: only the schedule.
    CHECK(tone_sequence(test::read_wav(dir / "b.wav"), known) == std::vector<int>{440});
}
