// loactl against a real loa-engine on a temporary Unix socket: every call of
// this increment, exit statuses, JSON output, scoped tokens, and state that
// survives a restart.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>
#include <regex>

#include "integration_util.h"
#include "process.h"
#include "temp_dir.h"

using namespace loa;

TEST_CASE("loactl_drives_engine_over_unix_socket", "[integration][control]") {
    test::TempDir dir("loa-ctl");
    const test::LoactlClient ctl{(dir / "run/control.sock").string()};
    // No realtime_priority: the engine's default.
    const auto toml = test::control_engine_toml("");
    std::string token;
    {
        const auto engine = test::start_control_engine(dir, toml);
        struct stat st{};
        REQUIRE(::stat(ctl.socket.c_str(), &st) == 0);
        REQUIRE((st.st_mode & 0777) == 0660);

        auto r = ctl.run({"status"});
        REQUIRE(r.status == 0);
        REQUIRE(r.out.find("local admin") != std::string::npos);

        ctl.ok({"zones", "create", "hn", "--name", "Ha Noi", "--kind", "province"});
        ctl.ok({"zones", "create", "hn.bv", "--name", "Ba Vi", "--kind", "district", "--parent", "hn"});
        ctl.ok({"zones", "create", "hn.st", "--name", "Son Tay", "--kind", "district", "--parent", "hn"});
        ctl.ok({"zones", "create", "hn.bv.tl", "--name", "Tan Linh", "--kind", "commune", "--parent", "hn.bv"});
        ctl.ok({"zones", "create", "hn.st.x", "--name", "X", "--kind", "commune", "--parent", "hn.st"});
        ctl.ok({"zones", "rename", "hn.st.x", "Xuan Son"});
        ctl.ok({"zones", "move", "hn.st.x", "hn.bv"});
        r = ctl.run({"zones", "create", "bad", "--name", "B", "--kind", "village", "--parent", "hn"});
        REQUIRE(r.status == 3);  // INVALID_ARGUMENT: a village cannot sit in a province
        r = ctl.run({"zones", "delete", "hn"});
        REQUIRE(r.status == 9);  // FAILED_PRECONDITION: not empty
        ctl.ok({"zones", "delete", "hn.st.x"});
        r = ctl.run({"zones", "list"});
        REQUIRE(r.status == 0);
        REQUIRE(r.out.find("hn.bv.tl") != std::string::npos);
        REQUIRE(r.out.find("hn.st.x") == std::string::npos);

        ctl.ok({"clusters", "register", "c1", "--zone", "hn.bv.tl", "--address", "127.0.0.1:7000"});
        ctl.ok({"clusters", "register", "c2", "--zone", "hn.st", "--multicast", "239.1.2.3:5004"});
        r = ctl.run({"clusters", "register", "c1", "--zone", "hn.bv.tl"});
        REQUIRE(r.status == 6);  // ALREADY_EXISTS
        r = ctl.run({"clusters", "register", "c3", "--zone", "hn", "--multicast", "127.0.0.21:5004"});
        REQUIRE(r.status == 3);
        ctl.ok({"clusters", "disable", "c1"});
        r = ctl.run({"--json", "clusters", "get", "c1"});
        REQUIRE(r.status == 0);
        REQUIRE(r.out.find("\"id\":\"c1\"") != std::string::npos);
        REQUIRE(r.out.find("\"enabled\":") == std::string::npos);  // false is proto3's default: not printed
        ctl.ok({"clusters", "enable", "c1"});
        r = ctl.run({"--json", "clusters", "list", "--page-size", "1", "--all"});
        REQUIRE(r.status == 0);
        REQUIRE(std::count(r.out.begin(), r.out.end(), '\n') == 2);  // two pages
        r = ctl.run({"clusters", "get", "nope"});
        REQUIRE(r.status == 5);  // NOT_FOUND

        r = ctl.run({"--json", "operators", "create", "bv-op", "--role", "operator", "--zone", "hn.bv", "--level",
                     "district"});
        REQUIRE(r.status == 0);
        std::smatch m;
        REQUIRE(std::regex_search(r.out, m, std::regex("\"token\":\"(loa1_[0-9a-f]{64})\"")));
        token = m[1];
        r = ctl.run({"operators", "list"});
        REQUIRE(r.out.find("bv-op") != std::string::npos);
        REQUIRE(r.out.find(token) == std::string::npos);  // never shown again

        // The scoped operator: inside its district yes, outside or above no.
        ctl.ok({"clusters", "disable", "c1"}, token);
        REQUIRE(ctl.run({"clusters", "disable", "c2"}, token).status == 7);
        REQUIRE(ctl.run({"zones", "create", "hn.bv.n", "--name", "N", "--kind", "commune", "--parent", "hn.bv"}, token)
                    .status == 7);  // zones need admin
        REQUIRE(ctl.run({"operators", "create", "x", "--role", "admin", "--zone", "hn.bv", "--level", "commune"}, token)
                    .status == 7);
        REQUIRE(ctl.run({"operators", "create", "y", "--role", "viewer", "--zone", "hn.bv", "--level", "province"}, token)
                    .status == 7);
        ctl.ok({"operators", "create", "z", "--role", "viewer", "--zone", "hn.bv.tl", "--level", "commune"}, token);
        r = ctl.run({"--json", "clusters", "list"}, token);
        REQUIRE(r.out.find("\"c1\"") != std::string::npos);
        REQUIRE(r.out.find("\"c2\"") == std::string::npos);
        REQUIRE(ctl.run({"status"}, "loa1_nope").status == 16);

        r = ctl.run({"--json", "watch", "--count", "3"});
        REQUIRE(r.status == 0);
        REQUIRE(std::count(r.out.begin(), r.out.end(), '\n') == 3);
        REQUIRE(r.out.find("\"seq\":\"1\"") != std::string::npos);
    }
    // Restart: everything acknowledged is still there.
    {
        const auto engine = test::start_control_engine(dir, toml);
        auto r = ctl.run({"--json", "clusters", "get", "c1"}, token);
        REQUIRE(r.status == 0);
        REQUIRE(r.out.find("\"zone_id\":\"hn.bv.tl\"") != std::string::npos);
        r = ctl.run({"zones", "list"});
        REQUIRE(r.out.find("Xuan Son") == std::string::npos);
        REQUIRE(r.out.find("Tan Linh") != std::string::npos);
        ctl.ok({"operators", "revoke", "bv-op"});
        REQUIRE(ctl.run({"status"}, token).status == 16);
    }
    REQUIRE_FALSE(std::filesystem::exists(ctl.socket));
}

TEST_CASE("engine_without_state_dir_has_no_control_socket", "[integration][control]") {
    test::TempDir dir("loa-ctl");
    const auto out = test::run_engine_briefly(dir, "[engine]\nlisten = \"127.0.0.1:0\"\n");
    REQUIRE(out.find("listening") != std::string::npos);
    REQUIRE(out.find("control") == std::string::npos);
}

TEST_CASE("control_seed_is_imported_once_and_the_database_stays_the_truth", "[integration][control]") {
    test::TempDir dir("loa-ctl-seed");
    const std::string seed =
        "[[zone]]\nid = \"hn\"\nname = \"Ha Noi\"\nkind = \"province\"\n"
        "[[zone]]\nid = \"hn.bv\"\nname = \"Ba Vi\"\nkind = \"district\"\nparent = \"hn\"\n"
        "[[cluster]]\nid = \"c1\"\naddress = \"127.0.0.1:7000\"\nzone = \"hn.bv\"\nname = \"Cum 1\"\n";
    const auto start = [&](const std::string& more_seed) {
        return test::start_control_engine(dir, test::control_engine_toml("", more_seed));
    };

    auto engine = start(seed);
    const auto& ctl = engine.ctl;
    auto r = ctl.run({"--json", "clusters", "get", "c1"});
    INFO(r.out);
    REQUIRE(r.status == 0);
    REQUIRE(r.out.find("\"zone_id\":\"hn.bv\"") != std::string::npos);
    REQUIRE(r.out.find("\"name\":\"Cum 1\"") != std::string::npos);
    r = ctl.run({"--json", "watch", "--count", "1"});
    REQUIRE(r.out.find("seed imported") != std::string::npos);
    // The operators take over: the API changes what the seed put in.
    ctl.ok({"clusters", "remove", "c1"});
    ctl.ok({"zones", "rename", "hn", "Thu do"});
    ctl.ok({"clusters", "register", "c9", "--zone", "hn"});
    engine.stop();

    // A restart with an edited seed does not undo or add anything.
    const std::string edited = seed +
                               "[[zone]]\nid = \"hcm\"\nname = \"Sai Gon\"\nkind = \"province\"\n"
                               "[[cluster]]\nid = \"c2\"\naddress = \"127.0.0.1:7002\"\nzone = \"hcm\"\n";
    engine = start(edited);
    REQUIRE(ctl.run({"clusters", "get", "c1"}).status == 5);
    REQUIRE(ctl.run({"clusters", "get", "c2"}).status == 5);
    REQUIRE(ctl.run({"clusters", "get", "c9"}).status == 0);
    r = ctl.run({"zones", "list"});
    REQUIRE(r.out.find("Thu do") != std::string::npos);
    REQUIRE(r.out.find("Ha Noi") == std::string::npos);
    REQUIRE(r.out.find("hcm") == std::string::npos);
    engine.stop();

    // A bad seed is a configuration error (exit 78) naming the key.
    std::ofstream(dir / "engine.toml") << test::control_engine_toml("", "[[zone]]\nid = \"x\"\nkind = \"commune\"\n");
    test::Process bad({LOA_ENGINE_BIN, "--config", (dir / "engine.toml").string()}, (dir / "bad.log").string());
    REQUIRE(bad.wait(20000) == std::optional<int>(78));
    std::ifstream log(dir / "bad.log");
    const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    REQUIRE(text.find("zone[0].parent") != std::string::npos);
}
