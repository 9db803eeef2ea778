// Run-time studios: the engine's studio table changing while it runs, the
// `studios` table and its migration, the seed, DeclareStudio / ListStudios /
// RemoveStudio validation, an authorisation matrix, and run-time programmes
// that play a studio (several at once, up to the studio's reader limit).
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <sstream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include "loa/engine/clock.h"
#include "loa/engine/config.h"
#include "loa/engine/control_seed.h"
#include "loa/engine/control_service.h"
#include "loa/engine/engine.h"
#include "loa/engine/ingest.h"
#include "loa/engine/programme_control.h"
#include "loa/engine/programme_manager.h"
#include "loa/engine/store.h"
#include "loa/engine/studio_control.h"
#include "loa/engine/v1/stats.pb.h"
#include "temp_dir.h"
#include "tone_rtp_stream.h"

using namespace loa::engine;
namespace pb = loa::control::v1;
using boost::asio::ip::udp;

namespace {

const PeerInfo kRootPeer{true, true, 0};

EngineConfig studio_engine_config(const std::filesystem::path& state_dir) {
    EngineConfig c;
    c.engine.listen = udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0);
    c.engine.ingest_listen = udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0);
    c.engine.fanout_threads = 1;
    c.engine.realtime_priority = 0;
    c.engine.state_dir = state_dir;  // the control plane may add studios: the ingest socket opens
    return c;
}

template <typename Pred>
bool eventually(Pred pred) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

// A studio pushing RTP to the engine's ingest socket from 127.0.0.1.
struct Sender {
    boost::asio::io_context io;
    udp::socket socket{io, udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0)};
    udp::endpoint to;
    explicit Sender(udp::endpoint ingest) : to(std::move(ingest)) {}
    void send(const std::vector<std::uint8_t>& packet) { socket.send_to(boost::asio::buffer(packet), to); }
    unsigned short port() const { return socket.local_endpoint().port(); }
};

ProgramConfig studio_programme(const std::string& name, std::uint32_t ssrc, const std::string& studio) {
    ProgramConfig pc;
    pc.name = name;
    pc.ssrc = ssrc;
    SourceConfig s;
    s.type = SourceConfig::Type::Studio;
    s.studio = studio;
    pc.sources.push_back(s);
    return pc;
}

}  // namespace

// ---- engine ----------------------------------------------------------------

TEST_CASE("runtime_studio_added_and_removed_while_running", "[engine][studios]") {
    loa::test::TempDir dir("loa-studios");
    SystemClock clock;
    Engine engine(studio_engine_config(dir.path()), clock);
    REQUIRE(engine.ingest_endpoint());
    engine.start();
    Sender sender(*engine.ingest_endpoint());
    loa::test::ToneRtpStream tone({0x5151, 100, 0, 440.0});

    StudioConfig sc;
    sc.name = "district-7";
    sc.ssrc = 0x5151;
    engine.add_studio(sc);
    CHECK_THROWS_AS(engine.add_studio(sc), std::invalid_argument);  // the name is taken
    StudioConfig twin = sc;
    twin.name = "twin";
    CHECK_THROWS_AS(engine.add_studio(twin), std::invalid_argument);  // could not be told apart
    StudioConfig nothing;
    nothing.name = "nothing";
    CHECK_THROWS_AS(engine.add_studio(nothing), std::invalid_argument);  // neither ssrc nor address
    CHECK(engine.runtime_studios() == std::vector<std::string>{"district-7"});

    // No programme takes it yet: latched and counted, then dropped as idle.
    sender.send(tone.next());
    REQUIRE(eventually([&] { return engine.ingest().idle.load() == 1; }));
    loa::engine::v1::EngineStats es;
    engine.stats(es, false);
    CHECK(es.ingest().idle() == 1);  // reported to GetStatus and --stats-out
    loa::engine::v1::StudioStats st;
    auto status = engine.studio_status("district-7", &st);
    REQUIRE(status);
    CHECK(status->runtime);
    CHECK_FALSE(status->programme_group);
    CHECK(st.latched_address() == "127.0.0.1:" + std::to_string(sender.port()));

    // A run-time programme takes it; others may read it too, up to the limit.
    const auto group = engine.add_programme(studio_programme("live", 0x7001, "district-7"));
    REQUIRE(engine.studio_status("district-7")->programme_group == group);
    std::vector<std::uint32_t> groups{group};
    for (std::uint32_t i = 1; i < StudioFeed::kMaxReaders; ++i) {
        groups.push_back(engine.add_programme(studio_programme("also-" + std::to_string(i), 0x7010 + i, "district-7")));
    }
    CHECK(engine.studio_status("district-7")->programme_groups == groups);
    CHECK(engine.studio_status("district-7")->programme_group == group);
    CHECK_THROWS_AS(engine.add_programme(studio_programme("again", 0x7002, "district-7")), CapacityError);
    CHECK_THROWS_AS(engine.add_programme(studio_programme("ghost", 0x7003, "nope")), std::runtime_error);
    CHECK(engine.remove_studio("district-7") == Engine::StudioRemoval::Busy);
    // The extra readers go again; the first programme keeps the studio.
    for (std::size_t i = 1; i < groups.size(); ++i) REQUIRE(engine.remove_programme(groups[i]));
    CHECK(engine.studio_status("district-7")->programme_groups == std::vector<std::uint32_t>{group});

    // Its packets now reach the programme's playout on the media thread.
    for (int i = 0; i < 25; ++i) sender.send(tone.next());
    REQUIRE(eventually([&] {
        (void)engine.studio_status("district-7", &st);
        return st.received() >= 25;
    }));
    CHECK(st.program() == "live");
    CHECK(st.readers() == 1);
    CHECK(engine.ingest().accepted.load() >= 25);

    // Stopping the programme frees the studio at once; then it can go.
    REQUIRE(engine.remove_programme(group));
    CHECK_FALSE(engine.studio_status("district-7")->programme_group);
    CHECK(engine.remove_studio("district-7") == Engine::StudioRemoval::Removed);
    CHECK(engine.remove_studio("district-7") == Engine::StudioRemoval::NotFound);
    CHECK_FALSE(engine.studio_status("district-7"));
    CHECK(engine.runtime_studios().empty());

    // A packet of the removed studio is unknown now: dropped and counted.
    const auto unknown = engine.ingest().unknown_studio.load();
    const auto accepted = engine.ingest().accepted.load();
    const auto idle = engine.ingest().idle.load();
    sender.send(tone.next());
    REQUIRE(eventually([&] { return engine.ingest().unknown_studio.load() == unknown + 1; }));
    CHECK(engine.ingest().accepted.load() == accepted);
    CHECK(engine.ingest().idle.load() == idle);

    // Declared again, it is recognised again (a fresh feed, latched anew).
    engine.add_studio(sc);
    sender.send(tone.next());
    REQUIRE(eventually([&] { return engine.ingest().idle.load() == idle + 1; }));
    engine.stop();
}

TEST_CASE("config_studios_stay_bound_to_their_programme", "[engine][studios]") {
    const auto cfg = parse_config(R"(
[engine]
listen = "127.0.0.1:0"
ingest_listen = "127.0.0.1:0"
fanout_threads = 1
realtime_priority = 0

[[studio]]
name = "cfg"
ssrc = 1
program = "p"

[[program]]
name = "p"
  [[program.source]]
  type = "studio"
  studio = "cfg"
)",
                                  "studio.toml", "/tmp");
    SystemClock clock;
    Engine engine(cfg, clock);
    REQUIRE(engine.ingest_endpoint());
    const auto status = engine.studio_status("cfg");
    REQUIRE(status);
    CHECK_FALSE(status->runtime);
    StudioConfig same;
    same.name = "cfg";
    same.ssrc = 2;
    CHECK_THROWS_AS(engine.add_studio(same), std::invalid_argument);
    CHECK_THROWS_AS(engine.add_programme(studio_programme("rt", 0x99, "cfg")), std::runtime_error);
    CHECK(engine.remove_studio("cfg") == Engine::StudioRemoval::NotFound);
}

TEST_CASE("no_ingest_socket_without_studios_or_state_dir", "[engine][studios]") {
    auto cfg = studio_engine_config("/nonexistent");
    cfg.engine.state_dir.reset();
    SystemClock clock;
    Engine engine(cfg, clock);
    CHECK_FALSE(engine.ingest_endpoint());
    StudioConfig sc;
    sc.name = "s";
    sc.ssrc = 3;
    CHECK_THROWS_AS(engine.add_studio(sc), std::runtime_error);
}

TEST_CASE("ingest_router_swaps_tables_under_a_routing_thread", "[ingest][studios]") {
    // One thread routes packets of SSRC 9 without pause while this one
    // publishes, cycle after cycle, a table with a fresh feed for them and
    // then one without, and deletes each feed as soon as released() says the
    // router is done with it. After each publish it waits until a whole
    // route() has run on the new table (the counter moved by two).
    IngestRouter router;
    const auto packet = loa::test::ToneRtpStream({9, 0, 0, 440.0}).next();
    const udp::endpoint from(boost::asio::ip::make_address_v4("127.0.0.1"), 4000);
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> routed{0};
    std::uint64_t idle = 0, unknown = 0, other = 0;
    std::thread io([&] {
        for (std::int64_t i = 0; !stop.load(std::memory_order_acquire); ++i) {
            StudioFeed* matched = nullptr;
            switch (router.route(packet, from, i, &matched)) {
                case IngestRouter::Result::Idle: ++idle; break;
                case IngestRouter::Result::UnknownStudio: ++unknown; break;
                default: ++other; break;
            }
            routed.fetch_add(1, std::memory_order_release);
        }
    });
    const auto settle = [&] {
        const auto at = routed.load(std::memory_order_acquire);
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (routed.load(std::memory_order_acquire) < at + 2 && std::chrono::steady_clock::now() < until) {
            std::this_thread::yield();
        }
        return routed.load(std::memory_order_acquire) >= at + 2;
    };
    struct Pending {
        std::unique_ptr<StudioFeed> feed;
        std::uint64_t ticket;
    };
    std::vector<Pending> pending;
    std::size_t freed = 0;
    constexpr int kCycles = 300;
    bool progressed = true;
    for (int c = 0; c < kCycles && progressed; ++c) {
        auto feed = std::make_unique<StudioFeed>(StudioMatch{"s", 9u, std::nullopt}, 2'000'000'000, 4);
        // No reader attached: the packets are counted idle.
        (void)router.publish({feed.get()});
        progressed = settle();
        pending.push_back({std::move(feed), router.publish({})});
        progressed = progressed && settle();
        std::erase_if(pending, [&](const Pending& p) {
            if (!router.released(p.ticket)) return false;
            ++freed;
            return true;
        });
    }
    stop.store(true, std::memory_order_release);
    io.join();
    REQUIRE(progressed);
    for (const auto& p : pending) CHECK(router.released(p.ticket));  // the router is idle now
    router.collect_garbage();
    CHECK(other == 0);
    CHECK(idle >= kCycles);
    CHECK(unknown >= kCycles);
    CHECK(idle + unknown == routed.load());
    CHECK(freed + pending.size() == kCycles);
    CHECK(freed >= kCycles - 1);  // every feed but perhaps the last was released during the run
    CHECK(router.feeds().empty());
}

// ---- store and seed --------------------------------------------------------

TEST_CASE("studios_table_round_trips", "[store][studios]") {
    loa::test::TempDir dir("loa-studios-store");
    {
        Store s(dir / "state.db");
        REQUIRE(s.schema_version() == Store::kSchemaVersion);
        REQUIRE(Store::kSchemaVersion >= 7);
        s.write([&] {
            s.insert_zone({"hn", "Ha Noi", ZoneKind::Province, ""});
            s.insert_zone({"hn.bv", "Ba Vi", ZoneKind::District, "hn"});
        });
        StudioRow a;
        a.name = "ba-vi";
        a.zone_id = "hn.bv";
        a.ssrc = 0xFFFFFFFFu;  // the whole SSRC range survives
        a.min_delay_ms = 20;
        a.max_delay_ms = 300;
        a.created_unix_ms = 42;
        a.created_by = "ann";
        StudioRow b;
        b.name = "Alpha";
        b.zone_id = "hn";
        b.source_address = "10.1.2.3";
        b.fixed_delay_ms = 80;
        s.write([&] {
            s.insert_studio(a);
            s.insert_studio(b);
        });
        // A studio's zone must exist.
        StudioRow orphan = a;
        orphan.name = "orphan";
        orphan.zone_id = "nowhere";
        CHECK_THROWS_AS(s.write([&] { s.insert_studio(orphan); }), ControlError);
        CHECK_THROWS_AS(s.write([&] { s.insert_studio(a); }), ControlError);  // name is the key
    }
    Store s(dir / "state.db");
    const auto all = s.studios();
    REQUIRE(all.size() == 2);
    CHECK(all[0].name == "Alpha");  // ordered by name
    CHECK_FALSE(all[0].ssrc);
    CHECK(all[0].source_address == "10.1.2.3");
    CHECK(all[0].fixed_delay_ms == 80);
    const auto a = s.studio("ba-vi");
    REQUIRE(a);
    CHECK(a->ssrc == 0xFFFFFFFFu);
    CHECK(a->source_address.empty());
    CHECK(a->min_delay_ms == 20);
    CHECK(a->max_delay_ms == 300);
    CHECK(a->fallback_clip_id == 0);
    CHECK(a->created_by == "ann");
    CHECK(s.studio_count_in_zone("hn.bv") == 1);
    s.write([&] { s.delete_studio("ba-vi"); });
    CHECK_FALSE(s.studio("ba-vi"));
    CHECK(s.studio_count_in_zone("hn.bv") == 0);
    CHECK(s.integrity_check() == "ok");
}

TEST_CASE("version_6_database_gains_the_studios_table", "[store][studios]") {
    loa::test::TempDir dir("loa-studios-store");
    const auto db = dir / "state.db";
    {
        Store s(db);
        s.write([&] { s.insert_zone({"hn", "Ha Noi", ZoneKind::Province, ""}); });
    }
    {
        // Back to version 6, as the alerts step left it: drop every table later versions added.
        sqlite3* h = nullptr;
        REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
        std::vector<std::string> later;
        sqlite3_stmt* st = nullptr;
        REQUIRE(sqlite3_prepare_v2(h,
                                   "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN "
                                   "('schema_version', 'zones', 'clusters', 'operators', 'events', 'meta', 'clips', "
                                   "'programmes', 'alerts', 'sqlite_sequence')",
                                   -1, &st, nullptr) == SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) later.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
        sqlite3_finalize(st);
        REQUIRE(std::find(later.begin(), later.end(), "studios") != later.end());
        std::string sql = "UPDATE schema_version SET version = 6;";
        for (const auto& t : later) sql += "DROP TABLE " + t + ";";
        REQUIRE(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close(h);
    }
    Store s(db);
    REQUIRE(s.schema_version() == Store::kSchemaVersion);
    CHECK(s.zone("hn"));
    CHECK(s.studios().empty());
    StudioRow r;
    r.name = "s";
    r.zone_id = "hn";
    r.ssrc = 7;
    s.write([&] { s.insert_studio(r); });
    CHECK(s.studio("s"));
}

TEST_CASE("seed_studios_with_a_zone_are_imported_once", "[control][seed][studios]") {
    const std::string toml = R"(
[engine]
listen = "127.0.0.1:0"

[[zone]]
id = "hn"
kind = "province"

[[zone]]
id = "hn.bv"
kind = "district"
parent = "hn"

[[studio]]
name = "ba-vi"
zone = "hn.bv"
ssrc = 4242
max_delay_ms = 300
delay_ms = 60
)";
    const auto cfg = parse_config(toml, "seed.toml", "/tmp");
    CHECK(cfg.studios.empty());  // not a config studio: it lives in the database
    REQUIRE(cfg.studio_seeds.size() == 1);
    CHECK(cfg.studio_seeds[0].zone == "hn.bv");

    loa::test::TempDir dir("loa-studios-seed");
    Store store(dir / "state.db");
    ManualClock clock{0, 1'700'000'000'000'000'000};
    const auto r = import_seed(store, cfg, clock);
    CHECK(r.imported);
    CHECK(r.studios == 1);
    CHECK(r.summary.find("1 studio(s)") != std::string::npos);
    const auto s = store.studio("ba-vi");
    REQUIRE(s);
    CHECK(s->zone_id == "hn.bv");
    CHECK(s->ssrc == 4242u);
    CHECK(s->max_delay_ms == 300);
    CHECK(s->fixed_delay_ms == 60);
    CHECK(s->created_by == "seed");
    // Once only: a removed studio stays removed.
    store.write([&] { store.delete_studio("ba-vi"); });
    CHECK_FALSE(import_seed(store, cfg, clock).imported);
    CHECK(store.studios().empty());

    // A seeded studio names a known zone and no programme.
    CHECK_THROWS_AS(parse_config(toml + "\n[[studio]]\nname = \"x\"\nzone = \"nope\"\nssrc = 1\n", "seed.toml", "/tmp"),
                    ConfigError);
    CHECK_THROWS_AS(
        parse_config(toml + "\n[[studio]]\nname = \"x\"\nzone = \"hn\"\nssrc = 1\nprogram = \"p\"\n", "seed.toml", "/tmp"),
        ConfigError);
    CHECK_THROWS_AS(parse_config(toml + "\n[[studio]]\nname = \"ba-vi\"\nzone = \"hn\"\nssrc = 1\n", "seed.toml", "/tmp"),
                    ConfigError);
}

// ---- control service -------------------------------------------------------

namespace {

// A control service with an engine (never started), run-time programmes and
// studios, over a zone tree: hn > {hn.bv (inside), hn.st (outside)} > communes.
struct StudioFixture {
    loa::test::TempDir dir{"loa-studios-control"};
    std::filesystem::path state_dir;
    Store store{state_dir / "state.db"};
    ManualClock clock{0, 1'700'000'000'000'000'000};
    ControlService service{store, clock, 1000};
    SystemClock engine_clock;
    Engine engine{studio_engine_config(state_dir), engine_clock};
    ProgrammeManager manager{engine};
    ProgrammeControl programmes{store, manager, clock};
    StudioControl studios{store, engine};

    /// `state`: an existing state folder to reopen (nothing is restored
    /// unless the test asks); default: a fresh one with the zone tree.
    explicit StudioFixture(std::optional<std::filesystem::path> state = std::nullopt)
        : state_dir(state ? *state : dir.path()) {
        service.set_programme_control(&programmes);
        service.set_studio_control(&studios);
        if (state) return;
        for (const auto& [id, kind, parent] :
             std::vector<std::tuple<std::string, ZoneKind, std::string>>{{"hn", ZoneKind::Province, ""},
                                                                         {"hn.bv", ZoneKind::District, "hn"},
                                                                         {"hn.bv.a", ZoneKind::Commune, "hn.bv"},
                                                                         {"hn.st", ZoneKind::District, "hn"},
                                                                         {"hn.st.a", ZoneKind::Commune, "hn.st"}}) {
            store.write([&] { store.insert_zone({id, id, kind, parent}); });
        }
    }
    ~StudioFixture() {
        service.set_programme_control(nullptr);
        service.set_studio_control(nullptr);
    }

    pb::Response call(const std::string& method, const google::protobuf::Message& req, const std::string& token = {}) {
        pb::Envelope env;
        env.set_request_id(1);
        env.set_method(method);
        env.set_token(token);
        env.set_payload(req.SerializeAsString());
        return service.handle(env, kRootPeer).response;
    }
    template <class Resp>
    Resp admin(const std::string& method, const google::protobuf::Message& req) {
        const auto r = call(method, req);
        INFO(method << ": " << r.message());
        REQUIRE(r.code() == pb::OK);
        Resp out;
        REQUIRE(out.ParseFromString(r.payload()));
        return out;
    }
    std::string make_operator(const std::string& name, pb::Role role, const std::string& zone, pb::Level level) {
        pb::CreateOperatorRequest o;
        o.set_name(name);
        o.set_role(role);
        o.set_zone_id(zone);
        o.set_max_level(level);
        return admin<pb::CreateOperatorResponse>("CreateOperator", o).token();
    }
    // Everything a studio call could change, as one comparable string.
    std::string snapshot() const {
        std::ostringstream os;
        for (const auto& s : store.studios()) os << "S " << s.name << "|" << s.zone_id << "\n";
        for (const auto& p : store.programmes()) os << "P " << p.id << "|" << p.source << "\n";
        for (const auto& c : store.clips()) os << "K " << c.id << "|" << c.uses << "\n";
        for (const auto& n : engine.runtime_studios()) os << "E " << n << "\n";
        os << "programmes " << manager.list().size() << " events " << store.last_event_seq();
        return os.str();
    }
};

pb::DeclareStudioRequest declare(const std::string& name, const std::string& zone, std::uint32_t ssrc) {
    pb::DeclareStudioRequest r;
    r.set_name(name);
    r.set_zone_id(zone);
    r.set_ssrc(ssrc);
    return r;
}

pb::StartProgrammeRequest start_from(const std::string& studio, const std::string& zone) {
    pb::StartProgrammeRequest r;
    r.set_level(pb::COMMUNE);
    r.add_zone_ids(zone);
    r.set_studio(studio);
    return r;
}

}  // namespace

TEST_CASE("declare_studio_validation", "[control][studios]") {
    StudioFixture f;
    const auto code = [&](const pb::DeclareStudioRequest& r) {
        const auto resp = f.call("DeclareStudio", r);
        INFO(r.ShortDebugString() << " -> " << resp.message());
        return resp.code();
    };
    auto r = declare("ok.name_1-A", "hn.bv", 11);
    r.set_min_delay_ms(20);
    r.set_max_delay_ms(200);
    const auto before = f.snapshot();

    auto bad = r;
    for (const std::string& name : std::vector<std::string>{"", "has space", "slash/no", std::string(65, 'x')}) {
        bad = r;
        bad.set_name(name);
        CHECK(code(bad) == pb::INVALID_ARGUMENT);
    }
    bad = r;
    bad.clear_ssrc();
    CHECK(code(bad) == pb::INVALID_ARGUMENT);  // neither ssrc nor address
    for (const std::string addr : {"", "not-an-ip", "::1", "10.0.0.1:5004", "0.0.0.0", "239.1.1.1"}) {
        bad = r;
        bad.set_source_address(addr);
        CHECK(code(bad) == pb::INVALID_ARGUMENT);
    }
    bad = r;
    bad.set_zone_id("");
    CHECK(code(bad) == pb::INVALID_ARGUMENT);
    const std::vector<std::tuple<int, int, int>> delays = {
        {-1, 200, 0}, {2001, 5000, 0}, {0, 5, 0}, {0, 5001, 0}, {300, 200, 0}, {0, 200, 201}, {0, 200, -3}};
    for (const auto& [mn, mx, fixed] : delays) {
        bad = r;
        bad.set_min_delay_ms(mn);
        bad.set_max_delay_ms(mx);
        bad.set_fixed_delay_ms(fixed);
        CHECK(code(bad) == pb::INVALID_ARGUMENT);
    }
    bad = r;
    bad.set_zone_id("hn.nowhere");
    CHECK(code(bad) == pb::NOT_FOUND);
    bad = r;
    bad.set_fallback_clip_id(99);
    CHECK(code(bad) == pb::NOT_FOUND);
    CHECK(f.snapshot() == before);  // nothing stored, nothing in the engine

    const auto s = f.admin<pb::Studio>("DeclareStudio", r);
    CHECK(s.name() == "ok.name_1-A");
    CHECK(s.zone_id() == "hn.bv");
    CHECK(s.ssrc() == 11u);
    CHECK(s.max_delay_ms() == 200);
    CHECK(s.created_by() == "local admin");
    CHECK(s.has_live());
    CHECK_FALSE(s.receiving());
    CHECK(f.engine.runtime_studios() == std::vector<std::string>{"ok.name_1-A"});
    // Defaults: adaptive up to 500 ms.
    auto by_host = declare("by-host", "hn.bv", 0);
    by_host.clear_ssrc();
    by_host.set_source_address("10.0.0.9");
    const auto h = f.admin<pb::Studio>("DeclareStudio", by_host);
    CHECK_FALSE(h.has_ssrc());
    CHECK(h.source_address() == "10.0.0.9");
    CHECK(h.max_delay_ms() == 500);
    CHECK(h.fixed_delay_ms() == 0);

    const auto mid = f.snapshot();
    CHECK(code(r) == pb::ALREADY_EXISTS);  // same name
    auto twin = declare("twin", "hn.st", 11);
    CHECK(code(twin) == pb::ALREADY_EXISTS);  // same ssrc, no address: indistinguishable
    CHECK(f.snapshot() == mid);

    pb::RemoveStudioRequest rm;
    rm.set_name("nope");
    CHECK(f.call("RemoveStudio", rm).code() == pb::NOT_FOUND);

    // A zone that holds a studio cannot be deleted.
    f.admin<pb::Studio>("DeclareStudio", declare("commune-a", "hn.bv.a", 12));
    pb::DeleteZoneRequest dz;
    dz.set_id("hn.bv.a");
    CHECK(f.call("DeleteZone", dz).code() == pb::FAILED_PRECONDITION);
    CHECK(f.store.zone("hn.bv.a"));

    // Without the studio control (no engine), the calls are unavailable.
    f.service.set_studio_control(nullptr);
    CHECK(f.call("ListStudios", pb::ListStudiosRequest()).code() == pb::UNAVAILABLE);
    CHECK(f.call("DeclareStudio", declare("x", "hn", 99)).code() == pb::UNAVAILABLE);
}

TEST_CASE("studio_feeds_several_programmes_up_to_its_reader_limit", "[control][studios]") {
    StudioFixture f;
    // A fallback clip is pinned by the studio that names it.
    ClipRow clip;
    clip.name = "jingle";
    clip.sha256 = std::string(64, 'b');
    clip.ext = "wav";
    clip.format = "WAV";
    f.store.write([&] { clip.id = f.store.insert_clip(clip); });
    auto r = declare("ba-vi", "hn.bv", 5151);
    r.set_fallback_clip_id(static_cast<std::uint64_t>(clip.id));
    const auto seq0 = f.store.last_event_seq();
    CHECK(f.admin<pb::Studio>("DeclareStudio", r).fallback_clip_id() == static_cast<std::uint64_t>(clip.id));
    CHECK(f.store.clip(clip.id)->uses == 1);
    pb::DeleteClipRequest dc;
    dc.set_id(static_cast<std::uint64_t>(clip.id));
    CHECK(f.call("DeleteClip", dc).code() == pb::FAILED_PRECONDITION);

    // Declared: an event in the studio's zone, seen by a watcher scoped there.
    std::uint64_t cursor = 0;
    const Caller district{"d", Role::Viewer, "hn.bv", Priority::Commune};
    auto events = f.service.events_for(district, seq0, 100, cursor);
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind() == pb::STUDIO_DECLARED);
    CHECK(events[0].subject() == "studio/ba-vi");
    CHECK(events[0].zone_id() == "hn.bv");
    const Caller other{"o", Role::Viewer, "hn.st", Priority::Commune};
    CHECK(f.service.events_for(other, seq0, 100, cursor).empty());

    const auto id = f.admin<pb::StartProgrammeResponse>("StartProgramme", start_from("ba-vi", "hn.bv.a")).id();
    const auto group = f.manager.group_of(id);
    REQUIRE(group);
    CHECK(f.engine.studio_status("ba-vi")->programme_group == *group);
    auto list = f.admin<pb::ListStudiosResponse>("ListStudios", pb::ListStudiosRequest());
    REQUIRE(list.studios_size() == 1);
    CHECK(list.studios(0).programme_id() == id);
    CHECK(list.studios(0).live().program() == f.engine.runtime_programme(*group)->config().name);

    // Other programmes may read it at the same time, up to the engine's
    // limit; the studio cannot go while any plays it.
    std::vector<std::uint64_t> others;
    for (std::size_t i = 1; i < StudioFeed::kMaxReaders; ++i) {
        others.push_back(f.admin<pb::StartProgrammeResponse>("StartProgramme", start_from("ba-vi", "hn.bv")).id());
    }
    CHECK(f.engine.studio_status("ba-vi")->programme_groups.size() == StudioFeed::kMaxReaders);
    const auto full = f.call("StartProgramme", start_from("ba-vi", "hn.bv"));
    CHECK(full.code() == pb::RESOURCE_EXHAUSTED);
    CHECK(full.message().find("studio 'ba-vi' already feeds 4 programme(s) or alert(s)") != std::string::npos);
    CHECK(f.call("StartProgramme", start_from("nope", "hn.bv")).code() == pb::NOT_FOUND);
    pb::RemoveStudioRequest rm;
    rm.set_name("ba-vi");
    CHECK(f.call("RemoveStudio", rm).code() == pb::FAILED_PRECONDITION);
    CHECK(f.store.studio("ba-vi"));

    pb::StopProgrammeRequest stop;
    for (const auto more : others) {
        stop.set_id(more);
        f.admin<pb::StopProgrammeResponse>("StopProgramme", stop);
    }
    CHECK(f.engine.studio_status("ba-vi")->programme_group == *group);
    CHECK(f.call("RemoveStudio", rm).code() == pb::FAILED_PRECONDITION);
    stop.set_id(id);
    f.admin<pb::StopProgrammeResponse>("StopProgramme", stop);
    CHECK_FALSE(f.engine.studio_status("ba-vi")->programme_group);
    // Free again: another programme may take it, then it is stopped and the studio removed.
    const auto id2 = f.admin<pb::StartProgrammeResponse>("StartProgramme", start_from("ba-vi", "hn.bv")).id();
    stop.set_id(id2);
    f.admin<pb::StopProgrammeResponse>("StopProgramme", stop);
    const auto seq1 = f.store.last_event_seq();
    f.admin<pb::RemoveStudioResponse>("RemoveStudio", rm);
    CHECK_FALSE(f.store.studio("ba-vi"));
    CHECK(f.engine.runtime_studios().empty());
    CHECK(f.store.clip(clip.id)->uses == 0);
    events = f.service.events_for(district, seq1, 100, cursor);
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind() == pb::STUDIO_REMOVED);
    CHECK(f.call("RemoveStudio", rm).code() == pb::NOT_FOUND);
    f.admin<pb::DeleteClipResponse>("DeleteClip", dc);
}

TEST_CASE("studios_and_their_programmes_are_restored", "[control][studios]") {
    loa::test::TempDir dir("loa-studios-restore");
    std::uint64_t id = 0;
    {
        StudioFixture tree;  // the zone tree (ids sort parents first), copied into the kept folder
        StudioFixture first(dir.path());
        first.store.write([&] {
            for (const auto& z : tree.store.zones()) first.store.insert_zone(z);
        });
        first.admin<pb::Studio>("DeclareStudio", declare("ba-vi", "hn.bv", 5151));
        auto by_host = declare("son-tay", "hn.st", 0);
        by_host.clear_ssrc();
        by_host.set_source_address("10.0.0.7");
        first.admin<pb::Studio>("DeclareStudio", by_host);
        id = first.admin<pb::StartProgrammeResponse>("StartProgramme", start_from("ba-vi", "hn.bv.a")).id();
    }
    // As the engine starts: studios first, then the programmes that play them.
    StudioFixture again(dir.path());
    CHECK(again.engine.runtime_studios().empty());
    CHECK(again.studios.restore().empty());
    CHECK(again.engine.runtime_studios() == std::vector<std::string>{"ba-vi", "son-tay"});
    REQUIRE(again.programmes.refresh_topology().ok());
    CHECK(again.programmes.restore().empty());
    const auto group = again.manager.group_of(id);
    REQUIRE(group);
    CHECK(again.engine.studio_status("ba-vi")->programme_group == *group);
    // Restoring twice adds nothing twice.
    CHECK(again.studios.restore().empty());
    CHECK(again.engine.runtime_studios().size() == 2);
}

TEST_CASE("authorisation_matrix_studios", "[control][auth][studios]") {
    // Every role x caller level, on a studio inside and outside the caller's
    // district: DeclareStudio, RemoveStudio and StartProgramme from a studio
    // are allowed only inside, for operators and admins; anything else is
    // PERMISSION_DENIED and changes nothing. Everyone lists only its subtree.
    for (const auto role : {pb::VIEWER, pb::OPERATOR, pb::ADMIN}) {
        for (const auto level : {pb::COMMUNE, pb::DISTRICT}) {
            StudioFixture f;
            const auto tok = f.make_operator("caller", role, "hn.bv", level);
            f.admin<pb::Studio>("DeclareStudio", declare("in", "hn.bv.a", 1));
            f.admin<pb::Studio>("DeclareStudio", declare("out", "hn.st.a", 2));
            for (const bool inside : {true, false}) {
                const std::string zone = inside ? "hn.bv.a" : "hn.st.a";
                const std::string studio = inside ? "in" : "out";
                const bool allowed = inside && role >= pb::OPERATOR;
                INFO("role " << pb::Role_Name(role) << " level " << pb::Level_Name(level) << " inside " << inside);
                const auto check = [&](const std::string& method, const google::protobuf::Message& m) {
                    const auto before = f.snapshot();
                    const auto r = f.call(method, m, tok);
                    INFO(method << " " << m.ShortDebugString() << " -> " << pb::StatusCode_Name(r.code()) << ": "
                                << r.message());
                    if (allowed) {
                        REQUIRE(r.code() == pb::OK);
                        REQUIRE(f.snapshot() != before);
                    } else {
                        REQUIRE(r.code() == pb::PERMISSION_DENIED);
                        REQUIRE(f.snapshot() == before);
                    }
                    return r;
                };
                check("DeclareStudio", declare("new-" + studio, zone, inside ? 10 : 20));
                // A programme from the studio, to a zone of the same side.
                const auto started = check("StartProgramme", start_from(studio, zone));
                if (allowed) {
                    pb::StartProgrammeResponse sr;
                    REQUIRE(sr.ParseFromString(started.payload()));
                    pb::StopProgrammeRequest stop;
                    stop.set_id(sr.id());
                    f.admin<pb::StopProgrammeResponse>("StopProgramme", stop);
                }
                pb::RemoveStudioRequest rm;
                rm.set_name(studio);
                check("RemoveStudio", rm);
            }
            // A studio outside the caller's scope may not feed even a programme
            // to the caller's own zones.
            if (role >= pb::OPERATOR) {
                f.admin<pb::Studio>("DeclareStudio", declare("out2", "hn.st", 3));
                const auto before = f.snapshot();
                CHECK(f.call("StartProgramme", start_from("out2", "hn.bv.a"), tok).code() == pb::PERMISSION_DENIED);
                CHECK(f.snapshot() == before);
            }
            // Lists show the caller's subtree only.
            const auto r = f.call("ListStudios", pb::ListStudiosRequest(), tok);
            REQUIRE(r.code() == pb::OK);
            pb::ListStudiosResponse l;
            REQUIRE(l.ParseFromString(r.payload()));
            for (const auto& s : l.studios()) CHECK(f.store.zone_within(s.zone_id(), "hn.bv"));
            REQUIRE(l.studios_size() == 1);
            CHECK(l.studios(0).name() == (role >= pb::OPERATOR ? "new-in" : "in"));
        }
    }
}

TEST_CASE("config_studios_are_listed_but_not_removable", "[control][studios]") {
    loa::test::TempDir dir{"loa-studios-config"};
    const auto cfg = parse_config(R"(
[engine]
listen = "127.0.0.1:0"
ingest_listen = "127.0.0.1:0"
fanout_threads = 1
realtime_priority = 0

[[studio]]
name = "cfg"
ssrc = 7
max_delay_ms = 300
program = "p"

[[program]]
name = "p"
  [[program.source]]
  type = "studio"
  studio = "cfg"
)",
                                  "studio.toml", dir.path());
    Store store{dir.path() / "state.db"};
    ManualClock clock{0, 1'700'000'000'000'000'000};
    ControlService service{store, clock, 1000};
    SystemClock engine_clock;
    Engine engine{cfg, engine_clock};
    StudioControl studios{store, engine};
    service.set_studio_control(&studios);
    for (const auto& [id, kind, parent] : std::vector<std::tuple<std::string, ZoneKind, std::string>>{
             {"hn", ZoneKind::Province, ""}, {"hn.bv", ZoneKind::District, "hn"}}) {
        store.write([&] { store.insert_zone({id, id, kind, parent}); });
    }
    const auto call = [&](const std::string& method, const google::protobuf::Message& req,
                          const std::string& token = {}) {
        pb::Envelope env;
        env.set_request_id(1);
        env.set_method(method);
        env.set_token(token);
        env.set_payload(req.SerializeAsString());
        return service.handle(env, kRootPeer).response;
    };
    const auto token_for = [&](const std::string& name, const std::string& zone) {
        pb::CreateOperatorRequest o;
        o.set_name(name);
        o.set_role(pb::ADMIN);
        o.set_zone_id(zone);
        o.set_max_level(pb::EMERGENCY);
        const auto r = call("CreateOperator", o);
        REQUIRE(r.code() == pb::OK);
        pb::CreateOperatorResponse out;
        REQUIRE(out.ParseFromString(r.payload()));
        return out.token();
    };
    const auto list = [&](const std::string& token) {
        const auto r = call("ListStudios", pb::ListStudiosRequest(), token);
        REQUIRE(r.code() == pb::OK);
        pb::ListStudiosResponse l;
        REQUIRE(l.ParseFromString(r.payload()));
        return l;
    };

    // The local admin and a province operator see the config studio, with
    // its programme, match criteria and live counters.
    for (const auto& token : {std::string(), token_for("province", "hn")}) {
        const auto l = list(token);
        REQUIRE(l.studios_size() == 1);
        const auto& s = l.studios(0);
        CHECK(s.name() == "cfg");
        CHECK(s.config_program() == "p");
        CHECK(s.zone_id().empty());
        CHECK(s.ssrc() == 7u);
        CHECK(s.max_delay_ms() == 300);
        CHECK(s.created_by() == "config");
        CHECK(s.has_live());
        CHECK_FALSE(s.receiving());
    }
    // A district operator does not: the studio belongs to no zone of theirs.
    CHECK(list(token_for("district", "hn.bv")).studios_size() == 0);

    // It changes only with the file: RemoveStudio says so and keeps it.
    pb::RemoveStudioRequest rm;
    rm.set_name("cfg");
    const auto r = call("RemoveStudio", rm);
    CHECK(r.code() == pb::FAILED_PRECONDITION);
    CHECK(r.message().find("config file") != std::string::npos);
    CHECK(engine.studio_status("cfg"));
    rm.set_name("nope");
    CHECK(call("RemoveStudio", rm).code() == pb::NOT_FOUND);
    service.set_studio_control(nullptr);
}
