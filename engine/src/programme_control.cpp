#include "loa/engine/programme_control.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <optional>

#include "loa/transport/udp_socket.h"

namespace loa::engine {

ProgrammeControl::ProgrammeControl(Store& store, ProgrammeManager& manager, const Clock& clock)
    : store_(store), manager_(manager), clock_(clock) {}

std::optional<boost::asio::ip::udp::endpoint> ProgrammeControl::parse_endpoint(const std::string& text) {
    if (text.empty()) return std::nullopt;
    try {
        const auto ep = transport::parse_endpoint(text, "");
        if (ep.port() == 0 || ep.address().is_multicast()) return std::nullopt;
        return ep;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

std::optional<boost::asio::ip::udp::endpoint> ProgrammeControl::parse_group(const std::string& text) {
    if (text.empty()) return std::nullopt;
    try {
        const auto ep = transport::parse_endpoint(text, "");
        if (ep.port() == 0 || !ep.address().is_multicast()) return std::nullopt;
        return ep;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

Outcome ProgrammeControl::refresh_topology() {
    const auto version = store_.topology_version();
    if (applied_topology_ == version) return Outcome::success();
    std::vector<ZoneSpec> zones;
    for (const auto& z : store_.zones()) zones.push_back({z.id, z.parent_id});
    std::vector<RuntimeCluster> clusters;
    std::string after;
    for (;;) {
        const auto page = store_.clusters({}, after, 1000);
        for (const auto& c : page) {
            RuntimeCluster rc{c.id, c.zone_id, std::nullopt, std::nullopt};
            if (c.enabled) {
                rc.address = parse_endpoint(c.address);
                rc.group = parse_group(c.multicast_group);
            }
            clusters.push_back(std::move(rc));
        }
        if (page.size() < 1000) break;
        after = page.back().id;
    }
    auto applied = manager_.set_topology(std::move(zones), std::move(clusters));
    if (applied.ok()) applied_topology_ = version;
    return applied;
}

Outcome ProgrammeControl::refresh_cluster(const std::string& id) {
    const auto version = store_.topology_version();
    if (applied_topology_ == version) return Outcome::success();
    // Any other write since the last refresh (a zone, another cluster, one
    // rolled back) leaves a gap of more than one: read everything again.
    if (!applied_topology_ || version != *applied_topology_ + 1) return refresh_topology();
    Outcome done;
    if (const auto row = store_.cluster(id)) {
        RuntimeCluster rc{row->id, row->zone_id, std::nullopt, std::nullopt};
        if (row->enabled) {
            rc.address = parse_endpoint(row->address);
            rc.group = parse_group(row->multicast_group);
        }
        done = manager_.put_cluster(std::move(rc));
    } else {
        done = manager_.remove_cluster(id);
        // Never handed over (e.g. added and removed in between): nothing to do.
        if (done.code == RpcCode::NotFound) done = Outcome::success();
    }
    if (!done.ok()) return refresh_topology();
    applied_topology_ = version;
    return done;
}

bool ProgrammeControl::in_scope(const Caller& caller, const std::vector<std::string>& zones) const {
    if (caller.zone_id.empty()) return true;
    return std::all_of(zones.begin(), zones.end(),
                       [&](const std::string& z) { return store_.zone_within(z, caller.zone_id); });
}

Result<std::uint64_t> ProgrammeControl::start(const Caller& caller, const ProgrammeRequest& r) {
    if (caller.role < Role::Operator) {
        return Outcome::failure(RpcCode::PermissionDenied, "viewers cannot start programmes");
    }
    if (r.target_zones.empty()) return Outcome::failure(RpcCode::InvalidArgument, "a programme needs a target zone");
    for (const auto& z : r.target_zones) {
        if (!store_.zone(z)) return Outcome::failure(RpcCode::InvalidArgument, "unknown zone '" + z + "'");
    }
    if (static_cast<int>(r.level) > static_cast<int>(caller.max_level)) {
        return Outcome::failure(RpcCode::PermissionDenied, "level " + std::string(to_string(r.level)) +
                                                               " is above the caller's " +
                                                               std::string(to_string(caller.max_level)));
    }
    if (!in_scope(caller, r.target_zones)) {
        return Outcome::failure(RpcCode::PermissionDenied, "a target zone is outside the caller's zone '" +
                                                               caller.zone_id + "'");
    }
    const std::uint64_t id = next_id_;
    const auto sequence = static_cast<std::uint64_t>(clock_.unix_ns() / 1'000'000) * 1000 + (id % 1000);
    if (r.source == ProgrammeRequest::Source::ClipPath && caller.role != Role::Admin) {
        return Outcome::failure(RpcCode::PermissionDenied, "a clip by file path is for administrators only");
    }
    if (r.source == ProgrammeRequest::Source::ClipId) {
        const auto clip = store_.clip(r.clip_id);
        // A clip the caller cannot see is reported as missing, not as forbidden.
        if (!clip || !(clip->zone_id.empty() || caller.zone_id.empty() ||
                       store_.zone_within(clip->zone_id, caller.zone_id))) {
            return Outcome::failure(RpcCode::NotFound, "no clip " + std::to_string(r.clip_id));
        }
    }
    if (r.background_clip_id != 0) {
        const auto clip = store_.clip(r.background_clip_id);
        if (!clip || !(clip->zone_id.empty() || caller.zone_id.empty() ||
                       store_.zone_within(clip->zone_id, caller.zone_id))) {
            return Outcome::failure(RpcCode::NotFound, "no clip " + std::to_string(r.background_clip_id) +
                                                           " (background_clip_id)");
        }
    }
    if (r.source == ProgrammeRequest::Source::Studio) {
        // A studio feeds programmes of callers whose scope holds its zone
        // (besides whatever else it feeds: the engine bounds its readers).
        const auto studio = store_.studio(r.studio);
        if (!studio) return Outcome::failure(RpcCode::NotFound, "no studio '" + r.studio + "'");
        if (!store_.zone_within(studio->zone_id, caller.zone_id)) {
            return Outcome::failure(RpcCode::PermissionDenied, "studio '" + r.studio + "' of zone '" +
                                                                   studio->zone_id + "' is outside the caller's zone '" +
                                                                   caller.zone_id + "'");
        }
    }
    auto started = launch(r, id, sequence);
    if (!started) return started;
    auto& row = rows_[id];
    row.created_unix_ms = clock_.unix_ns() / 1'000'000;
    row.created_by = caller.is_local_admin() ? std::string("local admin") : caller.operator_name;
    return id;
}

Result<std::uint64_t> ProgrammeControl::launch(const ProgrammeRequest& r, std::uint64_t id, std::uint64_t sequence) {
    RuntimeProgramme p;
    p.id = id;
    p.name = r.name;
    p.level = r.level;
    p.target_zones = r.target_zones;
    p.sequence = sequence;
    p.policy = r.on_preempt;
    ProgrammeRow row;
    row.id = id;
    row.name = r.name;
    row.level = static_cast<int>(r.level);
    for (const auto& z : r.target_zones) row.zones += (row.zones.empty() ? "" : ",") + z;
    row.source_kind = static_cast<int>(r.source);
    row.sequence = sequence;
    row.preempt_policy = static_cast<int>(r.on_preempt);
    if (!(r.duck_db >= -60.0 && r.duck_db <= 0.0)) {
        return Outcome::failure(RpcCode::InvalidArgument, "duck_db must be between -60 and 0");
    }
    if (r.duck_db != 0.0 && r.background_clip_id == 0) {
        return Outcome::failure(RpcCode::InvalidArgument, "duck_db needs a background_clip_id to dip");
    }
    std::optional<SourceConfig> bed;
    if (r.background_clip_id != 0) {
        if (!clip_dir_) return Outcome::failure(RpcCode::Unavailable, "this engine has no clip catalogue");
        const auto clip = store_.clip(r.background_clip_id);
        if (!clip) {
            return Outcome::failure(RpcCode::NotFound, "no clip " + std::to_string(r.background_clip_id) +
                                                           " (background_clip_id)");
        }
        bed.emplace();
        bed->type = SourceConfig::Type::Clip;
        bed->path = *clip_dir_ / (clip->sha256 + "." + clip->ext);
        bed->loop = true;
        // A bed with duck_db 0 just mixes in; below 0 it dips (ducker.h).
        bed->duck_db = r.duck_db;
        row.background_clip_id = r.background_clip_id;
        row.duck_centi_db = static_cast<int>(std::lround(r.duck_db * 100.0));
    }
    SourceConfig s;
    switch (r.source) {
        case ProgrammeRequest::Source::Tone:
            if (!(r.tone_hz > 0.0 && r.tone_hz < 24000.0)) {
                return Outcome::failure(RpcCode::InvalidArgument, "tone frequency must be in (0, 24000) Hz");
            }
            s.type = SourceConfig::Type::Tone;
            s.frequency_hz = r.tone_hz;
            p.kind = ProgrammeKind::Live;
            row.source = std::to_string(r.tone_hz);
            break;
        case ProgrammeRequest::Source::ClipPath:
            if (r.clip_path.empty() || r.clip_path.front() != '/') {
                return Outcome::failure(RpcCode::InvalidArgument, "clip path must be absolute");
            }
            s.type = SourceConfig::Type::Clip;
            s.path = r.clip_path;
            s.loop = r.loop;
            p.kind = ProgrammeKind::Clip;
            row.source = (r.loop ? "loop:" : "") + r.clip_path;
            break;
        case ProgrammeRequest::Source::ClipId: {
            if (!clip_dir_) return Outcome::failure(RpcCode::Unavailable, "this engine has no clip catalogue");
            const auto clip = store_.clip(r.clip_id);
            if (!clip) return Outcome::failure(RpcCode::NotFound, "no clip " + std::to_string(r.clip_id));
            s.type = SourceConfig::Type::Clip;
            s.path = *clip_dir_ / (clip->sha256 + "." + clip->ext);
            s.loop = r.loop;
            p.kind = ProgrammeKind::Clip;
            row.source = (r.loop ? "loop:" : "") + std::to_string(r.clip_id);
            break;
        }
        case ProgrammeRequest::Source::Studio: {
            const auto studio = store_.studio(r.studio);
            if (!studio) return Outcome::failure(RpcCode::NotFound, "no studio '" + r.studio + "'");
            s.type = SourceConfig::Type::Studio;
            s.studio = r.studio;
            // The studio's fallback clip loops while it is silent (silence without one).
            if (studio->fallback_clip_id != 0 && clip_dir_) {
                if (const auto clip = store_.clip(studio->fallback_clip_id)) {
                    s.fallback = *clip_dir_ / (clip->sha256 + "." + clip->ext);
                }
            }
            p.kind = ProgrammeKind::Live;
            row.source = r.studio;
            break;
        }
    }
    p.sources.push_back(s);
    if (bed) p.sources.push_back(*bed);
    auto started = manager_.start(p);
    if (!started) return started.error();
    rows_[id] = row;
    next_id_ = std::max(next_id_, id + 1);
    return id;
}

std::optional<std::int64_t> ProgrammeControl::clip_of(const ProgrammeRow& row) {
    if (row.source_kind != static_cast<int>(ProgrammeRequest::Source::ClipId)) return std::nullopt;
    const std::string clip = row.source.starts_with("loop:") ? row.source.substr(5) : row.source;
    try {
        return std::stoll(clip);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

std::optional<ProgrammeRow> ProgrammeControl::row(std::uint64_t id) const {
    auto it = rows_.find(id);
    if (it == rows_.end()) return std::nullopt;
    return it->second;
}

std::vector<std::string> ProgrammeControl::restore() {
    std::vector<std::string> problems;
    for (const auto& row : store_.programmes()) {
        next_id_ = std::max(next_id_, row.id + 1);
        ProgrammeRequest r;
        r.name = row.name;
        r.level = static_cast<Priority>(row.level);
        for (std::size_t at = 0; at <= row.zones.size();) {
            const auto comma = std::min(row.zones.find(',', at), row.zones.size());
            if (comma > at) r.target_zones.push_back(row.zones.substr(at, comma - at));
            at = comma + 1;
        }
        r.source = static_cast<ProgrammeRequest::Source>(row.source_kind);
        switch (row.preempt_policy) {
            case static_cast<int>(PreemptPolicy::Restart): r.on_preempt = PreemptPolicy::Restart; break;
            case static_cast<int>(PreemptPolicy::Drop): r.on_preempt = PreemptPolicy::Drop; break;
            default: r.on_preempt = PreemptPolicy::Pause; break;
        }
        try {
            if (r.source == ProgrammeRequest::Source::Tone) r.tone_hz = std::stod(row.source);
        } catch (const std::exception&) {
            r.tone_hz = 0.0;
        }
        r.studio = row.source;
        // Clips: "[loop:]<path or clip id>".
        const std::string clip = row.source.starts_with("loop:") ? row.source.substr(5) : row.source;
        r.loop = clip.size() != row.source.size();
        r.clip_path = clip;
        if (r.source == ProgrammeRequest::Source::ClipId) {
            try {
                r.clip_id = std::stoll(clip);
            } catch (const std::exception&) {
                r.clip_id = 0;
            }
        }
        r.background_clip_id = row.background_clip_id;
        r.duck_db = static_cast<double>(row.duck_centi_db) / 100.0;
        auto started = launch(r, row.id, row.sequence);
        if (!started) {
            problems.push_back("programme " + std::to_string(row.id) + " not restored: " + started.error().message);
            continue;
        }
        rows_[row.id].created_unix_ms = row.created_unix_ms;
        rows_[row.id].created_by = row.created_by;
    }
    return problems;
}

Outcome ProgrammeControl::may_stop(const Caller& caller, std::uint64_t id) const {
    const auto info = manager_.info(id);
    if (!info) return Outcome::failure(RpcCode::NotFound, "no programme " + std::to_string(id));
    if (caller.role < Role::Operator || static_cast<int>(info->level) > static_cast<int>(caller.max_level) ||
        !in_scope(caller, info->target_zones)) {
        return Outcome::failure(RpcCode::PermissionDenied, "programme " + std::to_string(id) +
                                                               " is outside the caller's scope");
    }
    return Outcome::success();
}

Outcome ProgrammeControl::stop(const Caller& caller, std::uint64_t id) {
    if (auto o = may_stop(caller, id); !o.ok()) {
        // Dropped by its policy meanwhile: the local administrator (taking
        // back a start whose commit failed) leaves nothing behind.
        if (o.code == RpcCode::NotFound && caller.is_local_admin()) rows_.erase(id);
        return o;
    }
    manager_.stop(id);
    rows_.erase(id);
    return Outcome::success();
}

std::vector<ProgrammeRow> ProgrammeControl::dropped() const {
    std::vector<ProgrammeRow> out;
    for (const auto& [id, row] : rows_) {
        if (!manager_.contains(id)) out.push_back(row);
    }
    return out;
}

std::vector<ProgrammeInfo> ProgrammeControl::list(const Caller& caller) const {
    std::vector<ProgrammeInfo> out;
    for (auto& info : manager_.list()) {
        const bool visible =
            caller.zone_id.empty() ||
            std::any_of(info.target_zones.begin(), info.target_zones.end(), [&](const std::string& z) {
                return store_.zone_within(z, caller.zone_id) || store_.zone_within(caller.zone_id, z);
            });
        if (visible) out.push_back(std::move(info));
    }
    return out;
}

}  // namespace loa::engine
