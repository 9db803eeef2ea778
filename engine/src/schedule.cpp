#include "loa/engine/schedule.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <exception>
#include <utility>

#include <date/tz.h>

namespace loa::engine {

namespace {

using std::chrono::days;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::sys_days;

constexpr std::array<std::string_view, 4> kRecurrenceNames = {"once", "daily", "weekdays", "every_n_days"};
constexpr std::array<std::string_view, 3> kLatePolicyNames = {"resume", "restart", "skip"};
constexpr std::size_t kMaxSteps = 1000;  // bound on date iterations per query

Outcome invalid(std::string message) { return Outcome::failure(RpcCode::InvalidArgument, std::move(message)); }

std::string format_date(const std::chrono::year_month_day& ymd) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    return buf;
}

std::string format_local(std::chrono::local_seconds t) {
    const auto day = std::chrono::floor<days>(t);
    const std::chrono::hh_mm_ss hms(t - day);
    char buf[16];
    std::snprintf(buf, sizeof buf, " %02d:%02d:%02d", static_cast<int>(hms.hours().count()),
                  static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()));
    return format_date(std::chrono::year_month_day(sys_days(day.time_since_epoch()))) + buf;
}

std::string format_hours(seconds s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f h", static_cast<double>(s.count()) / 3600.0);
    return buf;
}

/// Local wall time -> instant, RFC 5545 style: a skipped time takes the
/// offset before the jump, a repeated time its first reading.
Instant to_instant(const date::time_zone& tz, std::chrono::local_seconds local) {
    const date::local_seconds l(local.time_since_epoch());
    const auto info = tz.get_info(l);
    const auto sys = l.time_since_epoch() - info.first.offset;
    return Instant(std::chrono::duration_cast<milliseconds>(sys));
}

/// Smallest number of days between two consecutive window starts.
std::uint32_t min_gap_days(const ScheduleSpec& s) {
    switch (s.recurrence) {
        case Recurrence::Once: return 0;
        case Recurrence::Daily: return 1;
        case Recurrence::EveryNDays: return s.every_days;
        case Recurrence::Weekdays: {
            std::uint32_t gap = 7;
            for (unsigned d = 0; d < 7; ++d) {
                if (!s.weekdays[d]) continue;
                for (unsigned k = 1; k <= 7; ++k) {
                    if (s.weekdays[(d + k) % 7]) {
                        gap = std::min(gap, k);
                        break;
                    }
                }
            }
            return gap;
        }
    }
    return 0;
}

}  // namespace

std::string_view to_string(Recurrence r) noexcept {
    const auto i = static_cast<std::size_t>(r);
    return i < kRecurrenceNames.size() ? kRecurrenceNames[i] : "unknown";
}

std::string_view to_string(LatePolicy p) noexcept {
    const auto i = static_cast<std::size_t>(p);
    return i < kLatePolicyNames.size() ? kLatePolicyNames[i] : "unknown";
}

std::optional<Recurrence> parse_recurrence(std::string_view text) noexcept {
    for (std::size_t i = 0; i < kRecurrenceNames.size(); ++i) {
        if (text == kRecurrenceNames[i]) return static_cast<Recurrence>(i);
    }
    return std::nullopt;
}

std::optional<LatePolicy> parse_late_policy(std::string_view text) noexcept {
    for (std::size_t i = 0; i < kLatePolicyNames.size(); ++i) {
        if (text == kLatePolicyNames[i]) return static_cast<LatePolicy>(i);
    }
    return std::nullopt;
}

Result<Schedule> Schedule::make(ScheduleSpec spec) {
    if (spec.time_zone.empty()) spec.time_zone = std::string(kDefaultTimeZone);
    const date::time_zone* tz = nullptr;
    try {
        tz = date::locate_zone(spec.time_zone);
    } catch (const std::exception&) {
        return invalid("unknown time zone '" + spec.time_zone + "' (expected an IANA name such as Asia/Ho_Chi_Minh)");
    }
    if (!spec.first_date.ok()) return invalid("first date " + format_date(spec.first_date) + " is not a valid date");
    if (spec.start_time < seconds(0) || spec.start_time >= days(1)) {
        return invalid("start time must lie within a day (00:00:00 to 23:59:59)");
    }
    const auto first_start = std::chrono::local_days(sys_days(spec.first_date).time_since_epoch()) + spec.start_time;
    if (spec.end && spec.duration) return invalid("give either an end or a duration, not both");
    if (spec.end) {
        if (*spec.end <= first_start) {
            return invalid("end " + format_local(*spec.end) + " is not after start " + format_local(first_start));
        }
        spec.duration = *spec.end - first_start;
    }
    if (spec.duration && *spec.duration <= seconds(0)) return invalid("duration must be positive");
    if (spec.until) {
        if (!spec.until->ok()) return invalid("until " + format_date(*spec.until) + " is not a valid date");
        if (sys_days(*spec.until) < sys_days(spec.first_date)) {
            return invalid("until " + format_date(*spec.until) + " is before the first date " +
                           format_date(spec.first_date));
        }
    }
    if (spec.recurrence == Recurrence::Weekdays && spec.weekdays.none()) {
        return invalid("a weekly schedule needs at least one weekday");
    }
    if (spec.recurrence == Recurrence::EveryNDays && (spec.every_days < 1 || spec.every_days > 366)) {
        return invalid("every N days needs N in 1..366");
    }
    if (spec.grace < milliseconds(0)) return invalid("grace must not be negative");
    const auto gap = min_gap_days(spec);
    if (spec.duration && gap > 0 && *spec.duration >= days(gap)) {
        return invalid("a window of " + format_hours(*spec.duration) + " does not end before the next one starts (" +
                       std::to_string(gap) + " day(s) later)");
    }
    return Schedule(std::move(spec), tz);
}

std::optional<sys_days> Schedule::next_matching_date(sys_days d) const noexcept {
    const sys_days first(spec_.first_date);
    if (d < first) d = first;
    switch (spec_.recurrence) {
        case Recurrence::Once:
            if (d != first) return std::nullopt;
            break;
        case Recurrence::Daily:
            break;
        case Recurrence::Weekdays:
            for (int i = 0; i < 7 && !spec_.weekdays[std::chrono::weekday(d).c_encoding()]; ++i) d += days(1);
            break;
        case Recurrence::EveryNDays: {
            const auto n = static_cast<std::int64_t>(spec_.every_days);
            const auto rem = static_cast<std::int64_t>((d - first).count()) % n;
            if (rem != 0) d += days(n - rem);
            break;
        }
    }
    if (spec_.until && d > sys_days(*spec_.until)) return std::nullopt;
    return d;
}

Instant Schedule::start_of(sys_days local_date) const {
    return to_instant(*tz_, std::chrono::local_days(local_date.time_since_epoch()) + spec_.start_time);
}

Occurrence Schedule::occurrence_on(sys_days local_date) const {
    Occurrence o;
    o.local_start = std::chrono::local_days(local_date.time_since_epoch()) + spec_.start_time;
    o.start = to_instant(*tz_, o.local_start);
    if (spec_.duration) {
        auto end = to_instant(*tz_, o.local_start + *spec_.duration);
        if (end <= o.start) end = o.start + *spec_.duration;
        o.end = end;
    }
    return o;
}

sys_days Schedule::local_date_of(Instant t) const {
    const date::sys_seconds s(std::chrono::floor<seconds>(t.time_since_epoch()));
    const auto info = tz_->get_info(s);
    const auto local = s.time_since_epoch() + info.offset;
    return sys_days(std::chrono::floor<days>(local));
}

std::optional<Occurrence> Schedule::next_after(Instant t) const {
    auto d = local_date_of(t) - days(2);
    for (std::size_t i = 0; i < kMaxSteps; ++i) {
        const auto m = next_matching_date(d);
        if (!m) return std::nullopt;
        auto o = occurrence_on(*m);
        if (o.start > t) return o;
        d = *m + days(1);
    }
    return std::nullopt;
}

std::vector<Occurrence> Schedule::occurrences_between(Instant from, Instant to, std::size_t limit) const {
    std::vector<Occurrence> out;
    auto o = next_after(from - milliseconds(1));
    while (o && o->start < to && out.size() < limit) {
        out.push_back(*o);
        o = next_after(o->start);
    }
    return out;
}

std::optional<Occurrence> Schedule::active_at(Instant t, std::optional<milliseconds> content_length) const {
    std::optional<milliseconds> length;
    if (spec_.duration) {
        length = std::chrono::duration_cast<milliseconds>(*spec_.duration);
    } else {
        length = content_length;
    }
    if (!length || *length <= milliseconds(0)) return std::nullopt;
    // A window that ends after t started at most `length` (+ a DST hour) ago.
    const auto lookback = std::chrono::ceil<days>(*length) + days(2);
    auto d = local_date_of(t) - lookback;
    std::optional<Occurrence> latest;
    for (std::size_t i = 0; i < kMaxSteps; ++i) {
        const auto m = next_matching_date(d);
        if (!m) break;
        auto o = occurrence_on(*m);
        if (o.start > t) break;
        latest = o;
        d = *m + days(1);
    }
    if (!latest) return std::nullopt;
    if (!latest->end) latest->end = latest->start + *length;
    if (t >= *latest->end) return std::nullopt;
    return latest;
}

StartDecision Schedule::decide_start(Instant now, std::optional<milliseconds> content_length) const {
    StartDecision d;
    const auto occ = active_at(now, content_length);
    if (!occ) return d;
    d.occurrence = occ;
    d.lateness = now - occ->start;
    if (d.lateness <= spec_.grace) {
        d.action = StartDecision::Action::Play;
        return d;
    }
    switch (spec_.late_policy) {
        case LatePolicy::Resume:
            if (content_length && d.lateness >= *content_length) return StartDecision{};
            d.action = StartDecision::Action::Play;
            d.offset = d.lateness;
            break;
        case LatePolicy::Restart:
            d.action = StartDecision::Action::Play;
            break;
        case LatePolicy::Skip:
            d.action = StartDecision::Action::Skip;
            break;
    }
    return d;
}

}  // namespace loa::engine
