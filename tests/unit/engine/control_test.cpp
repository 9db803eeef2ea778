// Control service: framing, dispatch, status mapping, the caller's identity,
// zone tree rules, cluster paging, and a full disk or unwritable state. The
// authorisation matrix, the socket server and the config seed have their own
// files (control_auth_test, control_server_test, control_seed_test).
#include <catch2/catch.hpp>

#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/delimited_message_util.h>

#include <algorithm>
#include <cstdio>

#include "control_fixture.h"
#include "loa/engine/control_server.h"

using namespace loa::engine;
namespace pb = loa::control::v1;

namespace {
using Fixture = loa::test::ControlFixture;
using loa::test::kRootPeer;
const PeerInfo kStrangerPeer{true, true, 4242};
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
    REQUIRE(r.request_id() == loa::test::kCallRequestId);
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
    f.ok<pb::RevokeOperatorResponse>("RevokeOperator", rv);
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
    f.ok<pb::RemoveClusterResponse>("RemoveCluster", rc);
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
    f.ok<pb::DeleteZoneResponse>("DeleteZone", d);
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
        const auto r = f.ok<pb::ListClustersResponse>("ListClusters", req);
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
