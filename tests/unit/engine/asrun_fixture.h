#pragma once
// Shared by the as-run tests (asrun_test, asrun_list_test): an engine whose
// media thread never runs, its control side built as loa-engine builds it
// (the as-run recorder watching the programme manager), and ways to start,
// stop and list.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "control_calls.h"
#include "engine_test_util.h"
#include "loa/engine/alert_control.h"
#include "loa/engine/asrun.h"
#include "loa/engine/clock.h"
#include "loa/engine/control_service.h"
#include "loa/engine/engine.h"
#include "loa/engine/programme_control.h"
#include "loa/engine/programme_manager.h"
#include "loa/engine/store.h"
#include "temp_dir.h"

namespace loa::test {

namespace asrun_detail {
namespace eng = loa::engine;
namespace pb = loa::control::v1;

// Zones P > D > {A, B}; clusters a1, a2 and c in A (c has no address, so it
// is targeted but never reached), b1 in B. The engine's media thread never
// runs: nothing is sent, the decisions are what the log follows. Live state
// comes from `live`, set by the test.
struct AsRunFixture : ControlCalls<AsRunFixture> {
    eng::ControlService& control_service() { return *service; }

    TempDir dir{"loa-asrun"};
    eng::Store store{dir / "state.db"};
    eng::ManualClock clock{0, 1'700'000'000'000'000'000};
    eng::SystemClock media_clock;
    eng::Engine engine{loopback_engine_config(), media_clock};
    std::map<std::string, eng::v1::ClusterState> live;
    std::unique_ptr<eng::ControlService> service;
    std::unique_ptr<eng::AsRunRecorder> recorder;
    std::unique_ptr<eng::ProgrammeManager> manager;
    std::unique_ptr<eng::ProgrammeControl> programmes;
    std::unique_ptr<eng::AlertControl> alerts;
    std::int64_t recovered = 0;

    AsRunFixture() {
        store.write([&] {
            store.insert_zone({"P", "Province", eng::ZoneKind::Province, ""});
            store.insert_zone({"D", "District", eng::ZoneKind::District, "P"});
            store.insert_zone({"A", "Commune A", eng::ZoneKind::Commune, "D"});
            store.insert_zone({"B", "Commune B", eng::ZoneKind::Commune, "D"});
            store.insert_cluster({"a1", "a1", "A", "127.0.0.1:6001", "", true});
            store.insert_cluster({"a2", "a2", "A", "127.0.0.1:6002", "", true});
            store.insert_cluster({"c", "c", "A", "", "", true});
            store.insert_cluster({"b1", "b1", "B", "127.0.0.1:6003", "", true});
        });
        open();
    }
    ~AsRunFixture() { close(); }

    // Built as loa-engine builds it: the recorder watches the manager before
    // any programme is restored.
    void open() {
        service = std::make_unique<eng::ControlService>(store, clock, 1000);
        manager = std::make_unique<eng::ProgrammeManager>(engine);
        recorder = std::make_unique<eng::AsRunRecorder>(store, clock);
        recovered = recorder->recover();
        manager->set_observer(recorder.get());
        programmes = std::make_unique<eng::ProgrammeControl>(store, *manager, clock);
        programmes->set_clip_dir(service->clip_catalog().dir());
        REQUIRE(programmes->refresh_topology().ok());
        REQUIRE(programmes->restore().empty());
        service->set_programme_control(programmes.get());
        alerts = std::make_unique<eng::AlertControl>(store, *manager, clock);
        alerts->set_clip_dir(service->clip_catalog().dir());
        service->set_alert_control(alerts.get());
        service->set_asrun_recorder(recorder.get());
        service->set_live_state_provider([this](const std::string& id) -> std::optional<eng::v1::ClusterState> {
            const auto it = live.find(id);
            if (it == live.end()) return std::nullopt;
            return it->second;
        });
    }
    // Drops the control side without ending anything: a crash, as far as the
    // database is concerned.
    void close() {
        if (!service) return;
        manager->set_observer(nullptr);
        service->set_asrun_recorder(nullptr);
        service->set_alert_control(nullptr);
        service->set_programme_control(nullptr);
        alerts.reset();
        programmes.reset();
        manager.reset();
        recorder.reset();
        service.reset();
    }

    std::uint64_t start(const std::string& name, pb::Level level, std::vector<std::string> zones) {
        pb::StartProgrammeRequest r;
        r.set_name(name);
        r.set_level(level);
        for (const auto& z : zones) r.add_zone_ids(z);
        r.set_tone_hz(440.0);
        return ok<pb::StartProgrammeResponse>("StartProgramme", r).id();
    }
    void stop(std::uint64_t id) {
        pb::StopProgrammeRequest r;
        r.set_id(id);
        ok<pb::StopProgrammeResponse>("StopProgramme", r);
    }

    /// Uploads 0.3 s of a 440 Hz sine as a global clip; returns its id.
    std::uint64_t upload_clip() { return upload_sine(440.0, 0.3); }

    void set_live(const std::string& id, bool online, std::uint32_t ssrc) {
        eng::v1::ClusterState s;
        s.set_id(id);
        s.set_online(online);
        s.set_playing_ssrc(ssrc);
        live[id] = s;
    }

    /// Every entry of [from, to) the caller may see, through all pages.
    std::vector<pb::AsRunEntry> list(std::int64_t from = 0, std::int64_t to = 0, const std::string& zone = {},
                                     const std::string& token = {}, std::uint32_t page_size = 0) {
        pb::ListAsRunRequest req;
        req.set_from_unix_ms(from);
        req.set_to_unix_ms(to);
        req.set_zone_id(zone);
        req.set_page_size(page_size);
        std::vector<pb::AsRunEntry> out;
        for (int pages = 0; pages < 100; ++pages) {
            const auto r = ok<pb::ListAsRunResponse>("ListAsRun", req, token);
            out.insert(out.end(), r.entries().begin(), r.entries().end());
            if (r.next_page_token().empty()) return out;
            req.set_page_token(r.next_page_token());
        }
        FAIL("ListAsRun never gave its last page");
        return out;
    }

    std::int64_t now_ms() const { return clock.unix_ns() / 1'000'000; }
    void advance_ms(std::int64_t ms) { clock.advance(ms * 1'000'000); }
    void tick() { service->tick(now_ms()); }
};

/// The entry of `name` for `zone`, or nullptr.
inline const pb::AsRunEntry* find(const std::vector<pb::AsRunEntry>& entries, const std::string& name,
                          const std::string& zone) {
    for (const auto& e : entries) {
        if (e.name() == name && e.zone_id() == zone) return &e;
    }
    return nullptr;
}

/// The names of what preempted the entry.
inline std::vector<std::string> names(const pb::AsRunEntry& e) {
    return {e.preempted_by().begin(), e.preempted_by().end()};
}

}  // namespace asrun_detail

using asrun_detail::AsRunFixture;

}  // namespace loa::test
