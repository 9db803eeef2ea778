// The control plane's TCP listener through loactl --host, and the Python
// client example (packaging/examples/python/loa_client.py) against a real
// loa-engine: the engine binds 127.0.0.1:0 and prints `control-tcp HOST:PORT`.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>

#include "integration_util.h"
#include "process.h"
#include "temp_dir.h"

using namespace loa;

namespace {
const std::string kEngine = LOA_ENGINE_BIN;
const std::string kLoactl = LOA_LOACTL_BIN;

using Result = test::CommandResult;

Result run(const std::vector<std::string>& argv, int timeout_ms = 20000) { return test::run_command(argv, timeout_ms); }

// A loa-engine with a Unix socket and a TCP listener on a free loopback port.
struct TcpEngine {
    explicit TcpEngine(const test::TempDir& dir) {
        std::ofstream(dir / "engine.toml") << "[engine]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\n"
                                           << "[control]\nsocket = \"run/control.sock\"\n"
                                           << "tcp_listen = \"127.0.0.1:0\"\n";
        socket = (dir / "run/control.sock").string();
        proc = std::make_unique<test::Process>(
            std::vector<std::string>{kEngine, "--config", (dir / "engine.toml").string()},
            (dir / "engine.log").string());
        // Readiness lines: listening ..., control <path>, control-tcp HOST:PORT (others may come between).
        for (int i = 0; i < 8 && host.empty(); ++i) {
            const auto line = proc->read_line(20000);
            REQUIRE(line);
            if (line->rfind("control-tcp ", 0) == 0) host = line->substr(12);
        }
        REQUIRE(std::regex_match(host, std::regex("127\\.0\\.0\\.1:[1-9][0-9]*")));
    }
    ~TcpEngine() {
        proc->signal(SIGTERM);
        proc->wait(20000);
    }
    // loactl over TCP.
    Result tcp(std::vector<std::string> args, const std::string& token = {}) const {
        return run(test::loactl_argv("--host", host, args, token));
    }
    // loactl on the Unix socket as local admin (root or the engine's uid: the test's).
    Result local(std::vector<std::string> args) const { return run(test::loactl_argv("--socket", socket, args)); }
    std::string make_token(const std::string& name, const std::string& role, const std::string& level,
                           const std::string& zone = {}) const {
        std::vector<std::string> args{"--json", "operators", "create", name, "--role", role, "--level", level};
        if (!zone.empty()) {
            args.push_back("--zone");
            args.push_back(zone);
        }
        const auto r = local(args);
        INFO(r.out);
        REQUIRE(r.status == 0);
        std::smatch m;
        REQUIRE(std::regex_search(r.out, m, std::regex("\"token\":\"(loa1_[0-9a-f]{64})\"")));
        return m[1];
    }

    std::string socket;
    std::string host;
    std::unique_ptr<test::Process> proc;
};
}  // namespace

TEST_CASE("control_tcp_loactl_needs_a_token_on_every_request", "[integration][control]") {
    test::TempDir dir("loa-ctl-tcp");
    TcpEngine engine(dir);

    // Token-less over TCP: UNAUTHENTICATED, though loactl runs as the engine's uid.
    auto r = engine.tcp({"status"});
    REQUIRE(r.status == 16);
    REQUIRE(engine.tcp({"zones", "create", "hn", "--name", "Ha Noi", "--kind", "province"}).status == 16);
    REQUIRE(engine.tcp({"clusters", "list"}).status == 16);
    REQUIRE(engine.tcp({"status"}, "loa1_0000").status == 16);
    // The Unix socket keeps its local-admin shortcut.
    REQUIRE(engine.local({"status"}).status == 0);

    const auto admin = engine.make_token("net-admin", "admin", "emergency");
    r = engine.tcp({"status"}, admin);
    INFO(r.out);
    REQUIRE(r.status == 0);
    REQUIRE(r.out.find("net-admin") != std::string::npos);
    REQUIRE(engine.tcp({"zones", "create", "hn", "--name", "Ha Noi", "--kind", "province"}, admin).status == 0);
    REQUIRE(engine.tcp({"zones", "create", "hn.bv", "--name", "Ba Vi", "--kind", "district", "--parent", "hn"}, admin)
                .status == 0);
    REQUIRE(engine.tcp({"clusters", "register", "c1", "--zone", "hn.bv", "--address", "127.0.0.1:7000"}, admin).status ==
            0);
    r = engine.tcp({"--json", "clusters", "list"}, admin);
    REQUIRE(r.status == 0);
    REQUIRE(r.out.find("\"id\":\"c1\"") != std::string::npos);

    // Scoped tokens keep their scope over TCP.
    const auto viewer = engine.make_token("bv-view", "viewer", "commune", "hn.bv");
    REQUIRE(engine.tcp({"clusters", "get", "c1"}, viewer).status == 0);
    REQUIRE(engine.tcp({"clusters", "disable", "c1"}, viewer).status == 7);
    r = engine.tcp({"--json", "watch", "--count", "2"}, viewer);
    REQUIRE(r.status == 0);
    REQUIRE(std::count(r.out.begin(), r.out.end(), '\n') == 2);

    // A revoked token stops working at once.
    REQUIRE(engine.local({"operators", "revoke", "bv-view"}).status == 0);
    REQUIRE(engine.tcp({"clusters", "get", "c1"}, viewer).status == 16);

    // --host and --socket together is a usage error; a closed port is UNAVAILABLE.
    REQUIRE(run({kLoactl, "--host", engine.host, "--socket", engine.socket, "status"}).status == 64);
    REQUIRE(run({kLoactl, "--host", "127.0.0.1:1", "--token", admin, "status"}).status == 14);
}

TEST_CASE("control_tcp_listener_is_off_unless_configured", "[integration][control]") {
    test::TempDir dir("loa-ctl-tcp");
    const auto out = test::run_engine_briefly(dir, "[engine]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\n");
    REQUIRE(out.find("control ") != std::string::npos);
    REQUIRE(out.find("control-tcp") == std::string::npos);
}

TEST_CASE("control_python_client_lists_clusters_and_watches_events", "[integration][control][python]") {
    const std::string python = LOA_PYTHON3;
    INFO("no python3 with google.protobuf was found at configure time: install python3-protobuf");
    REQUIRE_FALSE(python.empty());
    test::TempDir dir("loa-ctl-py");
    TcpEngine engine(dir);
    REQUIRE(engine.local({"zones", "create", "hn", "--name", "Ha Noi", "--kind", "province"}).status == 0);
    REQUIRE(engine.local({"clusters", "register", "c1", "--zone", "hn", "--address", "127.0.0.1:7000"}).status == 0);
    const auto token = engine.make_token("script", "viewer", "background");
    const std::vector<std::string> base{python, LOA_PYTHON_CLIENT, "--pb-dir", LOA_PYTHON_PB_DIR};

    // Over TCP with a token: the cluster list, then the three buffered events.
    auto argv = base;
    argv.insert(argv.end(), {"--host", engine.host, "--token", token, "--max-events", "3", "--timeout", "20"});
    auto r = run(argv, 30000);
    INFO(r.out);
    REQUIRE(r.status == 0);
    REQUIRE(r.out.find("clusters: 1\n") != std::string::npos);
    REQUIRE(r.out.find("cluster c1 zone=hn enabled=yes") != std::string::npos);
    REQUIRE(std::regex_search(r.out, std::regex("event 1 CONFIG_CHANGED zone/hn ")));
    REQUIRE(std::regex_search(r.out, std::regex("event 3 CONFIG_CHANGED operator/script ")));

    // Live, on the Unix socket: a watcher resuming after seq 3 receives a change
    // made while it waits (after_seq, not from_now: no race with its request).
    argv = base;
    argv.insert(argv.end(), {"--socket", engine.socket, "--after", "3", "--max-events", "1", "--timeout", "20"});
    test::Process watcher(argv, (dir / "python.log").string());
    bool watching = false;
    for (int i = 0; i < 8 && !watching; ++i) {
        const auto line = watcher.read_line(20000);
        REQUIRE(line);
        watching = *line == "watching events";
    }
    REQUIRE(watching);
    REQUIRE(engine.local({"clusters", "register", "c2", "--zone", "hn"}).status == 0);
    const auto rest = watcher.read_all(20000);
    INFO(rest);
    REQUIRE(watcher.wait(20000) == std::optional<int>(0));
    REQUIRE(std::regex_search(rest, std::regex("event 4 CONFIG_CHANGED cluster/c2 ")));

    // Token-less over TCP: the engine's UNAUTHENTICATED becomes the exit status.
    argv = base;
    argv.insert(argv.end(), {"--host", engine.host, "--max-events", "1", "--timeout", "5"});
    REQUIRE(run(argv).status == 16);
}
