// RaiseAlert, CancelAlert, ListAlerts, GetAlertStatus and the periodic tick:
// the Control service's side of emergency alerts (checks, playback, expiry
// and confirmation in AlertControl).
//
// Order of work: raising puts the alert on the air first (the arbiter
// switches the clusters at the next frame), then commits the alert row, the
// clip's `uses` reference and ALERT_RAISED in one transaction, and answers
// after the commit; a failed commit takes it off the air again. Cancelling,
// expiry and the last play likewise take it off the air first, then commit
// the end (row deleted, reference released, ALERT_ENDED); a failed commit is
// retried on the next tick.

#include <cmath>
#include <exception>

#include <spdlog/spdlog.h>

#include "loa/control/v1/control.pb.h"
#include "loa/engine/alert_control.h"
#include "loa/engine/control_service.h"
#include "loa/engine/programme_control.h"

namespace loa::engine {

namespace {
namespace pb = loa::control::v1;

[[noreturn]] void fail_with(RpcCode code, const std::string& message) { throw ControlError(code, message); }

template <typename T>
T parse_request(const std::string& payload, const char* name) {
    T m;
    if (!m.ParseFromString(payload)) fail_with(RpcCode::InvalidArgument, std::string("malformed ") + name);
    return m;
}

AlertControl& need(AlertControl* a) {
    if (a == nullptr) fail_with(RpcCode::Unavailable, "this engine does not run alerts from the control plane");
    return *a;
}

std::string who_is(const Caller& c) { return c.is_local_admin() ? std::string("local admin") : c.operator_name; }

std::vector<std::string> split_zones(const std::string& zones) {
    std::vector<std::string> out;
    for (std::size_t at = 0; at <= zones.size();) {
        const auto comma = std::min(zones.find(',', at), zones.size());
        if (comma > at) out.push_back(zones.substr(at, comma - at));
        at = comma + 1;
    }
    return out;
}

// Events about one alert live in its zone when it has one target zone, else engine-wide.
std::string event_zone(const AlertRow& row) { return row.zones.find(',') == std::string::npos ? row.zones : ""; }

std::string label(const AlertRow& row) { return "alert " + std::to_string(row.id) + " ('" + row.name + "')"; }

std::string counts_text(const AlertCounts& c) {
    return std::to_string(c.confirmed) + " of " + std::to_string(c.targeted()) + " cluster(s) confirmed, " +
           std::to_string(c.not_confirmed) + " not confirmed, " + std::to_string(c.offline) + " offline";
}

AlertCounts counts_of(const AlertConfirmation& c) {
    return {c.confirmed.size(), c.not_confirmed.size(), c.offline.size()};
}

// Seconds given on the wire as a double, as whole milliseconds.
std::int64_t to_ms(double seconds, double max_seconds, const char* what) {
    if (!std::isfinite(seconds) || seconds < 0.0 || seconds > max_seconds) {
        fail_with(RpcCode::InvalidArgument, std::string(what) + " must be 0 .. " +
                                                std::to_string(static_cast<long long>(max_seconds)) + " s");
    }
    return std::llround(seconds * 1000.0);
}

pb::Alert alert_to_proto(const AlertState& s, const AlertCounts& c) {
    pb::Alert a;
    a.set_id(s.row.id);
    a.set_name(s.row.name);
    a.set_level(static_cast<pb::Level>(s.row.level + 1));
    for (const auto& z : split_zones(s.row.zones)) a.add_zone_ids(z);
    a.set_clip_id(static_cast<std::uint64_t>(s.row.clip_id));
    a.set_attention_tone(s.row.attention_tone);
    a.set_repeats(s.row.repeats);
    a.set_interval_s(static_cast<double>(s.row.interval_ms) / 1000.0);
    a.set_expires_unix_ms(s.row.expires_unix_ms);
    a.set_volume_pct(s.row.volume_pct);
    a.set_raised_unix_ms(s.row.raised_unix_ms);
    a.set_raised_by(s.row.created_by);
    a.set_ssrc(s.ssrc);
    a.set_play(s.play);
    a.set_clusters_targeted(static_cast<std::uint32_t>(c.targeted()));
    a.set_clusters_confirmed(static_cast<std::uint32_t>(c.confirmed));
    a.set_clusters_not_confirmed(static_cast<std::uint32_t>(c.not_confirmed));
    a.set_clusters_offline(static_cast<std::uint32_t>(c.offline));
    a.set_studio(s.row.studio);
    a.set_studio_live(s.studio_live);
    return a;
}
}  // namespace

void ControlService::set_alert_control(AlertControl* a) {
    alerts_ = a;
    if (a == nullptr) return;
    // Read live_ at call time: the provider may be set after this.
    a->set_cluster_live([this](const std::string& id) -> std::optional<ClusterLive> {
        if (!live_) return std::nullopt;
        const auto s = live_(id);
        if (!s) return std::nullopt;
        return ClusterLive{s->online(), s->playing_ssrc(), s->amplifier_on()};
    });
}

std::string ControlService::raise_alert(const Caller& caller, const std::string& payload) {
    const auto req = parse_request<pb::RaiseAlertRequest>(payload, "RaiseAlertRequest");
    auto& alerts = need(alerts_);
    AlertRequest r;
    if (!req.name().empty()) r.name = req.name();
    const int level = static_cast<int>(req.level());
    if (level < 0 || level > 6) fail_with(RpcCode::InvalidArgument, "level must be one of background .. emergency");
    r.level = level == 0 ? Priority::Emergency : static_cast<Priority>(level - 1);
    r.target_zones.assign(req.zone_ids().begin(), req.zone_ids().end());
    if (req.clip_id() > static_cast<std::uint64_t>(INT64_MAX)) fail_with(RpcCode::InvalidArgument, "clip id out of range");
    r.clip_id = static_cast<std::int64_t>(req.clip_id());
    r.studio = req.studio();
    r.attention_tone = req.has_attention_tone() ? req.attention_tone() : true;
    r.repeats = req.has_repeats() ? req.repeats() : 1;
    r.interval_ms = static_cast<int>(to_ms(req.interval_s(), AlertControl::kMaxIntervalMs / 1000.0, "interval"));
    r.volume_pct = req.has_volume_pct() ? req.volume_pct() : 100;
    if (req.expires_unix_ms() != 0 && req.duration_s() != 0.0) {
        fail_with(RpcCode::InvalidArgument, "give expires_unix_ms or duration_s, not both");
    }
    if (req.expires_unix_ms() < 0) fail_with(RpcCode::InvalidArgument, "the expiry is not in the future");
    if (req.expires_unix_ms() != 0) r.expires_unix_ms = req.expires_unix_ms();
    if (req.duration_s() != 0.0) {
        const double max_s = static_cast<double>(AlertControl::kMaxLifetimeMs) / 1000.0;
        if (!std::isfinite(req.duration_s()) || req.duration_s() <= 0.0 || req.duration_s() > max_s) {
            fail_with(RpcCode::InvalidArgument, "duration must be more than 0 s and at most 7 days");
        }
        r.expires_unix_ms = now_unix_ms() + std::max<std::int64_t>(1, std::llround(req.duration_s() * 1000.0));
    }
    // Zones and clusters may have changed since the last decision.
    if (programmes_ != nullptr) {
        if (const auto o = programmes_->refresh_topology(); !o.ok()) fail_with(o.code, o.message);
    }
    const auto id = alerts.raise(caller, r);
    if (!id) fail_with(id.error().code, id.error().message);
    // On the air already; answered once the row and its event are committed.
    const auto row = *alerts.row(id.value());
    std::size_t targeted = 0;
    std::uint64_t seq = 0;
    try {
        targeted = alerts.targeted(id.value(), caller);
        store_.write([&] {
            store_.insert_alert(row);
            if (row.clip_id != 0) store_.add_clip_uses(row.clip_id, 1);
            store_.set_meta("last_alert_id", std::to_string(row.id));
            std::string expiry = row.expires_unix_ms != 0
                                     ? "expires in " + std::to_string((row.expires_unix_ms - row.raised_unix_ms + 999) / 1000) + " s"
                                     : "ends after its last play";
            const bool plays = row.attention_tone || row.clip_id != 0;
            std::string audio = plays ? std::to_string(row.repeats) + " play(s)" : std::string();
            if (!row.studio.empty()) audio += (plays ? ", then studio '" : "studio '") + row.studio + "' live";
            seq = add_event(pb::ALERT_RAISED, "alert/" + std::to_string(row.id), event_zone(row),
                            who_is(caller) + " raised " + label(row) + " (" +
                                std::string(to_string(static_cast<Priority>(row.level))) + ") to " + row.zones + ": " +
                                audio + ", " + expiry);
        });
    } catch (...) {
        alerts.forget(id.value());
        throw;
    }
    notify(seq);
    pb::RaiseAlertResponse out;
    out.set_id(id.value());
    out.set_clusters_targeted(static_cast<std::uint32_t>(targeted));
    return out.SerializeAsString();
}

void ControlService::commit_alert_end(std::uint64_t id, const std::string& why) {
    const auto row = alerts_->row(id);
    if (!row) return;
    std::uint64_t seq = 0;
    store_.write([&] {
        store_.delete_alert(id);
        if (row->clip_id != 0) store_.add_clip_uses(row->clip_id, -1);
        seq = add_event(pb::ALERT_ENDED, "alert/" + std::to_string(id), event_zone(*row), label(*row) + " ended: " + why);
    });
    alerts_->forget(id);
    notify(seq);
}

std::string ControlService::cancel_alert(const Caller& caller, const std::string& payload) {
    const auto req = parse_request<pb::CancelAlertRequest>(payload, "CancelAlertRequest");
    auto& alerts = need(alerts_);
    if (const auto o = alerts.may_cancel(caller, req.id()); !o.ok()) fail_with(o.code, o.message);
    // Off the air first; should the commit fail, the tick commits it later.
    const auto why = "cancelled by " + who_is(caller);
    alerts.take_off_air(req.id(), AlertEnd::Cancelled, why);
    commit_alert_end(req.id(), why);
    return pb::CancelAlertResponse().SerializeAsString();
}

std::string ControlService::list_alerts(const Caller& caller, const std::string& payload) {
    parse_request<pb::ListAlertsRequest>(payload, "ListAlertsRequest");
    auto& alerts = need(alerts_);
    pb::ListAlertsResponse out;
    for (const auto& s : alerts.list(caller)) *out.add_alerts() = alert_to_proto(s, alerts.counts(s.row.id, caller));
    return out.SerializeAsString();
}

std::string ControlService::get_alert_status(const Caller& caller, const std::string& payload) {
    const auto req = parse_request<pb::GetAlertStatusRequest>(payload, "GetAlertStatusRequest");
    auto& alerts = need(alerts_);
    if (!alerts.visible(caller, req.id())) fail_with(RpcCode::NotFound, "no alert " + std::to_string(req.id()));
    const auto c = alerts.confirmation(req.id(), caller);
    pb::GetAlertStatusResponse out;
    *out.mutable_alert() = alert_to_proto(*alerts.state(req.id()), counts_of(c));
    for (const auto& id : c.confirmed) out.add_confirmed(id);
    for (const auto& id : c.not_confirmed) out.add_not_confirmed(id);
    for (const auto& id : c.offline) out.add_offline(id);
    return out.SerializeAsString();
}

void ControlService::tick_alerts(std::int64_t now) {
    std::string error;
    for (const auto& d : alerts_->due(now)) {
        std::string why;
        switch (d.reason) {
            case AlertEnd::Expired: why = "expired"; break;
            case AlertEnd::Completed: why = "every play done"; break;
            case AlertEnd::Cancelled: why = d.detail.empty() ? std::string("cancelled") : d.detail; break;
            case AlertEnd::Lost: why = d.detail.empty() ? std::string("lost") : d.detail; break;
        }
        alerts_->take_off_air(d.id, d.reason, why);
        try {
            commit_alert_end(d.id, why);
        } catch (const std::exception& e) {
            // Off the air already; the end is committed on a later tick.
            if (error.empty()) error = e.what();
        }
    }
    for (const auto& [id, c] : alerts_->confirmation_changes(now)) {
        const auto row = alerts_->row(id);
        if (!row) continue;
        std::uint64_t seq = 0;
        store_.write([&] {
            seq = add_event(pb::ALERT_CONFIRMATION, "alert/" + std::to_string(id), event_zone(*row),
                            label(*row) + ": " + counts_text(c));
        });
        notify(seq);
    }
    if (!error.empty()) throw ControlError(RpcCode::Unavailable, error);
}

void ControlService::tick(std::int64_t now_unix_ms) {
    std::string error;
    if (alerts_ != nullptr) {
        try {
            tick_alerts(now_unix_ms);
        } catch (const std::exception& e) {
            error = std::string("alerts: ") + e.what();
        }
    }
    for (const auto& hook : tick_hooks_) {
        try {
            hook(now_unix_ms);
        } catch (const std::exception& e) {
            if (error.empty()) error = e.what();
        }
    }
    // Logged once per distinct failure: a full disk would otherwise log ten times a second.
    if (!error.empty() && error != tick_error_) spdlog::warn("control tick: {}", error);
    tick_error_ = error;
}

}  // namespace loa::engine
