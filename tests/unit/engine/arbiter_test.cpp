#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "loa/engine/arbiter.h"
#include "loa/engine/assignment.h"

using namespace loa::engine;

namespace {

// p1 (province) > d1 (district) > c1, c2 (communes); c1 > v11, v12; c2 > v21.
std::vector<ZoneSpec> zones() {
    return {{"p1", ""}, {"d1", "p1"}, {"c1", "d1"}, {"c2", "d1"}, {"v11", "c1"}, {"v12", "c1"}, {"v21", "c2"}};
}

// Every cluster has a unicast address and no multicast group.
Topology unicast_topology() {
    auto t = Topology::build(zones(), {{"k11", "v11", true, ""},
                                       {"k12", "v12", true, ""},
                                       {"k21", "v21", true, ""},
                                       {"k2", "c2", true, ""}});
    REQUIRE(t.ok());
    return std::move(t).value();
}

ProgrammeSpec programme(std::uint64_t id, Priority level, std::vector<std::string> targets, std::uint64_t seq,
                        ProgrammeKind kind = ProgrammeKind::Live, PreemptPolicy policy = PreemptPolicy::Pause) {
    ProgrammeSpec p;
    p.id = id;
    p.level = level;
    p.target_zones = std::move(targets);
    p.sequence = seq;
    p.kind = kind;
    p.policy = policy;
    return p;
}

std::uint64_t plays(const Arbiter& arb, const Assignment& a, const std::string& cluster) {
    const auto c = arb.topology().cluster_index(cluster);
    REQUIRE(c);
    return a.programme_id_of(*c);
}

std::optional<ProgrammeEvent> event_of(const Decision& d, std::uint64_t id) {
    for (const auto& c : d.changes) {
        if (c.id == id) return c.event;
    }
    return std::nullopt;
}

std::vector<std::string> moved(const Arbiter& arb, const Decision& d, std::uint64_t from, std::uint64_t to) {
    std::vector<std::string> out;
    for (const auto& m : d.moves) {
        if (m.from == from && m.to == to) out.push_back(arb.topology().cluster_id(m.cluster));
    }
    std::sort(out.begin(), out.end());
    return out;
}

using Names = std::vector<std::string>;

}  // namespace

TEST_CASE("emergency_preempts_commune", "[arbiter]") {
    Arbiter arb(unicast_topology());
    REQUIRE(arb.add(programme(1, Priority::Commune, {"c1"}, 1)).ok());
    auto d = arb.decide();
    CHECK(plays(arb, *d.assignment, "k11") == 1);
    CHECK(plays(arb, *d.assignment, "k12") == 1);
    CHECK(plays(arb, *d.assignment, "k21") == 0);
    CHECK(event_of(d, 1) == ProgrammeEvent::Started);
    CHECK(moved(arb, d, 0, 1) == Names{"k11", "k12"});

    REQUIRE(arb.add(programme(2, Priority::Emergency, {"c1"}, 2)).ok());
    d = arb.decide();
    CHECK(plays(arb, *d.assignment, "k11") == 2);
    CHECK(plays(arb, *d.assignment, "k12") == 2);
    CHECK(plays(arb, *d.assignment, "k21") == 0);  // outside the alert: untouched
    CHECK(moved(arb, d, 1, 2) == Names{"k11", "k12"});
    CHECK(d.moves.size() == 2);
    CHECK(event_of(d, 2) == ProgrammeEvent::Started);
    CHECK(event_of(d, 1) == ProgrammeEvent::Preempted);
    CHECK(arb.state(1) == ProgrammeState::Preempted);
    CHECK(arb.state(2) == ProgrammeState::Audible);
    // The emergency ranks first in the snapshot and fans out to both clusters.
    REQUIRE(d.assignment->programme_count() == 2);
    CHECK(d.assignment->programme(0).id == 2);
    CHECK(d.assignment->programme(0).level == Priority::Emergency);
    CHECK(d.assignment->programme(0).listeners == 2);
    CHECK(d.assignment->programme(1).listeners == 0);
    CHECK(d.assignment->unicast_clusters(1).empty());
}

TEST_CASE("emergency_to_one_village_leaves_the_rest_of_the_commune", "[arbiter]") {
    Arbiter arb(unicast_topology());
    REQUIRE(arb.add(programme(1, Priority::Commune, {"c1"}, 1)).ok());
    REQUIRE(arb.add(programme(2, Priority::Emergency, {"v11"}, 2)).ok());
    const auto d = arb.decide();
    CHECK(plays(arb, *d.assignment, "k11") == 2);
    CHECK(plays(arb, *d.assignment, "k12") == 1);
    CHECK(arb.state(1) == ProgrammeState::Audible);
}

TEST_CASE("commune_cannot_preempt_province", "[arbiter]") {
    Arbiter arb(unicast_topology());
    REQUIRE(arb.add(programme(1, Priority::Province, {"p1"}, 1)).ok());
    REQUIRE(arb.add(programme(2, Priority::Commune, {"c1"}, 99)).ok());  // newer, but lower
    const auto d = arb.decide();
    for (const auto* c : {"k11", "k12", "k21", "k2"}) CHECK(plays(arb, *d.assignment, c) == 1);
    CHECK(event_of(d, 1) == ProgrammeEvent::Started);
    CHECK(event_of(d, 2) == ProgrammeEvent::Held);
    CHECK(arb.state(2) == ProgrammeState::Preempted);
}

TEST_CASE("tie_goes_to_newest", "[arbiter]") {
    Arbiter arb(unicast_topology());
    REQUIRE(arb.add(programme(1, Priority::District, {"d1"}, 10)).ok());
    REQUIRE(arb.add(programme(2, Priority::District, {"d1"}, 20)).ok());
    auto d = arb.decide();
    for (const auto* c : {"k11", "k12", "k21", "k2"}) CHECK(plays(arb, *d.assignment, c) == 2);

    // A newer district programme to one village takes just that village.
    REQUIRE(arb.add(programme(3, Priority::District, {"v11"}, 30)).ok());
    d = arb.decide();
    CHECK(plays(arb, *d.assignment, "k11") == 3);
    CHECK(plays(arb, *d.assignment, "k12") == 2);
    CHECK(d.moves.size() == 1);

    // Same level and same sequence: the higher id wins (a total order).
    Arbiter arb2(unicast_topology());
    REQUIRE(arb2.add(programme(7, Priority::Commune, {"c2"}, 5)).ok());
    REQUIRE(arb2.add(programme(8, Priority::Commune, {"c2"}, 5)).ok());
    d = arb2.decide();
    CHECK(plays(arb2, *d.assignment, "k21") == 8);
}

TEST_CASE("overlapping_zones_pick_highest", "[arbiter]") {
    Arbiter arb(unicast_topology());
    REQUIRE(arb.add(programme(1, Priority::Background, {"p1"}, 1)).ok());
    REQUIRE(arb.add(programme(2, Priority::Scheduled, {"d1"}, 2)).ok());
    REQUIRE(arb.add(programme(3, Priority::Commune, {"c1", "v21"}, 3)).ok());
    REQUIRE(arb.add(programme(4, Priority::District, {"v12"}, 4)).ok());
    // A lower level aimed more narrowly does not win either.
    REQUIRE(arb.add(programme(5, Priority::Scheduled, {"v11"}, 5)).ok());
    const auto d = arb.decide();
    CHECK(plays(arb, *d.assignment, "k11") == 3);  // commune beats scheduled (narrower, newer)
    CHECK(plays(arb, *d.assignment, "k12") == 4);  // district beats commune
    CHECK(plays(arb, *d.assignment, "k21") == 3);  // second target of programme 3
    CHECK(plays(arb, *d.assignment, "k2") == 2);   // commune c2 itself: only the district-wide one
    CHECK(arb.state(1) == ProgrammeState::Preempted);
    CHECK(arb.state(5) == ProgrammeState::Preempted);
}

TEST_CASE("preempted_live_resumes", "[arbiter]") {
    Arbiter arb(unicast_topology());
    REQUIRE(arb.add(programme(1, Priority::Commune, {"c1"}, 1, ProgrammeKind::Live)).ok());
    (void)arb.decide();
    REQUIRE(arb.add(programme(2, Priority::Emergency, {"c1"}, 2)).ok());
    auto d = arb.decide();
    CHECK(event_of(d, 1) == ProgrammeEvent::Preempted);

    REQUIRE(arb.remove(2));
    CHECK_FALSE(arb.remove(2));
    d = arb.decide();
    CHECK(plays(arb, *d.assignment, "k11") == 1);
    CHECK(plays(arb, *d.assignment, "k12") == 1);
    CHECK(moved(arb, d, 2, 1) == Names{"k11", "k12"});
    CHECK(event_of(d, 1) == ProgrammeEvent::Resumed);
    CHECK(arb.state(1) == ProgrammeState::Audible);
    CHECK(d.assignment->programme_count() == 1);
}

TEST_CASE("preempted_clip_resumes_position", "[arbiter]") {
    Arbiter arb(unicast_topology());
    REQUIRE(arb.add(programme(1, Priority::Commune, {"c1"}, 1, ProgrammeKind::Clip, PreemptPolicy::Pause)).ok());
    CHECK(event_of(arb.decide(), 1) == ProgrammeEvent::Started);

    // One of its two clusters taken: the clip plays on for the other.
    REQUIRE(arb.add(programme(2, Priority::Emergency, {"v11"}, 2)).ok());
    auto d = arb.decide();
    CHECK_FALSE(event_of(d, 1));
    CHECK(arb.state(1) == ProgrammeState::Audible);
    CHECK(plays(arb, *d.assignment, "k12") == 1);

    // Both taken: now it pauses.
    REQUIRE(arb.add(programme(3, Priority::Province, {"v12"}, 3)).ok());
    d = arb.decide();
    CHECK(event_of(d, 1) == ProgrammeEvent::Preempted);
    CHECK(arb.state(1) == ProgrammeState::Preempted);

    // One preemptor ends: the clip resumes where it stopped; k12 rejoins it.
    REQUIRE(arb.remove(3));
    d = arb.decide();
    CHECK(event_of(d, 1) == ProgrammeEvent::Resumed);
    CHECK(moved(arb, d, 3, 1) == Names{"k12"});
    // The other ends: k11 rejoins the clip live (no event: it never paused).
    REQUIRE(arb.remove(2));
    d = arb.decide();
    CHECK_FALSE(event_of(d, 1));
    CHECK(moved(arb, d, 2, 1) == Names{"k11"});
}

TEST_CASE("preempted_clip_restart_and_drop_policies", "[arbiter]") {
    Arbiter arb(unicast_topology());
    REQUIRE(arb.add(programme(1, Priority::Commune, {"c1"}, 1, ProgrammeKind::Clip, PreemptPolicy::Restart)).ok());
    REQUIRE(arb.add(programme(2, Priority::Commune, {"c2"}, 2, ProgrammeKind::Clip, PreemptPolicy::Drop)).ok());
    // Beneath both communes, the district-wide clip is held from the start.
    REQUIRE(arb.add(programme(3, Priority::Scheduled, {"d1"}, 3, ProgrammeKind::Clip)).ok());
    auto d = arb.decide();
    CHECK(event_of(d, 3) == ProgrammeEvent::Held);
    REQUIRE(arb.add(programme(9, Priority::Emergency, {"d1"}, 9)).ok());
    d = arb.decide();
    CHECK(event_of(d, 1) == ProgrammeEvent::Preempted);
    CHECK(event_of(d, 2) == ProgrammeEvent::Dropped);
    CHECK_FALSE(event_of(d, 3));  // still preempted: nothing new
    CHECK_FALSE(arb.contains(2));
    CHECK(arb.contains(1));

    REQUIRE(arb.remove(9));
    d = arb.decide();
    CHECK(event_of(d, 1) == ProgrammeEvent::Restarted);
    CHECK_FALSE(event_of(d, 2));
    // c2's clusters return to the best remaining programme, not the dropped clip.
    CHECK(plays(arb, *d.assignment, "k21") == 3);
    CHECK(plays(arb, *d.assignment, "k2") == 3);
    CHECK(plays(arb, *d.assignment, "k11") == 1);
    CHECK(event_of(d, 3) == ProgrammeEvent::Resumed);  // still has k21, k2
}

TEST_CASE("clip_with_drop_policy_admitted_under_an_alert_is_dropped", "[arbiter]") {
    Arbiter arb(unicast_topology());
    REQUIRE(arb.add(programme(9, Priority::Emergency, {"p1"}, 9)).ok());
    REQUIRE(arb.add(programme(1, Priority::Commune, {"c1"}, 10, ProgrammeKind::Clip, PreemptPolicy::Drop)).ok());
    REQUIRE(arb.add(programme(2, Priority::Commune, {"c2"}, 10, ProgrammeKind::Clip, PreemptPolicy::Pause)).ok());
    const auto d = arb.decide();
    CHECK(event_of(d, 1) == ProgrammeEvent::Dropped);
    CHECK(event_of(d, 2) == ProgrammeEvent::Held);
    CHECK_FALSE(arb.contains(1));
}

TEST_CASE("programme_to_an_empty_zone_is_unheard_not_preempted", "[arbiter]") {
    auto t = Topology::build(zones(), {{"k11", "v11", true, ""}});
    REQUIRE(t.ok());
    Arbiter arb(std::move(t).value());
    auto r = arb.add(programme(1, Priority::Commune, {"c2"}, 1, ProgrammeKind::Clip, PreemptPolicy::Drop));
    REQUIRE(r.ok());
    CHECK(r.value().targeted == 0);
    const auto d = arb.decide();
    CHECK(event_of(d, 1) == ProgrammeEvent::Started);
    CHECK(arb.state(1) == ProgrammeState::Unheard);
    CHECK(arb.contains(1));
}

TEST_CASE("invalid_programmes_are_refused_and_nothing_changes", "[arbiter]") {
    Arbiter arb(unicast_topology());
    auto r = arb.add(programme(0, Priority::Commune, {"c1"}, 1));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == RpcCode::InvalidArgument);
    r = arb.add(programme(1, Priority::Commune, {}, 1));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == RpcCode::InvalidArgument);
    r = arb.add(programme(1, Priority::Commune, {"c1", "nowhere"}, 1));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == RpcCode::InvalidArgument);
    CHECK(r.error().message.find("nowhere") != std::string::npos);
    CHECK(arb.programme_count() == 0);
    REQUIRE(arb.add(programme(1, Priority::Commune, {"c1"}, 1)).ok());
    r = arb.add(programme(1, Priority::Province, {"p1"}, 2));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == RpcCode::AlreadyExists);
    CHECK(arb.programme_count() == 1);
}

TEST_CASE("invalid_topologies_are_refused", "[arbiter]") {
    auto t = Topology::build({{"a", "b"}, {"b", "a"}}, {});
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().code == RpcCode::InvalidArgument);
    t = Topology::build({{"a", ""}, {"a", ""}}, {});
    CHECK_FALSE(t.ok());
    t = Topology::build({{"a", "ghost"}}, {});
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().message.find("ghost") != std::string::npos);
    t = Topology::build(zones(), {{"k", "nowhere", true, ""}});
    CHECK_FALSE(t.ok());
    t = Topology::build(zones(), {{"k", "v11", true, ""}, {"k", "v12", true, ""}});
    CHECK_FALSE(t.ok());
    // A member must lie inside its multicast group's zone.
    t = Topology::build(zones(), {{"k", "v21", false, "c1"}});
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().message.find("c1") != std::string::npos);
}

TEST_CASE("topology_containment", "[arbiter]") {
    const auto t = unicast_topology();
    const auto p1 = *t.zone_index("p1");
    const auto c1 = *t.zone_index("c1");
    const auto v11 = *t.zone_index("v11");
    const auto v21 = *t.zone_index("v21");
    CHECK(t.zone_contains(p1, v11));
    CHECK(t.zone_contains(c1, v11));
    CHECK(t.zone_contains(v11, v11));
    CHECK_FALSE(t.zone_contains(c1, v21));
    CHECK_FALSE(t.zone_contains(v11, c1));
    CHECK(t.zone_parent(p1) == kNoIndex);
    CHECK(t.unicast_below(p1) == 4);
    CHECK(t.unicast_below(c1) == 2);
    CHECK(t.unicast_below(v21) == 1);
}

namespace {
// Commune c1 has a multicast group: m11 (v11) and m12 (v12) have no unicast
// address, u11 (v11) has one. k21 (v21) is plain unicast.
Topology multicast_topology() {
    auto t = Topology::build(zones(), {{"m11", "v11", false, "c1"},
                                       {"m12", "v12", false, "c1"},
                                       {"u11", "v11", true, "c1"},
                                       {"k21", "v21", true, ""},
                                       {"x21", "v21", false, ""}});  // no address at all
    REQUIRE(t.ok());
    return std::move(t).value();
}
}  // namespace

TEST_CASE("multicast_whole_zone_goes_by_group", "[arbiter]") {
    Arbiter arb(multicast_topology());
    const auto r = arb.add(programme(1, Priority::Commune, {"c1"}, 1));
    REQUIRE(r.ok());
    CHECK(r.value().targeted == 3);
    CHECK(r.value().reachable == 3);
    const auto d = arb.decide();
    const auto& a = *d.assignment;
    const auto slot = a.find(1);
    REQUIRE(slot != kNoIndex);
    CHECK(a.unicast_clusters(slot).empty());  // u11 hears it through the group too
    REQUIRE(a.multicast_groups(slot).size() == 1);
    CHECK(a.programme(slot).listeners == 3);
    CHECK(a.group_programme(0) == slot);
    for (const auto* c : {"m11", "m12", "u11"}) {
        CHECK(a.delivery_of(*arb.topology().cluster_index(c)) == Delivery::Multicast);
    }
}

TEST_CASE("multicast_partial_target_goes_unicast_where_possible", "[arbiter]") {
    Arbiter arb(multicast_topology());
    // v11 is part of c1's group: u11 is reached by unicast, m11 cannot be.
    const auto r = arb.add(programme(2, Priority::Emergency, {"v11"}, 2));
    REQUIRE(r.ok());
    CHECK(r.value().targeted == 2);
    CHECK(r.value().reachable == 1);
    REQUIRE(r.value().unreachable.size() == 1);
    CHECK(arb.topology().cluster_id(r.value().unreachable[0]) == "m11");

    auto d = arb.decide();
    CHECK(plays(arb, *d.assignment, "u11") == 2);
    CHECK(d.assignment->delivery_of(*arb.topology().cluster_index("u11")) == Delivery::Unicast);
    CHECK(plays(arb, *d.assignment, "m11") == 0);
    CHECK(d.assignment->group_programme(0) == kNoIndex);  // nothing for the whole group

    // With a commune programme on the whole group: the group carries it for
    // m11 and m12 while u11 takes the alert by unicast.
    REQUIRE(arb.add(programme(1, Priority::Commune, {"c1"}, 1)).ok());
    d = arb.decide();
    const auto& a = *d.assignment;
    CHECK(plays(arb, a, "m11") == 1);
    CHECK(plays(arb, a, "m12") == 1);
    CHECK(plays(arb, a, "u11") == 2);
    const auto alert = a.find(2);
    const auto commune = a.find(1);
    REQUIRE(a.unicast_clusters(alert).size() == 1);
    CHECK(arb.topology().cluster_id(a.unicast_clusters(alert)[0]) == "u11");
    CHECK(a.multicast_groups(alert).empty());
    REQUIRE(a.multicast_groups(commune).size() == 1);
    CHECK(a.unicast_clusters(commune).empty());
    CHECK(a.programme(commune).listeners == 2);
    CHECK(arb.state(1) == ProgrammeState::Audible);

    // The alert ends: u11 rejoins the commune programme through the group.
    REQUIRE(arb.remove(2));
    d = arb.decide();
    CHECK(moved(arb, d, 2, 1) == Names{"u11"});
    CHECK(d.assignment->delivery_of(*arb.topology().cluster_index("u11")) == Delivery::Multicast);
}

TEST_CASE("multicast_partial_target_without_unicast_is_refused", "[arbiter]") {
    Arbiter arb(multicast_topology());
    // v12 holds only m12, which has no unicast address.
    const auto r = arb.add(programme(3, Priority::Emergency, {"v12"}, 3));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == RpcCode::FailedPrecondition);
    CHECK(r.error().message.find("c1") != std::string::npos);
    CHECK(arb.programme_count() == 0);
    CHECK_FALSE(arb.check(programme(3, Priority::Emergency, {"v12"}, 3)).ok());
    // A non-member without any address is merely unreachable.
    const auto r2 = arb.add(programme(4, Priority::Commune, {"c2"}, 4));
    REQUIRE(r2.ok());
    CHECK(r2.value().reachable == 1);
    CHECK(r2.value().unreachable.size() == 1);
    const auto d = arb.decide();
    CHECK(plays(arb, *d.assignment, "x21") == 0);
    CHECK(d.assignment->delivery_of(*arb.topology().cluster_index("x21")) == Delivery::None);
}

TEST_CASE("set_topology_keeps_programmes_and_matches_clusters_by_id", "[arbiter]") {
    Arbiter arb(unicast_topology());
    REQUIRE(arb.add(programme(1, Priority::Commune, {"c1"}, 1)).ok());
    (void)arb.decide();
    // New order, one cluster added in c1, k2 removed.
    auto t = Topology::build(zones(), {{"k21", "v21", true, ""},
                                       {"k12", "v12", true, ""},
                                       {"new", "v11", true, ""},
                                       {"k11", "v11", true, ""}});
    REQUIRE(t.ok());
    arb.set_topology(std::move(t).value());
    const auto d = arb.decide();
    REQUIRE(d.moves.size() == 1);
    CHECK(arb.topology().cluster_id(d.moves[0].cluster) == "new");
    CHECK(d.moves[0].to == 1);
}

TEST_CASE("snapshot_layout_is_ordered_and_complete", "[arbiter]") {
    // 10 districts x 10 communes x 10 villages x 10 clusters = 10,000 clusters.
    std::vector<ZoneSpec> z{{"p", ""}};
    std::vector<ClusterSpec> c;
    for (int d = 0; d < 10; ++d) {
        const auto dn = "d" + std::to_string(d);
        z.push_back({dn, "p"});
        for (int m = 0; m < 10; ++m) {
            const auto mn = dn + "c" + std::to_string(m);
            z.push_back({mn, dn});
            for (int v = 0; v < 10; ++v) {
                const auto vn = mn + "v" + std::to_string(v);
                z.push_back({vn, mn});
                for (int k = 0; k < 10; ++k) c.push_back({vn + "k" + std::to_string(k), vn, true, ""});
            }
        }
    }
    auto t = Topology::build(std::move(z), std::move(c));
    REQUIRE(t.ok());
    Arbiter arb(std::move(t).value());
    REQUIRE(arb.add(programme(1, Priority::Scheduled, {"p"}, 1, ProgrammeKind::Clip)).ok());
    REQUIRE(arb.add(programme(2, Priority::Commune, {"d3c4"}, 2)).ok());
    REQUIRE(arb.add(programme(3, Priority::Emergency, {"d3"}, 3)).ok());
    const auto d = arb.decide();
    const auto& a = *d.assignment;
    CHECK(a.cluster_count() == 10000);
    CHECK(a.programme(a.find(3)).listeners == 1000);
    CHECK(a.programme(a.find(1)).listeners == 9000);
    CHECK(a.programme(a.find(2)).listeners == 0);
    std::size_t total = 0;
    for (std::size_t s = 0; s < a.programme_count(); ++s) {
        const auto u = a.unicast_clusters(s);
        CHECK(std::is_sorted(u.begin(), u.end()));
        for (const auto k : u) CHECK(a.programme_of(k) == s);
        total += u.size();
    }
    CHECK(total == 10000);
    CHECK(d.moves.size() == 10000);
}

namespace {
std::atomic<int> g_live{0};
struct Tracked {
    explicit Tracked(std::uint64_t v) : version(v) { g_live.fetch_add(1); }
    ~Tracked() { g_live.fetch_sub(1); }
    Tracked(const Tracked&) = delete;
    Tracked& operator=(const Tracked&) = delete;
    std::uint64_t version;
};
}  // namespace

TEST_CASE("snapshot_mailbox_hands_over_the_newest", "[arbiter]") {
    {
        SnapshotMailbox<Tracked> box;
        CHECK(box.acquire() == nullptr);
        box.publish(std::make_unique<const Tracked>(1));
        box.publish(std::make_unique<const Tracked>(2));  // replaces 1, never seen
        CHECK(g_live.load() == 1);
        const auto* s = box.acquire();
        REQUIRE(s != nullptr);
        CHECK(s->version == 2);
        CHECK(box.acquire() == s);  // nothing new: same snapshot
        box.publish(std::make_unique<const Tracked>(3));
        CHECK(box.acquire()->version == 3);
        CHECK(g_live.load() == 2);  // 2 retired, not yet collected
        CHECK(box.collect() == 1);
        CHECK(g_live.load() == 1);
    }
    CHECK(g_live.load() == 0);
}

TEST_CASE("snapshot_mailbox_across_threads", "[arbiter]") {
    constexpr std::uint64_t kLast = 20000;
    {
        SnapshotMailbox<Tracked> box;
        std::atomic<bool> bad_order{false};
        std::thread media([&] {
            std::uint64_t seen = 0;
            while (seen != kLast) {
                const auto* s = box.acquire();
                if (s == nullptr || s->version == seen) {
                    std::this_thread::yield();
                    continue;
                }
                if (s->version < seen) bad_order = true;
                seen = s->version;
            }
        });
        for (std::uint64_t v = 1; v <= kLast; ++v) box.publish(std::make_unique<const Tracked>(v));
        media.join();
        CHECK_FALSE(bad_order.load());
        box.collect();
        CHECK(g_live.load() == 1);  // only the current one is left
    }
    CHECK(g_live.load() == 0);
}

TEST_CASE("assignment_mailbox_carries_arbiter_decisions", "[arbiter]") {
    Arbiter arb(unicast_topology());
    AssignmentMailbox box;
    REQUIRE(arb.add(programme(1, Priority::Commune, {"c1"}, 1)).ok());
    box.publish(arb.decide().assignment);
    REQUIRE(arb.add(programme(2, Priority::Emergency, {"v11"}, 2)).ok());
    box.publish(arb.decide().assignment);
    const auto* a = box.acquire();
    REQUIRE(a != nullptr);
    CHECK(a->version() == 2);
    CHECK(a->programme_id_of(*arb.topology().cluster_index("k11")) == 2);
}
