// Control service authorisation matrix: every role and level, scoped to a
// district, calls every mutating method on targets inside and outside its
// scope; allowed calls change something, refused ones nothing.
#include <catch2/catch.hpp>

#include <functional>
#include <memory>

#include "control_fixture.h"
#include "engine_test_util.h"
#include "loa/engine/engine.h"
#include "loa/engine/programme_control.h"
#include "loa/engine/programme_manager.h"

using namespace loa::engine;
namespace pb = loa::control::v1;

namespace {
using Fixture = loa::test::ControlFixture;
}  // namespace

// ---- authorisation matrix --------------------------------------------------
//
// Tree: hn > {hn.bv (inside: the caller's district), hn.st (outside)}, each
// with two communes, a village, a cluster and victim operators. Callers are
// every role x level {commune, district}, scoped to hn.bv, and call every
// mutating method on a target inside and outside their scope.

namespace {

struct Side {
    std::string district, commune_a, commune_b, village, cluster;
};
const Side kInside{"hn.bv", "hn.bv.a", "hn.bv.b", "hn.bv.a.v", "c-in"};
const Side kOutside{"hn.st", "hn.st.a", "hn.st.b", "hn.st.a.v", "c-out"};

void build_tree(Fixture& f) {
    f.zone("hn", pb::PROVINCE_ZONE, "");
    for (const auto* s : {&kInside, &kOutside}) {
        f.zone(s->district, pb::DISTRICT_ZONE, "hn");
        f.zone(s->commune_a, pb::COMMUNE_ZONE, s->district);
        f.zone(s->commune_b, pb::COMMUNE_ZONE, s->district);
        f.zone(s->village, pb::VILLAGE_ZONE, s->commune_a);
        f.cluster(s->cluster, s->commune_a);
    }
}

struct Case {
    std::string method;
    std::function<std::unique_ptr<google::protobuf::Message>(const Side&)> request;
    pb::Role min_role;
};

template <class M, class F>
std::function<std::unique_ptr<google::protobuf::Message>(const Side&)> req(F fill) {
    return [fill](const Side& s) {
        auto m = std::make_unique<M>();
        fill(*m, s);
        return std::unique_ptr<google::protobuf::Message>(std::move(m));
    };
}

const std::vector<Case>& zone_and_cluster_cases() {
    static const std::vector<Case> cases = {
        {"CreateZone", req<pb::CreateZoneRequest>([](auto& m, const Side& s) {
             m.set_id(s.commune_b + ".new");
             m.set_name("new");
             m.set_kind(pb::VILLAGE_ZONE);
             m.set_parent_id(s.commune_b);
         }),
         pb::ADMIN},
        {"RenameZone", req<pb::RenameZoneRequest>([](auto& m, const Side& s) {
             m.set_id(s.commune_a);
             m.set_name("renamed");
         }),
         pb::ADMIN},
        {"MoveZone", req<pb::MoveZoneRequest>([](auto& m, const Side& s) {
             m.set_id(s.village);
             m.set_new_parent_id(s.commune_b);
         }),
         pb::ADMIN},
        {"DeleteZone", req<pb::DeleteZoneRequest>([](auto& m, const Side& s) { m.set_id(s.village); }), pb::ADMIN},
        {"RegisterCluster", req<pb::RegisterClusterRequest>([](auto& m, const Side& s) {
             m.set_id(s.cluster + "-2");
             m.set_zone_id(s.commune_b);
             m.set_address("127.0.0.1:9000");
         }),
         pb::ADMIN},
        {"SetClusterEnabled", req<pb::SetClusterEnabledRequest>([](auto& m, const Side& s) {
             m.set_id(s.cluster);
             m.set_enabled(false);
         }),
         pb::OPERATOR},
        {"RemoveCluster", req<pb::RemoveClusterRequest>([](auto& m, const Side& s) { m.set_id(s.cluster); }),
         pb::ADMIN},
    };
    return cases;
}

void expect(Fixture& f, const std::string& method, const google::protobuf::Message& m, const std::string& token,
            bool allowed) {
    const auto before = f.snapshot();
    const auto r = f.call(method, m, token);
    INFO(method << " " << m.ShortDebugString() << " -> " << pb::StatusCode_Name(r.code()) << ": " << r.message());
    loa::test::require_verdict(r, allowed, before, f.snapshot());
}

}  // namespace

TEST_CASE("authorisation_matrix_zones_and_clusters", "[control][auth]") {
    for (const auto role : {pb::VIEWER, pb::OPERATOR, pb::ADMIN}) {
        for (const auto level : {pb::COMMUNE, pb::DISTRICT}) {
            for (const auto& c : zone_and_cluster_cases()) {
                for (const bool inside : {true, false}) {
                    Fixture f;
                    build_tree(f);
                    const auto tok = f.make_operator("caller", role, kInside.district, level);
                    const bool allowed = inside && role >= c.min_role;
                    INFO("role " << pb::Role_Name(role) << " level " << pb::Level_Name(level) << " inside " << inside);
                    expect(f, c.method, *c.request(inside ? kInside : kOutside), tok, allowed);
                }
            }
        }
    }
}

TEST_CASE("authorisation_matrix_operators_and_tokens", "[control][auth]") {
    const auto roles = {pb::VIEWER, pb::OPERATOR, pb::ADMIN};
    const auto levels = {pb::COMMUNE, pb::DISTRICT, pb::PROVINCE};
    for (const auto role : roles) {
        for (const auto level : {pb::COMMUNE, pb::DISTRICT}) {
            Fixture f;
            build_tree(f);
            const auto tok = f.make_operator("caller", role, kInside.district, level);
            // Victims to revoke: every role x level, inside and outside.
            for (const auto vr : roles) {
                for (const auto vl : levels) {
                    for (const auto* side : {&kInside, &kOutside}) {
                        f.make_operator("v-" + std::to_string(vr) + "-" + std::to_string(vl) + "-" + side->district,
                                        vr, side->commune_a, vl);
                    }
                }
            }
            for (const auto tr : roles) {
                for (const auto tl : levels) {
                    for (const bool inside : {true, false}) {
                        INFO("caller " << pb::Role_Name(role) << "/" << pb::Level_Name(level) << " target "
                                       << pb::Role_Name(tr) << "/" << pb::Level_Name(tl) << " inside " << inside);
                        const auto& side = inside ? kInside : kOutside;
                        const bool allowed = inside && role >= pb::OPERATOR && tr <= role && tl <= level;
                        pb::CreateOperatorRequest c;
                        c.set_name("n-" + std::to_string(tr) + "-" + std::to_string(tl) + "-" + std::to_string(inside));
                        c.set_role(tr);
                        c.set_zone_id(side.commune_b);
                        c.set_max_level(tl);
                        expect(f, "CreateOperator", c, tok, allowed);
                        pb::RevokeOperatorRequest r;
                        r.set_name("v-" + std::to_string(tr) + "-" + std::to_string(tl) + "-" + side.district);
                        expect(f, "RevokeOperator", r, tok, allowed);
                    }
                }
            }
            // Minting above the caller's subtree: the whole network, the province.
            for (const std::string zone : {"", "hn"}) {
                pb::CreateOperatorRequest c;
                c.set_name("above");
                c.set_role(pb::VIEWER);
                c.set_zone_id(zone);
                c.set_max_level(pb::BACKGROUND);
                expect(f, "CreateOperator", c, tok, false);
            }
        }
    }
}

TEST_CASE("authorisation_matrix_programmes", "[control][auth]") {
    // Every role x caller level x programme level, inside and outside the
    // caller's district: StartProgramme and StopProgramme are allowed only
    // inside, for operators and admins, at levels up to their own.
    const auto ec = loa::test::loopback_engine_config();
    SystemClock engine_clock;
    Engine engine(ec, engine_clock);  // never started: programmes are built, not played
    for (const auto role : {pb::VIEWER, pb::OPERATOR, pb::ADMIN}) {
        for (const auto level : {pb::COMMUNE, pb::DISTRICT}) {
            Fixture f;
            build_tree(f);
            ProgrammeManager manager(engine);
            ProgrammeControl control(f.store, manager, f.clock);
            f.service.set_programme_control(&control);
            const auto tok = f.make_operator("caller", role, kInside.district, level);
            for (const auto tl : {pb::COMMUNE, pb::DISTRICT, pb::PROVINCE}) {
                for (const bool inside : {true, false}) {
                    const auto& side = inside ? kInside : kOutside;
                    const bool allowed = inside && role >= pb::OPERATOR && tl <= level;
                    INFO("caller " << pb::Role_Name(role) << "/" << pb::Level_Name(level) << " programme "
                                   << pb::Level_Name(tl) << " inside " << inside);
                    pb::StartProgrammeRequest start;
                    start.set_level(tl);
                    start.add_zone_ids(side.commune_a);
                    start.set_tone_hz(440.0);
                    expect(f, "StartProgramme", start, tok, allowed);
                    // One started by the local admin, stopped by the caller.
                    const auto id = f.ok<pb::StartProgrammeResponse>("StartProgramme", start).id();
                    pb::StopProgrammeRequest stop;
                    stop.set_id(id);
                    expect(f, "StopProgramme", stop, tok, allowed);
                    if (!allowed) f.ok<pb::StopProgrammeResponse>("StopProgramme", stop);
                }
            }
            // A clip by file path is for administrators only.
            pb::StartProgrammeRequest clip;
            clip.set_level(pb::COMMUNE);
            clip.add_zone_ids(kInside.commune_a);
            clip.set_clip_path("/nonexistent.wav");
            if (role != pb::ADMIN) expect(f, "StartProgramme", clip, tok, false);
            f.service.set_programme_control(nullptr);
        }
    }
}

TEST_CASE("scoped_viewer_sees_only_its_subtree", "[control][auth]") {
    Fixture f;
    build_tree(f);
    const auto tok = f.make_operator("viewer", pb::VIEWER, kInside.district, pb::COMMUNE);
    const auto r = f.call("ListClusters", pb::ListClustersRequest(), tok);
    REQUIRE(r.code() == pb::OK);
    pb::ListClustersResponse l;
    REQUIRE(l.ParseFromString(r.payload()));
    REQUIRE(l.clusters_size() == 1);
    REQUIRE(l.clusters(0).id() == kInside.cluster);
    pb::GetClusterRequest g;
    g.set_id(kOutside.cluster);
    REQUIRE(f.call("GetCluster", g, tok).code() == pb::PERMISSION_DENIED);
    pb::ListZonesRequest z;
    z.set_root_id("hn");
    REQUIRE(f.call("ListZones", z, tok).code() == pb::PERMISSION_DENIED);
    const auto zr = f.call("ListZones", pb::ListZonesRequest(), tok);
    pb::ListZonesResponse zl;
    REQUIRE(zl.ParseFromString(zr.payload()));
    REQUIRE(zl.zones_size() == 4);  // district, two communes, village
}
