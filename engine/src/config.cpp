#include "loa/engine/config.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "loa/codecs/audio_format.h"
#include "loa/engine/schedule.h"
#include "loa/transport/udp_socket.h"
#include "config_table_reader.h"

namespace loa::engine {

ConfigError::ConfigError(std::string file, std::string key, const std::string& problem)
    : std::runtime_error(file + (key.empty() ? std::string() : ": " + key) + ": " + problem),
      file_(std::move(file)),
      key_(std::move(key)) {}

const ClusterConfig* EngineConfig::find_cluster(const std::string& id) const noexcept {
    for (const auto& c : clusters) {
        if (c.id == id) return &c;
    }
    return nullptr;
}

const ZoneConfig* EngineConfig::find_zone(const std::string& id) const noexcept {
    for (const auto& z : zones) {
        if (z.id == id) return &z;
    }
    return nullptr;
}

const StudioConfig* EngineConfig::find_studio(const std::string& name) const noexcept {
    for (const auto& s : studios) {
        if (s.name == name) return &s;
    }
    return nullptr;
}

const ProgramConfig* EngineConfig::find_program(const std::string& name) const noexcept {
    for (const auto& p : programs) {
        if (p.name == name) return &p;
    }
    return nullptr;
}

std::vector<boost::asio::ip::udp::endpoint> EngineConfig::destinations_of(const ProgramConfig& program) const {
    std::vector<boost::asio::ip::udp::endpoint> out;
    out.reserve(program.clusters.size() + program.destinations.size() + 1);
    for (const auto& id : program.clusters) {
        if (const auto* c = find_cluster(id)) out.push_back(c->address);
    }
    out.insert(out.end(), program.destinations.begin(), program.destinations.end());
    if (program.multicast) out.push_back(*program.multicast);
    return out;
}

std::uint32_t ssrc_for_name(const std::string& name) noexcept {
    std::uint32_t h = 2166136261u;
    for (const char ch : name) {
        const auto c = static_cast<unsigned char>(ch);
        h ^= c;
        h *= 16777619u;
    }
    return h == 0 ? 1u : h;
}

namespace {

using config_detail::TableReader;

std::filesystem::path resolve_path(const std::string& text, const std::filesystem::path& base_dir) {
    std::filesystem::path p = text;
    return (p.is_absolute() ? p : base_dir / p).lexically_normal();
}

void read_control(TableReader& r, ControlSettings& s, const std::filesystem::path& base_dir) {
    if (auto v = r.string("socket")) {
        if (v->empty()) r.fail("socket", "must not be empty");
        s.socket = resolve_path(*v, base_dir);
    }
    if (auto v = r.integer("max_frame_bytes", 1024, 64ll << 20)) s.max_frame_bytes = static_cast<std::size_t>(*v);
    if (auto v = r.string("tcp_listen")) {
        (void)r.endpoint("tcp_listen", *v, "127.0.0.1");
        s.tcp_listen = *v;
    }
    r.reject_unknown();
}

void read_engine(TableReader& r, EngineSettings& s, const std::filesystem::path& base_dir) {
    if (auto v = r.string("state_dir")) {
        if (v->empty()) r.fail("state_dir", "must not be empty");
        s.state_dir = resolve_path(*v, base_dir);
    }
    if (auto v = r.string("listen")) s.listen = r.endpoint("listen", *v, "0.0.0.0");
    if (auto v = r.string("listen_v6")) s.listen_v6 = r.endpoint("listen_v6", *v, "::");
    if (auto v = r.string("ingest_listen")) {
        s.ingest_listen = r.endpoint("ingest_listen", *v, "0.0.0.0");
        if (!s.ingest_listen.address().is_v4()) r.fail("ingest_listen", "must be an IPv4 address");
    }
    if (auto v = r.integer("fanout_threads", 1, 64)) s.fanout_threads = static_cast<std::size_t>(*v);
    if (auto v = r.integer("fanout_batch", 1, 1024)) s.fanout_batch = static_cast<std::size_t>(*v);
    if (auto v = r.integer("cluster_timeout_s", 1, 3600)) s.cluster_timeout_s = static_cast<int>(*v);
    if (auto v = r.integer("multicast_ttl", 0, 255)) s.multicast_ttl = static_cast<int>(*v);
    if (auto v = r.boolean("multicast_loop")) s.multicast_loop = *v;
    if (auto v = r.string("multicast_interface")) {
        boost::system::error_code ec;
        auto a = boost::asio::ip::make_address(*v, ec);
        if (ec) r.fail("multicast_interface", "is not an IP address");
        s.multicast_interface = a;
    }
    if (auto v = r.string("cname")) s.cname = *v;
    if (auto v = r.integer("realtime_priority", 0, 99)) s.realtime_priority = static_cast<int>(*v);
    if (auto v = r.string("log_level")) {
        static const std::set<std::string> levels = {"trace", "debug", "info", "warn", "error", "off"};
        if (!levels.contains(*v)) r.fail("log_level", "must be one of trace, debug, info, warn, error, off");
        s.log_level = *v;
    }
    if (auto v = r.string("time_zone")) {
        // Checked the way schedules check it (the system tz database).
        ScheduleSpec probe;
        probe.time_zone = *v;
        probe.first_date = std::chrono::year(2025) / std::chrono::January / 1;
        if (v->empty() || !Schedule::make(probe)) {
            r.fail("time_zone", "is not a known IANA time zone (e.g. Asia/Ho_Chi_Minh)");
        }
        s.time_zone = *v;
    }
    if (auto v = r.integer("asrun_retention_days", 0, 36500)) s.asrun_retention_days = static_cast<int>(*v);
    // Ducking envelope. Bounds keep a dip audible as a ramp (no click), a
    // return within seconds and a threshold between hiss and shouting.
    if (auto v = r.number("duck_attack_ms", 5.0, 2000.0)) s.ducking.attack_ms = *v;
    if (auto v = r.number("duck_release_ms", 10.0, 10000.0)) s.ducking.release_ms = *v;
    if (auto v = r.number("duck_hold_ms", 0.0, 10000.0)) s.ducking.hold_ms = *v;
    if (auto v = r.number("duck_threshold_dbfs", -80.0, -10.0)) s.ducking.threshold_dbfs = *v;
    r.reject_unknown();
}

SourceConfig read_source(TableReader& r, const std::filesystem::path& base_dir, const std::string& program,
                         const EngineConfig& cfg) {
    SourceConfig s;
    const auto type = r.required_string("type");
    if (auto v = r.number("gain_db", -60.0, 24.0)) s.gain_db = *v;
    if (auto v = r.number("duck_db", -60.0, 0.0)) s.duck_db = *v;
    if (type == "tone") {
        s.type = SourceConfig::Type::Tone;
        if (auto v = r.number("frequency", 20.0, 20000.0)) s.frequency_hz = *v;
        if (auto v = r.number("level_db", -96.0, 0.0)) s.level_db = *v;
    } else if (type == "clip") {
        s.type = SourceConfig::Type::Clip;
        std::filesystem::path p = r.required_string("path");
        s.path = p.is_absolute() ? p : base_dir / p;
        if (auto v = r.boolean("loop")) s.loop = *v;
    } else if (type == "studio") {
        s.type = SourceConfig::Type::Studio;
        s.studio = r.required_string("studio");
        const auto* studio = cfg.find_studio(s.studio);
        if (studio == nullptr) r.fail("studio", "names unknown studio \"" + s.studio + "\"");
        if (studio->program != program) {
            r.fail("studio", "studio \"" + s.studio + "\" may only feed programme \"" + studio->program + "\"");
        }
        if (auto v = r.string("fallback")) {
            if (v->empty()) r.fail("fallback", "must be \"silence\" or a clip path");
            if (*v != "silence") s.fallback = resolve_path(*v, base_dir);
        }
    } else {
        r.fail("type", "must be \"tone\", \"clip\" or \"studio\" (got \"" + type + "\")");
    }
    r.reject_unknown();
    return s;
}

ProgramConfig read_program(TableReader& r, const std::string& file, const std::filesystem::path& base_dir,
                           const EngineConfig& cfg) {
    ProgramConfig p;
    p.name = r.required_string("name");
    p.ssrc = ssrc_for_name(p.name);
    if (auto v = r.integer("ssrc", 1, 0xFFFFFFFFll)) p.ssrc = static_cast<std::uint32_t>(*v);
    if (auto v = r.integer("payload_type", 96, 127)) p.payload_type = static_cast<std::uint8_t>(*v);
    if (auto v = r.integer("ptime_ms", 10, 60)) {
        if (!codecs::is_valid_ptime_ms(static_cast<int>(*v))) r.fail("ptime_ms", "must be 10, 20, 40 or 60");
        p.ptime_ms = static_cast<int>(*v);
    }
    if (auto v = r.integer("bitrate", 6000, 510000)) p.bitrate_bps = static_cast<int>(*v);
    if (auto v = r.integer("complexity", 0, 10)) p.complexity = static_cast<int>(*v);
    if (auto v = r.integer("expected_loss_pct", 0, 100)) p.expected_loss_pct = static_cast<int>(*v);
    if (auto v = r.string("content")) {
        if (*v == "speech") {
            p.content = codecs::Content::Speech;
        } else if (*v == "music") {
            p.content = codecs::Content::Music;
        } else {
            r.fail("content", "must be \"speech\" or \"music\"");
        }
    }
    if (auto v = r.string("priority")) {
        auto pr = parse_priority(*v);
        if (!pr) r.fail("priority", "must be one of background, scheduled, commune, district, province, emergency");
        p.priority = *pr;
    }
    p.clusters = r.strings("clusters");
    for (const auto& id : p.clusters) {
        if (cfg.find_cluster(id) == nullptr) r.fail("clusters", "names unknown cluster \"" + id + "\"");
    }
    for (const auto& d : r.strings("destinations")) {
        p.destinations.push_back(r.endpoint("destinations", d, ""));
    }
    if (auto v = r.string("multicast")) {
        auto ep = r.endpoint("multicast", *v, "");
        if (!ep.address().is_multicast()) r.fail("multicast", "\"" + *v + "\" is not a multicast group");
        p.multicast = ep;
    }
    if (auto v = r.string("sdp_file")) {
        std::filesystem::path sp = *v;
        p.sdp_file = sp.is_absolute() ? sp : base_dir / sp;
    }
    if (const auto* arr = r.tables("source")) {
        std::size_t i = 0;
        for (const auto& node : *arr) {
            TableReader sr(*node.as_table(), r.qualified("source") + "[" + std::to_string(i++) + "]", file);
            auto src = read_source(sr, base_dir, p.name, cfg);
            if (src.type == SourceConfig::Type::Studio) {
                for (const auto& other : p.sources) {
                    if (other.type == SourceConfig::Type::Studio && other.studio == src.studio) {
                        sr.fail("studio", "studio \"" + src.studio + "\" is already a source of this programme");
                    }
                }
            }
            p.sources.push_back(std::move(src));
        }
    }
    if (p.sources.empty()) r.fail("source", "a programme needs at least one [[program.source]]");
    // A bed (duck_db < 0) dips under the programme's other sources: without
    // one it would never move, which is a mistake in the config.
    const bool has_voice =
        std::any_of(p.sources.begin(), p.sources.end(), [](const SourceConfig& s) { return s.duck_db >= 0.0; });
    for (std::size_t i = 0; i < p.sources.size() && !has_voice; ++i) {
        if (p.sources[i].duck_db < 0.0) {
            r.fail("source[" + std::to_string(i) + "].duck_db",
                   "a ducked source needs another, non-ducked source in the same programme to dip under");
        }
    }
    r.reject_unknown();
    return p;
}

StudioConfig read_studio(TableReader& r, const EngineConfig& cfg) {
    StudioConfig s;
    s.name = r.required_string("name");
    if (cfg.find_studio(s.name) != nullptr) r.fail("name", "duplicate studio name \"" + s.name + "\"");
    if (auto v = r.integer("ssrc", 0, 0xFFFFFFFFll)) s.ssrc = static_cast<std::uint32_t>(*v);
    if (auto v = r.string("source_address")) {
        boost::system::error_code ec;
        auto a = boost::asio::ip::make_address(*v, ec);
        if (ec) r.fail("source_address", "is not an IP address (a host, no port)");
        if (!a.is_v4()) r.fail("source_address", "must be an IPv4 address (the ingest socket is IPv4)");
        s.source_address = a;
    }
    if (!s.ssrc && !s.source_address) r.fail("ssrc", "a studio needs an ssrc, a source_address or both");
    for (const auto& o : cfg.studio_seeds) {
        if (o.name == s.name) r.fail("name", "duplicate studio name \"" + s.name + "\"");
    }
    if (auto zone = r.string("zone")) {
        // A seeded studio lives in the state database and feeds run-time programmes.
        if (cfg.find_zone(*zone) == nullptr) {
            r.fail("zone", "names unknown zone \"" + *zone + "\" (declare it in [[zone]])");
        }
        if (r.has("program")) {
            r.fail("program", "a studio with a zone is seeded into the state database and feeds run-time "
                              "programmes; it cannot also name a configured programme");
        }
        s.zone = *zone;
    } else {
        s.program = r.required_string("program");
    }
    if (auto v = r.integer("min_delay_ms", 0, 2000)) s.min_delay_ms = static_cast<int>(*v);
    if (auto v = r.integer("max_delay_ms", 10, 5000)) s.max_delay_ms = static_cast<int>(*v);
    if (s.min_delay_ms > s.max_delay_ms) r.fail("min_delay_ms", "must not exceed max_delay_ms");
    if (auto v = r.integer("delay_ms", 1, 5000)) {
        if (*v > s.max_delay_ms) r.fail("delay_ms", "must not exceed max_delay_ms");
        s.fixed_delay_ms = static_cast<int>(*v);
    }
    // Two studios with the same criteria could never be told apart. (When
    // criteria merely overlap, the first studio declared takes the packet.)
    std::vector<const StudioConfig*> others;
    for (const auto& o : cfg.studios) others.push_back(&o);
    for (const auto& o : cfg.studio_seeds) others.push_back(&o);
    for (const auto* other : others) {
        const auto& o = *other;
        if (o.ssrc == s.ssrc && o.source_address == s.source_address) {
            r.fail("ssrc", "studios \"" + o.name + "\" and \"" + s.name +
                               "\" cannot be told apart (give them distinct ssrc or source_address)");
        }
    }
    r.reject_unknown();
    return s;
}

ZoneConfig read_zone(TableReader& r, const EngineConfig& cfg) {
    static const std::vector<std::string> kinds = {"province", "district", "commune", "village"};
    ZoneConfig z;
    z.id = r.required_string("id");
    const bool id_ok = z.id.size() <= 64 && std::all_of(z.id.begin(), z.id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    });
    if (!id_ok) r.fail("id", "must match [a-z0-9._-]{1,64}");
    if (cfg.find_zone(z.id) != nullptr) r.fail("id", "duplicate zone id \"" + z.id + "\"");
    z.name = r.string("name").value_or(z.id);
    if (z.name.empty()) r.fail("name", "must not be empty");
    z.kind = r.required_string("kind");
    const auto level = std::find(kinds.begin(), kinds.end(), z.kind);
    if (level == kinds.end()) r.fail("kind", "must be province, district, commune or village");
    z.parent = r.string("parent").value_or("");
    if (level == kinds.begin()) {
        if (!z.parent.empty()) r.fail("parent", "a province has no parent zone");
    } else {
        if (z.parent.empty()) r.fail("parent", "is required below province level");
        const auto* parent = cfg.find_zone(z.parent);
        if (parent == nullptr) r.fail("parent", "names unknown zone \"" + z.parent + "\" (list parents first)");
        if (parent->kind != *(level - 1)) {
            r.fail("parent", "a " + z.kind + " sits directly below a " + *(level - 1) + ", not a " + parent->kind);
        }
    }
    r.reject_unknown();
    return z;
}

}  // namespace

EngineConfig parse_config(const std::string& toml_text, const std::string& file_name,
                          const std::filesystem::path& base_dir) {
    toml::table root;
    try {
        root = toml::parse(toml_text, file_name);
    } catch (const toml::parse_error& e) {
        std::ostringstream os;
        os << "line " << e.source().begin.line << ", column " << e.source().begin.column << ": "
           << e.description();
        throw ConfigError(file_name, "", os.str());
    }

    EngineConfig cfg;
    cfg.file = file_name;
    TableReader top(root, "", file_name);
    if (const auto* t = top.table("engine")) {
        TableReader r(*t, "engine", file_name);
        read_engine(r, cfg.engine, base_dir);
    }
    if (const auto* t = top.table("control")) {
        TableReader r(*t, "control", file_name);
        read_control(r, cfg.control, base_dir);
    }
    // Seed zones before clusters: a cluster's zone names one.
    if (const auto* arr = top.tables("zone")) {
        std::size_t i = 0;
        for (const auto& node : *arr) {
            TableReader r(*node.as_table(), "zone[" + std::to_string(i++) + "]", file_name);
            cfg.zones.push_back(read_zone(r, cfg));
        }
    }
    if (const auto* arr = top.tables("cluster")) {
        std::size_t i = 0;
        for (const auto& node : *arr) {
            TableReader r(*node.as_table(), "cluster[" + std::to_string(i++) + "]", file_name);
            ClusterConfig c;
            c.id = r.required_string("id");
            if (cfg.find_cluster(c.id) != nullptr) r.fail("id", "duplicate cluster id \"" + c.id + "\"");
            c.address = r.endpoint("address", r.required_string("address"), "");
            const auto seed_name = r.string("name");
            if (auto v = r.string("zone")) {
                if (cfg.find_zone(*v) == nullptr) {
                    r.fail("zone", "names unknown zone \"" + *v + "\" (declare it in [[zone]])");
                }
                cfg.cluster_seeds.push_back(ClusterSeedConfig{c.id, *v, seed_name.value_or("")});
            }
            r.reject_unknown();
            cfg.clusters.push_back(std::move(c));
        }
    }
    // Studios before programmes: a programme's studio source names one.
    if (const auto* arr = top.tables("studio")) {
        std::size_t i = 0;
        for (const auto& node : *arr) {
            TableReader r(*node.as_table(), "studio[" + std::to_string(i++) + "]", file_name);
            auto studio = read_studio(r, cfg);
            (studio.zone.empty() ? cfg.studios : cfg.studio_seeds).push_back(std::move(studio));
        }
    }
    if (const auto* arr = top.tables("program")) {
        std::size_t i = 0;
        for (const auto& node : *arr) {
            TableReader r(*node.as_table(), "program[" + std::to_string(i++) + "]", file_name);
            auto p = read_program(r, file_name, base_dir, cfg);
            if (cfg.find_program(p.name) != nullptr) r.fail("name", "duplicate programme name \"" + p.name + "\"");
            for (const auto& other : cfg.programs) {
                if (other.ssrc == p.ssrc) {
                    r.fail("ssrc", "programmes \"" + other.name + "\" and \"" + p.name + "\" share an SSRC");
                }
            }
            cfg.programs.push_back(std::move(p));
        }
    }
    for (std::size_t i = 0; i < cfg.studios.size(); ++i) {
        if (cfg.find_program(cfg.studios[i].program) == nullptr) {
            throw ConfigError(file_name, "studio[" + std::to_string(i) + "].program",
                              "names unknown programme \"" + cfg.studios[i].program + "\"");
        }
    }
    top.reject_unknown();
    return cfg;
}

EngineConfig load_config(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) throw ConfigError(path.string(), "", "cannot read the file");
    std::ostringstream text;
    text << in.rdbuf();
    auto base = path.parent_path();
    if (base.empty()) base = ".";
    return parse_config(text.str(), path.string(), std::filesystem::absolute(base));
}

}  // namespace loa::engine
