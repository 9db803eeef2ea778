#pragma once
// Shared helpers of the multi-process integration tests: files and JSON
// fields of the programs' output, waiting on a condition, running loactl-style
// commands to completion, starting a loa-speaker on an ephemeral port and a
// loa-engine with its control socket.

#include <catch2/catch.hpp>

#include <signal.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "process.h"
#include "temp_dir.h"

namespace loa::test {

inline std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

/// Value of an integer field in JSON ("name":123 or "name":"123"), first match; -1 if absent.
inline long json_int(const std::string& json, const std::string& name) {
    std::smatch m;
    if (std::regex_search(json, m, std::regex("\"" + name + "\"\\s*:\\s*\"?(-?[0-9]+)"))) return std::stol(m[1]);
    return -1;
}

/// The text of the JSON object that follows "key": (no nested objects inside).
inline std::string json_object(const std::string& json, const std::string& key) {
    const auto at = json.find("\"" + key + "\":");
    if (at == std::string::npos) return {};
    const auto open = json.find('{', at);
    const auto close = json.find('}', open);
    if (open == std::string::npos || close == std::string::npos) return {};
    return json.substr(open, close - open + 1);
}

/// Waits (up to `limit`) until `pred()` holds, checking every 10 ms.
template <typename Pred>
bool wait_until(Pred pred, std::chrono::seconds limit = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // allowed: the poll step of a condition wait
    }
    return true;
}

/// Exit status (or -1000 on timeout) and stdout of a program run to completion.
struct CommandResult {
    int status = -1;
    std::string out;
};

inline CommandResult run_command(const std::vector<std::string>& argv, int timeout_ms = 20000) {
    Process p(argv);
    CommandResult r;
    r.out = p.read_all(timeout_ms);
    r.status = p.wait(timeout_ms).value_or(-1000);
    return r;
}

/// loactl's command line: `where_flag` (--socket or --host) `where`, the
/// token if any, then `args`.
inline std::vector<std::string> loactl_argv(const std::string& where_flag, const std::string& where,
                                            const std::vector<std::string>& args, const std::string& token = {}) {
    std::vector<std::string> argv{LOA_LOACTL_BIN, where_flag, where};
    if (!token.empty()) {
        argv.push_back("--token");
        argv.push_back(token);
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

/// loactl against an engine's Unix control socket.
struct LoactlClient {
    std::string socket;
    CommandResult run(const std::vector<std::string>& args, const std::string& token = {}) const {
        return run_command(loactl_argv("--socket", socket, args, token));
    }
    /// Runs `args`, requires exit status 0 and returns stdout.
    std::string ok(const std::vector<std::string>& args, const std::string& token = {}) const {
        const auto r = run(args, token);
        INFO(r.out);
        REQUIRE(r.status == 0);
        return r.out;
    }
};

/// Size of a file, 0 when missing.
inline std::uintmax_t file_size_or_0(const std::filesystem::path& p) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(p, ec);
    return ec ? 0 : n;
}

/// Waits until a speaker's WAV (pcm16 mono, 48 kHz, written in real time)
/// holds `seconds` more audio than `from` bytes; false after 30 s.
inline bool wav_grows(const std::filesystem::path& wav, std::uintmax_t from, double seconds) {
    const auto want = from + static_cast<std::uintmax_t>(seconds * 48000 * 2);
    return wait_until([&] { return file_size_or_0(wav) >= want; }, std::chrono::seconds(30));
}

/// Starts loa-speaker on an ephemeral loopback port (its "listening" line);
/// returns it and sets `port`. `extra`: further loa-speaker options.
inline std::unique_ptr<Process> start_speaker(const std::string& id, const std::filesystem::path& wav,
                                              const std::string& engine_host, unsigned& port,
                                              const std::filesystem::path& log,
                                              const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv{LOA_SPEAKER_BIN, "--cluster-id", id, "--listen", "127.0.0.1:0", "--engine",
                                  engine_host, "--out", wav.string(), "--stats-json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = std::make_unique<Process>(argv, log.string());
    const auto line = p->read_line(10000);
    REQUIRE(line);
    std::smatch m;
    const std::string l = *line;
    REQUIRE(std::regex_match(l, m, std::regex("listening 127\\.0\\.0\\.1:([0-9]+)")));
    port = static_cast<unsigned>(std::stoul(m[1]));
    return p;
}

/// Starts loa-speaker listening on multicast `group` (joined on the
/// loopback interface only) at `port` (0: any free one; it returns the port
/// chosen, so that other members can share it). It binds the wildcard
/// address, as a group member must, and hears only loopback traffic.
inline std::unique_ptr<Process> start_group_speaker(const std::string& id, const std::filesystem::path& wav,
                                                    const std::string& group, unsigned& port,
                                                    const std::filesystem::path& log,
                                                    const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv{LOA_SPEAKER_BIN,  "--cluster-id", id,          "--listen",
                                  "0.0.0.0:" + std::to_string(port), "--group", group, "--group-interface",
                                  "127.0.0.1",      "--engine",     "127.0.0.1", "--out",
                                  wav.string(),     "--stats-json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = std::make_unique<Process>(argv, log.string());
    const auto line = p->read_line(10000);
    REQUIRE(line);
    std::smatch m;
    const std::string l = *line;
    REQUIRE(std::regex_match(l, m, std::regex("listening 0\\.0\\.0\\.0:([0-9]+)")));
    port = static_cast<unsigned>(std::stoul(m[1]));
    return p;
}

/// engine.toml of a loa-engine with a state directory and its control
/// socket at run/control.sock: `engine_keys` go into [engine] after listen
/// and state_dir; `seed` ([[zone]], [[cluster]] ... tables) after [control].
inline std::string control_engine_toml(const std::string& engine_keys = "realtime_priority = 0\n",
                                       const std::string& seed = {}) {
    return "[engine]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\n" + engine_keys +
           "[control]\nsocket = \"run/control.sock\"\n" + seed;
}

/// `s` with ASCII letters in upper case: the name of commune p.d.<s>.
inline std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

/// The zone tree most control tests use, as [[zone]] seed tables: province
/// p > district p.d > one commune p.d.<c> (named in capitals) per `communes`.
inline std::string zone_tree_seed(std::initializer_list<const char*> communes = {"a", "b"}) {
    std::string out = "[[zone]]\nid = \"p\"\nname = \"P\"\nkind = \"province\"\n"
                      "[[zone]]\nid = \"p.d\"\nname = \"D\"\nkind = \"district\"\nparent = \"p\"\n";
    for (const std::string c : communes) {
        out += "[[zone]]\nid = \"p.d." + c + "\"\nname = \"" + upper(c) + "\"\nkind = \"commune\"\nparent = \"p.d\"\n";
    }
    return out;
}

/// A [[cluster]] seed table: `id` at 127.0.0.1:`port` in `zone`.
inline std::string cluster_seed(const std::string& id, unsigned port, const std::string& zone) {
    return "[[cluster]]\nid = \"" + id + "\"\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\nzone = \"" +
           zone + "\"\n";
}

/// The tree of zone_tree_seed() created at run time through loactl.
inline void create_zone_tree(const LoactlClient& ctl, std::initializer_list<const char*> communes = {"a", "b"}) {
    ctl.ok({"zones", "create", "p", "--name", "P", "--kind", "province"});
    ctl.ok({"zones", "create", "p.d", "--name", "D", "--kind", "district", "--parent", "p"});
    for (const std::string c : communes) {
        ctl.ok({"zones", "create", "p.d." + c, "--name", upper(c), "--kind", "commune", "--parent", "p.d"});
    }
}

/// A loa-engine started with a control socket (see control_engine_toml())
/// and loactl for that socket. Stopped with SIGTERM when it goes.
struct ControlEngine {
    std::unique_ptr<Process> process;
    LoactlClient ctl;

    ControlEngine(std::unique_ptr<Process> p, std::string socket) : process(std::move(p)), ctl{std::move(socket)} {}
    ControlEngine(ControlEngine&&) = default;
    ControlEngine& operator=(ControlEngine&&) = default;
    ~ControlEngine() {
        if (!process) return;
        process->signal(SIGTERM);
        (void)process->wait(20000);
    }

    /// The ingest port of an engine with ingest_listen: its start-up line
    /// "ingest 127.0.0.1:PORT", which follows the control lines.
    unsigned read_ingest_port() {
        for (int i = 0; i < 3; ++i) {
            const auto line = process->read_line(20000);
            REQUIRE(line);
            std::smatch m;
            const std::string l = *line;
            if (std::regex_match(l, m, std::regex("ingest 127\\.0\\.0\\.1:([0-9]+)"))) {
                return static_cast<unsigned>(std::stoul(m[1]));
            }
        }
        FAIL("no ingest line from loa-engine");
        return 0;
    }

    /// SIGTERM; requires a clean exit (status 0).
    void stop() {
        process->signal(SIGTERM);
        REQUIRE(process->wait(20000) == std::optional<int>(0));
    }
};

/// Starts loa-engine on `dir`/engine.toml as it is (stderr to `dir`/`log`)
/// and waits for its start-up lines: "listening ..." and "control SOCKET".
inline ControlEngine restart_control_engine(const TempDir& dir, const std::string& log = "engine.log") {
    const auto socket = (dir / "run/control.sock").string();
    const std::vector<std::string> argv{LOA_ENGINE_BIN, "--config", (dir / "engine.toml").string()};
    auto p = std::make_unique<Process>(argv, (dir / log).string());
    const auto l1 = p->read_line(20000);
    REQUIRE(l1);
    REQUIRE(l1->rfind("listening", 0) == 0);
    const auto l2 = p->read_line(20000);
    REQUIRE(l2);
    REQUIRE(*l2 == "control " + socket);
    return ControlEngine(std::move(p), socket);
}

/// Writes `toml` (see control_engine_toml()) to `dir`/engine.toml and starts
/// loa-engine on it as restart_control_engine() does.
inline ControlEngine start_control_engine(const TempDir& dir, const std::string& toml = control_engine_toml()) {
    std::ofstream(dir / "engine.toml") << toml;
    return restart_control_engine(dir);
}

/// Runs loa-engine with `dir`/engine.toml (written from `toml`) for half a
/// second; requires exit status 0 and returns its stdout.
inline std::string run_engine_briefly(const TempDir& dir, const std::string& toml) {
    std::ofstream(dir / "engine.toml") << toml;
    Process engine({LOA_ENGINE_BIN, "--config", (dir / "engine.toml").string(), "--duration", "0.5"},
                   (dir / "engine.log").string());
    const auto out = engine.read_all(20000);
    REQUIRE(engine.wait(20000) == std::optional<int>(0));
    return out;
}

}  // namespace loa::test
