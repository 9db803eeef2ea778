// ControlService: the studio calls (DeclareStudio, ListStudios, RemoveStudio).
// Checks and the engine's studio table are StudioControl's; the rows, the
// fallback clip's `uses` reference and the events are committed here, one
// transaction per call.
#include "loa/control/v1/control.pb.h"
#include "loa/engine/control_service.h"
#include "loa/engine/studio_control.h"

namespace loa::engine {

namespace {
namespace pb = loa::control::v1;

[[noreturn]] void fail_studio(RpcCode code, const std::string& message) { throw ControlError(code, message); }

template <typename T>
T parse_studio_request(const std::string& payload, const char* name) {
    T m;
    if (!m.ParseFromString(payload)) fail_studio(RpcCode::InvalidArgument, std::string("malformed ") + name);
    return m;
}

StudioControl& need_studios(StudioControl* s) {
    if (s == nullptr) fail_studio(RpcCode::Unavailable, "this engine does not run studios from the control plane");
    return *s;
}

std::string caller_name(const Caller& c) { return c.is_local_admin() ? std::string("local admin") : c.operator_name; }

std::string criteria(const StudioRow& r) {
    std::string out;
    if (r.ssrc) out = "ssrc " + std::to_string(*r.ssrc);
    if (!r.source_address.empty()) out += (out.empty() ? "" : ", ") + std::string("from ") + r.source_address;
    return out;
}

pb::Studio studio_to_proto(const StudioView& v) {
    pb::Studio out;
    const auto& r = v.row;
    out.set_name(r.name);
    out.set_zone_id(r.zone_id);
    if (r.ssrc) out.set_ssrc(*r.ssrc);
    out.set_source_address(r.source_address);
    out.set_min_delay_ms(r.min_delay_ms);
    out.set_max_delay_ms(r.max_delay_ms);
    out.set_fixed_delay_ms(r.fixed_delay_ms);
    out.set_fallback_clip_id(static_cast<std::uint64_t>(r.fallback_clip_id));
    out.set_created_unix_ms(r.created_unix_ms);
    out.set_created_by(r.created_by);
    out.set_programme_id(v.programme_id);
    out.set_config_program(v.config_program);
    if (v.status) {
        out.set_receiving(v.status->receiving);
        *out.mutable_live() = v.stats;
    }
    return out;
}
}  // namespace

std::string ControlService::declare_studio(const Caller& caller, const std::string& payload) {
    const auto req = parse_studio_request<pb::DeclareStudioRequest>(payload, "DeclareStudioRequest");
    auto& control = need_studios(studios_);
    StudioRequest r;
    r.name = req.name();
    r.zone_id = req.zone_id();
    if (req.has_ssrc()) r.ssrc = req.ssrc();
    if (req.has_source_address()) r.source_address = req.source_address();
    r.min_delay_ms = req.min_delay_ms();
    r.max_delay_ms = req.max_delay_ms();
    r.fixed_delay_ms = req.fixed_delay_ms();
    if (req.fallback_clip_id() > static_cast<std::uint64_t>(INT64_MAX)) {
        fail_studio(RpcCode::InvalidArgument, "fallback clip id out of range");
    }
    r.fallback_clip_id = static_cast<std::int64_t>(req.fallback_clip_id());
    auto checked = control.check_declare(caller, r);
    if (!checked) fail_studio(checked.error().code, checked.error().message);
    StudioRow row = std::move(checked).value();
    row.created_unix_ms = now_unix_ms();
    row.created_by = caller_name(caller);
    // The engine recognises the studio at once; answered only after the
    // commit. A failed commit takes it out again.
    if (const auto o = control.add(row); !o.ok()) fail_studio(o.code, o.message);
    std::uint64_t seq = 0;
    try {
        store_.write([&] {
            store_.insert_studio(row);
            if (row.fallback_clip_id != 0) store_.add_clip_uses(row.fallback_clip_id, 1);
            seq = add_event(pb::STUDIO_DECLARED, "studio/" + row.name, row.zone_id,
                            caller_name(caller) + " declared studio '" + row.name + "' in zone '" + row.zone_id +
                                "' (" + criteria(row) + ")");
        });
    } catch (...) {
        control.remove(row.name);
        throw;
    }
    notify(seq);
    const auto view = control.view(row.name);
    return studio_to_proto(view ? *view : StudioView{row, std::nullopt, {}, 0, {}}).SerializeAsString();
}

std::string ControlService::list_studios(const Caller& caller, const std::string& payload) {
    parse_studio_request<pb::ListStudiosRequest>(payload, "ListStudiosRequest");
    auto& control = need_studios(studios_);
    pb::ListStudiosResponse out;
    for (const auto& v : control.list(caller)) *out.add_studios() = studio_to_proto(v);
    return out.SerializeAsString();
}

std::string ControlService::remove_studio(const Caller& caller, const std::string& payload) {
    const auto req = parse_studio_request<pb::RemoveStudioRequest>(payload, "RemoveStudioRequest");
    auto& control = need_studios(studios_);
    const auto checked = control.check_remove(caller, req.name());
    if (!checked) fail_studio(checked.error().code, checked.error().message);
    const StudioRow& row = checked.value();
    std::uint64_t seq = 0;
    store_.write([&] {
        store_.delete_studio(row.name);
        if (row.fallback_clip_id != 0) store_.add_clip_uses(row.fallback_clip_id, -1);
        seq = add_event(pb::STUDIO_REMOVED, "studio/" + row.name, row.zone_id,
                        caller_name(caller) + " removed studio '" + row.name + "'");
    });
    control.remove(row.name);
    notify(seq);
    return pb::RemoveStudioResponse().SerializeAsString();
}

}  // namespace loa::engine
