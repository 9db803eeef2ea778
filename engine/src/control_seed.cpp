#include "loa/engine/control_seed.h"

#include <algorithm>

#include "loa/control/v1/control.pb.h"
#include "loa/engine/control_status.h"

namespace loa::engine {

namespace {

constexpr const char* kSeedKey = "seed_imported";

ZoneKind kind_of(const std::string& kind) {
    if (kind == "province") return ZoneKind::Province;
    if (kind == "district") return ZoneKind::District;
    if (kind == "commune") return ZoneKind::Commune;
    if (kind == "village") return ZoneKind::Village;
    throw ControlError(RpcCode::InvalidArgument, "seed: zone kind '" + kind + "' is not a zone kind");
}

bool valid_cluster_id(const std::string& id) {
    if (id.empty() || id.size() > 128) return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-' || c == ':';
    });
}

bool valid_studio_name(const std::string& name) {
    if (name.empty() || name.size() > 64) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-';
    });
}

std::string endpoint_text(const boost::asio::ip::udp::endpoint& ep) {
    const auto a = ep.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

}  // namespace

void seed_rows(const EngineConfig& config, std::vector<ZoneRow>& zones, std::vector<ClusterRow>& clusters) {
    zones.clear();
    clusters.clear();
    for (const auto& z : config.zones) zones.push_back(ZoneRow{z.id, z.name, kind_of(z.kind), z.parent});
    for (const auto& s : config.cluster_seeds) {
        if (!valid_cluster_id(s.id)) {
            throw ControlError(RpcCode::InvalidArgument,
                               "seed: cluster id '" + s.id + "' must match [A-Za-z0-9._:-]{1,128}");
        }
        const auto* c = config.find_cluster(s.id);
        const std::string address = c != nullptr ? endpoint_text(c->address) : std::string();
        clusters.push_back(ClusterRow{s.id, s.name.empty() ? s.id : s.name, s.zone, address, {}, true});
    }
}

std::vector<StudioRow> seed_studio_rows(const EngineConfig& config, std::int64_t now_unix_ms) {
    std::vector<StudioRow> out;
    for (const auto& s : config.studio_seeds) {
        if (!valid_studio_name(s.name)) {
            throw ControlError(RpcCode::InvalidArgument,
                               "seed: studio name '" + s.name + "' must match [A-Za-z0-9._-]{1,64}");
        }
        StudioRow row;
        row.name = s.name;
        row.zone_id = s.zone;
        row.ssrc = s.ssrc;
        if (s.source_address) row.source_address = s.source_address->to_string();
        row.min_delay_ms = s.min_delay_ms;
        row.max_delay_ms = s.max_delay_ms;
        row.fixed_delay_ms = s.fixed_delay_ms.value_or(0);
        row.created_unix_ms = now_unix_ms;
        row.created_by = "seed";
        out.push_back(std::move(row));
    }
    return out;
}

SeedResult import_seed(Store& store, const EngineConfig& config, const Clock& clock) {
    SeedResult r;
    std::vector<ZoneRow> zones;
    std::vector<ClusterRow> clusters;
    seed_rows(config, zones, clusters);
    const auto studios = seed_studio_rows(config, clock.unix_ns() / 1'000'000);
    if (const auto when = store.meta(kSeedKey)) {
        r.summary = "seed already imported (" + *when + "); the database is the source of truth";
        return r;
    }
    if (store.object_count() > 0) {
        store.write([&] { store.set_meta(kSeedKey, "not imported: the database already held zones or clusters"); });
        r.summary = "seed not imported: the database already holds zones or clusters";
        return r;
    }
    if (zones.empty() && clusters.empty()) {
        r.summary = "no seed in the config";
        return r;
    }
    const auto now_ms = clock.unix_ns() / 1'000'000;
    const std::string what = std::to_string(zones.size()) + " zone(s), " + std::to_string(clusters.size()) +
                             " cluster(s)" +
                             (studios.empty() ? std::string() : ", " + std::to_string(studios.size()) + " studio(s)") +
                             " from " + config.file.string();
    store.write([&] {
        for (const auto& z : zones) store.insert_zone(z);
        for (const auto& c : clusters) store.insert_cluster(c);
        for (const auto& s : studios) store.insert_studio(s);
        store.set_meta(kSeedKey, "at unix ms " + std::to_string(now_ms) + ": " + what);
        store.append_event(EventRow{0, now_ms, loa::control::v1::CONFIG_CHANGED, "seed", {}, "seed imported: " + what});
    });
    r.imported = true;
    r.zones = zones.size();
    r.clusters = clusters.size();
    r.studios = studios.size();
    r.summary = "seed imported: " + what;
    return r;
}

}  // namespace loa::engine
