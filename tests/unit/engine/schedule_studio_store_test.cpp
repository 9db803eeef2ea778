// The schema v12 table of studio windows: a schedule's studio is stored
// beside its row, read back with it and deleted with it; a version 11
// database gains the table and its schedules keep their playlists.

#include <sqlite3.h>

#include <catch2/catch.hpp>

#include "loa/engine/store.h"
#include "temp_dir.h"

using namespace loa::engine;

TEST_CASE("schedule_studio_table_round_trips_and_version_11_migrates", "[engine][schedules][store]") {
    loa::test::TempDir dir("loa-schedule-studio-store");
    const auto db = dir / "state.db";
    ScheduleRow r;
    r.name = "live";
    r.level = 1;
    r.zones = "hn";
    r.time_zone = "Asia/Ho_Chi_Minh";
    r.recurrence = "daily";
    r.first_date = "2026-03-10";
    r.start_s = 6 * 3600;
    r.duration_s = 900;
    r.late_policy = "resume";
    {
        Store s(db);
        REQUIRE(s.schema_version() == 12);
        s.write([&] {
            s.insert_zone({"hn", "Ha Noi", ZoneKind::Province, ""});
            (void)s.insert_schedule(r);  // a playlist schedule (no items needed here)
        });
    }
    {
        // Back to version 11: no studio table yet.
        sqlite3* h = nullptr;
        REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
        REQUIRE(sqlite3_exec(h, "DROP TABLE schedule_studio; UPDATE schema_version SET version = 11;", nullptr, nullptr,
                             nullptr) == SQLITE_OK);
        sqlite3_close(h);
    }
    Store s(db);
    REQUIRE(s.schema_version() == 12);
    auto all = s.schedules();
    REQUIRE(all.size() == 1);
    CHECK(all[0].studio.empty());  // an older schedule plays its playlist
    r.studio = "bv";
    std::uint64_t live = 0;
    s.write([&] { live = s.insert_schedule(r); });
    all = s.schedules();
    REQUIRE(all.size() == 2);
    CHECK(all[1].id == live);
    CHECK(all[1].studio == "bv");
    CHECK(all[1].items.empty());
    s.write([&] { s.delete_schedule(live); });
    REQUIRE(s.schedules().size() == 1);
    // The studio's row went with it: a new schedule with the same id would not inherit it.
    s.write([&] { s.delete_schedule(all[0].id); });
    CHECK(s.schedules().empty());
    CHECK(s.integrity_check() == "ok");
}
