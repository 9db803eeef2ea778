#include <catch2/catch.hpp>

#include <filesystem>
#include <optional>
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
    CHECK(error_of("[engine]\nlisen = \"127.2.3.4:5\"\n").find("engine.lisen: is not a known setting") != std::string::npos);
    CHECK(error_of("[engine]\nfanout_threads = 0\n").find("engine.fanout_threads: must be between 1 and 64") !=
          std::string::npos);
    CHECK(error_of(with_program("ptime_ms = 30")).find("program[0].ptime_ms: must be 10, 20, 40 or 60") !=
          std::string::npos);
    CHECK(error_of(with_program("bitrate = 100")).find("program[0].bitrate") != std::string::npos);
    CHECK(error_of(with_program("clusters = [\"ghost\"]")).find("unknown cluster \"ghost\"") != std::string::npos);
    CHECK(error_of(with_program("multicast = \"127.0.0.21:5004\"")).find("not a multicast group") !=
          std::string::npos);
    CHECK(error_of(with_program("priority = \"urgent\"")).find("program[0].priority") != std::string::npos);
    CHECK(error_of(with_program("content = \"noise\"")).find("program[0].content") != std::string::npos);
    CHECK(error_of("[[program]]\nname = \"p\"\n").find("program[0].source: a programme needs at least one") !=
          std::string::npos);
    CHECK(error_of("[[program]]\nname = \"p\"\n[[program.source]]\ntype = \"radio\"\n")
              .find("program[0].source[0].type: must be \"tone\", \"clip\" or \"studio\"") != std::string::npos);
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

// ---------------------------------------------------------------------------
// Live studios: [[studio]] and programme sources of type "studio".

namespace {
const char* kStudios = R"(
[engine]
ingest_listen = "127.0.0.1:6006"

[[studio]]
name = "district-7"
ssrc = 305419896
program = "live"
min_delay_ms = 20
max_delay_ms = 300

[[studio]]
name = "van-hoa"
source_address = "127.0.2.10"
program = "jingles"
delay_ms = 80

[[program]]
name = "live"
  [[program.source]]
  type = "studio"
  studio = "district-7"
  fallback = "clips/hold.flac"
  [[program.source]]
  type = "tone"
  gain_db = -20

[[program]]
name = "jingles"
  [[program.source]]
  type = "studio"
  studio = "van-hoa"
)";

// A config with one studio and one programme using it; `studio_extra` and
// `source_extra` are appended to the [[studio]] and the studio source.
std::string studio_config(const std::string& studio_extra, const std::string& source_extra = "",
                          const std::string& allowed = "live") {
    return "[[studio]]\nname = \"s\"\nprogram = \"" + allowed + "\"\n" + studio_extra +
           "\n[[program]]\nname = \"live\"\n  [[program.source]]\n  type = \"studio\"\n  studio = \"s\"\n" +
           source_extra + "\n";
}
}  // namespace

TEST_CASE("config_parses_studios", "[config][studio]") {
    const auto cfg = parse_config(kStudios, "test.toml", "/etc/loa");
    CHECK(cfg.engine.ingest_listen.address().to_string() == "127.0.0.1");
    CHECK(cfg.engine.ingest_listen.port() == 6006);
    REQUIRE(cfg.studios.size() == 2);
    const auto* a = cfg.find_studio("district-7");
    REQUIRE(a != nullptr);
    CHECK(a->ssrc == std::optional<std::uint32_t>(305419896u));
    CHECK_FALSE(a->source_address.has_value());
    CHECK(a->program == "live");
    CHECK(a->min_delay_ms == 20);
    CHECK(a->max_delay_ms == 300);
    CHECK_FALSE(a->fixed_delay_ms.has_value());
    const auto* b = cfg.find_studio("van-hoa");
    REQUIRE(b != nullptr);
    CHECK_FALSE(b->ssrc.has_value());
    CHECK(b->source_address->to_string() == "127.0.2.10");
    CHECK(b->fixed_delay_ms == std::optional<int>(80));
    CHECK(cfg.find_studio("nobody") == nullptr);

    const auto* live = cfg.find_program("live");
    REQUIRE(live != nullptr);
    REQUIRE(live->sources.size() == 2);
    CHECK(live->sources[0].type == loa::engine::SourceConfig::Type::Studio);
    CHECK(live->sources[0].studio == "district-7");
    CHECK(live->sources[0].fallback == std::optional<std::filesystem::path>("/etc/loa/clips/hold.flac"));
    const auto* jingles = cfg.find_program("jingles");
    REQUIRE(jingles != nullptr);
    CHECK_FALSE(jingles->sources[0].fallback.has_value());  // silence
}

TEST_CASE("config_studio_defaults", "[config][studio]") {
    const auto cfg = parse_config(studio_config("ssrc = 7", "  fallback = \"silence\""), "test.toml", "/etc/loa");
    CHECK(cfg.engine.ingest_listen.address().to_string() == "0.0.0.0");
    CHECK(cfg.engine.ingest_listen.port() == 5006);
    REQUIRE(cfg.studios.size() == 1);
    CHECK(cfg.studios[0].min_delay_ms == 0);
    CHECK(cfg.studios[0].max_delay_ms == 500);
    CHECK_FALSE(cfg.programs[0].sources[0].fallback.has_value());
    // No studio at all: still the default ingest address, no studios.
    const auto plain = parse_config(with_program(""), "test.toml", "/etc/loa");
    CHECK(plain.studios.empty());
}

TEST_CASE("config_studio_errors_name_the_key", "[config][studio]") {
    CHECK(error_of(studio_config("")).find("studio[0].ssrc: a studio needs an ssrc, a source_address or both") !=
          std::string::npos);
    CHECK(error_of(studio_config("ssrc = -1")).find("studio[0].ssrc: must be between") != std::string::npos);
    CHECK(error_of(studio_config("source_address = \"studio.example\"")).find("studio[0].source_address") !=
          std::string::npos);
    CHECK(error_of(studio_config("source_address = \"127.0.0.21:5000\"")).find("studio[0].source_address") !=
          std::string::npos);
    CHECK(error_of(studio_config("source_address = \"::1\"")).find("must be an IPv4 address") != std::string::npos);
    CHECK(error_of(studio_config("ssrc = 1\nmin_delay_ms = 400\nmax_delay_ms = 100"))
              .find("studio[0].min_delay_ms: must not exceed max_delay_ms") != std::string::npos);
    CHECK(error_of(studio_config("ssrc = 1\ndelay_ms = 900")).find("studio[0].delay_ms") != std::string::npos);
    CHECK(error_of(studio_config("ssrc = 1\nlatency = 3")).find("studio[0].latency: is not a known setting") !=
          std::string::npos);
    // The studio may only feed the programme it allows.
    CHECK(error_of(studio_config("ssrc = 1", "", "other"))
              .find("program[0].source[0].studio: studio \"s\" may only feed programme \"other\"") !=
          std::string::npos);
    // ... and that programme must exist.
    CHECK(error_of("[[studio]]\nname = \"s\"\nssrc = 1\nprogram = \"ghost\"\n" + with_program(""))
              .find("studio[0].program: names unknown programme \"ghost\"") != std::string::npos);
    CHECK(error_of(with_program("").substr(0, with_program("").find("type")) + "type = \"studio\"\nstudio = \"x\"\n")
              .find("program[0].source[0].studio: names unknown studio \"x\"") != std::string::npos);
    CHECK(error_of(studio_config("ssrc = 1", "  fallback = \"\"")).find("program[0].source[0].fallback") !=
          std::string::npos);
    CHECK(error_of(studio_config("ssrc = 1", "  path = \"a.wav\"")).find("program[0].source[0].path: is not a known") !=
          std::string::npos);
    // One studio twice in one programme would split its feed.
    CHECK(error_of(studio_config("ssrc = 1", "  [[program.source]]\n  type = \"studio\"\n  studio = \"s\"\n"))
              .find("program[0].source[1].studio: studio \"s\" is already a source") != std::string::npos);
    // Studios that cannot be told apart.
    const std::string two = "[[studio]]\nname = \"a\"\nssrc = 5\nprogram = \"live\"\n";
    CHECK(error_of(two + studio_config("ssrc = 5")).find("studio[1].ssrc: studios \"a\" and \"s\" cannot be told apart") !=
          std::string::npos);
    CHECK(error_of(two + "[[studio]]\nname = \"a\"\nssrc = 6\nprogram = \"live\"\n" + with_program(""))
              .find("studio[1].name: duplicate studio name \"a\"") != std::string::npos);
    // Same SSRC from two distinct hosts is fine.
    CHECK_NOTHROW(parse_config(
        "[[studio]]\nname = \"a\"\nssrc = 5\nsource_address = \"127.0.2.1\"\nprogram = \"live\"\n" +
            studio_config("ssrc = 5\nsource_address = \"127.0.2.2\""),
        "test.toml", "/etc/loa"));
    CHECK(error_of("[engine]\ningest_listen = \"[::1]:5006\"\n").find("engine.ingest_listen: must be an IPv4") !=
          std::string::npos);
    CHECK(error_of("[engine]\ningest_listen = \"here\"\n").find("engine.ingest_listen: is not an address") !=
          std::string::npos);
}

TEST_CASE("config_duck_envelope_keys_parsed_defaults_unchanged", "[config][ducker]") {
    // Absent: the envelope the ducker has always used.
    const loa::engine::DuckerConfig builtin;
    const auto plain = parse_config("[engine]\ncname = \"x\"\n", "test.toml", "/etc/loa").engine.ducking;
    CHECK(plain.attack_ms == builtin.attack_ms);
    CHECK(plain.release_ms == builtin.release_ms);
    CHECK(plain.hold_ms == builtin.hold_ms);
    CHECK(plain.threshold_dbfs == builtin.threshold_dbfs);
    CHECK(builtin.attack_ms == 50.0);
    CHECK(builtin.release_ms == 500.0);
    CHECK(builtin.hold_ms == 300.0);
    CHECK(builtin.threshold_dbfs == -45.0);

    const auto set = parse_config("[engine]\nduck_attack_ms = 20\nduck_release_ms = 1200.5\nduck_hold_ms = 0\n"
                                  "duck_threshold_dbfs = -38\n",
                                  "test.toml", "/etc/loa")
                         .engine.ducking;
    CHECK(set.attack_ms == 20.0);
    CHECK(set.release_ms == 1200.5);
    CHECK(set.hold_ms == 0.0);
    CHECK(set.threshold_dbfs == -38.0);
}

TEST_CASE("config_duck_envelope_bad_values_name_the_key", "[config][ducker]") {
    const auto err = [](const std::string& line) { return error_of("[engine]\n" + line + "\n"); };
    CHECK(err("duck_attack_ms = 0").find("test.toml: engine.duck_attack_ms: must be between 5 and 2000 (got 0)") ==
          0);
    CHECK(err("duck_attack_ms = 2500").find("engine.duck_attack_ms: must be between") != std::string::npos);
    CHECK(err("duck_release_ms = 5").find("engine.duck_release_ms: must be between 10 and 10000") !=
          std::string::npos);
    CHECK(err("duck_release_ms = 20000").find("engine.duck_release_ms") != std::string::npos);
    CHECK(err("duck_hold_ms = -1").find("engine.duck_hold_ms: must be between 0 and 10000") != std::string::npos);
    CHECK(err("duck_hold_ms = 10001").find("engine.duck_hold_ms") != std::string::npos);
    CHECK(err("duck_threshold_dbfs = 0").find("engine.duck_threshold_dbfs: must be between -80 and -10") !=
          std::string::npos);
    CHECK(err("duck_threshold_dbfs = -90").find("engine.duck_threshold_dbfs") != std::string::npos);
    CHECK(err("duck_threshold_dbfs = nan").find("engine.duck_threshold_dbfs: must be between") != std::string::npos);
    CHECK(err("duck_hold_ms = \"300\"").find("engine.duck_hold_ms: must be a number") != std::string::npos);
    CHECK(err("duck_attack = 50").find("engine.duck_attack: is not a known setting") != std::string::npos);
    // The envelope belongs to the engine, not to a source.
    CHECK(error_of(with_program("") + "  duck_hold_ms = 100\n")
              .find("program[0].source[0].duck_hold_ms: is not a known setting") != std::string::npos);
}
