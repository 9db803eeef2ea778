#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <fstream>

#include "loa/engine/control_status.h"
#include "loa/engine/store.h"
#include "temp_dir.h"

using namespace loa::engine;

namespace {
void raw_exec(const std::filesystem::path& db, const std::string& sql) {
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err);
    INFO((err != nullptr ? err : ""));
    sqlite3_free(err);
    sqlite3_close(h);
    REQUIRE(rc == SQLITE_OK);
}

RpcCode code_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const ControlError& e) {
        return e.code();
    }
    return RpcCode::Ok;
}
}  // namespace

TEST_CASE("fresh_database_is_current_and_sound", "[store]") {
    loa::test::TempDir dir("loa-store");
    Store s(dir / "state.db");
    REQUIRE(s.schema_version() == Store::kSchemaVersion);
    REQUIRE(s.integrity_check() == "ok");
    s.write([&] { s.insert_zone({"hn", "Ha Noi", ZoneKind::Province, ""}); });
    // WAL journal: committed pages live in the -wal file until a checkpoint.
    REQUIRE(std::filesystem::exists(dir / "state.db-wal"));
}

TEST_CASE("committed_changes_survive_reopen", "[store]") {
    loa::test::TempDir dir("loa-store");
    {
        Store s(dir / "state.db");
        s.write([&] {
            s.insert_zone({"hn", "Ha Noi", ZoneKind::Province, ""});
            s.insert_zone({"hn.bv", "Ba Vi", ZoneKind::District, "hn"});
            s.insert_cluster({"c1", "one", "hn.bv", "127.0.0.1:7000", "", true});
            s.append_event({0, 1, 6, "zone/hn", "", "created"});
        });
    }
    Store s(dir / "state.db");
    REQUIRE(s.zone("hn.bv")->parent_id == "hn");
    REQUIRE(s.cluster("c1")->address == "127.0.0.1:7000");
    REQUIRE(s.zone_within("hn.bv", "hn"));
    REQUIRE_FALSE(s.zone_within("hn", "hn.bv"));
    REQUIRE(s.last_event_seq() == 1);
}

TEST_CASE("failed_write_rolls_back_everything", "[store]") {
    loa::test::TempDir dir("loa-store");
    Store s(dir / "state.db");
    REQUIRE_THROWS_AS(s.write([&] {
        s.insert_zone({"hn", "Ha Noi", ZoneKind::Province, ""});
        throw ControlError(RpcCode::Internal, "boom");
    }),
                      ControlError);
    REQUIRE_FALSE(s.zone("hn"));
    // A constraint violation (unknown parent) is an error, not a crash, and also rolls back.
    const auto c = code_of([&] {
        s.write([&] {
            s.insert_zone({"a", "A", ZoneKind::Province, ""});
            s.insert_zone({"b", "B", ZoneKind::District, "nope"});
        });
    });
    REQUIRE(c == RpcCode::FailedPrecondition);
    REQUIRE_FALSE(s.zone("a"));
}

TEST_CASE("version_1_database_is_migrated", "[store]") {
    loa::test::TempDir dir("loa-store");
    const auto db = dir / "state.db";
    // The schema as version 1 shipped it, with data in it.
    raw_exec(db, R"sql(
CREATE TABLE schema_version(version INTEGER NOT NULL);
INSERT INTO schema_version VALUES(1);
CREATE TABLE zones(id TEXT PRIMARY KEY, name TEXT NOT NULL, kind INTEGER NOT NULL, parent_id TEXT REFERENCES zones(id));
CREATE INDEX zones_parent ON zones(parent_id);
CREATE TABLE clusters(id TEXT PRIMARY KEY, name TEXT NOT NULL, zone_id TEXT NOT NULL REFERENCES zones(id),
  address TEXT, enabled INTEGER NOT NULL DEFAULT 1);
CREATE INDEX clusters_zone ON clusters(zone_id);
CREATE TABLE operators(name TEXT PRIMARY KEY, role INTEGER NOT NULL, zone_id TEXT REFERENCES zones(id),
  max_level INTEGER NOT NULL, token_hash TEXT NOT NULL UNIQUE, created_unix_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL DEFAULT '');
INSERT INTO zones VALUES('hn', 'Ha Noi', 1, NULL);
INSERT INTO clusters VALUES('c1', 'one', 'hn', '127.0.0.21:5004', 0);
INSERT INTO operators VALUES('ann', 2, 'hn', 3, 'abcd', 5, '');
)sql");
    Store s(db);
    REQUIRE(s.schema_version() == Store::kSchemaVersion);
    const auto c = s.cluster("c1");
    REQUIRE(c);
    REQUIRE(c->address == "127.0.0.21:5004");
    REQUIRE_FALSE(c->enabled);
    REQUIRE(c->multicast_group.empty());
    REQUIRE(s.operator_by_token_hash("abcd")->name == "ann");
    // Version 2 features work on the migrated database.
    s.write([&] {
        auto m = *c;
        m.multicast_group = "239.1.1.1:5004";
        s.update_cluster(m);
        s.append_event({0, 1, 6, "cluster/c1", "hn", "changed"});
    });
    REQUIRE(s.cluster("c1")->multicast_group == "239.1.1.1:5004");
    REQUIRE(s.events_after(0, 10).size() == 1);
    // Version 3: the meta table.
    REQUIRE_FALSE(s.meta("seed_imported"));
    s.write([&] { s.set_meta("seed_imported", "x"); });
    REQUIRE(s.meta("seed_imported") == std::optional<std::string>("x"));
    REQUIRE(s.integrity_check() == "ok");
}

TEST_CASE("newer_schema_is_refused", "[store]") {
    loa::test::TempDir dir("loa-store");
    raw_exec(dir / "state.db", "CREATE TABLE schema_version(version INTEGER NOT NULL); INSERT INTO schema_version VALUES(99);");
    REQUIRE(code_of([&] { Store s(dir / "state.db"); }) == RpcCode::FailedPrecondition);
}

TEST_CASE("unwritable_state_is_unavailable_not_a_crash", "[store]") {
    loa::test::TempDir dir("loa-store");
    // A folder where the database file should be: cannot be opened.
    std::filesystem::create_directories(dir / "state.db");
    REQUIRE(code_of([&] { Store s(dir / "state.db"); }) == RpcCode::Unavailable);
    // Not a database at all.
    std::ofstream(dir / "junk.db") << std::string(8192, 'x');
    const auto c = code_of([&] { Store s(dir / "junk.db"); });
    REQUIRE((c == RpcCode::DataLoss || c == RpcCode::Unavailable));
}

TEST_CASE("event_log_is_pruned_but_seq_keeps_counting", "[store]") {
    loa::test::TempDir dir("loa-store");
    Store s(dir / "state.db");
    s.write([&] {
        for (std::int64_t i = 0; i < Store::kEventRetention + 5; ++i) s.append_event({0, i, 7, "engine", "", "x"});
    });
    REQUIRE(s.last_event_seq() == static_cast<std::uint64_t>(Store::kEventRetention + 5));
    const auto first = s.events_after(0, 1);
    REQUIRE(first.size() == 1);
    REQUIRE(first[0].seq == 6);
}
