// Control service behind its socket server (requests in flight, bad frames,
// stalled clients, event streams) and the TCP listener's token rule.
#include <catch2/catch.hpp>

#include <map>
#include <memory>

#include "control_fixture.h"
#include "loa/engine/config.h"
#include "loa/engine/control_client.h"
#include "loa/engine/control_server.h"

using namespace loa::engine;
namespace pb = loa::control::v1;

namespace {
using Fixture = loa::test::ControlFixture;
}  // namespace

// ---- socket server ---------------------------------------------------------

namespace {

// A frame larger than the server's 64 KiB limit: RESOURCE_EXHAUSTED, then
// the server closes the connection.
void oversized_frame_is_refused_then_closed(ControlClient& c) {
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

// A frame that is not an envelope: INVALID_ARGUMENT, then the server closes
// the connection.
void garbage_is_refused_then_closed(ControlClient& c) {
    const std::uint8_t junk[] = {0x04, 0xFF, 0xFF, 0xFF, 0xFF};
    c.send_raw(junk);
    auto r = c.read();
    REQUIRE(r);
    REQUIRE(r->code() == pb::INVALID_ARGUMENT);
    REQUIRE_FALSE(c.read(10000));
    REQUIRE(c.closed());
}
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
    oversized_frame_is_refused_then_closed(c);
}

TEST_CASE("socket_rejects_garbage_then_closes", "[control][server]") {
    ServerFixture f;
    ControlClient c(f.dir / "control.sock");
    garbage_is_refused_then_closed(c);
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
        garbage_is_refused_then_closed(c);
    }
    {
        ControlClient c(f.tcp());
        oversized_frame_is_refused_then_closed(c);
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
