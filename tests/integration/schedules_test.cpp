// Schedules through loactl against a real engine and one loa-speaker on
// loopback: a schedule whose window is open now starts its programme at
// once and the speaker plays the schedule's clip; the schedule is listed
// on air with its next windows, bad input is refused, and deleting it
// takes its programme off the air. Checked by the tone in the speaker's
// WAV output, not by timing.
#include <catch2/catch.hpp>

#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "audio_check.h"
#include "integration_util.h"
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

TEST_CASE("schedule_window_open_now_plays_its_clip", "[integration][control][schedules]") {
    test::TempDir dir("loa-schedules");
    unsigned port = 0;
    auto speaker = test::start_speaker("sp-a", dir / "a.wav", "127.0.0.1", port, dir / "a.log");

    // Schedules without a time zone take the engine's: UTC here, so the
    // test can name "now" from its own clock.
    std::ofstream(dir / "engine.toml")
        << "[engine]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\nrealtime_priority = 0\n"
        << "time_zone = \"UTC\"\n"
        << "[control]\nsocket = \"run/control.sock\"\n"
        << "[[zone]]\nid = \"p\"\nname = \"P\"\nkind = \"province\"\n"
        << "[[zone]]\nid = \"p.d\"\nname = \"D\"\nkind = \"district\"\nparent = \"p\"\n"
        << "[[zone]]\nid = \"p.d.a\"\nname = \"A\"\nkind = \"commune\"\nparent = \"p.d\"\n"
        << "[[cluster]]\nid = \"sp-a\"\naddress = \"127.0.0.1:" << port << "\"\nzone = \"p.d.a\"\n";
    test::Process engine({LOA_ENGINE_BIN, "--config", (dir / "engine.toml").string()}, (dir / "engine.log").string());
    REQUIRE(engine.read_line(20000));
    REQUIRE(engine.read_line(20000));
    Ctl ctl{(dir / "run/control.sock").string()};

    write_sine(dir / "news.wav", 660.0, 4.0);
    const auto clip = test::json_int(ctl.ok({"--json", "clips", "upload", (dir / "news.wav").string()}), "id");
    REQUIRE(clip > 0);
    const auto clip_arg = std::to_string(clip);

    // Now, in UTC, to the second.
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    REQUIRE(gmtime_r(&now, &tm) != nullptr);
    char date[16], hms[16];
    std::strftime(date, sizeof date, "%Y-%m-%d", &tm);
    std::strftime(hms, sizeof hms, "%H:%M:%S", &tm);
    const std::vector<std::string> create{"schedules", "create", "--name", "news", "--zone", "p.d.a",
                                          "--date", date, "--start", hms, "--duration", "600",
                                          "--late", "restart", "--item", clip_arg, "--item", "gap:600000"};

    // Bad input changes nothing: an unknown time zone, an unknown clip, an
    // unreadable item, an unknown weekday.
    auto bad = create;
    bad.insert(bad.end(), {"--tz", "Mars/Olympus_Mons"});
    CHECK(ctl.run(bad).status == 3);
    bad = create;
    bad[15] = "999";
    CHECK(ctl.run(bad).status == 3);
    bad = create;
    bad[15] = "twelve";
    CHECK(ctl.run(bad).status == 64);
    bad = create;
    bad.insert(bad.end(), {"--weekdays", "mon,funday"});
    CHECK(ctl.run(bad).status == 64);
    CHECK(ctl.ok({"--json", "schedules", "list"}).find("\"schedules\"") == std::string::npos);

    // The window is open now: the programme starts with the call.
    const auto a0 = size_of(dir / "a.wav");
    const auto id = std::stoull(ctl.ok(create));
    const auto listed = ctl.ok({"--json", "schedules", "list"});
    INFO(listed);
    CHECK(test::json_int(listed, "programme_id") > 0);
    CHECK(listed.find("\"time_zone\":\"UTC\"") != std::string::npos);
    const auto next = ctl.ok({"schedules", "next", "--hours", "24"});
    INFO(next);
    CHECK(next.find("news") != std::string::npos);
    CHECK(next.find("yes") != std::string::npos);  // on air
    CHECK(ctl.ok({"schedules", "list"}).find("on air") != std::string::npos);

    // The speaker plays the clip (4 s), then the schedule's silence.
    REQUIRE(test::wait_until([&] { return size_of(dir / "a.wav") >= a0 + static_cast<std::uintmax_t>(6 * 48000 * 2); },
                             std::chrono::seconds(30)));

    // Deleting it takes the programme off the air; the clip is free again.
    ctl.ok({"schedules", "delete", std::to_string(id)});
    CHECK(ctl.run({"schedules", "delete", std::to_string(id)}).status == 5);
    CHECK(ctl.ok({"--json", "programmes", "list"}).find("schedule:news") == std::string::npos);
    ctl.ok({"clips", "delete", clip_arg});

    const auto last = test::json_int(ctl.ok({"--json", "status"}), "last_event_seq");
    REQUIRE(last > 0);
    const auto events = ctl.ok({"watch", "--after", "0", "--count", std::to_string(last)});
    INFO(events);
    CHECK(events.find("schedule_created  schedule/" + std::to_string(id)) != std::string::npos);
    CHECK(events.find("programme_started  programme/") != std::string::npos);
    CHECK(events.find("schedule_deleted  schedule/" + std::to_string(id)) != std::string::npos);

    speaker->signal(SIGTERM);
    REQUIRE(speaker->wait(20000) == std::optional<int>(0));
    engine.signal(SIGTERM);
    REQUIRE(engine.wait(20000) == std::optional<int>(0));

    const auto pcm = test::read_wav(dir / "a.wav");
    const auto tone = test::check_tone(pcm);
    CHECK(tone.fit.frequency_hz == Approx(660.0).margin(5.0));
    CHECK(tone.audible_samples >= static_cast<std::size_t>(3.5 * 48000));
    CHECK(tone.audible_samples <= static_cast<std::size_t>(5.0 * 48000));
    // The speaker's playout settles in the first windows of a new stream.
    CHECK(test::tone_window_share(pcm, 660.0, 20.0) >= 0.85);
}
