#include "loa/engine/control_service.h"

#include "control_util.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include <google/protobuf/arena.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/delimited_message_util.h>

#include "loa/engine/programme_control.h"
#include "loa/transport/udp_socket.h"

namespace loa::engine {

namespace pb = loa::control::v1;

namespace {

bool changes_topology(const std::string& method) {
    static const std::set<std::string> kMethods = {"CreateZone",      "MoveZone",          "DeleteZone",
                                                   "RegisterCluster", "SetClusterEnabled", "RemoveCluster"};
    return kMethods.count(method) != 0;
}

// The cluster a committed cluster call changed; empty for the zone calls.
std::string changed_cluster(const pb::Envelope& request) {
    const auto& m = request.method();
    pb::RegisterClusterRequest reg;
    pb::SetClusterEnabledRequest set;
    pb::RemoveClusterRequest rm;
    if (m == "RegisterCluster" && reg.ParseFromString(request.payload())) return reg.id();
    if (m == "SetClusterEnabled" && set.ParseFromString(request.payload())) return set.id();
    if (m == "RemoveCluster" && rm.ParseFromString(request.payload())) return rm.id();
    return {};
}

using control_util::fail;
using control_util::parse;
using control_util::require_role;
using control_util::scope_name;

bool valid_id(const std::string& id, std::size_t max_len, bool allow_upper) {
    if (id.empty() || id.size() > max_len) return false;
    return std::all_of(id.begin(), id.end(), [&](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
               (allow_upper && ((c >= 'A' && c <= 'Z') || c == ':'));
    });
}

void check_zone_id(const std::string& id) {
    if (!valid_id(id, 64, false)) fail(RpcCode::InvalidArgument, "zone id '" + id + "' must match [a-z0-9._-]{1,64}");
}

void check_name(const std::string& name, const char* what) {
    if (name.empty()) fail(RpcCode::InvalidArgument, std::string(what) + " must not be empty");
    if (name.size() > 200) fail(RpcCode::InvalidArgument, std::string(what) + " is longer than 200 bytes");
}


pb::Level to_proto(Priority p) { return static_cast<pb::Level>(static_cast<int>(p) + 1); }

std::optional<Priority> from_proto(pb::Level l) {
    const int v = static_cast<int>(l);
    if (v < 1 || v > 6) return std::nullopt;
    return static_cast<Priority>(v - 1);
}

pb::Zone to_proto(const ZoneRow& z) {
    pb::Zone out;
    out.set_id(z.id);
    out.set_name(z.name);
    out.set_kind(static_cast<pb::ZoneKind>(static_cast<int>(z.kind)));
    out.set_parent_id(z.parent_id);
    return out;
}

pb::Operator to_proto(const OperatorRow& o) {
    pb::Operator out;
    out.set_name(o.name);
    out.set_role(static_cast<pb::Role>(static_cast<int>(o.role)));
    out.set_zone_id(o.zone_id);
    out.set_max_level(to_proto(o.max_level));
    out.set_created_unix_ms(o.created_unix_ms);
    out.set_created_by(o.created_by);
    return out;
}

pb::Caller to_proto(const Caller& c) {
    pb::Caller out;
    out.set_operator_name(c.operator_name);
    out.set_role(static_cast<pb::Role>(static_cast<int>(c.role)));
    out.set_zone_id(c.zone_id);
    out.set_max_level(to_proto(c.max_level));
    return out;
}

std::string who(const Caller& c) { return c.is_local_admin() ? std::string("local admin") : c.operator_name; }

}  // namespace

ControlService::ControlService(Store& store, const Clock& clock, unsigned engine_uid)
    : store_(store), clock_(clock), engine_uid_(engine_uid) {
    handlers_ = {
        {"GetStatus", &ControlService::get_status},
        {"ListZones", &ControlService::list_zones},
        {"CreateZone", &ControlService::create_zone},
        {"RenameZone", &ControlService::rename_zone},
        {"MoveZone", &ControlService::move_zone},
        {"DeleteZone", &ControlService::delete_zone},
        {"ListClusters", &ControlService::list_clusters},
        {"GetCluster", &ControlService::get_cluster},
        {"RegisterCluster", &ControlService::register_cluster},
        {"SetClusterEnabled", &ControlService::set_cluster_enabled},
        {"RemoveCluster", &ControlService::remove_cluster},
        {"ListOperators", &ControlService::list_operators},
        {"CreateOperator", &ControlService::create_operator},
        {"RevokeOperator", &ControlService::revoke_operator},
        {"BeginClipUpload", &ControlService::begin_clip_upload},
        {"UploadClipChunk", &ControlService::upload_clip_chunk},
        {"FinishClipUpload", &ControlService::finish_clip_upload},
        {"ListClips", &ControlService::list_clips},
        {"DeleteClip", &ControlService::delete_clip},
        {"StartProgramme", &ControlService::start_programme},
        {"StopProgramme", &ControlService::stop_programme},
        {"ListProgrammes", &ControlService::list_programmes},
        {"RaiseAlert", &ControlService::raise_alert},
        {"CancelAlert", &ControlService::cancel_alert},
        {"ListAlerts", &ControlService::list_alerts},
        {"GetAlertStatus", &ControlService::get_alert_status},
        {"DeclareStudio", &ControlService::declare_studio},
        {"ListStudios", &ControlService::list_studios},
        {"RemoveStudio", &ControlService::remove_studio},
        {"CreateSchedule", &ControlService::create_schedule},
        {"ListSchedules", &ControlService::list_schedules},
        {"DeleteSchedule", &ControlService::delete_schedule},
        {"NextOccurrences", &ControlService::next_occurrences},
        {"ListAsRun", &ControlService::list_asrun},
    };
    open_clip_catalog();
}

std::vector<std::string> ControlService::methods() const {
    std::vector<std::string> out;
    for (const auto& [name, h] : handlers_) out.push_back(name);
    out.emplace_back("WatchEvents");
    std::sort(out.begin(), out.end());
    return out;
}

std::int64_t ControlService::now_unix_ms() const { return clock_.unix_ns() / 1'000'000; }

CallOutcome ControlService::handle_frame(std::span<const std::uint8_t> body, const PeerInfo& peer) {
    pb::Envelope env;
    if (body.size() > static_cast<std::size_t>(INT32_MAX) ||
        !env.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
        CallOutcome out;
        out.response.set_code(pb::INVALID_ARGUMENT);
        out.response.set_message("frame is not a loa.control.v1.Envelope");
        out.close_connection = true;
        return out;
    }
    return handle(env, peer);
}

CallOutcome ControlService::handle(const pb::Envelope& request, const PeerInfo& peer) {
    CallOutcome out;
    out.response.set_request_id(request.request_id());
    try {
        // Who is calling comes first: an unauthenticated peer (on TCP: any
        // token-less one) learns nothing, not even which methods exist.
        const Caller caller = authenticate(request, peer);
        if (request.method().empty()) fail(RpcCode::InvalidArgument, "envelope has no method");
        if (request.deadline_unix_ms() != 0 && now_unix_ms() >= request.deadline_unix_ms()) {
            fail(RpcCode::DeadlineExceeded, "deadline expired before " + request.method() + " started");
        }
        const bool watch = request.method() == "WatchEvents";
        const auto it = handlers_.find(request.method());
        if (!watch && it == handlers_.end()) fail(RpcCode::Unimplemented, "unknown method '" + request.method() + "'");
        if (watch) {
            const auto req = parse<pb::WatchEventsRequest>(request.payload(), "WatchEventsRequest");
            out.watch = CallOutcome::Watch{caller, req.from_now() ? store_.last_event_seq() : req.after_seq()};
            out.response.set_code(pb::OK);
            return out;
        }
        out.response.set_payload((this->*(it->second))(caller, request.payload()));
        out.response.set_code(pb::OK);
        // Committed zone and cluster changes reach the fan-out at once: a new
        // cluster starts hearing what its zone plays, a disabled one stops.
        if (programmes_ != nullptr && changes_topology(request.method())) {
            const auto cluster = changed_cluster(request);
            const auto o = cluster.empty() ? programmes_->refresh_topology() : programmes_->refresh_cluster(cluster);
            if (!o.ok()) {
                out.response.set_message("committed; not applied to programmes: " + o.message);
            }
        }
    } catch (const ControlError& e) {
        out.response.set_code(static_cast<pb::StatusCode>(static_cast<int>(e.code())));
        out.response.set_message(e.what());
        out.response.clear_payload();
    } catch (const std::exception& e) {
        out.response.set_code(pb::INTERNAL);
        out.response.set_message(std::string("internal error: ") + e.what());
        out.response.clear_payload();
    }
    return out;
}

Caller ControlService::authenticate(const pb::Envelope& request, const PeerInfo& peer) const {
    if (!request.token().empty()) {
        // Only tokens the store vouched for are kept, and only until the
        // store next changes: revocation (or any other write) empties the cache.
        constexpr std::size_t kMaxCachedTokens = 4096;
        if (token_cache_changes_ != store_.change_count() || token_cache_.size() >= kMaxCachedTokens) {
            token_cache_.clear();
            token_cache_changes_ = store_.change_count();
        }
        auto hash = hash_token(request.token());
        if (const auto it = token_cache_.find(hash); it != token_cache_.end()) return it->second;
        const auto op = store_.operator_by_token_hash(hash);
        if (!op) fail(RpcCode::Unauthenticated, "unknown or revoked token");
        Caller c{op->name, op->role, op->zone_id, op->max_level};
        token_cache_.emplace(std::move(hash), c);
        return c;
    }
    if (peer.unix_socket && peer.has_credentials && is_trusted_local_uid(peer.uid, engine_uid_)) {
        return Caller::local_admin();
    }
    if (!peer.unix_socket) {
        fail(RpcCode::Unauthenticated, "a token is required on every TCP request (set --token or LOA_TOKEN)");
    }
    fail(RpcCode::Unauthenticated, "a token is required (set --token or LOA_TOKEN)");
}

void ControlService::notify(std::uint64_t seq) {
    if (listener_) listener_(seq);
}

std::uint64_t ControlService::add_event(int kind, const std::string& subject, const std::string& zone_id,
                                        const std::string& message) {
    return store_.append_event(EventRow{0, now_unix_ms(), kind, subject, zone_id, message});
}

void ControlService::record_engine_message(const std::string& message) {
    int kind = pb::ENGINE_NOTICE;
    std::string subject = "engine";
    std::string zone;
    // Engine messages about clusters read "cluster '<id>' online ..." / "... offline ...".
    if (message.rfind("cluster '", 0) == 0) {
        const auto end = message.find('\'', 9);
        if (end != std::string::npos) {
            const auto id = message.substr(9, end - 9);
            subject = "cluster/" + id;
            const auto rest = message.substr(end + 1);
            if (rest.rfind(" online", 0) == 0) kind = pb::CLUSTER_ONLINE;
            if (rest.rfind(" offline", 0) == 0) kind = pb::CLUSTER_OFFLINE;
            if (const auto c = store_.cluster(id)) zone = c->zone_id;
        }
    }
    std::uint64_t seq = 0;
    store_.write([&] { seq = add_event(kind, subject, zone, message); });
    notify(seq);
}

std::vector<pb::Event> ControlService::events_for(const Caller& caller, std::uint64_t after, std::size_t limit,
                                                  std::uint64_t& cursor) {
    std::vector<pb::Event> out;
    cursor = after;
    for (const auto& e : store_.events_after(after, limit)) {
        cursor = e.seq;
        if (!e.zone_id.empty() && !store_.zone_within(e.zone_id, caller.zone_id)) continue;
        if (e.zone_id.empty() && !caller.zone_id.empty() && e.kind == pb::CONFIG_CHANGED) continue;
        pb::Event ev;
        ev.set_seq(e.seq);
        ev.set_unix_ms(e.unix_ms);
        ev.set_kind(static_cast<pb::EventKind>(e.kind));
        ev.set_subject(e.subject);
        ev.set_zone_id(e.zone_id);
        ev.set_message(e.message);
        out.push_back(std::move(ev));
    }
    return out;
}

pb::Cluster ControlService::to_proto(const ClusterRow& c) const {
    pb::Cluster out;
    out.set_id(c.id);
    out.set_name(c.name);
    out.set_zone_id(c.zone_id);
    out.set_address(c.address);
    out.set_multicast_group(c.multicast_group);
    out.set_enabled(c.enabled);
    if (live_) {
        if (auto s = live_(c.id)) *out.mutable_live() = std::move(*s);
    }
    return out;
}

// ---- status ----------------------------------------------------------------

std::string ControlService::get_status(const Caller& caller, const std::string& payload) {
    parse<pb::GetStatusRequest>(payload, "GetStatusRequest");
    pb::GetStatusResponse r;
    if (stats_) *r.mutable_stats() = stats_();
    *r.mutable_caller() = loa::engine::to_proto(caller);
    r.set_schema_version(static_cast<std::uint32_t>(store_.schema_version()));
    r.set_last_event_seq(store_.last_event_seq());
    return r.SerializeAsString();
}

// ---- zones -----------------------------------------------------------------

std::string ControlService::list_zones(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::ListZonesRequest>(payload, "ListZonesRequest");
    std::string root = caller.zone_id;
    if (!req.root_id().empty()) {
        if (!store_.zone(req.root_id())) fail(RpcCode::NotFound, "no zone '" + req.root_id() + "'");
        if (!store_.zone_within(req.root_id(), caller.zone_id)) {
            fail(RpcCode::PermissionDenied, "zone '" + req.root_id() + "' is outside your scope (" +
                                                scope_name(caller.zone_id) + ")");
        }
        root = req.root_id();
    }
    const auto all = store_.zones();
    std::set<std::string> inside;
    if (!root.empty()) inside.insert(root);
    // Zones are few enough to walk in memory; repeat until no parent adds a child.
    for (bool grew = true; grew && !root.empty();) {
        grew = false;
        for (const auto& z : all) {
            if (!inside.contains(z.id) && inside.contains(z.parent_id)) grew = inside.insert(z.id).second || grew;
        }
    }
    pb::ListZonesResponse r;
    for (const auto& z : all) {
        if (root.empty() || inside.contains(z.id)) *r.add_zones() = loa::engine::to_proto(z);
    }
    return r.SerializeAsString();
}

std::string ControlService::create_zone(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::CreateZoneRequest>(payload, "CreateZoneRequest");
    require_role(caller, Role::Admin, "CreateZone");
    check_zone_id(req.id());
    check_name(req.name(), "zone name");
    const int kind = static_cast<int>(req.kind());
    if (kind < 1 || kind > 4) fail(RpcCode::InvalidArgument, "zone kind must be province, district, commune or village");
    ZoneRow z{req.id(), req.name(), static_cast<ZoneKind>(kind), req.parent_id()};
    if (z.kind == ZoneKind::Province) {
        if (!z.parent_id.empty()) fail(RpcCode::InvalidArgument, "a province has no parent zone");
        if (!caller.zone_id.empty()) {
            fail(RpcCode::PermissionDenied, "creating a province needs whole-network scope (you have " +
                                                scope_name(caller.zone_id) + ")");
        }
    } else {
        if (z.parent_id.empty()) fail(RpcCode::InvalidArgument, "parent_id is required below province level");
        const auto parent = store_.zone(z.parent_id);
        if (!parent) fail(RpcCode::NotFound, "no zone '" + z.parent_id + "'");
        if (static_cast<int>(parent->kind) != kind - 1) {
            fail(RpcCode::InvalidArgument, "zone '" + z.parent_id + "' cannot hold a zone of this kind (each level "
                                           "sits directly below the one above: province > district > commune > village)");
        }
        if (!store_.zone_within(z.parent_id, caller.zone_id)) {
            fail(RpcCode::PermissionDenied,
                 "zone '" + z.parent_id + "' is outside your scope (" + scope_name(caller.zone_id) + ")");
        }
    }
    if (store_.zone(z.id)) fail(RpcCode::AlreadyExists, "zone '" + z.id + "' already exists");
    std::uint64_t seq = 0;
    store_.write([&] {
        store_.insert_zone(z);
        seq = add_event(pb::CONFIG_CHANGED, "zone/" + z.id, z.parent_id, who(caller) + " created zone '" + z.id + "'");
    });
    notify(seq);
    return loa::engine::to_proto(z).SerializeAsString();
}

std::string ControlService::rename_zone(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::RenameZoneRequest>(payload, "RenameZoneRequest");
    require_role(caller, Role::Admin, "RenameZone");
    check_name(req.name(), "zone name");
    auto z = store_.zone(req.id());
    if (!z) fail(RpcCode::NotFound, "no zone '" + req.id() + "'");
    if (!store_.zone_within(z->id, caller.zone_id)) {
        fail(RpcCode::PermissionDenied, "zone '" + z->id + "' is outside your scope (" + scope_name(caller.zone_id) + ")");
    }
    z->name = req.name();
    std::uint64_t seq = 0;
    store_.write([&] {
        store_.update_zone(*z);
        seq = add_event(pb::CONFIG_CHANGED, "zone/" + z->id, z->id, who(caller) + " renamed zone '" + z->id + "'");
    });
    notify(seq);
    return loa::engine::to_proto(*z).SerializeAsString();
}

std::string ControlService::move_zone(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::MoveZoneRequest>(payload, "MoveZoneRequest");
    require_role(caller, Role::Admin, "MoveZone");
    auto z = store_.zone(req.id());
    if (!z) fail(RpcCode::NotFound, "no zone '" + req.id() + "'");
    if (z->kind == ZoneKind::Province) fail(RpcCode::InvalidArgument, "a province has no parent to move to");
    const auto parent = store_.zone(req.new_parent_id());
    if (!parent) fail(RpcCode::NotFound, "no zone '" + req.new_parent_id() + "'");
    if (!store_.zone_within(z->id, caller.zone_id) || z->id == caller.zone_id) {
        fail(RpcCode::PermissionDenied, "zone '" + z->id + "' is outside your scope (" + scope_name(caller.zone_id) + ")");
    }
    if (!store_.zone_within(parent->id, caller.zone_id)) {
        fail(RpcCode::PermissionDenied,
             "zone '" + parent->id + "' is outside your scope (" + scope_name(caller.zone_id) + ")");
    }
    if (static_cast<int>(parent->kind) != static_cast<int>(z->kind) - 1) {
        fail(RpcCode::InvalidArgument, "zone '" + parent->id + "' cannot hold zone '" + z->id + "' (wrong level)");
    }
    z->parent_id = parent->id;
    std::uint64_t seq = 0;
    store_.write([&] {
        store_.update_zone(*z);
        seq = add_event(pb::CONFIG_CHANGED, "zone/" + z->id, z->id,
                        who(caller) + " moved zone '" + z->id + "' under '" + parent->id + "'");
    });
    notify(seq);
    return loa::engine::to_proto(*z).SerializeAsString();
}

std::string ControlService::delete_zone(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::DeleteZoneRequest>(payload, "DeleteZoneRequest");
    require_role(caller, Role::Admin, "DeleteZone");
    const auto z = store_.zone(req.id());
    if (!z) fail(RpcCode::NotFound, "no zone '" + req.id() + "'");
    if (!store_.zone_within(z->id, caller.zone_id) || z->id == caller.zone_id) {
        fail(RpcCode::PermissionDenied, "zone '" + z->id + "' is outside your scope (" + scope_name(caller.zone_id) + ")");
    }
    if (const auto n = store_.child_zone_count(z->id); n > 0) {
        fail(RpcCode::FailedPrecondition, "zone '" + z->id + "' still holds " + std::to_string(n) + " zone(s)");
    }
    if (const auto n = store_.cluster_count_in_zone(z->id); n > 0) {
        fail(RpcCode::FailedPrecondition, "zone '" + z->id + "' still holds " + std::to_string(n) + " cluster(s)");
    }
    if (const auto n = store_.operator_count_in_zone(z->id); n > 0) {
        fail(RpcCode::FailedPrecondition, "zone '" + z->id + "' is the scope of " + std::to_string(n) + " operator(s)");
    }
    if (const auto n = store_.clip_count_in_zone(z->id); n > 0) {
        fail(RpcCode::FailedPrecondition, "zone '" + z->id + "' owns " + std::to_string(n) + " clip(s)");
    }
    if (const auto n = store_.studio_count_in_zone(z->id); n > 0) {
        fail(RpcCode::FailedPrecondition, "zone '" + z->id + "' holds " + std::to_string(n) + " studio(s)");
    }
    // Nothing may be aimed at it any more: its programme, alert or schedule
    // window would lose its target (and a restart would refuse it).
    const auto aims_here = [&](const std::string& zones) {
        std::size_t from = 0;
        while (from <= zones.size()) {
            const auto comma = std::min(zones.find(',', from), zones.size());
            if (zones.compare(from, comma - from, z->id) == 0) return true;
            from = comma + 1;
        }
        return false;
    };
    for (const auto& p : store_.programmes()) {
        if (aims_here(p.zones)) {
            fail(RpcCode::FailedPrecondition,
                 "zone '" + z->id + "' is a target of programme " + std::to_string(p.id) + ": stop it first");
        }
    }
    for (const auto& a : store_.alerts()) {
        if (aims_here(a.zones)) {
            fail(RpcCode::FailedPrecondition,
                 "zone '" + z->id + "' is a target of alert " + std::to_string(a.id) + ": cancel it first");
        }
    }
    for (const auto& sc : store_.schedules()) {
        if (aims_here(sc.zones)) {
            fail(RpcCode::FailedPrecondition,
                 "zone '" + z->id + "' is a target of schedule " + std::to_string(sc.id) + ": delete it first");
        }
    }
    std::uint64_t seq = 0;
    store_.write([&] {
        store_.delete_zone(z->id);
        seq = add_event(pb::CONFIG_CHANGED, "zone/" + z->id, z->parent_id, who(caller) + " deleted zone '" + z->id + "'");
    });
    notify(seq);
    return pb::DeleteZoneResponse().SerializeAsString();
}

// ---- clusters --------------------------------------------------------------

std::string ControlService::list_clusters(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::ListClustersRequest>(payload, "ListClustersRequest");
    std::string root = caller.zone_id;
    if (!req.zone_id().empty()) {
        if (!store_.zone(req.zone_id())) fail(RpcCode::NotFound, "no zone '" + req.zone_id() + "'");
        if (!store_.zone_within(req.zone_id(), caller.zone_id)) {
            fail(RpcCode::PermissionDenied, "zone '" + req.zone_id() + "' is outside your scope (" +
                                                scope_name(caller.zone_id) + ")");
        }
        root = req.zone_id();
    }
    std::size_t page = req.page_size() == 0 ? 100 : std::min<std::size_t>(req.page_size(), 1000);
    // Clients poll this call, so the page is built without per-row copies or
    // heap allocations: rows go from the query straight into messages on an
    // arena whose first block is kept from one call to the next, and the live
    // state of the whole page is looked up in one go.
    constexpr std::size_t kArenaBlock = 64 * 1024;  // a page of 100 with live state fits
    if (list_arena_block_.empty()) list_arena_block_.resize(kArenaBlock);
    google::protobuf::ArenaOptions arena_options;
    arena_options.initial_block = list_arena_block_.data();
    arena_options.initial_block_size = list_arena_block_.size();
    google::protobuf::Arena arena(arena_options);
    auto* r = google::protobuf::Arena::CreateMessage<pb::ListClustersResponse>(&arena);
    auto* page_rows = r->mutable_clusters();
    page_rows->Reserve(static_cast<int>(page));
    std::vector<pb::Cluster*> added;
    added.reserve(page);
    store_.for_each_cluster(root, req.page_token(), page + 1, [&](const ClusterRowView& c) {
        if (static_cast<std::size_t>(page_rows->size()) == page) {
            // One row more than asked for: there is a next page.
            r->set_next_page_token(page_rows->Get(page_rows->size() - 1).id());
            return;
        }
        auto* out = page_rows->Add();
        added.push_back(out);
        out->set_id(c.id.data(), c.id.size());
        out->set_name(c.name.data(), c.name.size());
        out->set_zone_id(c.zone_id.data(), c.zone_id.size());
        if (!c.address.empty()) out->set_address(c.address.data(), c.address.size());
        if (!c.multicast_group.empty()) out->set_multicast_group(c.multicast_group.data(), c.multicast_group.size());
        out->set_enabled(c.enabled);
    });
    if (live_page_) {
        live_page_(added);
    } else if (live_) {
        for (auto* c : added) {
            if (auto st = live_(c->id())) c->mutable_live()->CopyFrom(*st);
        }
    }
    return r->SerializeAsString();
}

std::string ControlService::get_cluster(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::GetClusterRequest>(payload, "GetClusterRequest");
    const auto c = store_.cluster(req.id());
    if (!c) fail(RpcCode::NotFound, "no cluster '" + req.id() + "'");
    if (!store_.zone_within(c->zone_id, caller.zone_id)) {
        fail(RpcCode::PermissionDenied, "cluster '" + c->id + "' is outside your scope (" + scope_name(caller.zone_id) + ")");
    }
    return to_proto(*c).SerializeAsString();
}

std::string ControlService::register_cluster(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::RegisterClusterRequest>(payload, "RegisterClusterRequest");
    require_role(caller, Role::Admin, "RegisterCluster");
    if (!valid_id(req.id(), 128, true)) {
        fail(RpcCode::InvalidArgument, "cluster id '" + req.id() + "' must match [A-Za-z0-9._:-]{1,128}");
    }
    ClusterRow c{req.id(), req.name().empty() ? req.id() : req.name(), req.zone_id(), {}, {}, !req.disabled()};
    check_name(c.name, "cluster name");
    if (!req.address().empty()) {
        try {
            const auto ep = transport::parse_endpoint(req.address(), "");
            if (ep.port() == 0) fail(RpcCode::InvalidArgument, "cluster address needs a port");
            c.address = req.address();
        } catch (const ControlError&) {
            throw;
        } catch (const std::exception& e) {
            fail(RpcCode::InvalidArgument, "cluster address '" + req.address() + "': " + e.what());
        }
    }
    if (!req.multicast_group().empty()) {
        try {
            const auto ep = transport::parse_endpoint(req.multicast_group(), "");
            if (!ep.address().is_multicast()) {
                fail(RpcCode::InvalidArgument, "'" + req.multicast_group() + "' is not a multicast group");
            }
            if (ep.port() == 0) fail(RpcCode::InvalidArgument, "multicast group needs a port");
            // One spelling per group, so that its members can be found.
            std::ostringstream canonical;
            canonical << ep;
            c.multicast_group = canonical.str();
        } catch (const ControlError&) {
            throw;
        } catch (const std::exception& e) {
            fail(RpcCode::InvalidArgument, "multicast group '" + req.multicast_group() + "': " + e.what());
        }
    }
    if (c.zone_id.empty()) fail(RpcCode::InvalidArgument, "a cluster needs a zone");
    if (!store_.zone(c.zone_id)) fail(RpcCode::NotFound, "no zone '" + c.zone_id + "'");
    if (!store_.zone_within(c.zone_id, caller.zone_id)) {
        fail(RpcCode::PermissionDenied, "zone '" + c.zone_id + "' is outside your scope (" + scope_name(caller.zone_id) + ")");
    }
    if (store_.cluster(c.id)) fail(RpcCode::AlreadyExists, "cluster '" + c.id + "' already exists");
    if (!c.multicast_group.empty()) {
        // A group belongs to one zone (the smallest that holds its members),
        // so all its members lie in one province.
        const auto path = store_.zone_path(c.zone_id);
        for (const auto& z : store_.multicast_group_zones(c.multicast_group)) {
            const auto other = store_.zone_path(z);
            if (!other.empty() && !path.empty() && other.back() != path.back()) {
                fail(RpcCode::FailedPrecondition, "multicast group " + c.multicast_group +
                                                      " already serves province '" + other.back() +
                                                      "': a group belongs to one zone");
            }
        }
    }
    std::uint64_t seq = 0;
    store_.write([&] {
        store_.insert_cluster(c);
        seq = add_event(pb::CONFIG_CHANGED, "cluster/" + c.id, c.zone_id,
                        who(caller) + " registered cluster '" + c.id + "' in zone '" + c.zone_id + "'");
    });
    notify(seq);
    return to_proto(c).SerializeAsString();
}

std::string ControlService::set_cluster_enabled(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::SetClusterEnabledRequest>(payload, "SetClusterEnabledRequest");
    require_role(caller, Role::Operator, "SetClusterEnabled");
    auto c = store_.cluster(req.id());
    if (!c) fail(RpcCode::NotFound, "no cluster '" + req.id() + "'");
    if (!store_.zone_within(c->zone_id, caller.zone_id)) {
        fail(RpcCode::PermissionDenied, "cluster '" + c->id + "' is outside your scope (" + scope_name(caller.zone_id) + ")");
    }
    c->enabled = req.enabled();
    std::uint64_t seq = 0;
    store_.write([&] {
        store_.update_cluster(*c);
        seq = add_event(pb::CONFIG_CHANGED, "cluster/" + c->id, c->zone_id,
                        who(caller) + (c->enabled ? " enabled" : " disabled") + " cluster '" + c->id + "'");
    });
    notify(seq);
    return to_proto(*c).SerializeAsString();
}

std::string ControlService::remove_cluster(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::RemoveClusterRequest>(payload, "RemoveClusterRequest");
    require_role(caller, Role::Admin, "RemoveCluster");
    const auto c = store_.cluster(req.id());
    if (!c) fail(RpcCode::NotFound, "no cluster '" + req.id() + "'");
    if (!store_.zone_within(c->zone_id, caller.zone_id)) {
        fail(RpcCode::PermissionDenied, "cluster '" + c->id + "' is outside your scope (" + scope_name(caller.zone_id) + ")");
    }
    std::uint64_t seq = 0;
    store_.write([&] {
        store_.delete_cluster(c->id);
        seq = add_event(pb::CONFIG_CHANGED, "cluster/" + c->id, c->zone_id,
                        who(caller) + " removed cluster '" + c->id + "'");
    });
    notify(seq);
    return pb::RemoveClusterResponse().SerializeAsString();
}

// ---- operators -------------------------------------------------------------

std::string ControlService::list_operators(const Caller& caller, const std::string& payload) {
    parse<pb::ListOperatorsRequest>(payload, "ListOperatorsRequest");
    pb::ListOperatorsResponse r;
    for (const auto& o : store_.operators()) {
        const bool visible = caller.zone_id.empty() || (!o.zone_id.empty() && store_.zone_within(o.zone_id, caller.zone_id));
        if (visible) *r.add_operators() = loa::engine::to_proto(o);
    }
    return r.SerializeAsString();
}

std::string ControlService::create_operator(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::CreateOperatorRequest>(payload, "CreateOperatorRequest");
    require_role(caller, Role::Operator, "CreateOperator");
    if (!valid_id(req.name(), 64, false)) {
        fail(RpcCode::InvalidArgument, "operator name '" + req.name() + "' must match [a-z0-9._-]{1,64}");
    }
    const int role = static_cast<int>(req.role());
    if (role < 1 || role > 3) fail(RpcCode::InvalidArgument, "role must be viewer, operator or admin");
    const auto level = from_proto(req.max_level());
    if (!level) fail(RpcCode::InvalidArgument, "max_level must be one of background .. emergency");
    if (!req.zone_id().empty() && !store_.zone(req.zone_id())) fail(RpcCode::NotFound, "no zone '" + req.zone_id() + "'");
    if (role > static_cast<int>(caller.role)) {
        fail(RpcCode::PermissionDenied, "cannot grant role " + std::string(to_string(static_cast<Role>(role))) +
                                            " above your own (" + std::string(to_string(caller.role)) + ")");
    }
    if (static_cast<int>(*level) > static_cast<int>(caller.max_level)) {
        fail(RpcCode::PermissionDenied, "cannot grant level " + std::string(to_string(*level)) + " above your own (" +
                                            std::string(to_string(caller.max_level)) + ")");
    }
    const bool inside = req.zone_id().empty() ? caller.zone_id.empty() : store_.zone_within(req.zone_id(), caller.zone_id);
    if (!inside) {
        fail(RpcCode::PermissionDenied,
             scope_name(req.zone_id()) + " is outside your scope (" + scope_name(caller.zone_id) + ")");
    }
    if (store_.operator_by_name(req.name())) fail(RpcCode::AlreadyExists, "operator '" + req.name() + "' already exists");
    const auto token = generate_token();
    OperatorRow o{req.name(), static_cast<Role>(role), req.zone_id(), *level, hash_token(token), now_unix_ms(), who(caller)};
    std::uint64_t seq = 0;
    store_.write([&] {
        store_.insert_operator(o);
        seq = add_event(pb::CONFIG_CHANGED, "operator/" + o.name, o.zone_id,
                        who(caller) + " created operator '" + o.name + "'");
    });
    notify(seq);
    pb::CreateOperatorResponse r;
    *r.mutable_operator_() = loa::engine::to_proto(o);
    r.set_token(token);
    return r.SerializeAsString();
}

std::string ControlService::revoke_operator(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::RevokeOperatorRequest>(payload, "RevokeOperatorRequest");
    require_role(caller, Role::Operator, "RevokeOperator");
    const auto o = store_.operator_by_name(req.name());
    if (!o) fail(RpcCode::NotFound, "no operator '" + req.name() + "'");
    const bool inside = o->zone_id.empty() ? caller.zone_id.empty() : store_.zone_within(o->zone_id, caller.zone_id);
    if (!inside) {
        fail(RpcCode::PermissionDenied, "operator '" + o->name + "' is outside your scope (" + scope_name(caller.zone_id) + ")");
    }
    if (static_cast<int>(o->role) > static_cast<int>(caller.role) ||
        static_cast<int>(o->max_level) > static_cast<int>(caller.max_level)) {
        fail(RpcCode::PermissionDenied, "operator '" + o->name + "' has a higher role or level than yours");
    }
    std::uint64_t seq = 0;
    store_.write([&] {
        store_.delete_operator(o->name);
        seq = add_event(pb::CONFIG_CHANGED, "operator/" + o->name, o->zone_id,
                        who(caller) + " revoked operator '" + o->name + "'");
    });
    notify(seq);
    return pb::RevokeOperatorResponse().SerializeAsString();
}

// ---- framing ---------------------------------------------------------------

FrameStatus peek_frame(std::span<const std::uint8_t> buffer, std::size_t max_body, std::size_t& header_len,
                       std::size_t& body_len) noexcept {
    std::uint64_t len = 0;
    for (std::size_t i = 0; i < 5; ++i) {
        if (i >= buffer.size()) return FrameStatus::NeedMore;
        const auto b = buffer[i];
        len |= static_cast<std::uint64_t>(b & 0x7F) << (7 * i);
        if ((b & 0x80) == 0) {
            if (len > 0xFFFFFFFFull) return FrameStatus::Malformed;
            if (len > max_body) return FrameStatus::TooLarge;
            header_len = i + 1;
            body_len = static_cast<std::size_t>(len);
            return buffer.size() - header_len >= body_len ? FrameStatus::Complete : FrameStatus::NeedMore;
        }
    }
    return FrameStatus::Malformed;
}

std::string encode_frame(const google::protobuf::MessageLite& message) {
    // Sized once: the varint length prefix, then the body written in place.
    using google::protobuf::io::CodedOutputStream;
    const std::size_t body = message.ByteSizeLong();
    const auto prefix = static_cast<std::size_t>(CodedOutputStream::VarintSize64(body));
    std::string out(prefix + body, '\0');
    auto* p = reinterpret_cast<std::uint8_t*>(out.data());
    CodedOutputStream::WriteVarint64ToArray(body, p);
    message.SerializeWithCachedSizesToArray(p + prefix);
    return out;
}

}  // namespace loa::engine
