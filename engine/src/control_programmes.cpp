// StartProgramme, StopProgramme, ListProgrammes: the Control service's side
// of run-time programmes (scope checks and playback in ProgrammeControl).

#include <cstdint>

#include "loa/control/v1/control.pb.h"
#include "loa/engine/control_service.h"
#include "loa/engine/programme_control.h"

#include "control_util.h"

namespace loa::engine {

namespace {
namespace pb = loa::control::v1;

using control_util::fail;
using control_util::parse;

ProgrammeControl& need(ProgrammeControl* p) {
    if (p == nullptr) fail(RpcCode::Unavailable, "this engine does not run programmes from the control plane");
    return *p;
}

pb::ProgrammeState state_to_proto(const std::optional<ProgrammeState>& s) {
    if (!s) return pb::PROGRAMME_STATE_UNSPECIFIED;
    switch (*s) {
        case ProgrammeState::Audible: return pb::PROGRAMME_PLAYING;
        case ProgrammeState::Preempted: return pb::PROGRAMME_PREEMPTED;
        case ProgrammeState::Unheard: return pb::PROGRAMME_HELD;
    }
    return pb::PROGRAMME_STATE_UNSPECIFIED;
}

pb::PreemptPolicy policy_to_proto(PreemptPolicy p) {
    switch (p) {
        case PreemptPolicy::Pause: return pb::PREEMPT_RESUME;
        case PreemptPolicy::Restart: return pb::PREEMPT_RESTART;
        case PreemptPolicy::Drop: return pb::PREEMPT_DROP;
    }
    return pb::PREEMPT_RESUME;
}

std::string who_is(const Caller& c) { return control_util::caller_name(c); }

std::string zone_list(const std::vector<std::string>& zones) {
    std::string out;
    for (const auto& z : zones) out += (out.empty() ? "" : ",") + z;
    return out;
}
}  // namespace

std::string ControlService::start_programme(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::StartProgrammeRequest>(payload, "StartProgrammeRequest");
    auto& control = need(programmes_);
    ProgrammeRequest r;
    r.name = req.name();
    const int level = static_cast<int>(req.level());
    if (level < 1 || level > 6) fail(RpcCode::InvalidArgument, "level must be one of background .. emergency");
    r.level = static_cast<Priority>(level - 1);
    r.target_zones.assign(req.zone_ids().begin(), req.zone_ids().end());
    r.loop = req.loop();
    if (req.background_clip_id() > static_cast<std::uint64_t>(INT64_MAX)) {
        fail(RpcCode::InvalidArgument, "background_clip_id out of range");
    }
    r.background_clip_id = static_cast<std::int64_t>(req.background_clip_id());
    r.duck_db = req.duck_db();
    switch (req.preempt_policy()) {
        case pb::PREEMPT_RESUME: r.on_preempt = PreemptPolicy::Pause; break;
        case pb::PREEMPT_RESTART: r.on_preempt = PreemptPolicy::Restart; break;
        case pb::PREEMPT_DROP: r.on_preempt = PreemptPolicy::Drop; break;
        default: fail(RpcCode::InvalidArgument, "preempt_policy must be PREEMPT_RESUME, PREEMPT_RESTART or PREEMPT_DROP");
    }
    switch (req.source_case()) {
        case pb::StartProgrammeRequest::kToneHz:
            r.source = ProgrammeRequest::Source::Tone;
            r.tone_hz = req.tone_hz();
            break;
        case pb::StartProgrammeRequest::kClipPath:
            r.source = ProgrammeRequest::Source::ClipPath;
            r.clip_path = req.clip_path();
            break;
        case pb::StartProgrammeRequest::kStudio:
            r.source = ProgrammeRequest::Source::Studio;
            r.studio = req.studio();
            break;
        case pb::StartProgrammeRequest::kClipId:
            r.source = ProgrammeRequest::Source::ClipId;
            r.clip_id = static_cast<std::int64_t>(req.clip_id());
            break;
        default:
            fail(RpcCode::InvalidArgument, "a programme needs a source (tone_hz, clip_id, clip_path or studio)");
    }
    if (const auto o = control.refresh_topology(); !o.ok()) fail(o.code, o.message);
    const auto id = control.start(caller, r);
    if (!id) fail(id.error().code, id.error().message);
    // Already playing (switching never waits for the database); answered
    // only once the programme and its event are committed. A failed commit
    // takes it off the air again.
    std::uint64_t seq = 0;
    const auto zones = zone_list(r.target_zones);
    const auto row = control.row(id.value());
    try {
        store_.write([&] {
            if (row) {
                store_.insert_programme(*row);
                // The clip cannot be deleted while a programme plays it.
                if (const auto clip = ProgrammeControl::clip_of(*row)) store_.add_clip_uses(*clip, 1);
                if (row->background_clip_id != 0) store_.add_clip_uses(row->background_clip_id, 1);
            }
            seq = add_event(pb::PROGRAMME_STARTED, "programme/" + std::to_string(id.value()),
                        r.target_zones.size() == 1 ? r.target_zones.front() : std::string(),
                        who_is(caller) + " started programme " + std::to_string(id.value()) + " ('" + r.name +
                            "', " + std::string(to_string(r.level)) + ") to " + zones);
        });
    } catch (...) {
        (void)control.stop(Caller::local_admin(), id.value());
        throw;
    }
    notify(seq);
    pb::StartProgrammeResponse out;
    out.set_id(id.value());
    return out.SerializeAsString();
}

std::string ControlService::stop_programme(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::StopProgrammeRequest>(payload, "StopProgrammeRequest");
    auto& control = need(programmes_);
    (void)control.refresh_topology();
    const auto o = control.may_stop(caller, req.id());
    if (!o.ok()) fail(o.code, o.message);
    std::uint64_t seq = 0;
    const auto row = control.row(req.id());
    store_.write([&] {
        store_.delete_programme(req.id());
        if (row) {
            if (const auto clip = ProgrammeControl::clip_of(*row)) store_.add_clip_uses(*clip, -1);
            if (row->background_clip_id != 0) store_.add_clip_uses(row->background_clip_id, -1);
        }
        seq = add_event(pb::PROGRAMME_STOPPED, "programme/" + std::to_string(req.id()), {},
                        who_is(caller) + " stopped programme " + std::to_string(req.id()));
    });
    (void)control.stop(caller, req.id());
    notify(seq);
    return pb::StopProgrammeResponse().SerializeAsString();
}

std::string ControlService::list_programmes(const Caller& caller, const std::string& payload) {
    parse<pb::ListProgrammesRequest>(payload, "ListProgrammesRequest");
    auto& control = need(programmes_);
    // Zones and clusters may have changed since the last call.
    (void)control.refresh_topology();
    pb::ListProgrammesResponse out;
    for (const auto& info : control.list(caller)) {
        auto* p = out.add_programmes();
        p->set_id(info.id);
        p->set_name(info.name);
        p->set_level(static_cast<pb::Level>(static_cast<int>(info.level) + 1));
        for (const auto& z : info.target_zones) p->add_zone_ids(z);
        p->set_ssrc(info.ssrc);
        p->set_state(state_to_proto(info.state));
        p->set_clusters_hearing(info.listeners);
        p->set_clusters_targeted(info.targeted);
        p->set_preempt_policy(policy_to_proto(info.policy));
        p->set_paused(info.paused);
        // Only programmes started through StartProgramme have a row (and
        // maybe a bed); schedules and alerts never carry one.
        if (const auto row = control.row(info.id); row && row->background_clip_id != 0) {
            p->set_background_clip_id(static_cast<std::uint64_t>(row->background_clip_id));
            p->set_duck_db(static_cast<double>(row->duck_centi_db) / 100.0);
        }
    }
    return out.SerializeAsString();
}

void ControlService::set_programme_control(ProgrammeControl* p) {
    programmes_ = p;
    if (p == nullptr || programme_hook_added_) return;
    programme_hook_added_ = true;
    add_tick_hook([this](std::int64_t now) {
        if (programmes_ != nullptr) tick_programmes(now);
    });
}

void ControlService::tick_programmes(std::int64_t) {
    // A programme dropped by its policy is over: it must not come back after
    // a restart, and its clip is free again.
    for (const auto& row : programmes_->dropped()) {
        std::uint64_t seq = 0;
        const auto clip = ProgrammeControl::clip_of(row);
        const auto zone = row.zones.find(',') == std::string::npos ? row.zones : std::string();
        store_.write([&] {
            store_.delete_programme(row.id);
            if (clip) store_.add_clip_uses(*clip, -1);
            if (row.background_clip_id != 0) store_.add_clip_uses(row.background_clip_id, -1);
            seq = add_event(pb::PROGRAMME_STOPPED, "programme/" + std::to_string(row.id), zone,
                            "programme " + std::to_string(row.id) + " ('" + row.name +
                                "') dropped: every cluster it reached was preempted (policy drop)");
        });
        programmes_->forget(row.id);
        notify(seq);
    }
}

}  // namespace loa::engine
