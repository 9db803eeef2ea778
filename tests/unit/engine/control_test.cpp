// Control service: framing, dispatch, status mapping, authorisation matrix,
// the socket server (in-flight requests, bad frames, stalled clients, event
// streams), the TCP listener's token rule, the config seed, and a full disk.
#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/delimited_message_util.h>

#include <map>
#include <sstream>

#include "loa/engine/clock.h"
#include "loa/engine/config.h"
#include "loa/engine/control_client.h"
#include "loa/engine/control_seed.h"
#include "loa/engine/control_server.h"
#include "loa/engine/control_service.h"
#include "loa/engine/engine.h"
#include "loa/engine/programme_control.h"
#include "loa/engine/programme_manager.h"
#include "loa/engine/store.h"
#include "temp_dir.h"

using namespace loa::engine;
namespace pb = loa::control::v1;

namespace {

const PeerInfo kRootPeer{true, true, 0};
const PeerInfo kStrangerPeer{true, true, 4242};

struct Fixture {
    loa::test::TempDir dir{"loa-control"};
    Store store{dir / "state.db"};
    ManualClock clock{0, 1'700'000'000'000'000'000};
    ControlService service{store, clock, 1000};

    pb::Response call(const std::string& method, const google::protobuf::Message& req, const std::string& token = {},
                      const PeerInfo& peer = kRootPeer) {
        pb::Envelope env;
        env.set_request_id(7);
        env.set_method(method);
        env.set_token(token);
        env.set_payload(req.SerializeAsString());
        return service.handle(env, peer).response;
    }

    // Local admin (root peer, no token): must succeed.
    template <class Resp = pb::Zone>
    Resp admin(const std::string& method, const google::protobuf::Message& req) {
        const auto r = call(method, req);
        INFO(method << ": " << r.message());
        REQUIRE(r.code() == pb::OK);
        Resp out;
        REQUIRE(out.ParseFromString(r.payload()));
        return out;
    }

    void zone(const std::string& id, pb::ZoneKind kind, const std::string& parent) {
        pb::CreateZoneRequest z;
        z.set_id(id);
        z.set_name(id);
        z.set_kind(kind);
        z.set_parent_id(parent);
        admin("CreateZone", z);
    }

    void cluster(const std::string& id, const std::string& zone_id) {
        pb::RegisterClusterRequest c;
        c.set_id(id);
        c.set_zone_id(zone_id);
        admin<pb::Cluster>("RegisterCluster", c);
    }

    std::string make_operator(const std::string& name, pb::Role role, const std::string& zone_id, pb::Level level) {
        pb::CreateOperatorRequest o;
        o.set_name(name);
        o.set_role(role);
        o.set_zone_id(zone_id);
        o.set_max_level(level);
        return admin<pb::CreateOperatorResponse>("CreateOperator", o).token();
    }

    // Everything a call could change, as one comparable string.
    std::string snapshot() const {
        std::ostringstream os;
        for (const auto& z : store.zones()) os << "Z " << z.id << "|" << z.name << "|" << z.parent_id << "\n";
        for (const auto& c : store.clusters("", "", 100000)) os << "C " << c.id << "|" << c.zone_id << "|" << c.enabled << "\n";
        for (const auto& o : store.operators()) os << "O " << o.name << "|" << static_cast<int>(o.role) << "\n";
        os << "E " << store.last_event_seq();
        return os.str();
    }
};

}  // namespace

// ---- framing ---------------------------------------------------------------

TEST_CASE("frame_round_trips_through_protobuf_delimited_format", "[control][frame]") {
    pb::Envelope env;
    env.set_request_id(99);
    env.set_method("GetStatus");
    env.set_payload(std::string(300, 'x'));  // a two-byte varint length
    const auto frame = encode_frame(env);
    const auto bytes = std::span(reinterpret_cast<const std::uint8_t*>(frame.data()), frame.size());
    std::size_t h = 0, b = 0;
    REQUIRE(peek_frame(bytes, 4096, h, b) == FrameStatus::Complete);
    REQUIRE(h == 2);
    REQUIRE(h + b == frame.size());
    // protobuf's own reader agrees.
    google::protobuf::io::ArrayInputStream in(frame.data(), static_cast<int>(frame.size()));
    pb::Envelope back;
    bool clean_eof = false;
    REQUIRE(google::protobuf::util::ParseDelimitedFromZeroCopyStream(&back, &in, &clean_eof));
    REQUIRE(back.request_id() == 99);
    // Every strict prefix needs more bytes.
    for (std::size_t n = 0; n < frame.size(); ++n) REQUIRE(peek_frame(bytes.first(n), 4096, h, b) == FrameStatus::NeedMore);
}

TEST_CASE("oversized_frame_is_detected_from_its_prefix", "[control][frame]") {
    const std::uint8_t prefix[] = {0x80, 0x80, 0x80, 0x02};  // 4 MiB
    std::size_t h = 0, b = 0;
    REQUIRE(peek_frame(prefix, (4u << 20) - 1, h, b) == FrameStatus::TooLarge);
    REQUIRE(peek_frame(prefix, 4u << 20, h, b) == FrameStatus::NeedMore);
}

TEST_CASE("overlong_varint_is_malformed", "[control][frame]") {
    const std::uint8_t bad[] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    std::size_t h = 0, b = 0;
    REQUIRE(peek_frame(bad, 1u << 30, h, b) == FrameStatus::Malformed);
    const std::uint8_t too_big[] = {0xFF, 0xFF, 0xFF, 0xFF, 0x7F};  // > 32 bits
    REQUIRE(peek_frame(too_big, ~std::size_t{0}, h, b) == FrameStatus::Malformed);
}

// ---- status mapping, dispatch ----------------------------------------------

TEST_CASE("status_codes_match_the_proto_and_grpc_names", "[control]") {
    for (int c = 0; c <= 16; ++c) {
        REQUIRE(pb::StatusCode_IsValid(c));
        REQUIRE(std::string(to_string(static_cast<RpcCode>(c))) == pb::StatusCode_Name(static_cast<pb::StatusCode>(c)));
    }
}

TEST_CASE("every_declared_rpc_is_dispatched", "[control]") {
    Fixture f;
    const auto* svc = pb::Envelope::descriptor()->file()->FindServiceByName("Control");
    REQUIRE(svc != nullptr);
    const auto impl = f.service.methods();
    REQUIRE(impl.size() == static_cast<std::size_t>(svc->method_count()));
    for (int i = 0; i < svc->method_count(); ++i) {
        const auto& name = svc->method(i)->name();
        INFO(name);
        REQUIRE(std::find(impl.begin(), impl.end(), name) != impl.end());
        // Dispatched (not UNIMPLEMENTED), whatever the empty request then means.
        pb::Envelope env;
        env.set_method(name);
        REQUIRE(f.service.handle(env, kRootPeer).response.code() != pb::UNIMPLEMENTED);
    }
}

TEST_CASE("unknown_method_is_unimplemented", "[control]") {
    Fixture f;
    const auto r = f.call("LaunchRockets", pb::GetStatusRequest());
    REQUIRE(r.code() == pb::UNIMPLEMENTED);
    REQUIRE(r.request_id() == 7);
    REQUIRE(r.message().find("LaunchRockets") != std::string::npos);
}

TEST_CASE("garbage_frame_is_invalid_argument_and_closes", "[control]") {
    Fixture f;
    const std::uint8_t junk[] = {0xFF, 0xFF, 0xFF};
    const auto out = f.service.handle_frame(junk, kRootPeer);
    REQUIRE(out.response.code() == pb::INVALID_ARGUMENT);
    REQUIRE(out.close_connection);
}

TEST_CASE("garbage_payload_is_invalid_argument", "[control]") {
    Fixture f;
    pb::Envelope env;
    env.set_method("CreateZone");
    env.set_payload("\xFF\xFF\xFF");
    const auto out = f.service.handle(env, kRootPeer);
    REQUIRE(out.response.code() == pb::INVALID_ARGUMENT);
    REQUIRE_FALSE(out.close_connection);
}

TEST_CASE("expired_deadline_is_deadline_exceeded_and_changes_nothing", "[control]") {
    Fixture f;
    pb::CreateZoneRequest z;
    z.set_id("hn");
    z.set_name("Ha Noi");
    z.set_kind(pb::PROVINCE_ZONE);
    pb::Envelope env;
    env.set_method("CreateZone");
    env.set_payload(z.SerializeAsString());
    const auto now_ms = f.clock.unix_ns() / 1'000'000;
    env.set_deadline_unix_ms(now_ms);
    REQUIRE(f.service.handle(env, kRootPeer).response.code() == pb::DEADLINE_EXCEEDED);
    REQUIRE_FALSE(f.store.zone("hn"));
    env.set_deadline_unix_ms(now_ms + 1000);
    REQUIRE(f.service.handle(env, kRootPeer).response.code() == pb::OK);
}

TEST_CASE("token_less_caller_is_admin_only_when_root_or_engine_uid", "[control]") {
    Fixture f;
    REQUIRE(f.call("GetStatus", pb::GetStatusRequest(), "", kStrangerPeer).code() == pb::UNAUTHENTICATED);
    REQUIRE(f.call("GetStatus", pb::GetStatusRequest(), "", PeerInfo{true, true, 1000}).code() == pb::OK);
    REQUIRE(f.call("GetStatus", pb::GetStatusRequest(), "", PeerInfo{false, true, 0}).code() == pb::UNAUTHENTICATED);
    REQUIRE(f.call("GetStatus", pb::GetStatusRequest(), "loa1_00", kRootPeer).code() == pb::UNAUTHENTICATED);
}

TEST_CASE("presented_token_decides_scope_even_for_root", "[control]") {
    Fixture f;
    f.zone("hn", pb::PROVINCE_ZONE, "");
    const auto tok = f.make_operator("v", pb::VIEWER, "hn", pb::COMMUNE);
    const auto r = f.call("GetStatus", pb::GetStatusRequest(), tok, kRootPeer);
    REQUIRE(r.code() == pb::OK);
    pb::GetStatusResponse s;
    REQUIRE(s.ParseFromString(r.payload()));
    REQUIRE(s.caller().operator_name() == "v");
    REQUIRE(s.caller().role() == pb::VIEWER);
    pb::CreateZoneRequest z;
    z.set_id("x");
    z.set_name("x");
    z.set_kind(pb::PROVINCE_ZONE);
    REQUIRE(f.call("CreateZone", z, tok, kRootPeer).code() == pb::PERMISSION_DENIED);
    // Revoked: the token stops working at once.
    pb::RevokeOperatorRequest rv;
    rv.set_name("v");
    f.admin<pb::RevokeOperatorResponse>("RevokeOperator", rv);
    REQUIRE(f.call("GetStatus", pb::GetStatusRequest(), tok, kRootPeer).code() == pb::UNAUTHENTICATED);
}

TEST_CASE("zone_tree_rules", "[control]") {
    Fixture f;
    f.zone("hn", pb::PROVINCE_ZONE, "");
    f.zone("hn.bv", pb::DISTRICT_ZONE, "hn");
    pb::CreateZoneRequest z;
    z.set_id("hn.bv.x");
    z.set_name("x");
    z.set_kind(pb::VILLAGE_ZONE);  // a village cannot sit directly in a district
    z.set_parent_id("hn.bv");
    REQUIRE(f.call("CreateZone", z).code() == pb::INVALID_ARGUMENT);
    z.set_kind(pb::COMMUNE_ZONE);
    z.set_parent_id("nowhere");
    REQUIRE(f.call("CreateZone", z).code() == pb::NOT_FOUND);
    z.set_parent_id("hn.bv");
    z.set_id("Bad Id");
    REQUIRE(f.call("CreateZone", z).code() == pb::INVALID_ARGUMENT);
    z.set_id("hn.bv");
    REQUIRE(f.call("CreateZone", z).code() == pb::ALREADY_EXISTS);
    pb::DeleteZoneRequest d;
    d.set_id("hn");
    REQUIRE(f.call("DeleteZone", d).code() == pb::FAILED_PRECONDITION);  // not empty
    f.cluster("c1", "hn.bv");
    d.set_id("hn.bv");
    REQUIRE(f.call("DeleteZone", d).code() == pb::FAILED_PRECONDITION);  // holds a cluster
    pb::RemoveClusterRequest rc;
    rc.set_id("c1");
    f.admin<pb::RemoveClusterResponse>("RemoveCluster", rc);
    // Nothing aimed at it may outlive it: programmes, alerts, schedules.
    ProgrammeRow p;
    p.id = 5;
    p.name = "news";
    p.zones = "hn,hn.bv";
    f.store.write([&] { f.store.insert_programme(p); });
    const auto refused = f.call("DeleteZone", d);
    REQUIRE(refused.code() == pb::FAILED_PRECONDITION);
    CHECK(refused.message().find("programme 5") != std::string::npos);
    f.store.write([&] { f.store.delete_programme(5); });
    AlertRow a;
    a.id = 9;
    a.name = "flood";
    a.zones = "hn.bv";
    f.store.write([&] { f.store.insert_alert(a); });
    CHECK(f.call("DeleteZone", d).message().find("alert 9") != std::string::npos);
    f.store.write([&] { f.store.delete_alert(9); });
    ScheduleRow sc;
    sc.name = "morning";
    sc.zones = "hn.bv";
    sc.time_zone = "Asia/Ho_Chi_Minh";
    sc.recurrence = "daily";
    sc.first_date = "2026-12-01";
    sc.late_policy = "resume";
    std::uint64_t sid = 0;
    f.store.write([&] { sid = f.store.insert_schedule(sc); });
    CHECK(f.call("DeleteZone", d).message().find("schedule " + std::to_string(sid)) != std::string::npos);
    f.store.write([&] { f.store.delete_schedule(sid); });
    // A zone whose id is a prefix of a target is not a target.
    p.zones = "hn.bv2";
    f.store.write([&] { f.store.insert_programme(p); });
    f.admin<pb::DeleteZoneResponse>("DeleteZone", d);
    REQUIRE_FALSE(f.store.zone("hn.bv"));
}

TEST_CASE("clusters_list_in_pages", "[control]") {
    Fixture f;
    f.zone("hn", pb::PROVINCE_ZONE, "");
    f.store.write([&] {
        for (int i = 0; i < 250; ++i) {
            char id[16];
            std::snprintf(id, sizeof id, "c%03d", i);
            f.store.insert_cluster({id, id, "hn", "", "", true});
        }
    });
    pb::ListClustersRequest req;
    std::vector<std::string> ids;
    int pages = 0;
    for (;;) {
        const auto r = f.admin<pb::ListClustersResponse>("ListClusters", req);
        ++pages;
        for (const auto& c : r.clusters()) ids.push_back(c.id());
        if (r.next_page_token().empty()) break;
        req.set_page_token(r.next_page_token());
    }
    REQUIRE(pages == 3);
    REQUIRE(ids.size() == 250);
    REQUIRE(std::is_sorted(ids.begin(), ids.end()));
    REQUIRE(std::adjacent_find(ids.begin(), ids.end()) == ids.end());
}

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
    if (allowed) {
        REQUIRE(r.code() == pb::OK);
        REQUIRE(f.snapshot() != before);
    } else {
        REQUIRE(r.code() == pb::PERMISSION_DENIED);
        REQUIRE(f.snapshot() == before);
    }
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
    EngineConfig ec;
    ec.engine.listen = boost::asio::ip::udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0);
    ec.engine.fanout_threads = 1;
    ec.engine.realtime_priority = 0;
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
                    const auto id = f.admin<pb::StartProgrammeResponse>("StartProgramme", start).id();
                    pb::StopProgrammeRequest stop;
                    stop.set_id(id);
                    expect(f, "StopProgramme", stop, tok, allowed);
                    if (!allowed) f.admin<pb::StopProgrammeResponse>("StopProgramme", stop);
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

// ---- socket server ---------------------------------------------------------

namespace {
struct ServerFixture : Fixture {
    ServerFixture() {
        ControlServerOptions o;
        o.socket_path = dir / "control.sock";
        o.max_frame_bytes = 64 * 1024;
        o.max_queued_frames = 64;
        server = std::make_unique<ControlServer>(service, o);
        server->start();
    }
    ~ServerFixture() { server->stop(); }
    std::unique_ptr<ControlServer> server;
};
}  // namespace

TEST_CASE("socket_serves_several_requests_in_flight", "[control][server]") {
    ServerFixture f;
    ControlClient c(f.dir / "control.sock");
    pb::CreateZoneRequest z;
    z.set_id("hn");
    z.set_name("Ha Noi");
    z.set_kind(pb::PROVINCE_ZONE);
    const auto id1 = c.send("CreateZone", z);
    const auto id2 = c.send("GetStatus", pb::GetStatusRequest());
    const auto id3 = c.send("NoSuchCall", pb::GetStatusRequest());
    std::map<std::uint64_t, pb::StatusCode> got;
    for (int i = 0; i < 3; ++i) {
        auto r = c.read();
        REQUIRE(r);
        got[r->request_id()] = r->code();
    }
    REQUIRE(got[id1] == pb::OK);
    REQUIRE(got[id2] == pb::OK);
    REQUIRE(got[id3] == pb::UNIMPLEMENTED);
    // Root (the test's uid) or not, SO_PEERCRED was read: our own uid is trusted.
    REQUIRE(f.store.zone("hn"));
}

TEST_CASE("socket_rejects_oversized_frame_then_closes", "[control][server]") {
    ServerFixture f;
    ControlClient c(f.dir / "control.sock");
    pb::Envelope env;
    env.set_method("GetStatus");
    env.set_payload(std::string(100 * 1024, 'x'));
    c.send_envelope(env);
    auto r = c.read();
    REQUIRE(r);
    REQUIRE(r->code() == pb::RESOURCE_EXHAUSTED);
    REQUIRE_FALSE(c.read(10000));
    REQUIRE(c.closed());
}

TEST_CASE("socket_rejects_garbage_then_closes", "[control][server]") {
    ServerFixture f;
    ControlClient c(f.dir / "control.sock");
    const std::uint8_t junk[] = {0x04, 0xFF, 0xFF, 0xFF, 0xFF};
    c.send_raw(junk);
    auto r = c.read();
    REQUIRE(r);
    REQUIRE(r->code() == pb::INVALID_ARGUMENT);
    REQUIRE_FALSE(c.read(10000));
    REQUIRE(c.closed());
}

TEST_CASE("stalled_client_is_dropped_and_others_still_served", "[control][server]") {
    ServerFixture f;
    ControlClient stalled(f.dir / "control.sock");
    // Many requests, never reading the responses.
    pb::GetStatusRequest s;
    std::string burst;
    for (int i = 0; i < 20000; ++i) {
        pb::Envelope env;
        env.set_request_id(static_cast<std::uint64_t>(i + 1));
        env.set_method("ListZones");
        burst += encode_frame(env);
    }
    // The server disconnects us once its bounded queue is full; our send may fail then.
    try {
        stalled.send_raw(std::span(reinterpret_cast<const std::uint8_t*>(burst.data()), burst.size()));
    } catch (const ControlError&) {
    }
    ControlClient other(f.dir / "control.sock");
    const auto r = other.call("GetStatus", s, 10000);
    REQUIRE(r.code() == pb::OK);
}

TEST_CASE("watch_streams_events_and_resumes_by_seq", "[control][server]") {
    ServerFixture f;
    f.zone("hn", pb::PROVINCE_ZONE, "");  // seq 1 (before the watch)
    ControlClient w(f.dir / "control.sock");
    const auto wid = w.send("WatchEvents", pb::WatchEventsRequest());
    auto r = w.read();
    REQUIRE(r);
    REQUIRE(r->request_id() == wid);
    REQUIRE(r->more());
    pb::Event ev;
    REQUIRE(ev.ParseFromString(r->payload()));
    REQUIRE(ev.seq() == 1);
    REQUIRE(ev.kind() == pb::CONFIG_CHANGED);
    // A change made by another client arrives live.
    ControlClient c(f.dir / "control.sock");
    pb::CreateZoneRequest z;
    z.set_id("hn.bv");
    z.set_name("Ba Vi");
    z.set_kind(pb::DISTRICT_ZONE);
    z.set_parent_id("hn");
    REQUIRE(c.call("CreateZone", z).code() == pb::OK);
    r = w.read();
    REQUIRE(r);
    REQUIRE(ev.ParseFromString(r->payload()));
    REQUIRE(ev.seq() == 2);
    REQUIRE(ev.subject() == "zone/hn.bv");
    // Engine messages become cluster events.
    f.server->post_engine_message("cluster 'c9' online from 127.0.0.1:1");
    r = w.read();
    REQUIRE(r);
    REQUIRE(ev.ParseFromString(r->payload()));
    REQUIRE(ev.kind() == pb::CLUSTER_ONLINE);
    REQUIRE(ev.subject() == "cluster/c9");
    // A reconnecting watcher resumes after what it saw.
    ControlClient w2(f.dir / "control.sock");
    pb::WatchEventsRequest resume;
    resume.set_after_seq(2);
    w2.send("WatchEvents", resume);
    r = w2.read();
    REQUIRE(r);
    REQUIRE(ev.ParseFromString(r->payload()));
    REQUIRE(ev.seq() == 3);
}

// ---- TCP listener ----------------------------------------------------------

namespace {
struct TcpServerFixture : Fixture {
    explicit TcpServerFixture(const std::string& listen = "127.0.0.1:0") {
        ControlServerOptions o;
        o.socket_path = dir / "control.sock";
        o.tcp_listen = listen;
        o.max_frame_bytes = 64 * 1024;
        server = std::make_unique<ControlServer>(service, o);
        server->start();
    }
    ~TcpServerFixture() { server->stop(); }
    TcpAddress tcp() const { return TcpAddress{server->tcp_endpoint()}; }
    std::unique_ptr<ControlServer> server;
};
}  // namespace

TEST_CASE("control_tcp_token_less_request_is_unauthenticated_before_dispatch", "[control][tcp]") {
    Fixture f;
    const PeerInfo tcp_peer{false, false, 0xFFFFFFFFu};
    // Even uid 0 does not make a TCP peer the local admin.
    const PeerInfo tcp_root{false, true, 0};
    for (const auto& peer : {tcp_peer, tcp_root}) {
        const auto r = f.call("GetStatus", pb::GetStatusRequest(), "", peer);
        REQUIRE(r.code() == pb::UNAUTHENTICATED);
        REQUIRE(r.message().find("TCP") != std::string::npos);
        // Nothing about the API leaks before authentication.
        REQUIRE(f.call("LaunchRockets", pb::GetStatusRequest(), "", peer).code() == pb::UNAUTHENTICATED);
        pb::Envelope env;
        env.set_method("CreateZone");
        env.set_deadline_unix_ms(1);
        REQUIRE(f.service.handle(env, peer).response.code() == pb::UNAUTHENTICATED);
        env.set_method("WatchEvents");
        env.set_deadline_unix_ms(0);
        const auto w = f.service.handle(env, peer);
        REQUIRE(w.response.code() == pb::UNAUTHENTICATED);
        REQUIRE_FALSE(w.watch);
    }
    // A valid token works on TCP with its own scope.
    const auto tok = f.make_operator("adm", pb::ADMIN, "", pb::EMERGENCY);
    pb::CreateZoneRequest z;
    z.set_id("hn");
    z.set_name("Ha Noi");
    z.set_kind(pb::PROVINCE_ZONE);
    REQUIRE(f.call("CreateZone", z, tok, tcp_peer).code() == pb::OK);
    REQUIRE(f.call("GetStatus", pb::GetStatusRequest(), "loa1_00", tcp_peer).code() == pb::UNAUTHENTICATED);
}

TEST_CASE("control_tcp_listener_needs_a_token_on_every_request", "[control][tcp]") {
    TcpServerFixture f;
    REQUIRE(f.server->tcp_endpoint().rfind("127.0.0.1:", 0) == 0);
    REQUIRE(f.server->tcp_endpoint() != "127.0.0.1:0");
    const auto admin_tok = f.make_operator("adm", pb::ADMIN, "", pb::EMERGENCY);
    const auto viewer_tok = f.make_operator("view", pb::VIEWER, "", pb::BACKGROUND);

    ControlClient c(f.tcp());
    // Token-less, though the test runs as root or the same uid as the server.
    auto r = c.call("GetStatus", pb::GetStatusRequest());
    REQUIRE(r.code() == pb::UNAUTHENTICATED);
    pb::CreateZoneRequest z;
    z.set_id("hn");
    z.set_name("Ha Noi");
    z.set_kind(pb::PROVINCE_ZONE);
    REQUIRE(c.call("CreateZone", z).code() == pb::UNAUTHENTICATED);
    REQUIRE_FALSE(f.store.zone("hn"));
    // The connection stays usable; each request is judged by its own token.
    c.set_token(viewer_tok);
    REQUIRE(c.call("GetStatus", pb::GetStatusRequest()).code() == pb::OK);
    REQUIRE(c.call("CreateZone", z).code() == pb::PERMISSION_DENIED);
    c.set_token(admin_tok);
    r = c.call("CreateZone", z);
    REQUIRE(r.code() == pb::OK);
    REQUIRE(f.store.zone("hn"));
    c.set_token({});
    REQUIRE(c.call("ListZones", pb::ListZonesRequest()).code() == pb::UNAUTHENTICATED);
    // Several in flight, mixed tokens, answered by id.
    pb::Envelope e1;
    e1.set_request_id(101);
    e1.set_method("ListZones");
    e1.set_token(viewer_tok);
    pb::Envelope e2 = e1;
    e2.set_request_id(102);
    e2.clear_token();
    c.send_envelope(e1);
    c.send_envelope(e2);
    std::map<std::uint64_t, pb::StatusCode> got;
    for (int i = 0; i < 2; ++i) {
        auto resp = c.read();
        REQUIRE(resp);
        got[resp->request_id()] = resp->code();
    }
    REQUIRE(got[101] == pb::OK);
    REQUIRE(got[102] == pb::UNAUTHENTICATED);

    // The Unix socket of the same server keeps its peer-uid shortcut.
    ControlClient u(f.dir / "control.sock");
    REQUIRE(u.call("GetStatus", pb::GetStatusRequest()).code() == pb::OK);
}

TEST_CASE("control_tcp_watch_streams_events_with_a_token", "[control][tcp]") {
    TcpServerFixture f;
    const auto tok = f.make_operator("view", pb::VIEWER, "", pb::BACKGROUND);  // seq 1
    ControlClient w(f.tcp());
    w.set_token(tok);
    w.send("WatchEvents", pb::WatchEventsRequest());
    auto r = w.read();
    REQUIRE(r);
    REQUIRE(r->code() == pb::OK);
    REQUIRE(r->more());
    pb::Event ev;
    REQUIRE(ev.ParseFromString(r->payload()));
    REQUIRE(ev.seq() == 1);
    f.server->post_engine_message("cluster 'c9' offline: no report");
    r = w.read();
    REQUIRE(r);
    REQUIRE(ev.ParseFromString(r->payload()));
    REQUIRE(ev.kind() == pb::CLUSTER_OFFLINE);
}

TEST_CASE("control_tcp_bad_frames_are_refused_then_closed", "[control][tcp]") {
    TcpServerFixture f;
    {
        ControlClient c(f.tcp());
        const std::uint8_t junk[] = {0x04, 0xFF, 0xFF, 0xFF, 0xFF};
        c.send_raw(junk);
        auto r = c.read();
        REQUIRE(r);
        REQUIRE(r->code() == pb::INVALID_ARGUMENT);
        REQUIRE_FALSE(c.read(10000));
        REQUIRE(c.closed());
    }
    {
        ControlClient c(f.tcp());
        pb::Envelope env;
        env.set_method("GetStatus");
        env.set_payload(std::string(100 * 1024, 'x'));
        c.send_envelope(env);
        auto r = c.read();
        REQUIRE(r);
        REQUIRE(r->code() == pb::RESOURCE_EXHAUSTED);
        REQUIRE_FALSE(c.read(10000));
        REQUIRE(c.closed());
    }
}

TEST_CASE("control_tcp_listen_bare_port_binds_loopback", "[control][tcp]") {
    TcpServerFixture f("0");
    REQUIRE(f.server->tcp_endpoint().rfind("127.0.0.1:", 0) == 0);
    ControlClient c(TcpAddress{"localhost:" + f.server->tcp_endpoint().substr(10)});
    REQUIRE(c.call("GetStatus", pb::GetStatusRequest()).code() == pb::UNAUTHENTICATED);
}

TEST_CASE("control_tcp_listen_errors_are_clear", "[control][tcp]") {
    Fixture f;
    ControlServerOptions o;
    o.socket_path = f.dir / "control.sock";
    o.tcp_listen = "127.0.0.1:notaport";
    try {
        ControlServer s(f.service, o);
        FAIL("a bad tcp_listen was accepted");
    } catch (const std::runtime_error& e) {
        REQUIRE(std::string(e.what()).find("127.0.0.1:notaport") != std::string::npos);
    }
    REQUIRE_FALSE(std::filesystem::exists(o.socket_path));
    // A port already taken.
    TcpServerFixture first;
    o.tcp_listen = first.server->tcp_endpoint();
    REQUIRE_THROWS_AS(ControlServer(f.service, o), std::runtime_error);
    REQUIRE_THROWS_AS(ControlClient(TcpAddress{"no-port"}), ControlError);
}

TEST_CASE("control_tcp_listen_in_config", "[control][tcp][config]") {
    const std::string base = "[engine]\nstate_dir = \"s\"\n[control]\n";
    auto cfg = parse_config(base, "t.toml", "/tmp");
    REQUIRE_FALSE(cfg.control.tcp_listen);
    cfg = parse_config(base + "tcp_listen = \"127.0.0.1:7700\"\n", "t.toml", "/tmp");
    REQUIRE(cfg.control.tcp_listen == std::optional<std::string>("127.0.0.1:7700"));
    try {
        parse_config(base + "tcp_listen = \"localhost:x\"\n", "t.toml", "/tmp");
        FAIL("accepted");
    } catch (const ConfigError& e) {
        REQUIRE(e.key() == "control.tcp_listen");
    }
}

// ---- config seed -----------------------------------------------------------

namespace {
const std::string kSeedToml = R"toml(
[engine]
state_dir = "state"

[[zone]]
id = "hn"
name = "Ha Noi"
kind = "province"

[[zone]]
id = "hn.bv"
name = "Ba Vi"
kind = "district"
parent = "hn"

[[cluster]]
id = "c1"
address = "127.0.0.1:7000"
zone = "hn.bv"
name = "Cluster one"

[[cluster]]
id = "config-only"
address = "127.0.0.1:7001"
)toml";

EngineConfig seed_config(const std::string& extra = {}) { return parse_config(kSeedToml + extra, "seed.toml", "/tmp"); }
}  // namespace

TEST_CASE("control_seed_is_parsed_from_zone_and_cluster_tables", "[control][seed][config]") {
    const auto cfg = seed_config();
    REQUIRE(cfg.zones.size() == 2);
    REQUIRE(cfg.zones[1].parent == "hn");
    REQUIRE(cfg.cluster_seeds.size() == 1);
    REQUIRE(cfg.cluster_seeds[0].zone == "hn.bv");
    std::vector<ZoneRow> zones;
    std::vector<ClusterRow> clusters;
    seed_rows(cfg, zones, clusters);
    REQUIRE(zones.size() == 2);
    REQUIRE(zones[1].kind == ZoneKind::District);
    REQUIRE(clusters.size() == 1);  // only clusters that name a zone are seeded
    REQUIRE(clusters[0].address == "127.0.0.1:7000");
    REQUIRE(clusters[0].name == "Cluster one");

    const auto key_of = [](const std::string& toml) {
        try {
            parse_config(toml, "seed.toml", "/tmp");
        } catch (const ConfigError& e) {
            return e.key();
        }
        return std::string("accepted");
    };
    REQUIRE(key_of("[[zone]]\nid = \"a\"\nkind = \"district\"\n") == "zone[0].parent");
    REQUIRE(key_of("[[zone]]\nid = \"a\"\nkind = \"province\"\n[[zone]]\nid = \"b\"\nkind = \"commune\"\nparent = \"a\"\n") ==
            "zone[1].parent");  // a commune sits below a district
    REQUIRE(key_of("[[zone]]\nid = \"b\"\nkind = \"district\"\nparent = \"a\"\n[[zone]]\nid = \"a\"\nkind = \"province\"\n") ==
            "zone[0].parent");  // parents first
    REQUIRE(key_of("[[zone]]\nid = \"A B\"\nkind = \"province\"\n") == "zone[0].id");
    REQUIRE(key_of("[[zone]]\nid = \"a\"\nkind = \"hamlet\"\n") == "zone[0].kind");
    REQUIRE(key_of("[[zone]]\nid = \"a\"\nkind = \"province\"\n[[zone]]\nid = \"a\"\nkind = \"province\"\n") == "zone[1].id");
    REQUIRE(key_of("[[cluster]]\nid = \"c\"\naddress = \"127.0.0.1:1\"\nzone = \"nowhere\"\n") == "cluster[0].zone");
    REQUIRE(key_of("[[zone]]\nid = \"a\"\nkind = \"province\"\ncolour = \"red\"\n") == "zone[0].colour");
}

TEST_CASE("control_seed_is_imported_once_into_an_empty_database", "[control][seed]") {
    Fixture f;
    auto r = import_seed(f.store, seed_config(), f.clock);
    REQUIRE(r.imported);
    REQUIRE(r.zones == 2);
    REQUIRE(r.clusters == 1);
    REQUIRE(f.store.zone("hn.bv")->name == "Ba Vi");
    REQUIRE(f.store.cluster("c1")->zone_id == "hn.bv");
    REQUIRE_FALSE(f.store.cluster("config-only"));
    const auto events = f.store.events_after(0, 10);
    REQUIRE(events.size() == 1);
    REQUIRE(events[0].kind == pb::CONFIG_CHANGED);
    REQUIRE(events[0].subject == "seed");

    // Operators change things through the API ...
    pb::RemoveClusterRequest rm;
    rm.set_id("c1");
    f.admin<pb::RemoveClusterResponse>("RemoveCluster", rm);
    pb::RenameZoneRequest rn;
    rn.set_id("hn");
    rn.set_name("Thu do");
    f.admin("RenameZone", rn);
    const auto before = f.snapshot();
    // ... and a restart with an edited seed changes nothing.
    const auto edited = seed_config(
        "[[zone]]\nid = \"hcm\"\nkind = \"province\"\n[[cluster]]\nid = \"c2\"\naddress = \"127.0.0.1:7002\"\nzone = \"hcm\"\n");
    r = import_seed(f.store, edited, f.clock);
    REQUIRE_FALSE(r.imported);
    REQUIRE(r.summary.find("already imported") != std::string::npos);
    REQUIRE(f.snapshot() == before);
    REQUIRE_FALSE(f.store.cluster("c1"));
    REQUIRE(f.store.zone("hn")->name == "Thu do");
    // Even once the operators have emptied the database.
    pb::DeleteZoneRequest dz;
    dz.set_id("hn.bv");
    f.admin<pb::DeleteZoneResponse>("DeleteZone", dz);
    dz.set_id("hn");
    f.admin<pb::DeleteZoneResponse>("DeleteZone", dz);
    REQUIRE(f.store.object_count() == 0);
    REQUIRE_FALSE(import_seed(f.store, edited, f.clock).imported);
    REQUIRE(f.store.zones().empty());
}

TEST_CASE("control_seed_is_not_imported_into_a_filled_database", "[control][seed]") {
    Fixture f;
    // No seed yet: nothing happens, and a seed may still come later.
    auto r = import_seed(f.store, parse_config("", "empty.toml", "/tmp"), f.clock);
    REQUIRE_FALSE(r.imported);
    REQUIRE_FALSE(f.store.meta("seed_imported"));
    // A database filled through the API (e.g. by an older engine) is never seeded.
    f.zone("dn", pb::PROVINCE_ZONE, "");
    r = import_seed(f.store, seed_config(), f.clock);
    REQUIRE_FALSE(r.imported);
    REQUIRE_FALSE(f.store.zone("hn"));
    REQUIRE(f.store.meta("seed_imported"));
    f.admin<pb::DeleteZoneResponse>("DeleteZone", [] {
        pb::DeleteZoneRequest d;
        d.set_id("dn");
        return d;
    }());
    REQUIRE_FALSE(import_seed(f.store, seed_config(), f.clock).imported);
}

TEST_CASE("control_seed_with_a_bad_cluster_id_imports_nothing", "[control][seed]") {
    Fixture f;
    const auto cfg = seed_config("[[cluster]]\nid = \"bad id\"\naddress = \"127.0.0.1:7003\"\nzone = \"hn\"\n");
    try {
        import_seed(f.store, cfg, f.clock);
        FAIL("accepted");
    } catch (const ControlError& e) {
        REQUIRE(e.code() == RpcCode::InvalidArgument);
        REQUIRE(std::string(e.what()).find("bad id") != std::string::npos);
    }
    REQUIRE(f.store.object_count() == 0);
    REQUIRE_FALSE(f.store.meta("seed_imported"));
}

// ---- full disk / unwritable state ------------------------------------------

TEST_CASE("control_full_disk_fails_mutations_with_resource_exhausted", "[control][disk]") {
    Fixture f;
    f.zone("hn", pb::PROVINCE_ZONE, "");
    f.zone("hn.bv", pb::DISTRICT_ZONE, "hn");
    // Simulate a full disk: the database may not grow past its current size
    // (SQLite clamps the cap to the pages already in use).
    f.store.set_max_pages(1);
    const std::string name(200, 'n');
    pb::Response r;
    int ok = 0;
    for (int i = 0; i < 5000; ++i) {
        pb::CreateZoneRequest z;
        z.set_id("hn.bv.z" + std::to_string(i));
        z.set_name(name);
        z.set_kind(pb::COMMUNE_ZONE);
        z.set_parent_id("hn.bv");
        r = f.call("CreateZone", z);
        if (r.code() != pb::OK) break;
        ++ok;
    }
    INFO(r.message());
    REQUIRE(r.code() == pb::RESOURCE_EXHAUSTED);
    REQUIRE(r.message().find("disk full") != std::string::npos);
    // The failed call changed nothing, reads still work, nothing crashed.
    const auto last = "hn.bv.z" + std::to_string(ok);
    REQUIRE_FALSE(f.store.zone(last));
    REQUIRE(f.call("ListZones", pb::ListZonesRequest()).code() == pb::OK);
    REQUIRE(f.call("GetStatus", pb::GetStatusRequest()).code() == pb::OK);
    REQUIRE(f.store.integrity_check() == "ok");
    // Engine events cannot be recorded either; the error is clear, not a crash.
    try {
        f.service.record_engine_message("cluster 'c1' online from 127.0.0.1:1");
    } catch (const ControlError& e) {
        REQUIRE(e.code() == RpcCode::ResourceExhausted);
    }
    // Space comes back: writes work again.
    const auto before = f.snapshot();
    f.store.set_max_pages(1'000'000'000);
    pb::CreateZoneRequest z;
    z.set_id(last);
    z.set_name("x");
    z.set_kind(pb::COMMUNE_ZONE);
    z.set_parent_id("hn.bv");
    REQUIRE(f.call("CreateZone", z).code() == pb::OK);
    REQUIRE(before != f.snapshot());
}

TEST_CASE("control_read_only_state_fails_mutations_with_unavailable", "[control][disk]") {
    Fixture f;
    f.zone("hn", pb::PROVINCE_ZONE, "");
    const auto before = f.snapshot();
    f.store.set_read_only(true);
    pb::CreateZoneRequest z;
    z.set_id("hn.bv");
    z.set_name("Ba Vì");
    z.set_kind(pb::DISTRICT_ZONE);
    z.set_parent_id("hn");
    const auto r = f.call("CreateZone", z);
    INFO(r.message());
    REQUIRE(r.code() == pb::UNAVAILABLE);
    REQUIRE(r.message().find("not writable") != std::string::npos);
    pb::RegisterClusterRequest reg;
    reg.set_id("c1");
    reg.set_zone_id("hn");
    CHECK(f.call("RegisterCluster", reg).code() == pb::UNAVAILABLE);
    // Nothing changed and reads still answer.
    REQUIRE(f.snapshot() == before);
    REQUIRE(f.call("ListZones", pb::ListZonesRequest()).code() == pb::OK);
    REQUIRE(f.call("GetStatus", pb::GetStatusRequest()).code() == pb::OK);
    // Writable again: the same call succeeds.
    f.store.set_read_only(false);
    REQUIRE(f.call("CreateZone", z).code() == pb::OK);
    REQUIRE(f.store.integrity_check() == "ok");
}
