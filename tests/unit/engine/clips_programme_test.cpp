// Run-time programmes that play catalogue clips: a clip (or a ducked
// background bed) is pinned while a programme plays it, seen only by callers
// in its scope, persisted and restored; clusters join and leave at once.
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "clips_fixture.h"
#include "engine_test_util.h"
#include "loa/engine/engine.h"
#include "loa/engine/programme_control.h"
#include "loa/engine/programme_manager.h"

using namespace loa::engine;
namespace pb = loa::control::v1;
using loa::test::sine_wav;

namespace {

using Fixture = loa::test::ClipsFixture;

pb::Clip uploaded(const pb::Response& r) {
    REQUIRE(r.code() == pb::OK);
    pb::Clip c;
    REQUIRE(c.ParseFromString(r.payload()));
    return c;
}

// Zones p > d > {a, b}; a global clip and one of commune a (0.5 and 0.25 s);
// a started engine whose run-time programmes the service controls.
struct ClipProgrammes {
    Fixture& f;
    pb::Clip global;
    pb::Clip of_a;
    EngineConfig config = loa::test::loopback_engine_config();
    SystemClock media_clock;
    std::unique_ptr<Engine> engine_ptr;
    std::unique_ptr<ProgrammeManager> manager_ptr;
    std::unique_ptr<ProgrammeControl> control_ptr;

    ClipProgrammes(Fixture& fixture, const std::string& global_name, const std::string& a_name) : f(fixture) {
        f.zone("p", pb::PROVINCE_ZONE, "");
        f.zone("d", pb::DISTRICT_ZONE, "p");
        f.zone("a", pb::COMMUNE_ZONE, "d");
        f.zone("b", pb::COMMUNE_ZONE, "d");
        global = uploaded(f.upload(sine_wav(f.dir / "g.wav", 0.5, 0.5), global_name));
        of_a = uploaded(f.upload(sine_wav(f.dir / "a.wav", 0.5, 0.25), a_name, {}, "a"));
        engine_ptr = std::make_unique<Engine>(config, media_clock);
        engine_ptr->start();
        manager_ptr = std::make_unique<ProgrammeManager>(*engine_ptr);
        control_ptr = std::make_unique<ProgrammeControl>(f.store, *manager_ptr, f.clock);
        control_ptr->set_clip_dir(f.service.clip_catalog().dir());
        f.service.set_programme_control(control_ptr.get());
    }
    ~ClipProgrammes() {
        f.service.set_programme_control(nullptr);
        engine_ptr->stop();
    }

    ProgrammeManager& manager() { return *manager_ptr; }
};

}  // namespace

TEST_CASE("programme_from_catalogue_clip_pins_it_and_follows_cluster_changes", "[control][clips][runtime]") {
    Fixture f;
    ClipProgrammes rig(f, "global", "commune a");
    const auto& global = rig.global;
    const auto& of_a = rig.of_a;
    auto& manager = rig.manager();

    pb::StartProgrammeRequest start;
    start.set_name("bulletin");
    start.set_level(pb::COMMUNE);
    start.add_zone_ids("a");
    start.set_clip_id(global.id());
    const auto id = f.ok<pb::StartProgrammeResponse>("StartProgramme", start).id();
    const auto uses = [&](std::uint64_t clip) { return f.store.clip(static_cast<std::int64_t>(clip))->uses; };
    CHECK(uses(global.id()) == 1);
    pb::DeleteClipRequest del;
    del.set_id(global.id());
    CHECK(f.call("DeleteClip", del).code() == pb::FAILED_PRECONDITION);

    // A cluster registered while the programme plays joins its fan-out at
    // once; disabling it takes it off again.
    CHECK(manager.info(id)->listeners == 0);
    pb::RegisterClusterRequest reg;
    reg.set_id("a1");
    reg.set_zone_id("a");
    reg.set_address("127.0.0.1:9");
    f.ok<pb::Cluster>("RegisterCluster", reg);
    CHECK(manager.info(id)->listeners == 1);
    CHECK(manager.info(id)->targeted == 1);
    pb::SetClusterEnabledRequest off;
    off.set_id("a1");
    off.set_enabled(false);
    f.ok<pb::Cluster>("SetClusterEnabled", off);
    CHECK(manager.info(id)->listeners == 0);

    // A commune-B operator cannot see commune A's clip: it is "not found".
    const auto b_token = f.make_operator("op-b", pb::OPERATOR, "b", pb::DISTRICT);
    auto other = start;
    other.clear_zone_ids();
    other.add_zone_ids("b");
    other.set_clip_id(of_a.id());
    CHECK(f.call("StartProgramme", other, b_token).code() == pb::NOT_FOUND);
    other.set_clip_id(9999);
    CHECK(f.call("StartProgramme", other).code() == pb::NOT_FOUND);
    CHECK(uses(of_a.id()) == 0);

    pb::StopProgrammeRequest stop;
    stop.set_id(id);
    f.ok<pb::StopProgrammeResponse>("StopProgramme", stop);
    CHECK(uses(global.id()) == 0);
    f.ok<pb::DeleteClipResponse>("DeleteClip", del);
}

TEST_CASE("programme_background_clip_is_ducked_bed_pinned_persisted_and_restored", "[control][clips][runtime][ducker]") {
    Fixture f;
    ClipProgrammes rig(f, "music", "commune a music");
    const auto& music = rig.global;
    const auto& of_a = rig.of_a;
    const auto uses = [&](std::uint64_t clip) { return f.store.clip(static_cast<std::int64_t>(clip))->uses; };

    pb::StartProgrammeRequest start;
    start.set_name("talk over music");
    start.set_level(pb::COMMUNE);
    start.add_zone_ids("b");
    start.set_tone_hz(440);

    // Refused, nothing stored or pinned: a dip out of range, a dip without a
    // bed, a bed that does not exist or that the caller cannot see.
    auto bad = start;
    bad.set_background_clip_id(music.id());
    bad.set_duck_db(-61);
    CHECK(f.call("StartProgramme", bad).code() == pb::INVALID_ARGUMENT);
    bad.set_duck_db(1);
    CHECK(f.call("StartProgramme", bad).code() == pb::INVALID_ARGUMENT);
    bad.set_background_clip_id(0);
    bad.set_duck_db(-10);
    CHECK(f.call("StartProgramme", bad).code() == pb::INVALID_ARGUMENT);
    bad.set_background_clip_id(9999);
    CHECK(f.call("StartProgramme", bad).code() == pb::NOT_FOUND);
    const auto b_token = f.make_operator("op-b", pb::OPERATOR, "b", pb::DISTRICT);
    bad.set_background_clip_id(of_a.id());
    CHECK(f.call("StartProgramme", bad, b_token).code() == pb::NOT_FOUND);
    CHECK(f.store.programmes().empty());
    CHECK(uses(music.id()) == 0);
    CHECK(uses(of_a.id()) == 0);

    start.set_background_clip_id(music.id());
    start.set_duck_db(-15);
    const auto id = f.ok<pb::StartProgrammeResponse>("StartProgramme", start).id();
    CHECK(uses(music.id()) == 1);
    pb::DeleteClipRequest del;
    del.set_id(music.id());
    CHECK(f.call("DeleteClip", del).code() == pb::FAILED_PRECONDITION);
    const auto rows = f.store.programmes();
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].id == id);
    CHECK(rows[0].background_clip_id == static_cast<std::int64_t>(music.id()));
    CHECK(rows[0].duck_centi_db == -1500);

    {
        // A restarted engine brings the bed back with its dip.
        Engine engine2(rig.config, rig.media_clock);
        engine2.start();
        ProgrammeManager manager2(engine2);
        ProgrammeControl control2(f.store, manager2, f.clock);
        control2.set_clip_dir(f.service.clip_catalog().dir());
        REQUIRE(control2.refresh_topology().ok());
        const auto problems = control2.restore();
        INFO((problems.empty() ? std::string() : problems.front()));
        CHECK(problems.empty());
        CHECK(manager2.contains(id));
        const auto row = control2.row(id);
        REQUIRE(row);
        CHECK(row->background_clip_id == static_cast<std::int64_t>(music.id()));
        CHECK(row->duck_centi_db == -1500);
        manager2.stop(id);
        engine2.stop();
    }

    pb::StopProgrammeRequest stop;
    stop.set_id(id);
    f.ok<pb::StopProgrammeResponse>("StopProgramme", stop);
    CHECK(uses(music.id()) == 0);
    CHECK(f.store.programmes().empty());
    f.ok<pb::DeleteClipResponse>("DeleteClip", del);
}
