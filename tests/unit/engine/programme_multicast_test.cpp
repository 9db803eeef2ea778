// Multicast delivery of run-time programmes: a group belongs to the smallest
// zone that holds all its members; a programme covering the whole group goes
// to the group once; one aimed at part of it goes by unicast to the targeted
// members that have an address, and is refused where none has. The group
// listeners here are joined on the loopback interface only.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "loa/engine/arbiter.h"
#include "loa/engine/engine.h"
#include "loa/engine/programme_manager.h"
#include "rtp_listener.h"

using namespace loa::engine;
using boost::asio::ip::udp;

namespace {

using Listener = loa::test::RtpListener;

EngineConfig engine_config() {
    EngineConfig c;
    c.engine.listen = udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0);
    c.engine.fanout_threads = 1;
    c.engine.realtime_priority = 0;
    // Group traffic stays on the loopback interface.
    c.engine.multicast_interface = boost::asio::ip::make_address("127.0.0.1");
    c.engine.multicast_loop = true;
    c.engine.multicast_ttl = 1;
    return c;
}

RuntimeProgramme tone(std::uint64_t id, Priority level, std::vector<std::string> zones) {
    RuntimeProgramme p;
    p.id = id;
    p.name = "tone-" + std::to_string(id);
    p.level = level;
    p.target_zones = std::move(zones);
    p.sequence = id;
    SourceConfig s;
    s.type = SourceConfig::Type::Tone;
    s.frequency_hz = 400.0 + 100.0 * static_cast<double>(id);
    p.sources.push_back(s);
    return p;
}

// Province P > district D > communes A and B; province Q beside it.
std::vector<ZoneSpec> zones() { return {{"P", ""}, {"D", "P"}, {"A", "D"}, {"B", "D"}, {"Q", ""}}; }

std::vector<udp::endpoint> sorted(std::vector<udp::endpoint> v) {
    std::sort(v.begin(), v.end());
    return v;
}

}  // namespace

TEST_CASE("topology_groups_are_named_by_their_key", "[arbiter][multicast]") {
    // Two groups owned by the same zone stay two groups.
    auto two = Topology::build({{"D", ""}, {"A", "D"}, {"B", "D"}},
                               {{"a", "A", false, "D", "g1"}, {"b", "B", false, "D", "g2"}, {"c", "B", false, "D", "g1"}});
    REQUIRE(two.ok());
    CHECK(two.value().group_count() == 2);
    CHECK(two.value().cluster_group(0) == two.value().cluster_group(2));
    CHECK(two.value().cluster_group(0) != two.value().cluster_group(1));
    // One group cannot belong to two zones.
    auto split = Topology::build({{"D", ""}, {"A", "D"}},
                                 {{"a", "A", false, "D", "g1"}, {"b", "A", false, "A", "g1"}});
    REQUIRE_FALSE(split.ok());
    CHECK(split.error().code == RpcCode::InvalidArgument);
    CHECK(split.error().message.find("g1") != std::string::npos);
}

TEST_CASE("multicast_group_carries_whole_zone_programmes_and_unicast_serves_parts", "[engine][multicast]") {
    SystemClock clock;
    Engine engine(engine_config(), clock);
    Listener group("239.255.71.1");
    Listener ua2, ub2, ub1;
    engine.start();
    ProgrammeManager manager(engine);
    // a1, a2, b1 listen on the group (a2 also has its own address); b2 is
    // unicast only. The group's members lie in A and B: it belongs to D.
    const auto g = group.endpoint();
    REQUIRE(manager
                .set_topology(zones(), {{"a1", "A", std::nullopt, g},
                                        {"a2", "A", ua2.endpoint(), g},
                                        {"b1", "B", std::nullopt, g},
                                        {"b2", "B", ub2.endpoint(), std::nullopt}})
                .ok());
    CHECK(manager.group_zone(g) == std::optional<std::string>("D"));

    // A scheduled programme to the district: one copy to the group, one to b2.
    REQUIRE(manager.start(tone(1, Priority::Scheduled, {"D"})).ok());
    const auto s1 = manager.info(1)->ssrc;
    CHECK(manager.destinations(1) == sorted({g, ub2.endpoint()}));
    CHECK(manager.info(1)->listeners == 4);
    CHECK(group.hears(s1));
    CHECK(ub2.hears(s1));
    CHECK(ua2.drain() == 0);  // a2 hears it through the group

    // A commune programme to A covers part of the group: a2 gets it by
    // unicast, a1 (group only) cannot be reached and stays with the group.
    const auto part = manager.start(tone(2, Priority::Commune, {"A"}));
    REQUIRE(part.ok());
    CHECK(part.value().targeted == 2);
    CHECK(part.value().reachable == 1);
    CHECK(part.value().unreachable.size() == 1);
    const auto s2 = manager.info(2)->ssrc;
    CHECK(manager.destinations(2) == std::vector<udp::endpoint>{ua2.endpoint()});
    CHECK(manager.destinations(1) == sorted({g, ub2.endpoint()}));
    CHECK(ua2.hears(s2));

    // Aimed at B, the group's targeted member there (b1) has no address:
    // refused, nothing started.
    const auto refused = manager.start(tone(3, Priority::Commune, {"B"}));
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == RpcCode::FailedPrecondition);
    CHECK_FALSE(manager.contains(3));

    // A province programme covers the group: it takes the group and b2, and
    // a2 hears it through the group (its own copy of programme 2 stops).
    REQUIRE(manager.start(tone(4, Priority::Province, {"P"})).ok());
    const auto s4 = manager.info(4)->ssrc;
    CHECK(manager.destinations(4) == sorted({g, ub2.endpoint()}));
    CHECK(manager.destinations(2).empty());
    CHECK(manager.destinations(1).empty());
    CHECK(manager.info(2)->state == ProgrammeState::Preempted);
    CHECK(group.hears(s4));
    CHECK(manager.stop(4));
    CHECK(manager.destinations(2) == std::vector<udp::endpoint>{ua2.endpoint()});
    CHECK(manager.destinations(1) == sorted({g, ub2.endpoint()}));

    // b1 leaves the group for its own address: the group now lies in A
    // alone, so programme 2 covers it and takes the group; programme 1
    // keeps B by unicast.
    REQUIRE(manager.put_cluster({"b1", "B", ub1.endpoint(), std::nullopt}).ok());
    CHECK(manager.group_zone(g) == std::optional<std::string>("A"));
    CHECK(manager.destinations(2) == std::vector<udp::endpoint>{g});
    CHECK(manager.destinations(1) == sorted({ub1.endpoint(), ub2.endpoint()}));
    CHECK(group.hears(s2));
    CHECK(ub1.hears(s1));

    // A member in another province: no zone owns the group any more, its
    // members are served by unicast only (a1 is then unreachable).
    REQUIRE(manager.put_cluster({"q1", "Q", std::nullopt, g}).ok());
    CHECK_FALSE(manager.group_zone(g).has_value());
    CHECK(manager.destinations(2) == std::vector<udp::endpoint>{ua2.endpoint()});
    REQUIRE(manager.remove_cluster("q1").ok());
    CHECK(manager.group_zone(g) == std::optional<std::string>("A"));
    CHECK(manager.destinations(2) == std::vector<udp::endpoint>{g});
    engine.stop();
}
