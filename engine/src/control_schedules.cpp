// CreateSchedule, ListSchedules, DeleteSchedule, NextOccurrences and the
// schedules' tick: the Control service's side of schedules (checks, windows
// and playback in ScheduleControl). A schedule plays a playlist or, in a
// studio window, a studio live.
//
// Order of work: creating checks everything (nothing stored on a refusal),
// commits the row, its items, the clips' `uses` references and
// SCHEDULE_CREATED in one transaction, then hands the schedule to the
// runtime and polls at once, so a window open now starts before the answer.
// Deleting commits first (row, references, SCHEDULE_DELETED and, when a
// window is on air, PROGRAMME_STOPPED), then takes its programme off the
// air: a failed commit changes nothing. What the tick's poll did (a window's
// programme started, stopped, a late window skipped, a start that failed) is
// committed as events in order, with the window's done mark; a failed commit
// is retried on the next tick.

#include <cmath>
#include <cstdio>
#include <exception>
#include <limits>

#include "loa/control/v1/control.pb.h"
#include "loa/engine/control_service.h"
#include "loa/engine/schedule_control.h"

#include "control_util.h"

namespace loa::engine {

namespace {
namespace pb = loa::control::v1;

using control_util::fail;
using control_util::parse;

ScheduleControl& need(ScheduleControl* s) {
    if (s == nullptr) fail(RpcCode::Unavailable, "this engine does not run schedules from the control plane");
    return *s;
}

constexpr double kMaxDurationS = 366.0 * 86400.0;
constexpr double kMaxHours = 744.0;

// Events about one schedule live in its zone when it has one target zone, else engine-wide.
std::string event_zone(const std::string& zones) { return zones.find(',') == std::string::npos ? zones : ""; }

std::string label(std::uint64_t id, const std::string& name) {
    return "schedule " + std::to_string(id) + " ('" + name + "')";
}

std::string seconds_text(std::int64_t ms) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
    return buf;
}

std::string when_text(const ScheduleRow& r) {
    std::string out;
    if (r.recurrence == "once") {
        out = "once on " + r.first_date;
    } else if (r.recurrence == "daily") {
        out = "daily from " + r.first_date;
    } else if (r.recurrence == "weekdays") {
        static const char* const kNames[] = {"", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
        std::string days;
        for (int iso = 1; iso <= 7; ++iso) {
            if ((r.weekdays >> (iso % 7)) & 1) days += (days.empty() ? "" : ",") + std::string(kNames[iso]);
        }
        out = "on " + days + " from " + r.first_date;
    } else {
        out = "every " + std::to_string(r.every_days) + " days from " + r.first_date;
    }
    if (!r.until_date.empty() && r.recurrence != "once") out += " until " + r.until_date;
    out += " at " + format_time_of_day(std::chrono::seconds(r.start_s)) + " " + r.time_zone;
    out += r.duration_s > 0 ? " for " + std::to_string(r.duration_s) + " s" : std::string(" for its playlist");
    return out;
}

pb::ScheduleOccurrence occurrence_to_proto(const ScheduleWindow& w, const ScheduleRow& row) {
    pb::ScheduleOccurrence o;
    o.set_schedule_id(w.schedule_id);
    o.set_schedule_name(row.name);
    o.set_level(static_cast<pb::Level>(row.level + 1));
    for (const auto& z : ScheduleControl::zones_of(row)) o.add_zone_ids(z);
    o.set_start_unix_ms(w.occurrence.start.time_since_epoch().count());
    if (w.occurrence.end) o.set_end_unix_ms(w.occurrence.end->time_since_epoch().count());
    o.set_local_start(format_local_time(w.occurrence.local_start));
    o.set_time_zone(row.time_zone);
    o.set_on_air(w.on_air);
    return o;
}

pb::Schedule schedule_to_proto(const ScheduleView& v) {
    const auto& r = v.row;
    pb::Schedule s;
    s.set_id(r.id);
    s.set_name(r.name);
    s.set_level(static_cast<pb::Level>(r.level + 1));
    for (const auto& z : ScheduleControl::zones_of(r)) s.add_zone_ids(z);
    s.set_time_zone(r.time_zone);
    if (const auto rec = parse_recurrence(r.recurrence)) s.set_recurrence(static_cast<pb::Recurrence>(static_cast<int>(*rec) + 1));
    s.set_first_date(r.first_date);
    s.set_start_time(format_time_of_day(std::chrono::seconds(r.start_s)));
    s.set_duration_s(static_cast<double>(r.duration_s));
    for (unsigned iso = 1; iso <= 7; ++iso) {
        if ((r.weekdays >> (iso % 7)) & 1) s.add_weekdays(iso);
    }
    s.set_every_days(static_cast<std::uint32_t>(r.every_days));
    s.set_until_date(r.until_date);
    if (const auto p = parse_late_policy(r.late_policy)) s.set_late_policy(static_cast<pb::LatePolicy>(static_cast<int>(*p) + 1));
    for (const auto& item : r.items) {
        auto* i = s.add_items();
        if (item.clip_id != 0) {
            i->set_clip_id(static_cast<std::uint64_t>(item.clip_id));
            i->set_gain_db(item.gain_db);
        } else {
            i->set_gap_ms(static_cast<std::uint32_t>(item.gap_ms));
        }
    }
    s.set_playlist_ms(v.playlist_ms);
    s.set_created_unix_ms(r.created_unix_ms);
    s.set_created_by(r.created_by);
    s.set_programme_id(v.programme_id);
    s.set_position_ms(v.position_ms);
    s.set_problem(v.problem);
    s.set_studio(r.studio);
    return s;
}

ScheduleRequest request_of(const pb::CreateScheduleRequest& req) {
    ScheduleRequest r;
    r.name = req.name();
    r.target_zones.assign(req.zone_ids().begin(), req.zone_ids().end());
    const int level = static_cast<int>(req.level());
    if (level < 0 || level > 6) fail(RpcCode::InvalidArgument, "level must be one of background .. emergency");
    r.level = level == 0 ? Priority::Scheduled : static_cast<Priority>(level - 1);
    r.spec.time_zone = req.time_zone();

    const int rec = static_cast<int>(req.recurrence());
    if (rec < 0 || rec > 4) fail(RpcCode::InvalidArgument, "unknown recurrence " + std::to_string(rec));
    r.spec.recurrence = rec == 0 ? Recurrence::Once : static_cast<Recurrence>(rec - 1);
    if (req.first_date().empty()) {
        r.from_today = true;
    } else {
        const auto d = parse_local_date(req.first_date());
        if (!d) fail(RpcCode::InvalidArgument, "first date '" + req.first_date() + "' is not a date (YYYY-MM-DD)");
        r.spec.first_date = *d;
    }
    if (req.start_time().empty()) fail(RpcCode::InvalidArgument, "a schedule needs a start time (HH:MM[:SS])");
    const auto start = parse_time_of_day(req.start_time());
    if (!start) fail(RpcCode::InvalidArgument, "start time '" + req.start_time() + "' is not a time of day (HH:MM[:SS])");
    r.spec.start_time = *start;
    switch (req.window_case()) {
        case pb::CreateScheduleRequest::kDurationS: {
            const double d = req.duration_s();
            if (!std::isfinite(d) || d < 1.0 || d > kMaxDurationS) {
                fail(RpcCode::InvalidArgument, "duration must be 1 s .. 366 days");
            }
            r.spec.duration = std::chrono::seconds(std::llround(d));
            break;
        }
        case pb::CreateScheduleRequest::kEndTime: {
            const auto end = parse_time_of_day(req.end_time());
            if (!end) fail(RpcCode::InvalidArgument, "end time '" + req.end_time() + "' is not a time of day (HH:MM[:SS])");
            r.end_time = *end;
            break;
        }
        default: break;
    }
    if (r.spec.recurrence == Recurrence::Weekdays) {
        for (const auto d : req.weekdays()) {
            if (d < 1 || d > 7) fail(RpcCode::InvalidArgument, "weekdays are 1 (Monday) .. 7 (Sunday)");
            r.spec.weekdays.set(d % 7);
        }
    } else if (req.weekdays_size() > 0) {
        fail(RpcCode::InvalidArgument, "weekdays are only for a weekly (RECURRENCE_WEEKDAYS) schedule");
    }
    if (r.spec.recurrence == Recurrence::EveryNDays) {
        r.spec.every_days = req.every_days();
    } else if (req.every_days() > 1) {
        fail(RpcCode::InvalidArgument, "every_days is only for a RECURRENCE_EVERY_N_DAYS schedule");
    }
    if (!req.until_date().empty()) {
        const auto d = parse_local_date(req.until_date());
        if (!d) fail(RpcCode::InvalidArgument, "until date '" + req.until_date() + "' is not a date (YYYY-MM-DD)");
        r.spec.until = *d;
    }
    const int late = static_cast<int>(req.late_policy());
    if (late < 0 || late > 3) fail(RpcCode::InvalidArgument, "unknown late policy " + std::to_string(late));
    r.spec.late_policy = late == 0 ? LatePolicy::Resume : static_cast<LatePolicy>(late - 1);

    r.studio = req.studio();
    for (int i = 0; i < req.items_size(); ++i) {
        const auto& item = req.items(i);
        const auto which = "item " + std::to_string(i + 1) + ": ";
        ScheduleItemRow row;
        switch (item.item_case()) {
            case pb::ScheduleItem::kClipId:
                if (item.clip_id() == 0 || item.clip_id() > static_cast<std::uint64_t>(INT64_MAX)) {
                    fail(RpcCode::InvalidArgument, which + "clip id out of range");
                }
                row.clip_id = static_cast<std::int64_t>(item.clip_id());
                row.gain_db = item.gain_db();
                break;
            case pb::ScheduleItem::kGapMs:
                row.gap_ms = static_cast<int>(
                    std::min<std::uint32_t>(item.gap_ms(), static_cast<std::uint32_t>(ScheduleControl::kMaxGapMs) + 1));
                break;
            default: fail(RpcCode::InvalidArgument, which + "neither a clip nor a gap");
        }
        r.items.push_back(row);
    }
    return r;
}
}  // namespace

void ControlService::set_schedule_control(ScheduleControl* s) {
    schedules_ = s;
    if (s == nullptr || schedule_hook_added_) return;
    schedule_hook_added_ = true;
    add_tick_hook([this](std::int64_t now) {
        if (schedules_ != nullptr) tick_schedules(now);
    });
}

void ControlService::tick_schedules(std::int64_t now) {
    auto& control = need(schedules_);
    control.poll(Instant(std::chrono::milliseconds(now)));
    while (!control.outbox().empty()) {
        const ScheduleChange c = control.outbox().front();
        const auto who = label(c.schedule_id, c.name);
        const auto window = "its window of " + c.window_local;
        const auto programme = "programme/" + std::to_string(c.programme_id);
        std::uint64_t seq = 0;
        store_.write([&] {
            switch (c.kind) {
                case ScheduleChange::Kind::Started: {
                    std::string how;
                    if (!c.studio.empty()) {
                        how = ", studio '" + c.studio + "' live";
                        if (c.lateness_ms > 2000) how += ", joined " + seconds_text(c.lateness_ms) + " late";
                    } else if (c.offset_ms > 0) {
                        how = ", joined " + seconds_text(c.lateness_ms) + " late at " + seconds_text(c.offset_ms) +
                              " into its playlist";
                    } else if (c.lateness_ms > 2000) {
                        how = ", from the top " + seconds_text(c.lateness_ms) + " late";
                    }
                    seq = add_event(pb::PROGRAMME_STARTED, programme, event_zone(c.zones),
                                    who + " started programme " + std::to_string(c.programme_id) + " (" +
                                        std::string(to_string(c.level)) + ") to " + c.zones + " for " + window + how);
                    break;
                }
                case ScheduleChange::Kind::Stopped:
                    store_.set_schedule_done(c.schedule_id, c.window_start_unix_ms);
                    seq = add_event(pb::PROGRAMME_STOPPED, programme, event_zone(c.zones),
                                    who + " stopped programme " + std::to_string(c.programme_id) + ": " + c.detail);
                    break;
                case ScheduleChange::Kind::Skipped:
                    store_.set_schedule_done(c.schedule_id, c.window_start_unix_ms);
                    seq = add_event(pb::ENGINE_NOTICE, "schedule/" + std::to_string(c.schedule_id),
                                    event_zone(c.zones),
                                    who + ": " + window + " skipped, found " + seconds_text(c.lateness_ms) +
                                        " late (late policy skip)");
                    break;
                case ScheduleChange::Kind::Failed:
                    seq = add_event(pb::ENGINE_NOTICE, "schedule/" + std::to_string(c.schedule_id),
                                    event_zone(c.zones),
                                    who + ": " + window + " could not start: " + c.detail + " (tried again every " +
                                        std::to_string(ScheduleControl::kRetryMs / 1000) + " s)");
                    break;
            }
        });
        control.pop_change();
        notify(seq);
    }
}

std::string ControlService::create_schedule(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::CreateScheduleRequest>(payload, "CreateScheduleRequest");
    auto& control = need(schedules_);
    const auto request = request_of(req);
    auto checked = control.check_create(caller, request);
    if (!checked) fail(checked.error().code, checked.error().message);
    ScheduleRow row = std::move(checked).value();
    row.created_unix_ms = now_unix_ms();
    row.created_by = control_util::caller_name(caller);
    std::uint64_t seq = 0;
    store_.write([&] {
        row.id = store_.insert_schedule(row);
        // The clips cannot be deleted while the schedule may play them.
        for (const auto& item : row.items) {
            if (item.clip_id != 0) store_.add_clip_uses(item.clip_id, 1);
        }
        seq = add_event(pb::SCHEDULE_CREATED, "schedule/" + std::to_string(row.id), event_zone(row.zones),
                        row.created_by + " created " + label(row.id, row.name) + " (" +
                            std::string(to_string(static_cast<Priority>(row.level))) + ") to " + row.zones + ": " +
                            when_text(row) + ", " +
                            (row.studio.empty() ? std::to_string(row.items.size()) + " item(s)"
                                                : "studio '" + row.studio + "' live") +
                            ", late policy " + row.late_policy);
    });
    control.add(row);
    notify(seq);
    // A window open now starts at once; should its events fail to commit,
    // the next tick commits them.
    try {
        tick_schedules(now_unix_ms());
    } catch (const std::exception&) {
    }
    pb::CreateScheduleResponse out;
    out.set_id(row.id);
    const auto now = Instant(std::chrono::milliseconds(now_unix_ms()));
    for (const auto& w : control.next_windows(row.id, now, 3)) *out.add_next() = occurrence_to_proto(w, row);
    return out.SerializeAsString();
}

std::string ControlService::list_schedules(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::ListSchedulesRequest>(payload, "ListSchedulesRequest");
    auto& control = need(schedules_);
    if (req.next_count() > 100) fail(RpcCode::InvalidArgument, "next_count must be 0 .. 100");
    const std::size_t count = req.next_count() == 0 ? 3 : req.next_count();
    const auto now = Instant(std::chrono::milliseconds(now_unix_ms()));
    pb::ListSchedulesResponse out;
    for (const auto& v : control.list(caller)) {
        auto* s = out.add_schedules();
        *s = schedule_to_proto(v);
        for (const auto& w : control.next_windows(v.row.id, now, count)) *s->add_next() = occurrence_to_proto(w, v.row);
    }
    return out.SerializeAsString();
}

std::string ControlService::delete_schedule(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::DeleteScheduleRequest>(payload, "DeleteScheduleRequest");
    auto& control = need(schedules_);
    if (const auto o = control.may_delete(caller, req.id()); !o.ok()) fail(o.code, o.message);
    const auto v = *control.view(req.id());
    const auto who = control_util::caller_name(caller);
    std::uint64_t seq = 0;
    store_.write([&] {
        store_.delete_schedule(v.row.id);
        for (const auto& item : v.row.items) {
            if (item.clip_id != 0) store_.add_clip_uses(item.clip_id, -1);
        }
        if (v.programme_id != 0) {
            add_event(pb::PROGRAMME_STOPPED, "programme/" + std::to_string(v.programme_id), event_zone(v.row.zones),
                      label(v.row.id, v.row.name) + " stopped programme " + std::to_string(v.programme_id) +
                          ": the schedule was deleted");
        }
        seq = add_event(pb::SCHEDULE_DELETED, "schedule/" + std::to_string(v.row.id), event_zone(v.row.zones),
                        who + " deleted " + label(v.row.id, v.row.name));
    });
    (void)control.remove(v.row.id);
    notify(seq);
    return pb::DeleteScheduleResponse().SerializeAsString();
}

std::string ControlService::next_occurrences(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::NextOccurrencesRequest>(payload, "NextOccurrencesRequest");
    auto& control = need(schedules_);
    const double hours = req.hours() == 0.0 ? 24.0 : req.hours();
    if (!std::isfinite(hours) || hours <= 0.0 || hours > kMaxHours) {
        fail(RpcCode::InvalidArgument, "hours must be more than 0 and at most 744 (31 days)");
    }
    const auto now = Instant(std::chrono::milliseconds(now_unix_ms()));
    const auto until = now + std::chrono::milliseconds(std::llround(hours * 3'600'000.0));
    pb::NextOccurrencesResponse out;
    for (const auto& w : control.windows(caller, now, until)) {
        const auto v = control.view(w.schedule_id);
        if (v) *out.add_occurrences() = occurrence_to_proto(w, v->row);
    }
    return out.SerializeAsString();
}

}  // namespace loa::engine
