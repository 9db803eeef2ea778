#pragma once
// Shared helpers of the multi-process integration tests: files and JSON
// fields of the programs' output, waiting on a condition, running loactl-style
// commands to completion and starting a loa-speaker on an ephemeral port.

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
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
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
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
