// The as-run log read through ListAsRun (scope, paging, bad input),
// retention, the v8 -> v9 migration and the retention setting. Time is a
// ManualClock; the media thread never runs.

#include <string>
#include <vector>

#include <sqlite3.h>

#include <catch2/catch.hpp>

#include "asrun_fixture.h"
#include "loa/engine/config.h"

using namespace loa::engine;
namespace pb = loa::control::v1;

namespace {
using Fixture = loa::test::AsRunFixture;
}  // namespace

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
    CHECK(f.service->handle(garbage, loa::test::kRootPeer).response.code() == pb::INVALID_ARGUMENT);
    CHECK(status([](auto& r) { r.set_page_size(10000); }) == pb::OK);

    // The log is read from the Store: a service without a recorder lists it too.
    ControlService bare(f.store, f.clock, 1000);
    pb::Envelope env;
    env.set_request_id(3);
    env.set_method("ListAsRun");
    env.set_payload(pb::ListAsRunRequest().SerializeAsString());
    const auto resp = bare.handle(env, loa::test::kRootPeer).response;
    REQUIRE(resp.code() == pb::OK);
    pb::ListAsRunResponse listed;
    REQUIRE(listed.ParseFromString(resp.payload()));
    CHECK(listed.entries_size() == 5);
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
