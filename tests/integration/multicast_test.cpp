// Multicast delivery of API programmes to real loa-speaker processes: two
// group-only speakers in two communes share one group (which therefore
// belongs to their district), a third speaker has a unicast address. A
// programme aimed at the district reaches the group with one send; one aimed
// at a single commune cannot reach its group-only speaker and is refused; a
// province programme takes the group over and gives it back. The group is
// joined on the loopback interface only (TTL 1).
#include <catch2/catch.hpp>

#include <filesystem>

#include "audio_check.h"
#include "integration_util.h"
#include "process.h"
#include "temp_dir.h"

using namespace loa;

TEST_CASE("multicast_group_serves_district_programmes_to_real_speakers", "[integration][control][multicast]") {
    test::TempDir dir("loa-mcast");
    const std::string group = "239.255.73.1";
    unsigned port = 0;
    auto ga = test::start_group_speaker("g-a", dir / "ga.wav", group, port, dir / "ga.log");
    auto gb = test::start_group_speaker("g-b", dir / "gb.wav", group, port, dir / "gb.log");
    unsigned port_u = 0;
    auto ua = test::start_speaker("u-a", dir / "ua.wav", "127.0.0.1", port_u, dir / "ua.log");

    auto engine = test::start_control_engine(
        dir, test::control_engine_toml("realtime_priority = 0\nmulticast_interface = \"127.0.0.1\"\n"
                                       "multicast_ttl = 1\nmulticast_loop = true\n"));
    const auto& ctl = engine.ctl;

    test::create_zone_tree(ctl);
    ctl.ok({"zones", "create", "q", "--name", "Q", "--kind", "province"});
    const std::string group_port = group + ":" + std::to_string(port);
    ctl.ok({"clusters", "register", "g-a", "--zone", "p.d.a", "--multicast", group_port});
    ctl.ok({"clusters", "register", "g-b", "--zone", "p.d.b", "--multicast", group_port});
    ctl.ok({"clusters", "register", "u-a", "--zone", "p.d.a", "--address", "127.0.0.1:" + std::to_string(port_u)});
    // A group belongs to one zone: a member in another province is refused.
    CHECK(ctl.run({"clusters", "register", "g-q", "--zone", "q", "--multicast", group_port}).status == 9);

    // Scheduled-level programme to the district: one copy to the group, one to u-a.
    const auto ga0 = test::file_size_or_0(dir / "ga.wav");
    const auto gb0 = test::file_size_or_0(dir / "gb.wav");
    const auto district = ctl.ok({"programmes", "start", "--zone", "p.d", "--level", "scheduled", "--tone", "440"});
    REQUIRE(test::wav_grows(dir / "ga.wav", ga0, 1.5));
    REQUIRE(test::wav_grows(dir / "gb.wav", gb0, 1.5));
    {
        const auto list = ctl.ok({"--json", "programmes", "list"});
        INFO(list);
        CHECK(test::json_int(list, "clusters_hearing") == 3);
    }

    // Commune A alone: its group-only member cannot be reached without
    // sending the group to commune B too. FAILED_PRECONDITION (exit 9).
    const auto part = ctl.run({"programmes", "start", "--zone", "p.d.a", "--level", "commune", "--tone", "660"});
    INFO(part.out);
    CHECK(part.status == 9);

    // A province programme takes the group over, then gives it back.
    const auto ga1 = test::file_size_or_0(dir / "ga.wav");
    const auto province = ctl.ok({"programmes", "start", "--zone", "p", "--level", "province", "--tone", "880"});
    REQUIRE(test::wav_grows(dir / "ga.wav", ga1, 1.5));
    const auto ga2 = test::file_size_or_0(dir / "ga.wav");
    ctl.ok({"programmes", "stop", std::to_string(std::stoull(province))});
    REQUIRE(test::wav_grows(dir / "ga.wav", ga2, 1.5));

    // The group-only speakers report to the engine (RTCP from their own
    // address): the engine sees them online.
    const auto clusters = ctl.ok({"--json", "clusters", "list"});
    INFO(clusters);
    CHECK(clusters.find("\"id\":\"g-a\"") != std::string::npos);
    REQUIRE(test::wait_until([&] {
        const auto g = ctl.ok({"--json", "clusters", "get", "g-b"});
        return g.find("\"online\":true") != std::string::npos;
    }));
    ctl.ok({"programmes", "stop", std::to_string(std::stoull(district))});

    for (auto* s : {ga.get(), gb.get(), ua.get()}) s->signal(SIGTERM);
    for (auto* s : {ga.get(), gb.get(), ua.get()}) REQUIRE(s->wait(20000) == std::optional<int>(0));
    engine.stop();

    // Every speaker heard the district programme, the province one over it,
    // and the district one again; nobody heard the refused commune tone.
    for (const auto* wav : {"ga.wav", "gb.wav", "ua.wav"}) {
        INFO(wav);
        const auto pcm = test::read_wav(dir / wav);
        CHECK(test::tone_sequence(pcm, {440, 660, 880}) == std::vector<int>{440, 880, 440});
    }
}
