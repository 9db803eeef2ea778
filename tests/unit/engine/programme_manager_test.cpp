// Run-time programmes: the engine adds and removes programmes while it runs,
// and the ProgrammeManager moves clusters between their fan-out sets as the
// arbiter decides.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>

#include <catch2/catch.hpp>

#include "loa/engine/engine.h"
#include "loa/engine/programme_control.h"
#include "loa/engine/programme_manager.h"
#include "rtp_listener.h"
#include "temp_dir.h"

using namespace loa::engine;
using boost::asio::ip::udp;

namespace {

using Listener = loa::test::RtpListener;

EngineConfig engine_config() {
    EngineConfig c;
    c.engine.listen = udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0);
    c.engine.fanout_threads = 1;
    c.engine.realtime_priority = 0;
    return c;
}

RuntimeProgramme tone(std::uint64_t id, Priority level, std::vector<std::string> zones, double hz) {
    RuntimeProgramme p;
    p.id = id;
    p.name = "tone-" + std::to_string(id);
    p.level = level;
    p.target_zones = std::move(zones);
    p.sequence = id;
    SourceConfig s;
    s.type = SourceConfig::Type::Tone;
    s.frequency_hz = hz;
    p.sources.push_back(s);
    return p;
}

std::vector<ZoneSpec> zones() { return {{"P", ""}, {"A", "P"}, {"B", "P"}}; }

}  // namespace

TEST_CASE("runtime_programmes_added_and_removed_while_running", "[engine][runtime]") {
    SystemClock clock;
    Engine engine(engine_config(), clock);
    Listener a;

    // Before start: added and removed without a media thread.
    ProgramConfig pc;
    pc.name = "early";
    pc.ssrc = 0x1234;
    pc.sources.push_back(SourceConfig{});
    const auto g0 = engine.add_programme(pc);
    CHECK(engine.runtime_programme(g0) != nullptr);
    CHECK(engine.remove_programme(g0));
    CHECK_FALSE(engine.remove_programme(g0));
    engine.collect_programmes();
    CHECK(engine.runtime_programme_count() == 0);

    engine.start();
    const auto g1 = engine.add_programme(pc);
    const std::array<loa::transport::Destination, 1> dest{{{a.endpoint(), 0}}};
    CHECK(engine.set_programme_destinations(g1, dest) == 0);
    CHECK(a.hears(0x1234));
    CHECK(engine.remove_programme(g1));
    // The media thread lets go of it at its next frame boundary.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (engine.runtime_programme_count() != 0 && std::chrono::steady_clock::now() < until) {
        engine.collect_programmes();
        std::this_thread::yield();
    }
    CHECK(engine.runtime_programme_count() == 0);

    // Every slot can be used, and one more is refused.
    std::vector<std::uint32_t> groups;
    for (std::size_t i = 0; i < kMaxRuntimeProgrammes; ++i) {
        pc.ssrc = static_cast<std::uint32_t>(0x100 + i);
        groups.push_back(engine.add_programme(pc));
    }
    CHECK_THROWS_AS(engine.add_programme(pc), std::runtime_error);
    for (const auto g : groups) CHECK(engine.remove_programme(g));
    engine.stop();
    engine.collect_programmes();
    CHECK(engine.runtime_programme_count() == 0);
}

TEST_CASE("clusters_follow_the_arbiter_between_runtime_programmes", "[engine][runtime]") {
    SystemClock clock;
    Engine engine(engine_config(), clock);
    Listener a, b;
    engine.start();
    ProgrammeManager manager(engine);
    REQUIRE(manager.set_topology(zones(), {{"a", "A", a.endpoint()}, {"b", "B", b.endpoint()}}).ok());

    // Commune programme to zone A: only a hears it.
    REQUIRE(manager.start(tone(1, Priority::Commune, {"A"}, 440.0)).ok());
    const auto ssrc1 = manager.info(1)->ssrc;
    CHECK(a.hears(ssrc1));
    for (int i = 0; i < 10; ++i) REQUIRE(a.next_rtp().has_value());
    CHECK(b.drain() == 0);
    CHECK(manager.info(1)->state == ProgrammeState::Audible);
    CHECK(manager.info(1)->listeners == 1);

    // Province programme to both: both switch to it.
    REQUIRE(manager.start(tone(2, Priority::Province, {"P"}, 880.0)).ok());
    const auto ssrc2 = manager.info(2)->ssrc;
    REQUIRE(ssrc2 != ssrc1);
    CHECK(a.hears(ssrc2));
    CHECK(b.hears(ssrc2));
    CHECK(manager.info(1)->state == ProgrammeState::Preempted);
    CHECK(manager.info(1)->listeners == 0);
    CHECK(manager.info(2)->listeners == 2);
    CHECK(engine.destination_count(*engine.runtime_programme(*manager.group_of(1))) == 0);
    CHECK(engine.destination_count(*engine.runtime_programme(*manager.group_of(2))) == 2);
    // After the switch a hears only the province programme.
    for (int i = 0; i < 10; ++i) CHECK(a.next_rtp() == ssrc2);

    // A lower level cannot take them.
    REQUIRE(manager.start(tone(3, Priority::Scheduled, {"B"}, 660.0)).ok());
    CHECK(manager.info(3)->state == ProgrammeState::Preempted);

    // Stop the province programme: a returns to programme 1, b to programme 3.
    CHECK(manager.stop(2));
    CHECK_FALSE(manager.stop(2));
    CHECK(a.hears(ssrc1));
    CHECK(b.hears(manager.info(3)->ssrc));
    CHECK(manager.info(1)->state == ProgrammeState::Audible);
    CHECK(manager.list().size() == 2);

    // Unknown zone: refused, nothing changed.
    const auto bad = manager.start(tone(4, Priority::Commune, {"nowhere"}, 500.0));
    CHECK_FALSE(bad.ok());
    CHECK(bad.error().code == RpcCode::InvalidArgument);
    CHECK(manager.list().size() == 2);

    // A cluster moving zone moves between programmes.
    REQUIRE(manager.set_topology(zones(), {{"a", "A", a.endpoint()}, {"b", "A", b.endpoint()}}).ok());
    CHECK(b.hears(ssrc1));
    CHECK(manager.info(1)->listeners == 2);
    engine.stop();
}

TEST_CASE("programme_control_checks_scope_and_plays_to_store_clusters", "[engine][runtime]") {
    loa::test::TempDir dir("loa-runtime");
    Store store(dir / "state.db");
    SystemClock clock;
    Engine engine(engine_config(), clock);
    Listener a, b;
    store.write([&] {
        store.insert_zone({"P", "Province", ZoneKind::Province, ""});
        store.insert_zone({"A", "Commune A", ZoneKind::Commune, "P"});
        store.insert_zone({"B", "Commune B", ZoneKind::Commune, "P"});
        const auto ea = a.endpoint(), eb = b.endpoint();
        store.insert_cluster({"a", "a", "A", "127.0.0.1:" + std::to_string(ea.port()), "", true});
        store.insert_cluster({"b", "b", "B", "127.0.0.1:" + std::to_string(eb.port()), "", true});
        store.insert_cluster({"c", "c", "B", "", "", true});  // no address: unreachable
    });
    engine.start();
    ProgrammeManager manager(engine);
    ProgrammeControl control(store, manager, clock);
    REQUIRE(control.refresh_topology().ok());

    const Caller commune_a{"op-a", Role::Operator, "A", Priority::Commune};
    const Caller viewer{"view", Role::Viewer, "", Priority::Emergency};
    const Caller province{"op-p", Role::Operator, "P", Priority::Province};
    const auto admin = Caller::local_admin();

    ProgrammeRequest r;
    r.level = Priority::Commune;
    r.target_zones = {"A"};
    r.tone_hz = 440.0;

    CHECK(control.start(viewer, r).error().code == RpcCode::PermissionDenied);
    auto above = r;
    above.level = Priority::District;
    CHECK(control.start(commune_a, above).error().code == RpcCode::PermissionDenied);
    auto outside = r;
    outside.target_zones = {"B"};
    CHECK(control.start(commune_a, outside).error().code == RpcCode::PermissionDenied);
    auto clip = r;
    clip.source = ProgrammeRequest::Source::ClipPath;
    clip.clip_path = "/nonexistent.wav";
    CHECK(control.start(commune_a, clip).error().code == RpcCode::PermissionDenied);
    auto unknown = r;
    unknown.target_zones = {"Z"};
    CHECK(control.start(admin, unknown).error().code == RpcCode::InvalidArgument);
    CHECK(manager.list().empty());

    const auto first = control.start(commune_a, r);
    REQUIRE(first.ok());
    CHECK(a.hears(manager.info(first.value())->ssrc));

    auto all = r;
    all.level = Priority::Province;
    all.target_zones = {"P"};
    all.tone_hz = 880.0;
    const auto second = control.start(province, all);
    REQUIRE(second.ok());
    CHECK(a.hears(manager.info(second.value())->ssrc));
    CHECK(b.hears(manager.info(second.value())->ssrc));
    const auto infos = control.list(commune_a);
    REQUIRE(infos.size() == 2);  // both aim at A (P contains it)
    CHECK(manager.info(second.value())->targeted == 3);
    CHECK(manager.info(second.value())->listeners == 2);

    CHECK(control.stop(commune_a, second.value()).code == RpcCode::PermissionDenied);
    CHECK(control.stop(viewer, first.value()).code == RpcCode::PermissionDenied);
    CHECK(control.stop(province, 999).code == RpcCode::NotFound);
    CHECK(control.stop(province, second.value()).ok());
    CHECK(a.hears(manager.info(first.value())->ssrc));

    // Disabling a cluster takes it off the air.
    store.write([&] {
        auto row = *store.cluster("a");
        row.enabled = false;
        store.update_cluster(row);
    });
    REQUIRE(control.refresh_topology().ok());
    CHECK(manager.info(first.value())->listeners == 0);
    engine.stop();
}

TEST_CASE("cluster_addresses_parse_as_host_port", "[engine][runtime]") {
    CHECK(ProgrammeControl::parse_endpoint("127.0.0.1:5004")->port() == 5004);
    CHECK(ProgrammeControl::parse_endpoint("[::1]:7000")->address().is_v6());
    CHECK_FALSE(ProgrammeControl::parse_endpoint(""));
    CHECK_FALSE(ProgrammeControl::parse_endpoint("127.0.0.1"));
    CHECK_FALSE(ProgrammeControl::parse_endpoint("127.0.0.1:0"));
    CHECK_FALSE(ProgrammeControl::parse_endpoint("127.0.0.1:99999"));
    CHECK_FALSE(ProgrammeControl::parse_endpoint("239.1.1.1:x"));
    CHECK_FALSE(ProgrammeControl::parse_endpoint("host:5004"));
}

TEST_CASE("running_programmes_restored_from_store", "[engine][runtime]") {
    loa::test::TempDir dir("loa-runtime-restore");
    Store store(dir / "state.db");
    SystemClock clock;
    Engine engine(engine_config(), clock);
    store.write([&] {
        store.insert_zone({"P", "Province", ZoneKind::Province, ""});
        store.insert_zone({"A", "Commune A", ZoneKind::Commune, "P"});
    });
    ProgrammeRequest r;
    r.name = "morning";
    r.level = Priority::Commune;
    r.target_zones = {"A", "P"};
    r.tone_hz = 523.25;
    std::uint64_t id = 0;
    std::uint64_t sequence = 0;
    {
        ProgrammeManager manager(engine);
        ProgrammeControl control(store, manager, clock);
        REQUIRE(control.refresh_topology().ok());
        const auto started = control.start(Caller::local_admin(), r);
        REQUIRE(started.ok());
        id = started.value();
        const auto row = control.row(id);
        REQUIRE(row);
        CHECK(row->zones == "A,P");
        CHECK(row->created_by == "local admin");
        sequence = row->sequence;
        store.write([&] { store.insert_programme(*row); });
    }
    // A broken row is reported and skipped.
    store.write([&] { store.insert_programme(ProgrammeRow{id + 5, "bad", 2, "nowhere", 0, "440", 1, 0, ""}); });

    ProgrammeManager manager(engine);
    ProgrammeControl control(store, manager, clock);
    REQUIRE(control.refresh_topology().ok());
    const auto problems = control.restore();
    REQUIRE(problems.size() == 1);
    CHECK(problems.front().find("programme " + std::to_string(id + 5)) != std::string::npos);
    const auto info = manager.info(id);
    REQUIRE(info);
    CHECK(info->name == "morning");
    CHECK(info->level == Priority::Commune);
    CHECK(info->target_zones == std::vector<std::string>{"A", "P"});
    CHECK(control.row(id)->sequence == sequence);
    // New ids continue after the restored ones.
    const auto next = control.start(Caller::local_admin(), r);
    REQUIRE(next.ok());
    CHECK(next.value() > id + 5);
}
