// Control service: framing, dispatch, status mapping, authorisation matrix,
// and the socket server (in-flight requests, bad frames, stalled clients,
// event streams).
#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/delimited_message_util.h>

#include <sstream>

#include "loa/engine/clock.h"
#include "loa/engine/control_client.h"
#include "loa/engine/control_server.h"
#include "loa/engine/control_service.h"
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
