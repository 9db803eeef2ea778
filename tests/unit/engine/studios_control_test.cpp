// Run-time studios through the control service: DeclareStudio /
// ListStudios / RemoveStudio validation, an authorisation matrix, run-time
// programmes that play a studio (several at once, up to the studio's reader
// limit), restoring them, and config studios listed but not removable.
#include <catch2/catch.hpp>

#include <optional>
#include <sstream>
#include <tuple>

#include "control_calls.h"
#include "engine_test_util.h"
#include "loa/engine/clock.h"
#include "loa/engine/config.h"
#include "loa/engine/control_service.h"
#include "loa/engine/engine.h"
#include "loa/engine/ingest.h"
#include "loa/engine/programme_control.h"
#include "loa/engine/programme_manager.h"
#include "loa/engine/store.h"
#include "loa/engine/studio_control.h"
#include "temp_dir.h"

using namespace loa::engine;
namespace pb = loa::control::v1;
using loa::test::studio_engine_config;

namespace {

// A control service with an engine (never started), run-time programmes and
// studios, over a zone tree: hn > {hn.bv (inside), hn.st (outside)} > communes.
struct StudioFixture : loa::test::ControlCalls<StudioFixture> {
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

    ControlService& control_service() { return service; }

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

// Control calls straight into a service of the test's own.
struct Calls : loa::test::ControlCalls<Calls> {
    ControlService& service;
    explicit Calls(ControlService& s) : service(s) {}
    ControlService& control_service() { return service; }
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
    for (const std::string addr : {"", "not-an-ip", "::1", "127.0.0.21:5004", "0.0.0.0", "239.1.1.1"}) {
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

    const auto s = f.ok<pb::Studio>("DeclareStudio", r);
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
    by_host.set_source_address("127.0.0.29");
    const auto h = f.ok<pb::Studio>("DeclareStudio", by_host);
    CHECK_FALSE(h.has_ssrc());
    CHECK(h.source_address() == "127.0.0.29");
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
    f.ok<pb::Studio>("DeclareStudio", declare("commune-a", "hn.bv.a", 12));
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
    CHECK(f.ok<pb::Studio>("DeclareStudio", r).fallback_clip_id() == static_cast<std::uint64_t>(clip.id));
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

    const auto id = f.ok<pb::StartProgrammeResponse>("StartProgramme", start_from("ba-vi", "hn.bv.a")).id();
    const auto group = f.manager.group_of(id);
    REQUIRE(group);
    CHECK(f.engine.studio_status("ba-vi")->programme_group == *group);
    auto list = f.ok<pb::ListStudiosResponse>("ListStudios", pb::ListStudiosRequest());
    REQUIRE(list.studios_size() == 1);
    CHECK(list.studios(0).programme_id() == id);
    CHECK(list.studios(0).live().program() == f.engine.runtime_programme(*group)->config().name);

    // Other programmes may read it at the same time, up to the engine's
    // limit; the studio cannot go while any plays it.
    std::vector<std::uint64_t> others;
    for (std::size_t i = 1; i < StudioFeed::kMaxReaders; ++i) {
        others.push_back(f.ok<pb::StartProgrammeResponse>("StartProgramme", start_from("ba-vi", "hn.bv")).id());
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
        f.ok<pb::StopProgrammeResponse>("StopProgramme", stop);
    }
    CHECK(f.engine.studio_status("ba-vi")->programme_group == *group);
    CHECK(f.call("RemoveStudio", rm).code() == pb::FAILED_PRECONDITION);
    stop.set_id(id);
    f.ok<pb::StopProgrammeResponse>("StopProgramme", stop);
    CHECK_FALSE(f.engine.studio_status("ba-vi")->programme_group);
    // Free again: another programme may take it, then it is stopped and the studio removed.
    const auto id2 = f.ok<pb::StartProgrammeResponse>("StartProgramme", start_from("ba-vi", "hn.bv")).id();
    stop.set_id(id2);
    f.ok<pb::StopProgrammeResponse>("StopProgramme", stop);
    const auto seq1 = f.store.last_event_seq();
    f.ok<pb::RemoveStudioResponse>("RemoveStudio", rm);
    CHECK_FALSE(f.store.studio("ba-vi"));
    CHECK(f.engine.runtime_studios().empty());
    CHECK(f.store.clip(clip.id)->uses == 0);
    events = f.service.events_for(district, seq1, 100, cursor);
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind() == pb::STUDIO_REMOVED);
    CHECK(f.call("RemoveStudio", rm).code() == pb::NOT_FOUND);
    f.ok<pb::DeleteClipResponse>("DeleteClip", dc);
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
        first.ok<pb::Studio>("DeclareStudio", declare("ba-vi", "hn.bv", 5151));
        auto by_host = declare("son-tay", "hn.st", 0);
        by_host.clear_ssrc();
        by_host.set_source_address("127.0.0.27");
        first.ok<pb::Studio>("DeclareStudio", by_host);
        id = first.ok<pb::StartProgrammeResponse>("StartProgramme", start_from("ba-vi", "hn.bv.a")).id();
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
            f.ok<pb::Studio>("DeclareStudio", declare("in", "hn.bv.a", 1));
            f.ok<pb::Studio>("DeclareStudio", declare("out", "hn.st.a", 2));
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
                    loa::test::require_verdict(r, allowed, before, f.snapshot());
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
                    f.ok<pb::StopProgrammeResponse>("StopProgramme", stop);
                }
                pb::RemoveStudioRequest rm;
                rm.set_name(studio);
                check("RemoveStudio", rm);
            }
            // A studio outside the caller's scope may not feed even a programme
            // to the caller's own zones.
            if (role >= pb::OPERATOR) {
                f.ok<pb::Studio>("DeclareStudio", declare("out2", "hn.st", 3));
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
    Calls calls{service};
    const auto call = [&](const std::string& method, const google::protobuf::Message& req) {
        return calls.call(method, req);
    };
    const auto token_for = [&](const std::string& name, const std::string& zone) {
        return calls.make_operator(name, pb::ADMIN, zone, pb::EMERGENCY);
    };
    const auto list = [&](const std::string& token) {
        return calls.ok<pb::ListStudiosResponse>("ListStudios", pb::ListStudiosRequest(), token);
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
