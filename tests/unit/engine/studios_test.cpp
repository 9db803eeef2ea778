// Run-time studios: the engine's studio table changing while it runs, the
// ingest router, the `studios` table and its migration, and the seed. The
// control calls (DeclareStudio / ListStudios / RemoveStudio, programmes that
// play a studio) are in studios_control_test.cpp.
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include "loa/engine/clock.h"
#include "loa/engine/config.h"
#include "loa/engine/control_seed.h"
#include "loa/engine/engine.h"
#include "loa/engine/ingest.h"
#include "loa/engine/store.h"
#include "loa/engine/v1/stats.pb.h"
#include "engine_test_util.h"
#include "temp_dir.h"
#include "tone_rtp_stream.h"

using namespace loa::engine;
using boost::asio::ip::udp;

namespace {

using loa::test::eventually;
using loa::test::studio_engine_config;

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
        b.source_address = "127.1.2.3";
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
    CHECK(all[0].source_address == "127.1.2.3");
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
