// ControlService: the handler table, framing and dispatch of calls,
// authentication, events, GetStatus and the operator calls. The other calls
// are in control_topology.cpp (zones, clusters), control_clips.cpp and the like.
#include "loa/engine/control_service.h"

#include "control_util.h"

#include <algorithm>
#include <map>
#include <set>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/delimited_message_util.h>

#include "loa/engine/programme_control.h"

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
using control_util::valid_id;

pb::Level to_proto(Priority p) { return static_cast<pb::Level>(static_cast<int>(p) + 1); }

std::optional<Priority> from_proto(pb::Level l) {
    const int v = static_cast<int>(l);
    if (v < 1 || v > 6) return std::nullopt;
    return static_cast<Priority>(v - 1);
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

std::string who(const Caller& c) { return control_util::caller_name(c); }

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
