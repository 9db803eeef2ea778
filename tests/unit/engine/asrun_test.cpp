// The as-run log: one row per play of a programme per target zone, with its
// level, times, end reason, preemptions and confirmations, written by the
// AsRunRecorder on the control tick and read through ListAsRun (scope,
// paging, bad input); crash recovery, retention and the v8 -> v9 migration.
// Time is a ManualClock; the media thread never runs, so nothing depends on
// wall time.

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include <sqlite3.h>

#include <catch2/catch.hpp>

#include "loa/codecs/wav_writer.h"
#include "loa/engine/alert_control.h"
#include "loa/engine/asrun.h"
#include "loa/engine/clip_catalog.h"
#include "loa/engine/config.h"
#include "loa/engine/control_service.h"
#include "loa/engine/engine.h"
#include "loa/engine/programme_control.h"
#include "loa/engine/programme_manager.h"
#include "loa/engine/schedule_control.h"
#include "control_calls.h"
#include "temp_dir.h"

using namespace loa::engine;
namespace pb = loa::control::v1;
using loa::test::file_bytes;
using loa::test::write_sine;
using boost::asio::ip::udp;

namespace {

const PeerInfo kRoot{true, true, 0};

EngineConfig engine_config() {
    EngineConfig c;
    c.engine.listen = udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0);
    c.engine.fanout_threads = 1;
    c.engine.realtime_priority = 0;
    return c;
}

// Zones P > D > {A, B}; clusters a1, a2 and c in A (c has no address, so it
// is targeted but never reached), b1 in B. The engine's media thread never
// runs: nothing is sent, the decisions are what the log follows. Live state
// comes from `live`, set by the test.
struct Fixture : loa::test::ControlCalls<Fixture> {
    ControlService& control_service() { return *service; }

    loa::test::TempDir dir{"loa-asrun"};
    Store store{dir / "state.db"};
    ManualClock clock{0, 1'700'000'000'000'000'000};
    SystemClock media_clock;
    Engine engine{engine_config(), media_clock};
    std::map<std::string, loa::engine::v1::ClusterState> live;
    std::unique_ptr<ControlService> service;
    std::unique_ptr<AsRunRecorder> recorder;
    std::unique_ptr<ProgrammeManager> manager;
    std::unique_ptr<ProgrammeControl> programmes;
    std::unique_ptr<AlertControl> alerts;
    std::int64_t recovered = 0;

    Fixture() {
        store.write([&] {
            store.insert_zone({"P", "Province", ZoneKind::Province, ""});
            store.insert_zone({"D", "District", ZoneKind::District, "P"});
            store.insert_zone({"A", "Commune A", ZoneKind::Commune, "D"});
            store.insert_zone({"B", "Commune B", ZoneKind::Commune, "D"});
            store.insert_cluster({"a1", "a1", "A", "127.0.0.1:6001", "", true});
            store.insert_cluster({"a2", "a2", "A", "127.0.0.1:6002", "", true});
            store.insert_cluster({"c", "c", "A", "", "", true});
            store.insert_cluster({"b1", "b1", "B", "127.0.0.1:6003", "", true});
        });
        open();
    }
    ~Fixture() { close(); }

    // Built as loa-engine builds it: the recorder watches the manager before
    // any programme is restored.
    void open() {
        service = std::make_unique<ControlService>(store, clock, 1000);
        manager = std::make_unique<ProgrammeManager>(engine);
        recorder = std::make_unique<AsRunRecorder>(store, clock);
        recovered = recorder->recover();
        manager->set_observer(recorder.get());
        programmes = std::make_unique<ProgrammeControl>(store, *manager, clock);
        programmes->set_clip_dir(service->clip_catalog().dir());
        REQUIRE(programmes->refresh_topology().ok());
        REQUIRE(programmes->restore().empty());
        service->set_programme_control(programmes.get());
        alerts = std::make_unique<AlertControl>(store, *manager, clock);
        alerts->set_clip_dir(service->clip_catalog().dir());
        service->set_alert_control(alerts.get());
        service->set_asrun_recorder(recorder.get());
        service->set_live_state_provider([this](const std::string& id) -> std::optional<loa::engine::v1::ClusterState> {
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

    /// Uploads 0.3 s of a sine as a global clip; returns its id.
    std::uint64_t upload_clip() {
        const auto path = dir / "sine.wav";
        {
            loa::codecs::WavWriter w(path, loa::codecs::WavSampleFormat::Pcm16, 48000, 1);
            std::vector<float> buf(14400);
            for (std::size_t i = 0; i < buf.size(); ++i) {
                buf[i] = static_cast<float>(0.5 * std::sin(2.0 * M_PI * 440.0 * static_cast<double>(i) / 48000.0));
            }
            REQUIRE(w.write(buf) == loa::codecs::Status::Ok);
            REQUIRE(w.close() == loa::codecs::Status::Ok);
        }
        const auto bytes = file_bytes(path);
        Sha256 h;
        h.update({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
        pb::BeginClipUploadRequest begin;
        begin.set_name("sine");
        begin.set_total_size(bytes.size());
        begin.set_sha256(h.hex_final());
        const auto began = ok<pb::BeginClipUploadResponse>("BeginClipUpload", begin);
        pb::UploadClipChunkRequest chunk;
        chunk.set_upload_id(began.upload_id());
        chunk.set_offset(0);
        chunk.set_data(bytes);
        ok<pb::UploadClipChunkResponse>("UploadClipChunk", chunk);
        pb::FinishClipUploadRequest finish;
        finish.set_upload_id(began.upload_id());
        return ok<pb::Clip>("FinishClipUpload", finish).id();
    }

    void set_live(const std::string& id, bool online, std::uint32_t ssrc) {
        loa::engine::v1::ClusterState s;
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

const pb::AsRunEntry* find(const std::vector<pb::AsRunEntry>& entries, const std::string& name,
                          const std::string& zone) {
    for (const auto& e : entries) {
        if (e.name() == name && e.zone_id() == zone) return &e;
    }
    return nullptr;
}

std::vector<std::string> names(const pb::AsRunEntry& e) { return {e.preempted_by().begin(), e.preempted_by().end()}; }

}  // namespace

TEST_CASE("asrun_programme_play_gives_one_row_per_target_zone", "[engine][asrun]") {
    Fixture f;
    const auto t0 = f.now_ms();
    const auto id = f.start("news", pb::COMMUNE, {"A", "B"});
    const auto ssrc = f.manager->info(id)->ssrc;
    f.advance_ms(5000);
    f.tick();

    // On the air: written by the tick, no end yet.
    auto rows = f.list();
    REQUIRE(rows.size() == 2);
    for (const auto& e : rows) {
        CHECK(e.on_air());
        CHECK(e.end_unix_ms() == 0);
        CHECK(e.start_unix_ms() == t0);
    }

    f.advance_ms(2500);
    f.stop(id);
    f.tick();
    rows = f.list();
    REQUIRE(rows.size() == 2);
    const auto* a = find(rows, "news", "A");
    const auto* b = find(rows, "news", "B");
    REQUIRE(a != nullptr);
    REQUIRE(b != nullptr);
    CHECK(a->id() < b->id());
    for (const auto* e : {a, b}) {
        CHECK(e->programme_id() == id);
        CHECK(e->kind() == "programme");
        CHECK(e->level() == pb::COMMUNE);
        CHECK(e->ssrc() == ssrc);
        CHECK(e->start_unix_ms() == t0);
        CHECK(e->end_unix_ms() == t0 + 7500);
        CHECK_FALSE(e->on_air());
        CHECK(e->end_reason() == "stopped by local admin");
        CHECK(e->preempted_by_size() == 0);
        CHECK(e->preempted_ms() == 0);
        CHECK(e->clusters_confirmed() == 0);
    }
    CHECK(a->clusters_targeted() == 3);  // a1, a2 and c (unreachable, still targeted)
    CHECK(b->clusters_targeted() == 1);
    CHECK(f.recorder->on_air() == 0);
    CHECK(f.recorder->pending() == 0);

    // A second play of a programme is a new row; a programme to a zone and
    // its own child zone gets a row for each.
    const auto again = f.start("news", pb::COMMUNE, {"D", "A", "D"});
    f.advance_ms(1000);
    f.stop(again);
    rows = f.list();
    REQUIRE(rows.size() == 4);
    CHECK(rows[2].zone_id() == "D");
    CHECK(rows[2].clusters_targeted() == 4);
    CHECK(rows[3].zone_id() == "A");
    CHECK(rows[3].end_unix_ms() - rows[3].start_unix_ms() == 1000);
}

TEST_CASE("emergency_preempts_commune_in_the_asrun_log", "[engine][asrun][alerts]") {
    Fixture f;
    const auto clip = f.upload_clip();
    const auto t0 = f.now_ms();
    const auto morning = f.start("morning", pb::COMMUNE, {"A"});
    const auto music = f.start("music", pb::COMMUNE, {"B"});

    f.advance_ms(1000);
    pb::RaiseAlertRequest raise;
    raise.set_name("flood");
    raise.add_zone_ids("A");
    raise.set_clip_id(clip);
    raise.set_repeats(100);
    raise.set_duration_s(600);
    const auto alert = f.ok<pb::RaiseAlertResponse>("RaiseAlert", raise).id();
    CHECK(f.manager->info(morning)->state == ProgrammeState::Preempted);

    // While the alert plays, the commune's row already names it and counts the time.
    f.advance_ms(2000);
    auto rows = f.list();
    const auto* during = find(rows, "morning", "A");
    REQUIRE(during != nullptr);
    CHECK(during->on_air());
    CHECK(names(*during) == std::vector<std::string>{"alert:flood"});
    CHECK(during->preempted_ms() == 2000);

    f.advance_ms(1000);
    pb::CancelAlertRequest cancel;
    cancel.set_id(alert);
    f.ok<pb::CancelAlertResponse>("CancelAlert", cancel);
    CHECK(f.manager->info(morning)->state == ProgrammeState::Audible);
    f.advance_ms(2000);
    f.stop(morning);
    f.stop(music);
    f.tick();

    rows = f.list();
    REQUIRE(rows.size() == 3);
    const auto* m = find(rows, "morning", "A");
    const auto* b = find(rows, "music", "B");
    const auto* a = find(rows, "alert:flood", "A");
    REQUIRE(m != nullptr);
    REQUIRE(b != nullptr);
    REQUIRE(a != nullptr);
    CHECK(names(*m) == std::vector<std::string>{"alert:flood"});
    CHECK(m->preempted_ms() == 3000);
    CHECK(m->start_unix_ms() == t0);
    CHECK(m->end_unix_ms() == t0 + 6000);
    CHECK(b->preempted_by_size() == 0);  // B was not targeted by the alert
    CHECK(b->preempted_ms() == 0);
    CHECK(a->kind() == "alert");
    CHECK(a->programme_id() == AlertControl::kProgrammeIdBase + alert);
    CHECK(a->level() == pb::EMERGENCY);
    CHECK(a->start_unix_ms() == t0 + 1000);
    CHECK(a->end_unix_ms() == t0 + 4000);
    CHECK(a->end_reason() == "cancelled by local admin");
    CHECK(a->preempted_by_size() == 0);
    CHECK(a->clusters_targeted() == 3);
}

TEST_CASE("asrun_counts_confirmations_from_live_state", "[engine][asrun]") {
    Fixture f;
    const auto id = f.start("news", pb::PROVINCE, {"P"});
    const auto ssrc = f.manager->info(id)->ssrc;
    REQUIRE(ssrc != 0);

    // a1 plays it; a2 plays something else; c and b1 are not heard from.
    f.set_live("a1", true, ssrc);
    f.set_live("a2", true, ssrc + 1);
    f.tick();
    auto rows = f.list();
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].clusters_targeted() == 4);
    CHECK(rows[0].clusters_confirmed() == 1);

    // Confirmation is looked at once a second; an offline cluster's last
    // report does not count.
    f.set_live("a2", true, ssrc);
    f.set_live("b1", false, ssrc);
    f.advance_ms(500);
    f.tick();
    CHECK(f.list()[0].clusters_confirmed() == 1);
    f.advance_ms(500);
    f.tick();
    CHECK(f.list()[0].clusters_confirmed() == 2);

    // A cluster counts once per play, even when it later stops or goes away.
    f.set_live("a1", false, 0);
    f.advance_ms(1000);
    f.tick();
    CHECK(f.list()[0].clusters_confirmed() == 2);

    // A report that arrived since the last look counts at the stop.
    f.set_live("b1", true, ssrc);
    f.advance_ms(300);
    f.stop(id);
    rows = f.list();
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].clusters_confirmed() == 3);
    CHECK_FALSE(rows[0].on_air());

    // A new play starts its count from zero.
    const auto again = f.start("news", pb::PROVINCE, {"A"});
    f.set_live("a1", true, f.manager->info(again)->ssrc);
    f.advance_ms(1000);
    f.tick();
    rows = f.list();
    REQUIRE(rows.size() == 2);
    CHECK(rows[1].clusters_targeted() == 3);
    CHECK(rows[1].clusters_confirmed() == 1);
}

TEST_CASE("asrun_crash_leaves_rows_closed_at_their_last_write", "[engine][asrun]") {
    Fixture f;
    const auto t0 = f.now_ms();
    const auto id = f.start("news", pb::COMMUNE, {"A"});
    f.tick();  // written at t0
    f.advance_ms(1000);
    f.tick();  // seen at t0 + 1 s
    f.advance_ms(400);
    f.tick();  // not yet due again

    // Killed: nothing ends. The next start closes the row where it was last
    // seen; the programme is restored and its new play is a new row.
    f.close();
    f.advance_ms(5000);
    f.open();
    CHECK(f.recovered == 1);
    CHECK(f.manager->contains(id));
    f.tick();
    auto rows = f.list();
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].start_unix_ms() == t0);
    CHECK(rows[0].end_unix_ms() == t0 + 1000);
    CHECK(rows[0].end_reason() == "engine stopped");
    CHECK(rows[1].on_air());
    CHECK(rows[1].start_unix_ms() == t0 + 6400);

    // An orderly stop ends the plays on the air at once, with the same reason.
    f.advance_ms(2000);
    f.recorder->finish(f.now_ms());
    f.close();
    f.open();
    CHECK(f.recovered == 0);
    rows = f.list();
    REQUIRE(rows.size() == 3);
    CHECK(rows[1].end_unix_ms() == t0 + 8400);
    CHECK(rows[1].end_reason() == "engine stopped");
    CHECK(rows[2].on_air());
}

TEST_CASE("asrun_list_scope_paging_and_bad_input", "[engine][asrun][control]") {
    Fixture f;
    const auto t0 = f.now_ms();
    f.stop(f.start("in-a", pb::COMMUNE, {"A"}));
    f.advance_ms(1000);
    f.stop(f.start("in-b", pb::COMMUNE, {"B"}));
    f.advance_ms(1000);
    f.stop(f.start("in-p", pb::PROVINCE, {"P"}));
    f.advance_ms(1000);
    const auto both = f.start("a-and-b", pb::DISTRICT, {"A", "B"});
    f.advance_ms(1000);
    f.stop(both);
    f.advance_ms(1000);

    const auto all = f.list();
    REQUIRE(all.size() == 5);
    for (std::size_t i = 1; i < all.size(); ++i) CHECK(all[i].id() > all[i - 1].id());

    // A commune viewer sees the rows of its commune only.
    const auto viewer = f.make_operator("view-a", pb::VIEWER, "A", pb::BACKGROUND);
    const auto mine = f.list(0, 0, {}, viewer);
    REQUIRE(mine.size() == 2);
    CHECK(mine[0].name() == "in-a");
    CHECK(mine[1].name() == "a-and-b");
    CHECK(mine[1].zone_id() == "A");
    CHECK(f.list(0, 0, "A", viewer).size() == 2);
    CHECK(f.call("ListAsRun", [] {
                    pb::ListAsRunRequest r;
                    r.set_zone_id("B");
                    return r;
                }(), viewer).code() == pb::PERMISSION_DENIED);

    // A zone filter takes its subtree.
    const auto district = f.list(0, 0, "D");
    REQUIRE(district.size() == 4);
    for (const auto& e : district) CHECK(e.zone_id() != "P");

    // Pages of two give the same rows in the same order.
    const auto paged = f.list(0, 0, {}, {}, 2);
    REQUIRE(paged.size() == all.size());
    for (std::size_t i = 0; i < all.size(); ++i) CHECK(paged[i].id() == all[i].id());

    // Time range: plays overlapping [from, to). "in-b" ran [t0+1000, t0+1000].
    const auto in_b = f.list(t0 + 1000, t0 + 1001);
    REQUIRE(in_b.size() == 1);
    CHECK(in_b[0].name() == "in-b");
    CHECK(f.list(t0 + 3000, t0 + 3500).size() == 2);  // "a-and-b" in A and B
    CHECK(f.list(t0 + 4001, 0).empty());             // everything ended at t0 + 4000
    CHECK(f.list(t0 + 500, t0 + 500).empty());       // an empty range

    // Bad input.
    auto status = [&](const std::function<void(pb::ListAsRunRequest&)>& set) {
        pb::ListAsRunRequest r;
        set(r);
        const auto resp = f.call("ListAsRun", r);
        INFO(resp.message());
        if (resp.code() != pb::OK) CHECK_FALSE(resp.message().empty());
        return resp.code();
    };
    CHECK(status([&](auto& r) {
              r.set_from_unix_ms(t0 + 10);
              r.set_to_unix_ms(t0);
          }) == pb::INVALID_ARGUMENT);
    CHECK(status([&](auto& r) { r.set_from_unix_ms(f.now_ms() + 60'000); }) == pb::INVALID_ARGUMENT);
    CHECK(status([](auto& r) { r.set_from_unix_ms(-1); }) == pb::INVALID_ARGUMENT);
    CHECK(status([](auto& r) { r.set_page_size(10001); }) == pb::INVALID_ARGUMENT);
    CHECK(status([](auto& r) { r.set_zone_id("nowhere"); }) == pb::INVALID_ARGUMENT);
    CHECK(status([](auto& r) { r.set_page_token("abc"); }) == pb::INVALID_ARGUMENT);
    CHECK(status([](auto& r) { r.set_page_token("-5"); }) == pb::INVALID_ARGUMENT);
    CHECK(status([](auto& r) { r.set_page_token("0"); }) == pb::INVALID_ARGUMENT);
    pb::Envelope garbage;
    garbage.set_request_id(2);
    garbage.set_method("ListAsRun");
    garbage.set_payload("\xff\xff\xff");
    CHECK(f.service->handle(garbage, kRoot).response.code() == pb::INVALID_ARGUMENT);
    CHECK(status([](auto& r) { r.set_page_size(10000); }) == pb::OK);

    // The log is read from the Store: a service without a recorder lists it too.
    ControlService bare(f.store, f.clock, 1000);
    pb::Envelope env;
    env.set_request_id(3);
    env.set_method("ListAsRun");
    env.set_payload(pb::ListAsRunRequest().SerializeAsString());
    const auto resp = bare.handle(env, kRoot).response;
    REQUIRE(resp.code() == pb::OK);
    pb::ListAsRunResponse listed;
    REQUIRE(listed.ParseFromString(resp.payload()));
    CHECK(listed.entries_size() == 5);
}

TEST_CASE("asrun_end_reason_from_a_later_event_and_generic_without", "[engine][asrun]") {
    Fixture f;
    // A schedule window's programme, started and stopped as ScheduleControl
    // does; the event saying why arrives after the stop was written.
    RuntimeProgramme p;
    p.id = ScheduleControl::kProgrammeIdBase + 7;
    p.name = "schedule:morning";
    p.level = Priority::Scheduled;
    p.target_zones = {"A"};
    p.sequence = 1;
    p.sources.push_back(SourceConfig{});
    REQUIRE(f.manager->start(p));
    f.advance_ms(1000);
    REQUIRE(f.manager->stop(p.id));
    f.tick();
    auto rows = f.list();
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].kind() == "schedule");
    CHECK(rows[0].level() == pb::SCHEDULED);
    CHECK(rows[0].end_reason() == "ended");
    f.store.write([&] {
        f.store.append_event(EventRow{0, f.now_ms(), pb::PROGRAMME_STOPPED, "programme/" + std::to_string(p.id), "A",
                                      "schedule 7 ('morning') stopped programme " + std::to_string(p.id) +
                                          ": its window closed"});
    });
    f.advance_ms(1000);
    f.tick();
    rows = f.list();
    CHECK(rows[0].end_reason() == "window closed");
    CHECK(f.recorder->pending() == 0);

    // Stopped with no event at all: the generic reason stays.
    p.sequence = 2;
    REQUIRE(f.manager->start(p));
    f.advance_ms(1000);
    REQUIRE(f.manager->stop(p.id));
    for (int i = 0; i < 3; ++i) {
        f.advance_ms(1000);
        f.tick();
    }
    CHECK(f.recorder->pending() == 0);
    rows = f.list();
    REQUIRE(rows.size() == 2);
    CHECK(rows[1].end_reason() == "ended");
}

TEST_CASE("asrun_retention_prunes_old_rows", "[engine][asrun]") {
    Fixture f;
    f.recorder->set_retention_days(1);
    f.stop(f.start("old", pb::COMMUNE, {"A"}));
    const auto running = f.start("running", pb::COMMUNE, {"B"});
    f.tick();
    CHECK(f.list().size() == 2);

    f.advance_ms(12 * 3'600'000LL);
    f.tick();  // 12 h old: kept
    CHECK(f.list().size() == 2);
    f.advance_ms(13 * 3'600'000LL);
    f.tick();  // 25 h old: gone; a play still on the air is never pruned
    auto rows = f.list();
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].name() == "running");

    // 0 days keeps everything.
    f.stop(running);
    f.recorder->set_retention_days(0);
    f.advance_ms(30 * 86'400'000LL);
    f.tick();
    CHECK(f.recorder->prune(f.now_ms()) == 0);
    CHECK(f.list().size() == 1);
    f.recorder->set_retention_days(400);
    CHECK(f.recorder->prune(f.now_ms()) == 0);
    CHECK(f.recorder->prune(f.now_ms() + 401 * 86'400'000LL) == 1);
}

TEST_CASE("version_8_database_gains_the_asrun_table", "[engine][asrun][store]") {
    loa::test::TempDir dir("loa-asrun-store");
    const auto db = dir / "state.db";
    {
        Store s(db);
        REQUIRE(s.schema_version() == Store::kSchemaVersion);
        REQUIRE(Store::kSchemaVersion >= 9);
        s.write([&] {
            s.insert_zone({"hn", "Ha Noi", ZoneKind::Province, ""});
            s.insert_programme(ProgrammeRow{3, "news", 2, "hn", 0, "440", 5, 1000, "op"});
        });
    }
    {
        // Back to version 8, as the schedules step left it: no asrun table,
        // nor what later versions added (v10: programmes.preempt_policy).
        sqlite3* h = nullptr;
        REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
        std::string sql = "DROP TABLE asrun; UPDATE schema_version SET version = 8;";
        sqlite3_stmt* st = nullptr;
        REQUIRE(sqlite3_prepare_v2(h, "SELECT name FROM pragma_table_info('programmes') WHERE name = 'preempt_policy'",
                                   -1, &st, nullptr) == SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW) sql += "ALTER TABLE programmes DROP COLUMN preempt_policy;";
        sqlite3_finalize(st);
        REQUIRE(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close(h);
    }
    Store s(db);
    REQUIRE(s.schema_version() == Store::kSchemaVersion);
    CHECK(s.zone("hn"));
    REQUIRE(s.programmes().size() == 1);
    CHECK(s.programmes()[0].name == "news");
    CHECK(s.asrun(0, 1LL << 62, {}, 0, 10).empty());
    AsRunRow r;
    r.programme_id = 3;
    r.kind = "programme";
    r.name = "news";
    r.zone_id = "hn";
    r.level = 2;
    r.ssrc = 0xFFFFFFFFu;
    r.start_unix_ms = 1000;
    r.last_seen_unix_ms = 1500;
    std::int64_t id = 0;
    s.write([&] { id = s.insert_asrun(r); });
    CHECK(id == 1);
    s.write([&] { CHECK(s.close_open_asrun("engine stopped") == 1); });
    const auto rows = s.asrun(0, 1LL << 62, "hn", 0, 10);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].ssrc == 0xFFFFFFFFu);
    CHECK(rows[0].end_unix_ms == std::optional<std::int64_t>(1500));
    CHECK(rows[0].end_reason == "engine stopped");
    CHECK(s.integrity_check() == "ok");
}

TEST_CASE("config_reads_asrun_retention_days", "[engine][asrun][config]") {
    const auto base = std::string("[engine]\nlisten = \"127.0.0.1:5004\"\n");
    CHECK(parse_config(base, "t.toml", "/tmp").engine.asrun_retention_days == AsRunRecorder::kDefaultRetentionDays);
    CHECK(parse_config(base + "asrun_retention_days = 30\n", "t.toml", "/tmp").engine.asrun_retention_days == 30);
    CHECK(parse_config(base + "asrun_retention_days = 0\n", "t.toml", "/tmp").engine.asrun_retention_days == 0);
    CHECK_THROWS_AS(parse_config(base + "asrun_retention_days = -1\n", "t.toml", "/tmp"), ConfigError);
    CHECK_THROWS_AS(parse_config(base + "asrun_retention_days = \"long\"\n", "t.toml", "/tmp"), ConfigError);
}
