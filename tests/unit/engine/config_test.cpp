#include <catch2/catch.hpp>

#include <string>

#include "loa/engine/config.h"

using loa::engine::ConfigError;
using loa::engine::parse_config;

namespace {
const char* kGood = R"(
[engine]
listen = "127.0.0.1:5004"
fanout_threads = 3
cluster_timeout_s = 10

[[cluster]]
id = "xa-a-01"
address = "127.0.0.1:6001"

[[cluster]]
id = "xa-a-02"
address = "[::1]:6002"

[[program]]
name = "morning"
priority = "commune"
ptime_ms = 40
bitrate = 32000
content = "music"
clusters = ["xa-a-01", "xa-a-02"]
destinations = ["127.0.0.1:7000"]
multicast = "239.255.1.2:5004"

  [[program.source]]
  type = "clip"
  path = "clips/news.flac"
  loop = false

  [[program.source]]
  type = "tone"
  frequency = 440
  level_db = -20
  gain_db = -3
)";

std::string error_of(const std::string& text) {
    try {
        parse_config(text, "test.toml", "/etc/loa");
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "no error";
}

std::string with_program(const std::string& program_body) {
    return "[[program]]\nname = \"p\"\n" + program_body + "\n  [[program.source]]\n  type = \"tone\"\n";
}
}  // namespace

TEST_CASE("config_parses_every_setting", "[config]") {
    const auto cfg = parse_config(kGood, "test.toml", "/etc/loa");
    CHECK(cfg.engine.listen.port() == 5004);
    CHECK(cfg.engine.fanout_threads == 3);
    CHECK(cfg.engine.cluster_timeout_s == 10);
    REQUIRE(cfg.clusters.size() == 2);
    CHECK(cfg.clusters[1].address.address().is_v6());
    REQUIRE(cfg.programs.size() == 1);
    const auto& p = cfg.programs[0];
    CHECK(p.ptime_ms == 40);
    CHECK(p.bitrate_bps == 32000);
    CHECK(p.content == loa::codecs::Content::Music);
    CHECK(p.priority == loa::engine::Priority::Commune);
    CHECK(p.ssrc == loa::engine::ssrc_for_name("morning"));
    REQUIRE(p.sources.size() == 2);
    CHECK(p.sources[0].path == "/etc/loa/clips/news.flac");
    CHECK_FALSE(p.sources[0].loop);
    CHECK(p.sources[1].frequency_hz == Approx(440));
    CHECK(p.sources[1].gain_db == Approx(-3));
    const auto dests = cfg.destinations_of(p);
    REQUIRE(dests.size() == 4);
    CHECK(dests[0].port() == 6001);
    CHECK(dests[3].address().is_multicast());
}

TEST_CASE("config_errors_name_file_and_key", "[config]") {
    CHECK(error_of("[engine]\nlisten = \"nowhere\"\n").find("test.toml: engine.listen: is not an address") == 0);
    CHECK(error_of("[engine]\nlisen = \"1.2.3.4:5\"\n").find("engine.lisen: is not a known setting") != std::string::npos);
    CHECK(error_of("[engine]\nfanout_threads = 0\n").find("engine.fanout_threads: must be between 1 and 64") !=
          std::string::npos);
    CHECK(error_of(with_program("ptime_ms = 30")).find("program[0].ptime_ms: must be 10, 20, 40 or 60") !=
          std::string::npos);
    CHECK(error_of(with_program("bitrate = 100")).find("program[0].bitrate") != std::string::npos);
    CHECK(error_of(with_program("clusters = [\"ghost\"]")).find("unknown cluster \"ghost\"") != std::string::npos);
    CHECK(error_of(with_program("multicast = \"10.0.0.1:5004\"")).find("not a multicast group") !=
          std::string::npos);
    CHECK(error_of(with_program("priority = \"urgent\"")).find("program[0].priority") != std::string::npos);
    CHECK(error_of(with_program("content = \"noise\"")).find("program[0].content") != std::string::npos);
    CHECK(error_of("[[program]]\nname = \"p\"\n").find("program[0].source: a programme needs at least one") !=
          std::string::npos);
    CHECK(error_of("[[program]]\nname = \"p\"\n[[program.source]]\ntype = \"radio\"\n")
              .find("program[0].source[0].type: must be \"tone\" or \"clip\"") != std::string::npos);
    CHECK(error_of("[[program]]\nname = \"p\"\n[[program.source]]\ntype = \"clip\"\n")
              .find("program[0].source[0].path: is required") != std::string::npos);
    CHECK(error_of(with_program("") + with_program("")).find("duplicate programme name") != std::string::npos);
    CHECK(error_of("[[cluster]]\nid = \"a\"\naddress = \"127.0.0.1:1\"\n[[cluster]]\nid = \"a\"\naddress = "
                   "\"127.0.0.1:2\"\n")
              .find("duplicate cluster id") != std::string::npos);
    CHECK(error_of("[engine\nlisten=1").find("test.toml: line 1") == 0);
    CHECK(error_of("[engine]\nlisten = 5004\n").find("engine.listen: must be a string") != std::string::npos);
}

TEST_CASE("config_missing_file_is_an_error", "[config]") {
    try {
        loa::engine::load_config("/nonexistent/loa.toml");
        FAIL("expected ConfigError");
    } catch (const ConfigError& e) {
        CHECK(std::string(e.what()).find("/nonexistent/loa.toml") != std::string::npos);
    }
}

TEST_CASE("ssrc_from_name_is_stable_and_distinct", "[config]") {
    CHECK(loa::engine::ssrc_for_name("a") == loa::engine::ssrc_for_name("a"));
    CHECK(loa::engine::ssrc_for_name("a") != loa::engine::ssrc_for_name("b"));
    CHECK(loa::engine::ssrc_for_name("") != 0u);
}
