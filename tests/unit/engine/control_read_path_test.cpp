// The control plane's read path: verified tokens are cached but a revoked
// one fails on the very next request; ListClusters builds its page straight
// from the query (arena, one live-state lookup per page) and shows every
// committed change on the next call; the cluster registry's batch lookup and
// its online count.
#include <catch2/catch.hpp>

#include <google/protobuf/util/message_differencer.h>

#include <array>
#include <map>
#include <vector>

#include "loa/engine/clock.h"
#include "loa/engine/cluster_registry.h"
#include "loa/engine/control_service.h"
#include "loa/engine/store.h"
#include "loa/transport/rtcp_packet.h"
#include "temp_dir.h"

using namespace loa::engine;
namespace pb = loa::control::v1;
using boost::asio::ip::make_address;
using boost::asio::ip::udp;

namespace {

const PeerInfo kRootPeer{true, true, 0};

struct Fixture {
    loa::test::TempDir dir{"loa-control-read"};
    Store store{dir / "state.db"};
    ManualClock clock{0, 1'700'000'000'000'000'000};
    ControlService service{store, clock, 1000};

    pb::Response call(const std::string& method, const google::protobuf::Message& req, const std::string& token = {}) {
        pb::Envelope env;
        env.set_request_id(11);
        env.set_method(method);
        env.set_token(token);
        env.set_payload(req.SerializeAsString());
        return service.handle(env, kRootPeer).response;
    }

    template <class Resp>
    Resp ok(const std::string& method, const google::protobuf::Message& req, const std::string& token = {}) {
        const auto r = call(method, req, token);
        INFO(method << ": " << r.message());
        REQUIRE(r.code() == pb::OK);
        Resp out;
        REQUIRE(out.ParseFromString(r.payload()));
        return out;
    }

    void province(const std::string& id) {
        pb::CreateZoneRequest z;
        z.set_id(id);
        z.set_name(id);
        z.set_kind(pb::PROVINCE_ZONE);
        ok<pb::Zone>("CreateZone", z);
    }

    void cluster(const std::string& id, const std::string& zone_id) {
        pb::RegisterClusterRequest c;
        c.set_id(id);
        c.set_zone_id(zone_id);
        ok<pb::Cluster>("RegisterCluster", c);
    }

    std::string make_operator(const std::string& name, pb::Role role, const std::string& zone_id) {
        pb::CreateOperatorRequest o;
        o.set_name(name);
        o.set_role(role);
        o.set_zone_id(zone_id);
        o.set_max_level(pb::COMMUNE);
        return ok<pb::CreateOperatorResponse>("CreateOperator", o).token();
    }

    pb::ListClustersResponse list(std::uint32_t page_size = 0, const std::string& page_token = {},
                                  const std::string& token = {}) {
        pb::ListClustersRequest req;
        req.set_page_size(page_size);
        req.set_page_token(page_token);
        return ok<pb::ListClustersResponse>("ListClusters", req, token);
    }

    // Every page of a listing, followed by its tokens.
    std::vector<pb::ListClustersResponse> all_pages(std::uint32_t page_size) {
        std::vector<pb::ListClustersResponse> out;
        std::string token;
        do {
            out.push_back(list(page_size, token));
            token = out.back().next_page_token();
            REQUIRE(out.size() < 1000);
        } while (!token.empty());
        return out;
    }
};

// A live state for cluster ids the fake engine "has heard from".
loa::engine::v1::ClusterState live_of(const std::string& id, std::uint64_t reports) {
    loa::engine::v1::ClusterState st;
    st.set_id(id);
    st.set_online(true);
    st.set_reports(reports);
    st.set_volume_pct(70);
    return st;
}

std::vector<std::uint8_t> report(const std::string& cname) {
    std::vector<std::uint8_t> buf(512);
    loa::transport::RtcpWriter w(buf);
    REQUIRE(w.add_rr(0xABCD0001, {}) == loa::transport::Status::Ok);
    REQUIRE(w.add_sdes_cname(0xABCD0001, cname) == loa::transport::Status::Ok);
    buf.resize(w.size());
    return buf;
}

constexpr std::int64_t kSecond = 1'000'000'000;

}  // namespace

// ---- verified tokens -------------------------------------------------------

TEST_CASE("control_revoked_token_is_refused_on_the_next_request", "[control][auth]") {
    Fixture f;
    f.province("p");
    const auto token = f.make_operator("ann", pb::OPERATOR, "p");
    // Verified, then served again (from the cache) with the same scope.
    for (int i = 0; i < 3; ++i) {
        const auto s = f.ok<pb::GetStatusResponse>("GetStatus", pb::GetStatusRequest(), token);
        CHECK(s.caller().operator_name() == "ann");
        CHECK(s.caller().zone_id() == "p");
        CHECK(s.caller().role() == pb::OPERATOR);
    }
    pb::RevokeOperatorRequest revoke;
    revoke.set_name("ann");
    f.ok<pb::RevokeOperatorResponse>("RevokeOperator", revoke);
    const auto r = f.call("GetStatus", pb::GetStatusRequest(), token);
    CHECK(r.code() == pb::UNAUTHENTICATED);
    CHECK(r.payload().empty());
    // The same name minted again is a new token; the old one stays dead.
    const auto again = f.make_operator("ann", pb::VIEWER, "p");
    CHECK(f.call("ListClusters", pb::ListClustersRequest(), token).code() == pb::UNAUTHENTICATED);
    const auto s = f.ok<pb::GetStatusResponse>("GetStatus", pb::GetStatusRequest(), again);
    CHECK(s.caller().role() == pb::VIEWER);
}

TEST_CASE("control_token_cache_forgets_operators_deleted_by_any_write", "[control][auth]") {
    Fixture f;
    f.province("p");
    const auto token = f.make_operator("bob", pb::VIEWER, "p");
    REQUIRE(f.call("GetStatus", pb::GetStatusRequest(), token).code() == pb::OK);
    // Not through RevokeOperator: straight in the store, as other code paths might.
    f.store.write([&] { f.store.delete_operator("bob"); });
    CHECK(f.call("GetStatus", pb::GetStatusRequest(), token).code() == pb::UNAUTHENTICATED);
    // Unknown tokens are never remembered as good ones.
    CHECK(f.call("GetStatus", pb::GetStatusRequest(), "loa1_not-a-token").code() == pb::UNAUTHENTICATED);
    CHECK(f.call("GetStatus", pb::GetStatusRequest(), "loa1_not-a-token").code() == pb::UNAUTHENTICATED);
}

TEST_CASE("control_cached_token_keeps_its_scope", "[control][auth]") {
    Fixture f;
    f.province("p");
    f.province("q");
    f.cluster("in-p", "p");
    f.cluster("in-q", "q");
    const auto token = f.make_operator("cid", pb::VIEWER, "p");
    for (int i = 0; i < 2; ++i) {
        const auto l = f.list(0, {}, token);
        REQUIRE(l.clusters_size() == 1);
        CHECK(l.clusters(0).id() == "in-p");
        pb::SetClusterEnabledRequest off;
        off.set_id("in-p");
        CHECK(f.call("SetClusterEnabled", off, token).code() == pb::PERMISSION_DENIED);  // a viewer
    }
}

// ---- ListClusters ----------------------------------------------------------

TEST_CASE("control_list_clusters_shows_each_change_on_the_next_call", "[control][cluster]") {
    Fixture f;
    f.province("p");
    for (const auto* id : {"c1", "c2", "c3"}) f.cluster(id, "p");
    std::map<std::string, loa::engine::v1::ClusterState> heard{{"c2", live_of("c2", 5)}};
    int page_lookups = 0;
    f.service.set_live_states_provider([&](std::span<pb::Cluster* const> page) {
        ++page_lookups;
        for (auto* c : page) {
            if (const auto it = heard.find(c->id()); it != heard.end()) *c->mutable_live() = it->second;
        }
    });

    auto l = f.list();
    REQUIRE(l.clusters_size() == 3);
    CHECK(page_lookups == 1);  // one lookup for the page, not one per row
    CHECK(l.next_page_token().empty());
    CHECK(l.clusters(0).id() == "c1");
    CHECK(l.clusters(0).zone_id() == "p");
    CHECK(l.clusters(0).name() == "c1");
    CHECK(l.clusters(0).enabled());
    CHECK_FALSE(l.clusters(0).has_live());
    REQUIRE(l.clusters(1).has_live());
    CHECK(l.clusters(1).live().reports() == 5);

    pb::SetClusterEnabledRequest off;
    off.set_id("c1");
    f.ok<pb::Cluster>("SetClusterEnabled", off);
    heard["c2"] = live_of("c2", 6);
    heard["c3"] = live_of("c3", 1);
    l = f.list();
    REQUIRE(l.clusters_size() == 3);
    CHECK_FALSE(l.clusters(0).enabled());
    CHECK(l.clusters(1).live().reports() == 6);
    CHECK(l.clusters(2).has_live());

    f.cluster("c0", "p");
    pb::RemoveClusterRequest rm;
    rm.set_id("c2");
    f.ok<pb::RemoveClusterResponse>("RemoveCluster", rm);
    l = f.list();
    REQUIRE(l.clusters_size() == 3);
    CHECK(l.clusters(0).id() == "c0");
    CHECK(l.clusters(1).id() == "c1");
    CHECK(l.clusters(2).id() == "c3");
}

TEST_CASE("control_list_clusters_pages_the_same_with_either_live_provider", "[control][cluster]") {
    Fixture f;
    f.province("p");
    // More rows than the arena's first block holds at the largest page, with
    // names too long for in-place strings, written in one transaction.
    constexpr int kClusters = 1500;
    f.store.write([&] {
        for (int i = 0; i < kClusters; ++i) {
            char id[32];
            std::snprintf(id, sizeof id, "cluster-%05d", i);
            f.store.insert_cluster(ClusterRow{id, std::string("a rather long cluster name number ") + id, "p",
                                              i % 3 == 0 ? "127.1.2.3:5004" : "", "", i % 7 != 0});
        }
    });
    const auto per_row = [](const std::string& id) -> std::optional<loa::engine::v1::ClusterState> {
        if (id.back() % 2 == 0) return std::nullopt;
        return live_of(id, static_cast<std::uint64_t>(id.size()) + static_cast<std::uint64_t>(id.back()));
    };
    f.service.set_live_state_provider(per_row);
    for (const std::uint32_t page : {1000u, 7u}) {
        INFO("page size " << page);
        const auto one_by_one = f.all_pages(page);
        f.service.set_live_states_provider([&](std::span<pb::Cluster* const> rows) {
            for (auto* c : rows) {
                if (auto st = per_row(c->id())) *c->mutable_live() = *st;
            }
        });
        const auto batched = f.all_pages(page);
        f.service.set_live_states_provider({});
        REQUIRE(one_by_one.size() == batched.size());
        std::size_t rows = 0;
        std::string last;
        for (std::size_t i = 0; i < batched.size(); ++i) {
            CHECK(google::protobuf::util::MessageDifferencer::Equals(one_by_one[i], batched[i]));
            for (const auto& c : batched[i].clusters()) {
                CHECK(c.id() > last);  // ordered by id, nothing twice
                last = c.id();
                CHECK(c.name() == "a rather long cluster name number " + c.id());
                CHECK(c.has_live() == (c.id().back() % 2 != 0));
                ++rows;
            }
            if (i + 1 < batched.size()) {
                CHECK(batched[i].clusters_size() == static_cast<int>(page));
                CHECK(batched[i].next_page_token() == batched[i].clusters(static_cast<int>(page) - 1).id());
            } else {
                CHECK(batched[i].next_page_token().empty());
            }
        }
        CHECK(rows == kClusters);
    }
    // The store's own listing agrees with the API's.
    const auto stored = f.store.clusters("", "cluster-00097", 3);
    REQUIRE(stored.size() == 3);
    CHECK(stored[0].id == "cluster-00098");
    CHECK(stored[0].address.empty());
    CHECK_FALSE(stored[0].enabled);  // 98 = 7 * 14
    CHECK(stored[1].id == "cluster-00099");
    CHECK(stored[1].address == "127.1.2.3:5004");  // 99 = 3 * 33
    CHECK(stored[1].enabled);
}

// ---- cluster registry ------------------------------------------------------

TEST_CASE("cluster_registry_visit_reads_a_batch_of_known_ids", "[cluster_registry]") {
    ClusterRegistry reg({{"cfg-1", udp::endpoint(make_address("127.0.0.1"), 6001)}}, 15 * kSecond);
    reg.register_one("api-1", udp::endpoint());
    const udp::endpoint from(make_address("127.0.0.1"), 40000);
    std::string id;
    bool came_online = false;
    REQUIRE(reg.on_rtcp(report("api-1"), from, kSecond, 0, id, came_online) == ClusterRegistry::Result::Accepted);

    const std::string a = "api-1", b = "nobody", c = "cfg-1";
    const std::array<const std::string*, 3> ids{&a, &b, &c};
    std::vector<std::pair<std::size_t, std::string>> seen;
    std::vector<bool> online;
    reg.visit(ids, [&](std::size_t i, const ClusterSnapshot& s) {
        seen.emplace_back(i, s.id);
        online.push_back(s.online);
    });
    REQUIRE(seen.size() == 2);  // the unknown id is skipped
    CHECK(seen[0] == std::pair<std::size_t, std::string>{0, "api-1"});
    CHECK(seen[1] == std::pair<std::size_t, std::string>{2, "cfg-1"});
    CHECK(online == std::vector<bool>{true, false});
}

TEST_CASE("cluster_registry_online_count_follows_reports_sweeps_and_removals", "[cluster_registry]") {
    ClusterRegistry reg({{"cfg-1", udp::endpoint(make_address("127.0.0.1"), 6001)}}, 15 * kSecond);
    reg.set_registered({{"api-1", udp::endpoint()}, {"api-2", udp::endpoint()}, {"api-3", udp::endpoint()}});
    const udp::endpoint from(make_address("127.0.0.1"), 40000);
    std::string id;
    bool came_online = false;
    const auto hear = [&](const std::string& cname, std::int64_t at) {
        REQUIRE(reg.on_rtcp(report(cname), from, at, 0, id, came_online) == ClusterRegistry::Result::Accepted);
    };
    CHECK(reg.online_count() == 0);
    hear("cfg-1", kSecond);
    hear("api-1", kSecond);
    hear("api-2", 10 * kSecond);
    hear("api-2", 11 * kSecond);  // twice: still one cluster online
    CHECK(reg.online_count() == 3);
    // cfg-1 and api-1 fall silent.
    CHECK(reg.sweep(20 * kSecond).size() == 2);
    CHECK(reg.online_count() == 1);
    hear("api-1", 21 * kSecond);
    CHECK(reg.online_count() == 2);
    // Removing online clusters takes them out of the count, both ways.
    reg.unregister_one("api-1");
    CHECK(reg.online_count() == 1);
    reg.set_registered({{"api-3", udp::endpoint()}});  // api-2 (online) goes
    CHECK(reg.online_count() == 0);
    CHECK(reg.size() == 2);
    hear("api-3", 22 * kSecond);
    CHECK(reg.online_count() == 1);
}
