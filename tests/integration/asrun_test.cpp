// The as-run log through loactl against a real engine and one loa-speaker:
// a commune programme plays, a province programme preempts it, both stop;
// `loactl asrun export` gives the two plays as CSV (RFC 4180, ISO 8601 times
// with the zone's offset) and as a JSON array, with the preemption, the end
// reasons and the speaker's confirmation. Waits on conditions only.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <regex>

#include "integration_util.h"
#include "process.h"
#include "temp_dir.h"

using namespace loa;

namespace {

// RFC 4180 records: fields split on commas outside quotes, "" inside quotes
// is one quote, records end with CRLF.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> row;
    std::string field;
    bool quoted = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quoted) {
            if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
                field += '"';
                ++i;
            } else if (c == '"') {
                quoted = false;
            } else {
                field += c;
            }
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            row.push_back(std::move(field));
            field.clear();
        } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
            row.push_back(std::move(field));
            field.clear();
            rows.push_back(std::move(row));
            row.clear();
            ++i;
        } else {
            field += c;
        }
    }
    REQUIRE(field.empty());
    REQUIRE(row.empty());  // the last record ends with CRLF too
    return rows;
}

}  // namespace

TEST_CASE("asrun_export_csv_and_json_through_loactl", "[integration][control][asrun]") {
    test::TempDir dir("loa-asrun");
    unsigned port = 0;
    auto speaker = test::start_speaker("sp-a", dir / "a.wav", "127.0.0.1", port, dir / "a.log");
    auto engine =
        test::start_control_engine(dir, test::control_engine_toml("realtime_priority = 0\nasrun_retention_days = 30\n"));
    const auto& ctl = engine.ctl;

    test::create_zone_tree(ctl, {"a"});
    ctl.ok({"clusters", "register", "sp-a", "--zone", "p.d.a", "--address", "127.0.0.1:" + std::to_string(port)});

    // A name that needs quoting in CSV.
    const std::string news = "Bản tin, \"sáng\"";
    const auto first = std::stoull(
        ctl.ok({"programmes", "start", "--zone", "p.d.a", "--level", "commune", "--tone", "440", "--name", news}));
    // The speaker's reports name the programme's SSRC: the log counts it.
    const auto json_now = [&] { return ctl.ok({"asrun", "export", "--format", "json", "--from", "-1h"}); };
    REQUIRE(test::wait_until([&] { return test::json_int(json_now(), "clusters_confirmed") == 1; }));

    const auto second = std::stoull(
        ctl.ok({"programmes", "start", "--zone", "p", "--level", "province", "--tone", "880", "--name", "prov"}));
    // The preemption is in the log as soon as the arbiter decided it.
    CHECK(json_now().find("\"preempted_by\":[\"prov\"]") != std::string::npos);
    ctl.ok({"programmes", "stop", std::to_string(second)});
    ctl.ok({"programmes", "stop", std::to_string(first)});

    // CSV to a file: a header and one row per play, in start order.
    const auto csv_path = dir / "asrun.csv";
    ctl.ok({"asrun", "export", "--from", "-1h", "--to", "now", "-o", csv_path.string()});
    const auto rows = parse_csv(test::read_file(csv_path));
    REQUIRE(rows.size() == 3);
    const std::vector<std::string> header{"id",          "programme_id", "kind",          "name",
                                          "zone_id",     "level",        "ssrc",          "start",
                                          "start_unix_ms", "end",        "end_unix_ms",   "duration_ms",
                                          "on_air",      "end_reason",   "preempted_by",  "preempted_ms",
                                          "clusters_targeted", "clusters_confirmed"};
    REQUIRE(rows[0] == header);
    std::vector<std::map<std::string, std::string>> plays;
    for (std::size_t i = 1; i < rows.size(); ++i) {
        REQUIRE(rows[i].size() == header.size());
        std::map<std::string, std::string> m;
        for (std::size_t k = 0; k < header.size(); ++k) m[header[k]] = rows[i][k];
        plays.push_back(std::move(m));
    }
    const auto& a = plays[0];
    const auto& p = plays[1];
    CHECK(a.at("programme_id") == std::to_string(first));
    CHECK(a.at("kind") == "programme");
    CHECK(a.at("name") == news);
    CHECK(a.at("zone_id") == "p.d.a");
    CHECK(a.at("level") == "commune");
    CHECK(a.at("on_air") == "false");
    CHECK(a.at("end_reason") == "stopped by local admin");
    CHECK(a.at("preempted_by") == "prov");
    CHECK(std::stoll(a.at("preempted_ms")) > 0);
    CHECK(a.at("clusters_targeted") == "1");
    CHECK(a.at("clusters_confirmed") == "1");
    CHECK(p.at("programme_id") == std::to_string(second));
    CHECK(p.at("zone_id") == "p");
    CHECK(p.at("level") == "province");
    CHECK(p.at("preempted_by").empty());
    CHECK(p.at("end_reason") == "stopped by local admin");
    for (const auto& play : plays) {
        // Times in the default zone (Asia/Ho_Chi_Minh, +07:00) and in Unix ms, consistent.
        const std::regex iso(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+07:00$)");
        CHECK(std::regex_match(play.at("start"), iso));
        CHECK(std::regex_match(play.at("end"), iso));
        const auto start = std::stoll(play.at("start_unix_ms"));
        const auto end = std::stoll(play.at("end_unix_ms"));
        CHECK(end >= start);
        CHECK(std::stoll(play.at("duration_ms")) == end - start);
    }
    // The province play started and ended inside the commune play.
    CHECK(std::stoll(p.at("start_unix_ms")) >= std::stoll(a.at("start_unix_ms")));
    CHECK(std::stoll(p.at("end_unix_ms")) <= std::stoll(a.at("end_unix_ms")));

    // JSON: one array, an object per play with the same facts.
    const auto json = ctl.ok({"asrun", "export", "--format", "json", "--from", "-1h"});
    INFO(json);
    CHECK(json.front() == '[');
    CHECK(json.find("\"name\":\"Bản tin, \\\"sáng\\\"\"") != std::string::npos);
    CHECK(json.find("\"level\":\"PROVINCE\"") != std::string::npos);
    CHECK(json.find("\"on_air\":false") != std::string::npos);
    CHECK(json.find("\"on_air\":true") == std::string::npos);
    CHECK(json.find("\"preempted_by\":[\"prov\"]") != std::string::npos);
    CHECK(json.find("\"id\":\"1\"") != std::string::npos);
    CHECK(json.find("\"id\":\"2\"") != std::string::npos);
    CHECK(json.find("\"id\":\"3\"") == std::string::npos);

    // Other zones and ranges: the province's zone alone, a range before
    // anything played, an explicit time zone, and bad input.
    const auto only_p = parse_csv(ctl.ok({"asrun", "export", "--from", "-1h", "--zone", "p.d"}));
    REQUIRE(only_p.size() == 2);
    CHECK(only_p[1][4] == "p.d.a");
    CHECK(parse_csv(ctl.ok({"asrun", "export", "--from", "-3h", "--to", "-2h"})).size() == 1);
    const auto utc = parse_csv(ctl.ok({"asrun", "export", "--from", "-1h", "--tz", "UTC"}));
    REQUIRE(utc.size() == 3);
    CHECK(utc[1][7].substr(utc[1][7].size() - 6) == "+00:00");
    const auto table = ctl.ok({"asrun", "list", "--from", "-1h"});
    CHECK(table.find("stopped by local admin") != std::string::npos);
    CHECK(table.find("1/1") != std::string::npos);
    CHECK(ctl.run({"asrun", "export", "--from", "yesterday-ish"}).status == 64);
    CHECK(ctl.run({"asrun", "export", "--format", "xml"}).status == 64);
    CHECK(ctl.run({"asrun", "list", "--zone", "nowhere"}).status == 3);
    CHECK(ctl.run({"asrun", "list", "--from", "now", "--to", "-1h"}).status == 3);

    speaker->signal(SIGTERM);
    REQUIRE(speaker->wait(20000) == std::optional<int>(0));
    engine.stop();
}
