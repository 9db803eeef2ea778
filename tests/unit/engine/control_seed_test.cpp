// The config seed: [[zone]] and [[cluster]] tables parsed, imported once
// into an empty database and never over what the operators changed.
#include <catch2/catch.hpp>

#include "control_fixture.h"
#include "loa/engine/config.h"
#include "loa/engine/control_seed.h"

using namespace loa::engine;
namespace pb = loa::control::v1;

namespace {
using Fixture = loa::test::ControlFixture;
}  // namespace

// ---- config seed -----------------------------------------------------------

namespace {
const std::string kSeedToml = R"toml(
[engine]
state_dir = "state"

[[zone]]
id = "hn"
name = "Ha Noi"
kind = "province"

[[zone]]
id = "hn.bv"
name = "Ba Vi"
kind = "district"
parent = "hn"

[[cluster]]
id = "c1"
address = "127.0.0.1:7000"
zone = "hn.bv"
name = "Cluster one"

[[cluster]]
id = "config-only"
address = "127.0.0.1:7001"
)toml";

EngineConfig seed_config(const std::string& extra = {}) { return parse_config(kSeedToml + extra, "seed.toml", "/tmp"); }
}  // namespace

TEST_CASE("control_seed_is_parsed_from_zone_and_cluster_tables", "[control][seed][config]") {
    const auto cfg = seed_config();
    REQUIRE(cfg.zones.size() == 2);
    REQUIRE(cfg.zones[1].parent == "hn");
    REQUIRE(cfg.cluster_seeds.size() == 1);
    REQUIRE(cfg.cluster_seeds[0].zone == "hn.bv");
    std::vector<ZoneRow> zones;
    std::vector<ClusterRow> clusters;
    seed_rows(cfg, zones, clusters);
    REQUIRE(zones.size() == 2);
    REQUIRE(zones[1].kind == ZoneKind::District);
    REQUIRE(clusters.size() == 1);  // only clusters that name a zone are seeded
    REQUIRE(clusters[0].address == "127.0.0.1:7000");
    REQUIRE(clusters[0].name == "Cluster one");

    const auto key_of = [](const std::string& toml) {
        try {
            parse_config(toml, "seed.toml", "/tmp");
        } catch (const ConfigError& e) {
            return e.key();
        }
        return std::string("accepted");
    };
    REQUIRE(key_of("[[zone]]\nid = \"a\"\nkind = \"district\"\n") == "zone[0].parent");
    REQUIRE(key_of("[[zone]]\nid = \"a\"\nkind = \"province\"\n[[zone]]\nid = \"b\"\nkind = \"commune\"\nparent = \"a\"\n") ==
            "zone[1].parent");  // a commune sits below a district
    REQUIRE(key_of("[[zone]]\nid = \"b\"\nkind = \"district\"\nparent = \"a\"\n[[zone]]\nid = \"a\"\nkind = \"province\"\n") ==
            "zone[0].parent");  // parents first
    REQUIRE(key_of("[[zone]]\nid = \"A B\"\nkind = \"province\"\n") == "zone[0].id");
    REQUIRE(key_of("[[zone]]\nid = \"a\"\nkind = \"hamlet\"\n") == "zone[0].kind");
    REQUIRE(key_of("[[zone]]\nid = \"a\"\nkind = \"province\"\n[[zone]]\nid = \"a\"\nkind = \"province\"\n") == "zone[1].id");
    REQUIRE(key_of("[[cluster]]\nid = \"c\"\naddress = \"127.0.0.1:1\"\nzone = \"nowhere\"\n") == "cluster[0].zone");
    REQUIRE(key_of("[[zone]]\nid = \"a\"\nkind = \"province\"\ncolour = \"red\"\n") == "zone[0].colour");
}

TEST_CASE("control_seed_is_imported_once_into_an_empty_database", "[control][seed]") {
    Fixture f;
    auto r = import_seed(f.store, seed_config(), f.clock);
    REQUIRE(r.imported);
    REQUIRE(r.zones == 2);
    REQUIRE(r.clusters == 1);
    REQUIRE(f.store.zone("hn.bv")->name == "Ba Vi");
    REQUIRE(f.store.cluster("c1")->zone_id == "hn.bv");
    REQUIRE_FALSE(f.store.cluster("config-only"));
    const auto events = f.store.events_after(0, 10);
    REQUIRE(events.size() == 1);
    REQUIRE(events[0].kind == pb::CONFIG_CHANGED);
    REQUIRE(events[0].subject == "seed");

    // Operators change things through the API ...
    pb::RemoveClusterRequest rm;
    rm.set_id("c1");
    f.ok<pb::RemoveClusterResponse>("RemoveCluster", rm);
    pb::RenameZoneRequest rn;
    rn.set_id("hn");
    rn.set_name("Thu do");
    f.ok<pb::Zone>("RenameZone", rn);
    const auto before = f.snapshot();
    // ... and a restart with an edited seed changes nothing.
    const auto edited = seed_config(
        "[[zone]]\nid = \"hcm\"\nkind = \"province\"\n[[cluster]]\nid = \"c2\"\naddress = \"127.0.0.1:7002\"\nzone = \"hcm\"\n");
    r = import_seed(f.store, edited, f.clock);
    REQUIRE_FALSE(r.imported);
    REQUIRE(r.summary.find("already imported") != std::string::npos);
    REQUIRE(f.snapshot() == before);
    REQUIRE_FALSE(f.store.cluster("c1"));
    REQUIRE(f.store.zone("hn")->name == "Thu do");
    // Even once the operators have emptied the database.
    pb::DeleteZoneRequest dz;
    dz.set_id("hn.bv");
    f.ok<pb::DeleteZoneResponse>("DeleteZone", dz);
    dz.set_id("hn");
    f.ok<pb::DeleteZoneResponse>("DeleteZone", dz);
    REQUIRE(f.store.object_count() == 0);
    REQUIRE_FALSE(import_seed(f.store, edited, f.clock).imported);
    REQUIRE(f.store.zones().empty());
}

TEST_CASE("control_seed_is_not_imported_into_a_filled_database", "[control][seed]") {
    Fixture f;
    // No seed yet: nothing happens, and a seed may still come later.
    auto r = import_seed(f.store, parse_config("", "empty.toml", "/tmp"), f.clock);
    REQUIRE_FALSE(r.imported);
    REQUIRE_FALSE(f.store.meta("seed_imported"));
    // A database filled through the API (e.g. by an older engine) is never seeded.
    f.zone("dn", pb::PROVINCE_ZONE, "");
    r = import_seed(f.store, seed_config(), f.clock);
    REQUIRE_FALSE(r.imported);
    REQUIRE_FALSE(f.store.zone("hn"));
    REQUIRE(f.store.meta("seed_imported"));
    f.ok<pb::DeleteZoneResponse>("DeleteZone", [] {
        pb::DeleteZoneRequest d;
        d.set_id("dn");
        return d;
    }());
    REQUIRE_FALSE(import_seed(f.store, seed_config(), f.clock).imported);
}

TEST_CASE("control_seed_with_a_bad_cluster_id_imports_nothing", "[control][seed]") {
    Fixture f;
    const auto cfg = seed_config("[[cluster]]\nid = \"bad id\"\naddress = \"127.0.0.1:7003\"\nzone = \"hn\"\n");
    try {
        import_seed(f.store, cfg, f.clock);
        FAIL("accepted");
    } catch (const ControlError& e) {
        REQUIRE(e.code() == RpcCode::InvalidArgument);
        REQUIRE(std::string(e.what()).find("bad id") != std::string::npos);
    }
    REQUIRE(f.store.object_count() == 0);
    REQUIRE_FALSE(f.store.meta("seed_imported"));
}
