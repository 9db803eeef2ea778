#pragma once
// When a scheduled programme plays: one-shot and recurring windows (daily,
// chosen weekdays, every N days) in an IANA time zone (default
// Asia/Ho_Chi_Minh), their next occurrences, and what to do when a window is
// found already running (late start, restart of the engine inside it).
//
// Semantics:
//   - A schedule starts on `first_date` at `start_time` local time. Its window
//     lasts `duration`, or ends at `end` (the local end of the first window;
//     later windows keep the same local length). Both are optional: without
//     them the window is the content length the caller passes. A window may
//     cross midnight; it must be shorter than the shortest gap between two
//     starts, so windows never overlap.
//   - Recurrence picks the local dates on which a window starts: once
//     (first_date only), daily, chosen weekdays, or every N days counted from
//     first_date; never before first_date nor after `until` (inclusive).
//   - Local times map to instants with the zone's rules, as RFC 5545 does: a
//     time skipped by a DST jump is read with the offset before the jump (so
//     02:30 on a spring-forward night starts at 03:30), a repeated time takes
//     its first occurrence. A window's end is its local start + the local
//     length, mapped the same way (20:00-22:00 stays 20:00-22:00 on a DST
//     night); an end that would not fall after the start is start + length.
//   - Late start: a window found running `lateness` after its start (a tick of
//     the scheduler, an engine restart) plays from the start when lateness <=
//     grace; beyond that per policy: Resume joins at offset = lateness (the
//     end stays where it was planned), Restart plays from the start, Skip lets
//     this occurrence go.
//
// Time is passed in (`Instant`); nothing here reads a clock.
//
// Threads: a Schedule is immutable after make(); any thread may query it.

#include <bitset>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loa/engine/outcome.h"

namespace date {
class time_zone;
}

namespace loa::engine {

using Instant = std::chrono::sys_time<std::chrono::milliseconds>;

inline constexpr std::string_view kDefaultTimeZone = "Asia/Ho_Chi_Minh";

enum class Recurrence : std::uint8_t { Once, Daily, Weekdays, EveryNDays };

enum class LatePolicy : std::uint8_t {
    Resume,   // join in progress at the offset the window has reached
    Restart,  // play from the start, late
    Skip,     // let this occurrence go
};

std::string_view to_string(Recurrence r) noexcept;
std::string_view to_string(LatePolicy p) noexcept;
std::optional<Recurrence> parse_recurrence(std::string_view text) noexcept;
std::optional<LatePolicy> parse_late_policy(std::string_view text) noexcept;

struct ScheduleSpec {
    std::string time_zone = std::string(kDefaultTimeZone);
    Recurrence recurrence = Recurrence::Once;
    std::chrono::year_month_day first_date{};
    std::chrono::seconds start_time{0};  // local time of day, [0, 24 h)
    std::optional<std::chrono::seconds> duration;       // window length; > 0
    std::optional<std::chrono::local_seconds> end;      // or: local end of the first window; > start
    std::optional<std::chrono::year_month_day> until;  // last local date a window may start
    /// Weekdays with a window, indexed by std::chrono::weekday::c_encoding()
    /// (0 = Sunday). Used by Recurrence::Weekdays.
    std::bitset<7> weekdays;
    std::uint32_t every_days = 1;  // Recurrence::EveryNDays: N in 1..366
    LatePolicy late_policy = LatePolicy::Resume;
    std::chrono::milliseconds grace{2000};  // lateness that still starts from the top
};

/// One window.
struct Occurrence {
    Instant start;
    std::optional<Instant> end;  // absent when the schedule has no duration
    std::chrono::local_seconds local_start;  // for display
};

/// What to do at `now` (decide_start()).
struct StartDecision {
    enum class Action : std::uint8_t {
        Idle,  // no window is running
        Play,  // play now, from `offset` into the content
        Skip,  // a window is running but the policy lets it go
    };
    Action action = Action::Idle;
    std::optional<Occurrence> occurrence;  // the running window (Play, Skip)
    std::chrono::milliseconds lateness{0};  // now - occurrence start
    std::chrono::milliseconds offset{0};    // where to begin in the content (Play)
};

class Schedule {
public:
    /// Validates `spec` and resolves its time zone. INVALID_ARGUMENT with a
    /// clear message: unknown time zone, invalid date, start time outside a
    /// day, end not after start (or both end and duration), duration not
    /// positive, window as long as the gap between starts,
    /// until before first_date, no weekday chosen, N out of range, negative
    /// grace. (Reads the system tz database under /usr/share/zoneinfo on
    /// first use.)
    static Result<Schedule> make(ScheduleSpec spec);

    const ScheduleSpec& spec() const noexcept { return spec_; }

    /// The first window starting strictly after `t`, if any.
    std::optional<Occurrence> next_after(Instant t) const;
    /// Windows starting in [from, to), in order, at most `limit`.
    std::vector<Occurrence> occurrences_between(Instant from, Instant to, std::size_t limit = 1000) const;
    /// The window running at `t` (start <= t < end). Without a duration the
    /// window's length is `content_length`; without either, none runs.
    std::optional<Occurrence> active_at(Instant t, std::optional<std::chrono::milliseconds> content_length = {}) const;
    /// Late-start policy applied at `now`; see the file comment. Resume past
    /// the end of the content (`content_length`, when known) is Idle.
    StartDecision decide_start(Instant now, std::optional<std::chrono::milliseconds> content_length = {}) const;

private:
    explicit Schedule(ScheduleSpec spec, const date::time_zone* tz) : spec_(std::move(spec)), tz_(tz) {}

    std::optional<std::chrono::sys_days> next_matching_date(std::chrono::sys_days d) const noexcept;
    Instant start_of(std::chrono::sys_days local_date) const;
    Occurrence occurrence_on(std::chrono::sys_days local_date) const;
    std::chrono::sys_days local_date_of(Instant t) const;

    ScheduleSpec spec_;
    const date::time_zone* tz_ = nullptr;  // owned by the tz database, lives for the process
};

}  // namespace loa::engine
