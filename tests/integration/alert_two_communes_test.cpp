// The alert scenario of the priorities issue, end to end on loopback: 20
// loa-speaker processes in two communes hear a commune schedule (a 440 Hz
// playlist); an emergency alert to one commune switches exactly its ten
// speakers to the attention chime and the alert's message (660 Hz), with no
// schedule audio in between, while the other ten keep the schedule; when the
// alert expires (in the silence after its play) all twenty hear the schedule
// again. Judged by the content and order of each speaker's WAV output, never
// by timing.
#include <catch2/catch.hpp>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <regex>

#include "audio_check.h"
#include "integration_util.h"
#include "process.h"
#include "sine_wav.h"
#include "temp_dir.h"

using namespace loa;

namespace {

constexpr int kPerCommune = 10;
constexpr int kSchedule = 440;
constexpr int kMessage = 660;
constexpr int kChime = test::kChimeLabel;  // 960 and 853 Hz, the two steps of the attention chime

// Windows of schedule audio between the first chime window and the last
// message window: must be none, not even a window shorter than a run.
int schedule_windows_inside_alert(const std::vector<int>& labels) {
    const auto first = std::find(labels.begin(), labels.end(), kChime);
    const auto last = std::find(labels.rbegin(), labels.rend(), kMessage);
    if (first == labels.end() || last == labels.rend()) return -1;
    return static_cast<int>(std::count(first, last.base(), kSchedule));
}

}  // namespace

TEST_CASE("alert_to_one_commune_of_twenty_speakers", "[integration][control][alerts]") {
    test::TempDir dir("loa-alert-2c");

    // Ten speakers in commune A, ten in commune B, known to the engine from the seed.
    std::vector<std::string> ids;
    std::vector<std::unique_ptr<test::Process>> speakers;
    std::string seed = test::zone_tree_seed();
    for (const char commune : {'a', 'b'}) {
        for (int i = 0; i < kPerCommune; ++i) {
            const std::string id = std::string("sp-") + commune + "-" + std::to_string(i);
            unsigned port = 0;
            // 21 processes share the cores here: a 60 ms floor under the adaptive
            // delay absorbs scheduler stalls, which are not what this test is about.
            speakers.push_back(test::start_speaker(id, dir / (id + ".wav"), "127.0.0.1", port, dir / (id + ".log"),
                                                   {"--min-delay-ms", "60"}));
            ids.push_back(id);
            seed += test::cluster_seed(id, port, std::string("p.d.") + commune);
        }
    }
    auto engine = test::start_control_engine(
        dir, test::control_engine_toml("realtime_priority = 0\nfanout_threads = 2\ntime_zone = \"UTC\"\n", seed));
    const auto& ctl = engine.ctl;

    // The commune schedule: a window open now, to both communes, playing a
    // 440 Hz clip eight times over (40 s, longer than the test).
    test::write_sine(dir / "schedule.wav", kSchedule, 5.0, 0.4);
    test::write_sine(dir / "message.wav", kMessage, 1.0, 0.4);
    const auto sched_clip = std::to_string(
        test::json_int(ctl.ok({"--json", "clips", "upload", (dir / "schedule.wav").string()}), "id"));
    const auto message_clip = std::to_string(
        test::json_int(ctl.ok({"--json", "clips", "upload", (dir / "message.wav").string()}), "id"));
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    REQUIRE(gmtime_r(&now, &tm) != nullptr);
    char date[16], hms[16];
    std::strftime(date, sizeof date, "%Y-%m-%d", &tm);
    std::strftime(hms, sizeof hms, "%H:%M:%S", &tm);
    std::vector<std::string> create{"schedules", "create", "--name", "communes", "--zone", "p.d.a", "--zone",
                                    "p.d.b", "--level", "commune", "--date", date, "--start", hms,
                                    "--duration", "600", "--late", "restart"};
    for (int i = 0; i < 8; ++i) create.insert(create.end(), {"--item", sched_clip});
    ctl.ok(create);
    std::smatch m;
    const auto programmes = ctl.ok({"--json", "programmes", "list"});
    REQUIRE(std::regex_search(programmes, m, std::regex("\"name\":\"schedule:communes\"[^}]*\"ssrc\":([0-9]+)")));
    const std::string schedule_ssrc = m[1];

    // How many speakers report (RTCP, at once on every switch) playing `ssrc`.
    const auto playing = [&](const std::string& ssrc) {
        const auto list = ctl.ok({"--json", "clusters", "list", "--page-size", "100"});
        const std::regex re("\"playing_ssrc\":" + ssrc + "\\b");
        return std::distance(std::sregex_iterator(list.begin(), list.end(), re), std::sregex_iterator());
    };
    // Every speaker hears the schedule (it says so), then a second and a half of it.
    const auto heard_more = [&](const std::vector<std::uintmax_t>& from, double seconds) {
        return test::wait_until(
            [&] {
                for (std::size_t i = 0; i < ids.size(); ++i) {
                    const auto want = from[i] + static_cast<std::uintmax_t>(seconds * 96000);
                    if (test::file_size_or_0(dir / (ids[i] + ".wav")) < want) return false;
                }
                return true;
            },
            std::chrono::seconds(30));
    };
    std::vector<std::uintmax_t> sizes(ids.size(), 0);
    const auto snapshot_sizes = [&] {
        for (std::size_t i = 0; i < ids.size(); ++i) sizes[i] = test::file_size_or_0(dir / (ids[i] + ".wav"));
    };
    REQUIRE(test::wait_until([&] { return playing(schedule_ssrc) == 2 * kPerCommune; }));
    snapshot_sizes();
    REQUIRE(heard_more(sizes, 1.5));

    // loactl passes a live studio on: unknown here (NOT_FOUND), and one
    // without an expiry is refused (INVALID_ARGUMENT); nothing goes on air.
    CHECK(ctl.run({"alerts", "raise", "--zone", "p.d.a", "--studio", "nope", "--duration", "5"}).status == 5);
    CHECK(ctl.run({"alerts", "raise", "--zone", "p.d.a", "--studio", "nope"}).status == 3);

    // The alert to commune A: chime and message once, then 15 s of silence
    // before a second play that never comes: it expires 6 s in, during that
    // silence, whatever the load on the machine.
    const auto alert = std::stoull(ctl.ok({"alerts", "raise", "--zone", "p.d.a", "--clip-id", message_clip,
                                           "--repeats", "2", "--interval", "15", "--duration", "6", "--name",
                                           "flood"}));
    const auto alert_id = std::to_string(alert);

    // Exactly commune A's ten speakers confirm it.
    std::string status;
    CHECK(test::wait_until([&] {
        const auto r = ctl.run({"--json", "alerts", "status", alert_id});
        if (r.status != 0) return true;  // already over: checked below
        status = r.out;
        return test::json_int(status, "clusters_confirmed") == kPerCommune;
    }));
    INFO(status);
    CHECK(test::json_int(status, "clusters_targeted") == kPerCommune);
    CHECK(test::json_int(status, "clusters_confirmed") == kPerCommune);
    CHECK(status.find("sp-b-") == std::string::npos);

    // It expires; then every speaker is back on the schedule (says so) and
    // hears a second and a half of it.
    const auto no_alert = [&] { return ctl.ok({"--json", "alerts", "list"}).find("\"alerts\"") == std::string::npos; };
    REQUIRE(test::wait_until(no_alert, std::chrono::seconds(30)));
    REQUIRE(test::wait_until([&] { return playing(schedule_ssrc) == 2 * kPerCommune; }));
    snapshot_sizes();
    REQUIRE(heard_more(sizes, 1.5));

    const auto last = test::json_int(ctl.ok({"--json", "status"}), "last_event_seq");
    const auto events = ctl.ok({"watch", "--after", "0", "--count", std::to_string(last)});
    INFO(events);
    CHECK(events.find("alert_ended  alert/" + alert_id) != std::string::npos);
    CHECK(events.find("expired") != std::string::npos);
    CHECK(events.find("10 of 10 cluster(s) confirmed") != std::string::npos);

    for (auto& s : speakers) s->signal(SIGTERM);
    for (std::size_t i = 0; i < speakers.size(); ++i) {
        INFO(ids[i]);
        CHECK(speakers[i]->wait(20000) == std::optional<int>(0));
    }
    engine.stop();

    for (const auto& id : ids) {
        INFO(id);
        const auto labels = test::window_labels(test::read_wav(dir / (id + ".wav")), {kSchedule, kMessage, 853, 960});
        if (id.starts_with("sp-a-")) {
            // The schedule, the chime, the message, the schedule again; not
            // one window of schedule audio from the chime to the message.
            CHECK(test::label_sequence(labels) == std::vector<int>{kSchedule, kChime, kMessage, kSchedule});
            CHECK(schedule_windows_inside_alert(labels) == 0);
        } else {
            CHECK(test::label_sequence(labels) == std::vector<int>{kSchedule});
            CHECK(std::count(labels.begin(), labels.end(), kChime) == 0);
            CHECK(std::count(labels.begin(), labels.end(), kMessage) == 0);
        }
    }
}
