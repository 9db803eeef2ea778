// Background beds for operators: ListProgrammes reports a programme's
// background clip and its dip, also after the engine restarts on the same
// database and restores it.

#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "loa/engine/control_service.h"
#include "loa/engine/engine.h"
#include "loa/engine/programme_control.h"
#include "loa/engine/programme_manager.h"
#include "control_calls.h"
#include "temp_dir.h"

using namespace loa::engine;
namespace pb = loa::control::v1;
using boost::asio::ip::udp;

namespace {

EngineConfig engine_config() {
    EngineConfig c;
    c.engine.listen = udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0);
    c.engine.fanout_threads = 1;
    c.engine.realtime_priority = 0;
    return c;
}

// A state database with zones P > D > A and the control side of an engine
// on it. close() drops everything (as a stopped engine would); open()
// builds it all again from the database, restoring its programmes.
struct Fixture : loa::test::ControlCalls<Fixture> {
    ControlService& control_service() { return *service; }

    loa::test::TempDir dir{"loa-bedlist"};
    ManualClock clock{0, 1'700'000'000'000'000'000};
    SystemClock media_clock;
    std::unique_ptr<Store> store;
    std::unique_ptr<Engine> engine;
    std::unique_ptr<ControlService> service;
    std::unique_ptr<ProgrammeManager> manager;
    std::unique_ptr<ProgrammeControl> programmes;
    std::vector<std::string> restore_problems;

    Fixture() {
        open();
        store->write([&] {
            store->insert_zone({"P", "Province", ZoneKind::Province, ""});
            store->insert_zone({"D", "District", ZoneKind::District, "P"});
            store->insert_zone({"A", "Commune A", ZoneKind::Commune, "D"});
        });
    }
    ~Fixture() { close(); }

    void open() {
        store = std::make_unique<Store>(dir / "state.db");
        engine = std::make_unique<Engine>(engine_config(), media_clock);
        service = std::make_unique<ControlService>(*store, clock, 1000);
        manager = std::make_unique<ProgrammeManager>(*engine);
        programmes = std::make_unique<ProgrammeControl>(*store, *manager, clock);
        programmes->set_clip_dir(service->clip_catalog().dir());
        REQUIRE(programmes->refresh_topology().ok());
        restore_problems = programmes->restore();
        service->set_programme_control(programmes.get());
    }
    void close() {
        if (!service) return;
        service->set_programme_control(nullptr);
        programmes.reset();
        manager.reset();
        engine.reset();
        service.reset();
        store.reset();
    }

    std::uint64_t start(double tone_hz, std::uint64_t bed, double duck_db) {
        pb::StartProgrammeRequest r;
        r.set_name("talk " + std::to_string(static_cast<int>(tone_hz)));
        r.set_level(pb::COMMUNE);
        r.add_zone_ids("A");
        r.set_tone_hz(tone_hz);
        r.set_background_clip_id(bed);
        r.set_duck_db(duck_db);
        return ok<pb::StartProgrammeResponse>("StartProgramme", r).id();
    }

    std::map<std::uint64_t, pb::Programme> listed() {
        std::map<std::uint64_t, pb::Programme> out;
        const auto r = ok<pb::ListProgrammesResponse>("ListProgrammes", pb::ListProgrammesRequest());
        for (const auto& p : r.programmes()) out[p.id()] = p;
        return out;
    }
};

}  // namespace

TEST_CASE("programme_list_shows_background_clip_and_duck_db_also_after_restart", "[control][runtime][ducker]") {
    Fixture f;
    const auto music = f.upload_sine(300, 1.0);
    const auto ducked = f.start(440, music, -20);
    const auto plain = f.start(500, 0, 0);
    const auto fine = f.start(600, music, -7.25);   // hundredths of a dB survive the database
    const auto level = f.start(700, music, 0);      // a bed that never dips

    const auto check = [&](std::map<std::uint64_t, pb::Programme> got) {
        REQUIRE(got.size() == 4);
        CHECK(got[ducked].background_clip_id() == music);
        CHECK(got[ducked].duck_db() == -20.0);
        CHECK(got[plain].background_clip_id() == 0);
        CHECK(got[plain].duck_db() == 0.0);
        CHECK(got[fine].background_clip_id() == music);
        CHECK(got[fine].duck_db() == Approx(-7.25).margin(1e-9));
        CHECK(got[level].background_clip_id() == music);
        CHECK(got[level].duck_db() == 0.0);
    };
    check(f.listed());

    // The engine stops and starts again on the same database: every bed
    // is restored, and listed as it was.
    f.close();
    f.open();
    INFO((f.restore_problems.empty() ? std::string() : f.restore_problems.front()));
    CHECK(f.restore_problems.empty());
    check(f.listed());
    CHECK(f.store->clip(static_cast<std::int64_t>(music))->uses == 3);

    // Stopped, it is no longer listed; the others keep their beds.
    pb::StopProgrammeRequest stop;
    stop.set_id(ducked);
    f.ok<pb::StopProgrammeResponse>("StopProgramme", stop);
    const auto after = f.listed();
    CHECK(after.count(ducked) == 0);
    REQUIRE(after.count(fine) == 1);
    CHECK(after.at(fine).background_clip_id() == music);
    CHECK(f.store->clip(static_cast<std::int64_t>(music))->uses == 2);
}
