// One cluster at a time: Arbiter::put_cluster / erase_cluster must give what a
// full set_topology() + decide() gives, whichever path they take inside.

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "loa/engine/arbiter.h"
#include "loa/engine/assignment.h"

using namespace loa::engine;

namespace {

std::vector<ZoneSpec> tree() {
    return {{"p", ""},       {"d1", "p"},      {"d2", "p"},       {"c11", "d1"},   {"c12", "d1"},
            {"c21", "d2"},   {"v111", "c11"},  {"v112", "c11"},   {"v121", "c12"}, {"v211", "c21"},
            {"v212", "c21"}};
}

// Everything a decision says, keyed by cluster and programme ids.
struct Seen {
    std::map<std::string, std::pair<std::uint64_t, Delivery>> clusters;
    std::map<std::uint64_t, std::uint32_t> listeners;
    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> moves;
    std::vector<std::pair<std::uint64_t, ProgrammeEvent>> changes;
    std::map<std::uint64_t, std::optional<ProgrammeState>> states;
    bool operator==(const Seen&) const = default;
};

Seen seen(const Arbiter& arb, const Decision& d, const std::vector<std::uint64_t>& ids) {
    Seen s;
    const auto& t = arb.topology();
    const Assignment& a = *d.assignment;
    REQUIRE(a.cluster_count() == t.cluster_count());
    for (std::uint32_t c = 0; c < t.cluster_count(); ++c) {
        s.clusters[t.cluster_id(c)] = {a.programme_id_of(c), a.delivery_of(c)};
    }
    for (const auto& p : a.programmes()) s.listeners[p.id] = p.listeners;
    for (const auto& m : d.moves) s.moves[t.cluster_id(m.cluster)] = {m.from, m.to};
    for (const auto& c : d.changes) s.changes.emplace_back(c.id, c.event);
    for (const auto id : ids) s.states[id] = arb.state(id);
    return s;
}

// The snapshot's layout holds together: ascending unicast ranges that agree
// with the per-cluster fields, listener counts that add up.
void check_layout(const Assignment& a) {
    std::uint32_t unicast = 0;
    std::uint32_t begin = 0;
    for (std::size_t slot = 0; slot < a.programme_count(); ++slot) {
        const auto& p = a.programme(slot);
        REQUIRE(p.unicast_begin == begin);
        begin = p.unicast_end;
        const auto range = a.unicast_clusters(slot);
        REQUIRE(std::is_sorted(range.begin(), range.end()));
        for (const auto c : range) {
            REQUIRE(a.programme_of(c) == slot);
            REQUIRE(a.delivery_of(c) == Delivery::Unicast);
        }
        std::uint32_t hearing = 0;
        for (std::uint32_t c = 0; c < a.cluster_count(); ++c) hearing += a.programme_of(c) == slot ? 1u : 0u;
        REQUIRE(hearing == p.listeners);
        unicast += static_cast<std::uint32_t>(range.size());
    }
    std::uint32_t by_cluster = 0;
    for (std::uint32_t c = 0; c < a.cluster_count(); ++c) by_cluster += a.delivery_of(c) == Delivery::Unicast ? 1u : 0u;
    REQUIRE(by_cluster == unicast);
}

}  // namespace

TEST_CASE("incremental_cluster_changes_match_full_decisions", "[arbiter][incremental]") {
    std::mt19937 rng(20240611);
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    auto chance = [&](double p) { return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < p; };
    const auto zones = tree();

    // Clusters as the reference sees them (same order as the incremental
    // arbiter's topology, which the checks do not rely on).
    std::vector<ClusterSpec> clusters;
    int next_cluster = 0;
    auto new_cluster = [&]() {
        ClusterSpec c;
        c.id = "k" + std::to_string(next_cluster++);
        // A few join the multicast group of c21 (and live below it).
        if (chance(0.1)) {
            c.zone_id = chance(0.5) ? "v211" : "v212";
            c.multicast_zone = "c21";
        } else {
            c.zone_id = zones[pick(zones.size())].id;
        }
        c.has_unicast = chance(0.8);
        return c;
    };
    for (int i = 0; i < 40; ++i) clusters.push_back(new_cluster());

    auto built = Topology::build(zones, clusters);
    REQUIRE(built.ok());
    Arbiter inc(built.value());
    Arbiter ref(built.value());

    std::vector<std::uint64_t> ids;
    std::uint64_t next_id = 1;
    const std::vector<Priority> levels = {Priority::Background, Priority::Scheduled, Priority::Commune,
                                          Priority::District, Priority::Province, Priority::Emergency};
    auto add_programme = [&]() {
        ProgrammeSpec p;
        p.id = next_id++;
        p.level = levels[pick(levels.size())];
        const auto targets = 1 + pick(2);
        for (std::size_t i = 0; i < targets; ++i) p.target_zones.push_back(zones[pick(zones.size())].id);
        p.sequence = p.id;
        p.kind = chance(0.6) ? ProgrammeKind::Clip : ProgrammeKind::Live;
        const auto policy = pick(6);
        p.policy = policy == 0 ? PreemptPolicy::Drop : policy == 1 ? PreemptPolicy::Restart : PreemptPolicy::Pause;
        const auto a = inc.add(p);
        const auto b = ref.add(p);
        REQUIRE(a.ok() == b.ok());
        if (a.ok()) ids.push_back(p.id);
    };
    for (int i = 0; i < 6; ++i) add_programme();

    auto compare = [&](const Decision& di, const Decision& dr) {
        check_layout(*di.assignment);
        REQUIRE(seen(inc, di, ids) == seen(ref, dr, ids));
        for (const auto id : ids) REQUIRE(inc.contains(id) == ref.contains(id));
    };
    compare(inc.decide(), ref.decide());

    std::uint64_t version = 0;
    int incremental_ops = 0;
    for (int step = 0; step < 1500; ++step) {
        const auto op = pick(100);
        Result<Decision> di = Outcome::failure(RpcCode::Internal, "unset");
        if (op < 45 && !clusters.empty()) {
            // Enable, disable or re-address (unicast comes and goes) or move zone.
            auto c = clusters[pick(clusters.size())];
            if (op < 30) {
                c.has_unicast = !c.has_unicast;
            } else if (c.multicast_zone.empty()) {
                c.zone_id = zones[pick(zones.size())].id;
            }
            *std::find_if(clusters.begin(), clusters.end(), [&](const ClusterSpec& x) { return x.id == c.id; }) = c;
            di = inc.put_cluster(c);
        } else if (op < 70) {
            clusters.push_back(new_cluster());
            di = inc.put_cluster(clusters.back());
        } else if (op < 92 && clusters.size() > 1) {
            const auto at = pick(clusters.size());
            const auto id = clusters[at].id;
            clusters[at] = clusters.back();
            clusters.pop_back();
            di = inc.erase_cluster(id);
        } else if (op < 96) {
            add_programme();
            compare(inc.decide(), ref.decide());
            continue;
        } else if (!ids.empty()) {
            const auto id = ids[pick(ids.size())];
            REQUIRE(inc.remove(id) == ref.remove(id));
            compare(inc.decide(), ref.decide());
            continue;
        } else {
            continue;
        }
        REQUIRE(di.ok());
        auto t = Topology::build(zones, clusters);
        REQUIRE(t.ok());
        ref.set_topology(std::move(t).value());
        REQUIRE(inc.topology().cluster_count() == clusters.size());
        compare(di.value(), ref.decide());
        REQUIRE(di.value().assignment->version() > version);
        version = di.value().assignment->version();
        ++incremental_ops;
    }
    CHECK(incremental_ops > 1000);
    // Bad input changes nothing.
    CHECK(inc.put_cluster({"x", "nowhere", true, ""}).error().code == RpcCode::InvalidArgument);
    CHECK(inc.put_cluster({"", "p", true, ""}).error().code == RpcCode::InvalidArgument);
    CHECK(inc.erase_cluster("nobody").error().code == RpcCode::NotFound);
    CHECK(inc.topology().cluster_count() == clusters.size());
}

TEST_CASE("incremental_cluster_change_reports_one_move", "[arbiter][incremental]") {
    auto t = Topology::build(tree(), {{"a", "v111", true, ""}, {"b", "v121", true, ""}, {"c", "v211", true, ""}});
    REQUIRE(t.ok());
    Arbiter arb(std::move(t).value());
    ProgrammeSpec low;
    low.id = 1;
    low.level = Priority::Commune;
    low.target_zones = {"p"};
    low.sequence = 1;
    low.kind = ProgrammeKind::Clip;
    ProgrammeSpec high = low;
    high.id = 2;
    high.level = Priority::Province;
    high.target_zones = {"d1"};
    REQUIRE(arb.add(low).ok());
    REQUIRE(arb.add(high).ok());
    (void)arb.decide();
    CHECK(arb.aims_at(2, *arb.topology().zone_index("v111")));
    CHECK_FALSE(arb.aims_at(2, *arb.topology().zone_index("v211")));

    // c moves under d1: it alone moves, from 1 to 2.
    auto d = arb.put_cluster({"c", "c12", true, ""});
    REQUIRE(d.ok());
    REQUIRE(d.value().moves.size() == 1);
    CHECK(arb.topology().cluster_id(d.value().moves[0].cluster) == "c");
    CHECK(d.value().moves[0].from == 1);
    CHECK(d.value().moves[0].to == 2);
    // Programme 1 has lost every cluster it could reach: a clip pauses.
    REQUIRE(d.value().changes.size() == 1);
    CHECK(d.value().changes[0].id == 1);
    CHECK(d.value().changes[0].event == ProgrammeEvent::Preempted);

    // A new cluster outside d1 brings it back.
    d = arb.put_cluster({"e", "v212", true, ""});
    REQUIRE(d.ok());
    REQUIRE(d.value().changes.size() == 1);
    CHECK(d.value().changes[0].event == ProgrammeEvent::Resumed);
    CHECK(d.value().assignment->programme_id_of(*arb.topology().cluster_index("e")) == 1);

    // Removing the first cluster: the last takes its index, nothing moves.
    d = arb.erase_cluster("a");
    REQUIRE(d.ok());
    CHECK(d.value().moves.empty());
    CHECK(arb.topology().cluster_index("e") == 0u);
    CHECK(d.value().assignment->programme_id_of(0) == 1);
    CHECK(d.value().assignment->programme(d.value().assignment->find(2)).listeners == 2);
}
