// One-cluster topology changes of the programme manager (a cluster added,
// moved, disabled or removed) give what a full rebuild gives, and hand one
// cluster over, falling back to a rebuild on gaps.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine_test_util.h"
#include "loa/engine/engine.h"
#include "loa/engine/programme_control.h"
#include "loa/engine/programme_manager.h"
#include "loa/engine/store.h"
#include "temp_dir.h"

using namespace loa::engine;
using boost::asio::ip::udp;

namespace {

RuntimeProgramme tone_programme(std::uint64_t id, Priority level, std::vector<std::string> zones) {
    return loa::test::tone_programme(id, level, std::move(zones), 700.0);
}

}  // namespace

TEST_CASE("programme_manager_cluster_updates_match_a_full_rebuild", "[engine][preempt][incremental]") {
    SystemClock clock;
    Engine engine_inc(loa::test::loopback_engine_config(), clock);
    Engine engine_ref(loa::test::loopback_engine_config(), clock);
    ProgrammeManager inc(engine_inc);
    ProgrammeManager ref(engine_ref);
    std::mt19937 rng(7031);
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    auto chance = [&](double p) { return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < p; };

    const std::vector<ZoneSpec> zones = {{"P", ""},      {"D1", "P"},    {"D2", "P"},    {"C11", "D1"},
                                         {"C12", "D1"},  {"C21", "D2"},  {"V111", "C11"}, {"V121", "C12"},
                                         {"V211", "C21"}, {"V212", "C21"}};
    // Addresses from a small pool, so that two clusters sometimes share one.
    auto address = [&]() -> std::optional<udp::endpoint> {
        if (chance(0.2)) return std::nullopt;  // disabled or without an address
        return udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"),
                             static_cast<unsigned short>(20000 + pick(40)));
    };
    std::vector<RuntimeCluster> clusters;
    int next_cluster = 0;
    auto new_cluster = [&] {
        return RuntimeCluster{"k" + std::to_string(next_cluster++), zones[pick(zones.size())].id, address()};
    };
    for (int i = 0; i < 30; ++i) clusters.push_back(new_cluster());
    REQUIRE(inc.set_topology(zones, clusters).ok());
    REQUIRE(ref.set_topology(zones, clusters).ok());

    std::vector<std::uint64_t> ids;
    std::uint64_t next_id = 1;
    const std::vector<Priority> levels = {Priority::Scheduled, Priority::Commune, Priority::District,
                                          Priority::Province, Priority::Emergency};
    auto start = [&] {
        auto p = tone_programme(next_id++, levels[pick(levels.size())], {zones[pick(zones.size())].id});
        if (chance(0.3)) p.target_zones.push_back(zones[pick(zones.size())].id);
        p.kind = chance(0.6) ? ProgrammeKind::Clip : ProgrammeKind::Live;
        const auto policy = pick(5);
        p.policy = policy == 0 ? PreemptPolicy::Drop : policy == 1 ? PreemptPolicy::Restart : PreemptPolicy::Pause;
        REQUIRE(inc.start(p).ok());
        REQUIRE(ref.start(p).ok());
        ids.push_back(p.id);
    };
    for (int i = 0; i < 5; ++i) start();

    auto compare = [&] {
        for (const auto id : ids) {
            REQUIRE(inc.contains(id) == ref.contains(id));
            if (!inc.contains(id)) continue;
            const auto a = *inc.info(id);
            const auto b = *ref.info(id);
            INFO("programme " << id);
            REQUIRE(a.state == b.state);
            REQUIRE(a.listeners == b.listeners);
            REQUIRE(a.targeted == b.targeted);
            REQUIRE(a.paused == b.paused);
            REQUIRE(inc.destinations(id) == ref.destinations(id));
            // What the fan-out holds is what was published.
            REQUIRE(engine_inc.destination_count(*engine_inc.runtime_programme(*inc.group_of(id))) ==
                    inc.destinations(id).size());
        }
        std::map<std::string, std::uint64_t> heard_inc, heard_ref;
        for (std::uint32_t c = 0; c < inc.clusters().size(); ++c) {
            heard_inc[inc.clusters()[c].id] = inc.assignment()->programme_id_of(c);
        }
        for (std::uint32_t c = 0; c < ref.clusters().size(); ++c) {
            heard_ref[ref.clusters()[c].id] = ref.assignment()->programme_id_of(c);
        }
        REQUIRE(heard_inc == heard_ref);
    };
    compare();

    for (int step = 0; step < 600; ++step) {
        const auto op = pick(100);
        if (op < 50 && !clusters.empty()) {
            auto& c = clusters[pick(clusters.size())];
            if (op < 20) {
                c.address = c.address ? std::nullopt : address();  // disable / enable
            } else if (op < 35) {
                c.address = address();  // re-address
            } else {
                c.zone_id = zones[pick(zones.size())].id;  // move
            }
            REQUIRE(inc.put_cluster(c).ok());
        } else if (op < 72) {
            clusters.push_back(new_cluster());
            REQUIRE(inc.put_cluster(clusters.back()).ok());
        } else if (op < 94 && clusters.size() > 1) {
            const auto at = pick(clusters.size());
            const auto id = clusters[at].id;
            clusters.erase(clusters.begin() + static_cast<std::ptrdiff_t>(at));
            REQUIRE(inc.remove_cluster(id).ok());
        } else if (op < 97 && ids.size() < 12) {
            start();
        } else if (!ids.empty()) {
            const auto id = ids[pick(ids.size())];
            REQUIRE(inc.stop(id) == ref.stop(id));
        }
        REQUIRE(ref.set_topology(zones, clusters).ok());
        compare();
    }
    CHECK(inc.put_cluster({"bad", "nowhere", std::nullopt}).code == RpcCode::InvalidArgument);
    CHECK(inc.remove_cluster("nobody").code == RpcCode::NotFound);
    CHECK(inc.clusters().size() == clusters.size());
}

TEST_CASE("refresh_cluster_hands_over_one_cluster_and_falls_back_on_gaps", "[engine][preempt][incremental]") {
    loa::test::TempDir dir("loa-refresh-cluster");
    Store store(dir / "state.db");
    SystemClock clock;
    Engine engine(loa::test::loopback_engine_config(), clock);
    store.write([&] {
        store.insert_zone({"P", "Province", ZoneKind::Province, ""});
        store.insert_zone({"A", "Commune A", ZoneKind::Commune, "P"});
        store.insert_zone({"B", "Commune B", ZoneKind::Commune, "P"});
    });
    ProgrammeManager manager(engine);
    ProgrammeControl control(store, manager, clock);
    REQUIRE(control.refresh_topology().ok());
    ProgrammeRequest r;
    r.level = Priority::Commune;
    r.target_zones = {"A"};
    const auto prog = control.start(Caller::local_admin(), r);
    REQUIRE(prog.ok());
    const auto id = prog.value();
    auto ids = [&] {
        std::vector<std::string> out;
        for (const auto& c : manager.clusters()) out.push_back(c.id);
        return out;
    };
    auto write = [&](const std::function<void()>& body) { store.write(body); };

    // One write, one cluster: appended (a full read would order by id).
    write([&] { store.insert_cluster({"z", "z", "A", "127.0.0.1:7001", "", true}); });
    REQUIRE(control.refresh_cluster("z").ok());
    write([&] { store.insert_cluster({"m", "m", "A", "127.0.0.1:7002", "", true}); });
    REQUIRE(control.refresh_cluster("m").ok());
    CHECK(ids() == std::vector<std::string>{"z", "m"});
    CHECK(manager.destinations(id).size() == 2);
    CHECK(manager.info(id)->targeted == 2);

    // Disabled: still known, no longer sent to.
    write([&] {
        auto row = *store.cluster("z");
        row.enabled = false;
        store.update_cluster(row);
    });
    REQUIRE(control.refresh_cluster("z").ok());
    CHECK(manager.destinations(id).size() == 1);
    CHECK(manager.info(id)->listeners == 1);
    CHECK(manager.info(id)->targeted == 2);
    // Nothing written since: nothing to do.
    REQUIRE(control.refresh_cluster("z").ok());

    // Two writes before the refresh: everything is read again (by id).
    write([&] { store.insert_cluster({"b", "b", "B", "127.0.0.1:7003", "", true}); });
    write([&] { store.insert_cluster({"a", "a", "A", "127.0.0.1:7004", "", true}); });
    REQUIRE(control.refresh_cluster("a").ok());
    CHECK(ids() == std::vector<std::string>{"a", "b", "m", "z"});
    CHECK(manager.destinations(id).size() == 2);

    // A write rolled back still counts as a write.
    CHECK_THROWS(write([&] {
        store.insert_cluster({"x", "x", "A", "127.0.0.1:7005", "", true});
        throw std::runtime_error("rolled back");
    }));
    write([&] { store.delete_cluster("m"); });
    REQUIRE(control.refresh_cluster("m").ok());
    CHECK(ids() == std::vector<std::string>{"a", "b", "z"});

    // Removed alone: the last one takes its place.
    write([&] { store.delete_cluster("a"); });
    REQUIRE(control.refresh_cluster("a").ok());
    CHECK(ids() == std::vector<std::string>{"z", "b"});
    CHECK(manager.destinations(id).empty());
    CHECK(manager.info(id)->targeted == 1);

    // The same clusters as a fresh full read.
    ProgrammeManager fresh(engine);
    ProgrammeControl again(store, fresh, clock);
    REQUIRE(again.refresh_topology().ok());
    std::vector<std::string> fresh_ids;
    for (const auto& c : fresh.clusters()) fresh_ids.push_back(c.id);
    auto mine = ids();
    std::sort(mine.begin(), mine.end());
    CHECK(fresh_ids == mine);
}
