// The as-run log: one row per play of a programme per target zone, with its
// level, times, end reason, preemptions and confirmations, written by the
// AsRunRecorder on the control tick; rows a crash left open. Listing,
// retention and the migration: asrun_list_test.cpp. Time is a ManualClock;
// the media thread never runs, so nothing depends on wall time.

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "asrun_fixture.h"
#include "loa/engine/schedule_control.h"

using namespace loa::engine;
namespace pb = loa::control::v1;
using loa::test::asrun_detail::find;
using loa::test::asrun_detail::names;

namespace {
using Fixture = loa::test::AsRunFixture;
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
