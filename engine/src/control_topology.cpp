// ControlService: the zone calls (ListZones, CreateZone, RenameZone,
// MoveZone, DeleteZone) and the cluster calls (ListClusters, GetCluster,
// RegisterCluster, SetClusterEnabled, RemoveCluster), with the Cluster message.
#include <algorithm>
#include <set>
#include <sstream>

#include <google/protobuf/arena.h>

#include "loa/engine/control_service.h"
#include "loa/transport/udp_socket.h"

#include "control_util.h"

namespace loa::engine {

namespace pb = loa::control::v1;

namespace {

using control_util::fail;
using control_util::parse;
using control_util::require_role;
using control_util::scope_name;
using control_util::valid_id;

void check_zone_id(const std::string& id) {
    if (!valid_id(id, 64, false)) fail(RpcCode::InvalidArgument, "zone id '" + id + "' must match [a-z0-9._-]{1,64}");
}

void check_name(const std::string& name, const char* what) {
    if (name.empty()) fail(RpcCode::InvalidArgument, std::string(what) + " must not be empty");
    if (name.size() > 200) fail(RpcCode::InvalidArgument, std::string(what) + " is longer than 200 bytes");
}

pb::Zone to_proto(const ZoneRow& z) {
    pb::Zone out;
    out.set_id(z.id);
    out.set_name(z.name);
    out.set_kind(static_cast<pb::ZoneKind>(static_cast<int>(z.kind)));
    out.set_parent_id(z.parent_id);
    return out;
}

std::string who(const Caller& c) { return control_util::caller_name(c); }

}  // namespace

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

}  // namespace loa::engine
