// loactl clips against a real loa-engine: upload a sox-generated WAV in
// chunks, list it with duration and loudness, refuse corrupt audio and
// out-of-role callers, announce it on WatchEvents, keep it across a restart,
// delete it (file gone).
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>

#include "integration_util.h"
#include "process.h"
#include "temp_dir.h"

using namespace loa;

namespace {

struct ClipEngine {
    explicit ClipEngine(const test::TempDir& dir) {
        std::ofstream(dir / "engine.toml") << "[engine]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\n"
                                           << "[control]\nsocket = \"control.sock\"\n";
        proc = std::make_unique<test::Process>(
            std::vector<std::string>{LOA_ENGINE_BIN, "--config", (dir / "engine.toml").string()},
            (dir / "engine.log").string());
        bool ready = false;
        for (int i = 0; i < 8 && !ready; ++i) {
            const auto line = proc->read_line(20000);
            REQUIRE(line);
            ready = line->rfind("control ", 0) == 0;
        }
        REQUIRE(ready);
    }
    ~ClipEngine() {
        proc->signal(SIGTERM);
        proc->wait(20000);
    }
    std::unique_ptr<test::Process> proc;
};

double json_double(const std::string& json, const std::string& name) {
    std::smatch m;
    REQUIRE(std::regex_search(json, m, std::regex("\"" + name + "\"\\s*:\\s*(-?[0-9.]+)")));
    return std::stod(m[1]);
}

std::vector<std::string> content_files(const std::filesystem::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
    return out;
}

}  // namespace

TEST_CASE("loactl_uploads_lists_and_deletes_clips", "[integration][control][clips]") {
    test::TempDir dir("loa-clips");
    const auto sock = (dir / "control.sock").string();
    const auto ctl = [&](std::vector<std::string> args, const std::string& token = {}) {
        return test::run_command(test::loactl_argv("--socket", sock, args, token), 60000);
    };
    // 10 s of a -20 dBFS 1 kHz sine, 44.1 kHz stereo: 1.7 MB, so two chunks.
    const auto wav = (dir / "tone.wav").string();
    REQUIRE(test::run_command({"sox", "-n", "-r", "44100", "-c", "2", "-b", "16", wav, "synth", "10", "sine", "1000",
                               "gain", "-20"})
                .status == 0);
    std::ofstream(dir / "junk.wav") << std::string(4096, 'j');
    {
        ClipEngine engine(dir);
        ctl({"zones", "create", "hn", "--name", "Ha Noi", "--kind", "province"});
        auto r = ctl({"clips", "upload", wav, "--name", "Tone"});
        INFO(r.out);
        REQUIRE(r.status == 0);
        REQUIRE(r.out.find("clip 1 'Tone' uploaded") != std::string::npos);
        REQUIRE(r.out.find("[") == std::string::npos);  // no progress bar off a terminal

        r = ctl({"--json", "clips", "list"});
        REQUIRE(r.status == 0);
        REQUIRE(test::json_int(r.out, "duration_ms") == 10000);
        REQUIRE(test::json_int(r.out, "sample_rate") == 44100);
        REQUIRE(test::json_int(r.out, "channels") == 2);
        REQUIRE(json_double(r.out, "loudness_lufs") == Approx(-23.0).margin(0.5));
        REQUIRE(r.out.find("\"format\":\"WAV\"") != std::string::npos);
        r = ctl({"clips", "list"});
        REQUIRE(r.out.find("Tone") != std::string::npos);
        REQUIRE(r.out.find("0:10.0") != std::string::npos);

        // The same file again: ALREADY_EXISTS; junk: INVALID_ARGUMENT; a viewer: PERMISSION_DENIED.
        REQUIRE(ctl({"clips", "upload", wav}).status == 6);
        REQUIRE(ctl({"clips", "upload", (dir / "junk.wav").string()}).status == 3);
        r = ctl({"--json", "operators", "create", "v", "--role", "viewer", "--zone", "hn", "--level", "commune"});
        std::smatch m;
        REQUIRE(std::regex_search(r.out, m, std::regex("\"token\":\"(loa1_[0-9a-f]{64})\"")));
        const std::string viewer = m[1];
        REQUIRE(ctl({"clips", "upload", wav, "--name", "mine"}, viewer).status == 7);
        REQUIRE(ctl({"clips", "delete", "1"}, viewer).status == 7);
        REQUIRE(ctl({"--json", "clips", "list"}, viewer).out.find("\"Tone\"") != std::string::npos);  // global

        r = ctl({"--json", "watch", "--count", "3"});
        REQUIRE(r.out.find("CLIP_ADDED") != std::string::npos);
        REQUIRE(r.out.find("\"subject\":\"clip/1\"") != std::string::npos);
    }
    // Kept across a restart, nothing but the content file in the folder.
    {
        ClipEngine engine(dir);
        auto r = ctl({"--json", "clips", "list"});
        REQUIRE(test::json_int(r.out, "duration_ms") == 10000);
        const auto files = content_files(dir / "state" / "clips");
        REQUIRE(files.size() == 1);
        REQUIRE(std::regex_match(files[0], std::regex("[0-9a-f]{64}\\.wav")));
        REQUIRE(ctl({"clips", "delete", "1"}).status == 0);
        REQUIRE(ctl({"clips", "delete", "1"}).status == 5);
        r = ctl({"--json", "clips", "list"});
        REQUIRE(r.out.find("\"clips\"") == std::string::npos);
        REQUIRE(content_files(dir / "state" / "clips").empty());
    }
}
