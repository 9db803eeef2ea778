#include "loa/engine/studio_control.h"

#include <algorithm>
#include <exception>
#include <stdexcept>

#include <boost/asio/ip/address.hpp>

#include "loa/engine/programme_control.h"

namespace loa::engine {

namespace {

constexpr int kDefaultMaxDelayMs = 500;

bool valid_studio_name(const std::string& name) {
    if (name.empty() || name.size() > 64) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-';
    });
}

std::string scope_of(const std::string& zone) { return zone.empty() ? "the whole network" : "zone '" + zone + "'"; }

// Checks a source address the way the config does: an IPv4 host, no port.
std::optional<std::string> source_address_problem(const std::string& text) {
    boost::system::error_code ec;
    const auto a = boost::asio::ip::make_address(text, ec);
    if (ec) return "source address '" + text + "' is not an IP address (a host, no port)";
    if (!a.is_v4()) return "source address '" + text + "' must be IPv4 (the ingest socket is IPv4)";
    if (a.is_unspecified() || a.is_multicast()) return "source address '" + text + "' is not a unicast host";
    return std::nullopt;
}

}  // namespace

StudioControl::StudioControl(Store& store, Engine& engine) : store_(store), engine_(engine) {}

StudioConfig StudioControl::to_config(const StudioRow& row) {
    StudioConfig c;
    c.name = row.name;
    c.zone = row.zone_id;
    c.ssrc = row.ssrc;
    if (!row.source_address.empty()) {
        boost::system::error_code ec;
        const auto a = boost::asio::ip::make_address(row.source_address, ec);
        if (!ec) c.source_address = a;
    }
    c.min_delay_ms = row.min_delay_ms;
    c.max_delay_ms = row.max_delay_ms;
    if (row.fixed_delay_ms > 0) c.fixed_delay_ms = row.fixed_delay_ms;
    return c;
}

Result<StudioRow> StudioControl::check_declare(const Caller& caller, const StudioRequest& r) const {
    using enum RpcCode;
    if (caller.role < Role::Operator) return Outcome::failure(PermissionDenied, "viewers cannot declare studios");
    if (!valid_studio_name(r.name)) {
        return Outcome::failure(InvalidArgument, "studio name '" + r.name + "' must match [A-Za-z0-9._-]{1,64}");
    }
    if (r.zone_id.empty()) return Outcome::failure(InvalidArgument, "a studio needs a zone");
    if (!r.ssrc && !r.source_address) {
        return Outcome::failure(InvalidArgument, "a studio needs an ssrc, a source address or both");
    }
    if (r.source_address) {
        if (const auto problem = source_address_problem(*r.source_address)) {
            return Outcome::failure(InvalidArgument, *problem);
        }
    }
    StudioRow row;
    row.name = r.name;
    row.zone_id = r.zone_id;
    row.ssrc = r.ssrc;
    row.source_address = r.source_address.value_or("");
    row.min_delay_ms = r.min_delay_ms;
    row.max_delay_ms = r.max_delay_ms == 0 ? kDefaultMaxDelayMs : r.max_delay_ms;
    row.fixed_delay_ms = r.fixed_delay_ms;
    row.fallback_clip_id = r.fallback_clip_id;
    if (row.min_delay_ms < 0 || row.min_delay_ms > 2000) {
        return Outcome::failure(InvalidArgument, "min_delay_ms must be between 0 and 2000");
    }
    if (row.max_delay_ms < 10 || row.max_delay_ms > 5000) {
        return Outcome::failure(InvalidArgument, "max_delay_ms must be between 10 and 5000");
    }
    if (row.min_delay_ms > row.max_delay_ms) {
        return Outcome::failure(InvalidArgument, "min_delay_ms must not exceed max_delay_ms");
    }
    if (row.fixed_delay_ms < 0 || row.fixed_delay_ms > row.max_delay_ms) {
        return Outcome::failure(InvalidArgument,
                                "fixed_delay_ms must be between 1 and max_delay_ms (0 = adaptive)");
    }
    if (row.fallback_clip_id < 0) return Outcome::failure(InvalidArgument, "fallback clip id out of range");
    if (!store_.zone(row.zone_id)) return Outcome::failure(NotFound, "no zone '" + row.zone_id + "'");
    if (!store_.zone_within(row.zone_id, caller.zone_id)) {
        return Outcome::failure(PermissionDenied, "zone '" + row.zone_id + "' is outside your scope (" +
                                                      scope_of(caller.zone_id) + ")");
    }
    if (row.fallback_clip_id != 0) {
        const auto clip = store_.clip(row.fallback_clip_id);
        // A clip the caller cannot see is reported as missing, not as forbidden.
        if (!clip || !(clip->zone_id.empty() || store_.zone_within(clip->zone_id, caller.zone_id))) {
            return Outcome::failure(NotFound, "no clip " + std::to_string(row.fallback_clip_id));
        }
    }
    if (store_.studio(row.name)) return Outcome::failure(AlreadyExists, "studio '" + row.name + "' already exists");
    if (const auto s = engine_.studio_status(row.name); s && !s->runtime) {
        return Outcome::failure(AlreadyExists, "studio '" + row.name + "' is declared in the engine's config");
    }
    for (const auto& other : store_.studios()) {
        if (other.ssrc == row.ssrc && other.source_address == row.source_address) {
            return Outcome::failure(AlreadyExists, "studio '" + other.name +
                                                       "' already has this ssrc and source address (studios "
                                                       "must be told apart)");
        }
    }
    return row;
}

Outcome StudioControl::add(const StudioRow& row) {
    try {
        engine_.add_studio(to_config(row));
    } catch (const std::invalid_argument& e) {
        return Outcome::failure(RpcCode::AlreadyExists, e.what());
    } catch (const std::exception& e) {
        return Outcome::failure(RpcCode::Unavailable, e.what());
    }
    return Outcome::success();
}

std::vector<std::uint64_t> StudioControl::programmes_playing(const std::string& name) const {
    std::vector<std::uint64_t> out;
    for (const auto& p : store_.programmes()) {
        if (p.source_kind == static_cast<int>(ProgrammeRequest::Source::Studio) && p.source == name) {
            out.push_back(p.id);
        }
    }
    return out;
}

Result<StudioRow> StudioControl::check_remove(const Caller& caller, const std::string& name) const {
    using enum RpcCode;
    if (caller.role < Role::Operator) return Outcome::failure(PermissionDenied, "viewers cannot remove studios");
    auto row = store_.studio(name);
    if (!row) {
        for (const auto& sc : engine_.config().studios) {
            if (sc.name == name && !sc.program.empty()) {
                return Outcome::failure(FailedPrecondition, "studio '" + name +
                                                                "' is declared in the engine's config file: "
                                                                "remove it there and restart the engine");
            }
        }
        return Outcome::failure(NotFound, "no studio '" + name + "'");
    }
    if (!store_.zone_within(row->zone_id, caller.zone_id)) {
        return Outcome::failure(PermissionDenied, "studio '" + name + "' of zone '" + row->zone_id +
                                                      "' is outside your scope (" + scope_of(caller.zone_id) + ")");
    }
    if (const auto ids = programmes_playing(name); !ids.empty()) {
        return Outcome::failure(FailedPrecondition, "studio '" + name + "' feeds programme " +
                                                        std::to_string(ids.front()) + ": stop it first");
    }
    for (const auto& a : store_.alerts()) {
        if (a.studio == name) {
            return Outcome::failure(FailedPrecondition, "studio '" + name + "' is part of alert " +
                                                            std::to_string(a.id) + ": cancel it first");
        }
    }
    for (const auto& sc : store_.schedules()) {
        if (sc.studio == name) {
            return Outcome::failure(FailedPrecondition, "studio '" + name + "' is played by schedule " +
                                                            std::to_string(sc.id) + " ('" + sc.name +
                                                            "'): delete it first");
        }
    }
    if (const auto s = engine_.studio_status(name); s && s->programme_group) {
        return Outcome::failure(FailedPrecondition, "studio '" + name + "' feeds a programme: stop it first");
    }
    return std::move(*row);
}

void StudioControl::remove(const std::string& name) { (void)engine_.remove_studio(name); }

StudioView StudioControl::make_view(const StudioRow& row) const {
    StudioView v;
    v.row = row;
    v.status = engine_.studio_status(row.name, &v.stats);
    if (v.status && !v.status->runtime) {
        // A config studio of the same name: not this one.
        v.status.reset();
        v.stats.Clear();
    }
    if (const auto ids = programmes_playing(row.name); !ids.empty()) v.programme_id = ids.front();
    return v;
}

std::optional<StudioView> StudioControl::view(const std::string& name) const {
    const auto row = store_.studio(name);
    if (!row) return std::nullopt;
    return make_view(*row);
}

std::vector<StudioView> StudioControl::list(const Caller& caller) const {
    std::vector<StudioView> out;
    for (const auto& row : store_.studios()) {
        if (store_.zone_within(row.zone_id, caller.zone_id)) out.push_back(make_view(row));
    }
    // The config file's studios belong to no zone: only a caller over a
    // whole tree sees them. Seed studios (a zone, no programme) are rows above.
    const auto caller_zone = caller.zone_id.empty() ? std::nullopt : store_.zone(caller.zone_id);
    if (caller.zone_id.empty() || (caller_zone && caller_zone->parent_id.empty())) {
        const auto before = out.size();
        for (const auto& sc : engine_.config().studios) {
            if (sc.program.empty()) continue;
            StudioView v;
            v.row.name = sc.name;
            v.row.ssrc = sc.ssrc;
            if (sc.source_address) v.row.source_address = sc.source_address->to_string();
            v.row.min_delay_ms = sc.min_delay_ms;
            v.row.max_delay_ms = sc.max_delay_ms;
            v.row.fixed_delay_ms = sc.fixed_delay_ms.value_or(0);
            v.row.created_by = "config";
            v.config_program = sc.program;
            v.status = engine_.studio_status(sc.name, &v.stats);
            out.push_back(std::move(v));
        }
        if (out.size() != before) {
            std::sort(out.begin(), out.end(),
                      [](const StudioView& a, const StudioView& b) { return a.row.name < b.row.name; });
        }
    }
    return out;
}

std::vector<std::string> StudioControl::restore() {
    std::vector<std::string> problems;
    const auto in_engine = engine_.runtime_studios();
    for (const auto& row : store_.studios()) {
        if (std::find(in_engine.begin(), in_engine.end(), row.name) != in_engine.end()) continue;
        if (const auto o = add(row); !o.ok()) {
            problems.push_back("studio '" + row.name + "' not restored: " + o.message);
        }
    }
    return problems;
}

}  // namespace loa::engine
