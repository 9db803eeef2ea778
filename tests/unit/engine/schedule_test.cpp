#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "loa/engine/schedule.h"

using namespace loa::engine;
using namespace std::chrono;

namespace {

Instant utc(int y, unsigned mo, unsigned d, int h, int mi, int s = 0) {
    return Instant(sys_days(year(y) / month(mo) / day(d)) + hours(h) + minutes(mi) + seconds(s));
}

ScheduleSpec daily(const char* tz, year_month_day first, seconds start, std::optional<seconds> length = {}) {
    ScheduleSpec s;
    s.time_zone = tz;
    s.recurrence = Recurrence::Daily;
    s.first_date = first;
    s.start_time = start;
    s.duration = length;
    return s;
}

Schedule make(const ScheduleSpec& spec) {
    auto s = Schedule::make(spec);
    INFO((s.ok() ? std::string() : s.error().message));
    REQUIRE(s.ok());
    return std::move(s).value();
}

// Milliseconds since the epoch, for readable failures.
std::int64_t ms(Instant t) { return t.time_since_epoch().count(); }
std::int64_t ms(const std::optional<Occurrence>& o) { return o ? ms(o->start) : -1; }

}  // namespace

TEST_CASE("default_time_zone_is_ho_chi_minh_without_dst", "[schedule]") {
    ScheduleSpec spec;
    CHECK(spec.time_zone == "Asia/Ho_Chi_Minh");
    spec.recurrence = Recurrence::Daily;
    spec.first_date = 2024y / January / 1;
    spec.start_time = hours(6);
    const auto s = make(spec);
    // 06:00 +07 is 23:00 UTC the day before, all year round.
    CHECK(ms(s.next_after(utc(2024, 3, 10, 0, 0))) == ms(utc(2024, 3, 10, 23, 0)));
    CHECK(ms(s.next_after(utc(2024, 7, 10, 0, 0))) == ms(utc(2024, 7, 10, 23, 0)));
    // Strictly after: an instant equal to a start yields the next day's.
    CHECK(ms(s.next_after(utc(2024, 7, 10, 23, 0))) == ms(utc(2024, 7, 11, 23, 0)));
    // Before the first date: the first window.
    CHECK(ms(s.next_after(utc(2023, 6, 1, 0, 0))) == ms(utc(2023, 12, 31, 23, 0)));
    const auto next = s.next_after(utc(2024, 7, 10, 0, 0));
    REQUIRE(next);
    CHECK(next->local_start == local_days(2024y / July / 11) + hours(6));
    CHECK_FALSE(next->end);
}

TEST_CASE("dst_zone_next_occurrences", "[schedule]") {
    // Europe/Berlin: CET +01 -> CEST +02 at 2024-03-31 02:00, back at 2024-10-27 03:00.
    const auto eight = make(daily("Europe/Berlin", 2024y / March / 29, hours(8)));
    CHECK(ms(eight.next_after(utc(2024, 3, 30, 0, 0))) == ms(utc(2024, 3, 30, 7, 0)));
    CHECK(ms(eight.next_after(utc(2024, 3, 30, 7, 0))) == ms(utc(2024, 3, 31, 6, 0)));
    CHECK(ms(eight.next_after(utc(2024, 10, 26, 12, 0))) == ms(utc(2024, 10, 27, 7, 0)));

    // 02:30 does not exist on 31 March: it is read with the offset before the
    // jump (03:30 CEST). It exists twice on 27 October: the first is taken.
    const auto early = make(daily("Europe/Berlin", 2024y / March / 29, hours(2) + minutes(30)));
    CHECK(ms(early.next_after(utc(2024, 3, 30, 0, 0))) == ms(utc(2024, 3, 30, 1, 30)));
    CHECK(ms(early.next_after(utc(2024, 3, 30, 12, 0))) == ms(utc(2024, 3, 31, 1, 30)));
    CHECK(ms(early.next_after(utc(2024, 3, 31, 12, 0))) == ms(utc(2024, 4, 1, 0, 30)));
    CHECK(ms(early.next_after(utc(2024, 10, 26, 12, 0))) == ms(utc(2024, 10, 27, 0, 30)));
    CHECK(ms(early.next_after(utc(2024, 10, 27, 12, 0))) == ms(utc(2024, 10, 28, 1, 30)));

    // A window keeps its local end across the jump: 01:00-04:00 is 2 h that night.
    const auto night = make(daily("Europe/Berlin", 2024y / March / 29, hours(1), hours(3)));
    const auto o = night.next_after(utc(2024, 3, 30, 12, 0));
    REQUIRE(o);
    REQUIRE(o->end);
    CHECK(ms(o->start) == ms(utc(2024, 3, 31, 0, 0)));
    CHECK(ms(*o->end) == ms(utc(2024, 3, 31, 2, 0)));
}

TEST_CASE("recurring_schedule_across_midnight", "[schedule]") {
    // 23:30-00:30 every day in Ho Chi Minh City (+07).
    const auto s = make(daily("Asia/Ho_Chi_Minh", 2024y / May / 1, hours(23) + minutes(30), hours(1)));
    const auto at_0010 = utc(2024, 5, 1, 17, 10);  // 2 May 00:10 local
    const auto running = s.active_at(at_0010);
    REQUIRE(running);
    CHECK(ms(running->start) == ms(utc(2024, 5, 1, 16, 30)));  // 1 May 23:30 local
    REQUIRE(running->end);
    CHECK(ms(*running->end) == ms(utc(2024, 5, 1, 17, 30)));
    CHECK(ms(s.next_after(at_0010)) == ms(utc(2024, 5, 2, 16, 30)));
    CHECK_FALSE(s.active_at(utc(2024, 5, 1, 17, 40)));  // 00:40: over
    CHECK_FALSE(s.active_at(utc(2024, 5, 1, 16, 29)));  // 23:29: not yet

    // Fridays 23:00 to Saturday 01:00, given as an end.
    ScheduleSpec fri;
    fri.recurrence = Recurrence::Weekdays;
    fri.weekdays.set(Friday.c_encoding());
    fri.first_date = 2024y / May / 3;  // a Friday
    fri.start_time = hours(23);
    fri.end = local_days(2024y / May / 4) + hours(1);
    const auto f = make(fri);
    CHECK(f.spec().duration == hours(2));
    const auto sat_0030 = utc(2024, 5, 10, 17, 30);  // Saturday 11 May 00:30 local
    const auto o = f.active_at(sat_0030);
    REQUIRE(o);
    CHECK(ms(o->start) == ms(utc(2024, 5, 10, 16, 0)));  // Friday 10 May 23:00 local
    CHECK_FALSE(f.active_at(utc(2024, 5, 10, 18, 30)));  // Saturday 01:30
    CHECK(ms(f.next_after(sat_0030)) == ms(utc(2024, 5, 17, 16, 0)));
}

TEST_CASE("weekdays_and_every_n_days", "[schedule]") {
    ScheduleSpec mwf;
    mwf.recurrence = Recurrence::Weekdays;
    mwf.weekdays.set(Monday.c_encoding()).set(Wednesday.c_encoding()).set(Friday.c_encoding());
    mwf.first_date = 2024y / May / 1;
    mwf.start_time = hours(7);
    const auto w = make(mwf);
    // Week of Monday 6 May, local midnight to midnight.
    const auto list = w.occurrences_between(utc(2024, 5, 5, 17, 0), utc(2024, 5, 12, 17, 0));
    REQUIRE(list.size() == 3);
    CHECK(ms(list[0].start) == ms(utc(2024, 5, 6, 0, 0)));
    CHECK(ms(list[1].start) == ms(utc(2024, 5, 8, 0, 0)));
    CHECK(ms(list[2].start) == ms(utc(2024, 5, 10, 0, 0)));
    CHECK(w.occurrences_between(utc(2024, 5, 5, 17, 0), utc(2024, 5, 12, 17, 0), 2).size() == 2);

    ScheduleSpec every3;
    every3.recurrence = Recurrence::EveryNDays;
    every3.every_days = 3;
    every3.first_date = 2024y / January / 1;
    every3.until = 2024y / January / 7;
    every3.start_time = hours(7);
    const auto e = make(every3);
    const auto all = e.occurrences_between(utc(2023, 12, 1, 0, 0), utc(2024, 2, 1, 0, 0));
    REQUIRE(all.size() == 3);
    CHECK(ms(all[0].start) == ms(utc(2024, 1, 1, 0, 0)));
    CHECK(ms(all[1].start) == ms(utc(2024, 1, 4, 0, 0)));
    CHECK(ms(all[2].start) == ms(utc(2024, 1, 7, 0, 0)));
    CHECK(ms(e.next_after(utc(2024, 1, 5, 0, 0))) == ms(utc(2024, 1, 7, 0, 0)));
    CHECK_FALSE(e.next_after(utc(2024, 1, 7, 0, 0)));
}

TEST_CASE("one_shot_schedule", "[schedule]") {
    ScheduleSpec once;
    once.first_date = 2024y / June / 1;
    once.start_time = hours(19);
    once.duration = minutes(30);
    const auto s = make(once);
    CHECK(ms(s.next_after(utc(2024, 1, 1, 0, 0))) == ms(utc(2024, 6, 1, 12, 0)));
    CHECK_FALSE(s.next_after(utc(2024, 6, 1, 12, 0)));
    CHECK(s.active_at(utc(2024, 6, 1, 12, 29)));
    CHECK_FALSE(s.active_at(utc(2024, 6, 1, 12, 30)));
    CHECK(s.occurrences_between(utc(2024, 6, 1, 12, 0), utc(2024, 6, 1, 12, 1)).size() == 1);
}

TEST_CASE("restart_inside_schedule_window_resumes_at_offset", "[schedule]") {
    // 08:00-09:00 daily in Ho Chi Minh City; the engine comes back at 08:20:30.
    auto spec = daily("Asia/Ho_Chi_Minh", 2024y / May / 1, hours(8), hours(1));
    const auto restart = utc(2024, 5, 5, 1, 20, 30);
    {
        const auto d = make(spec).decide_start(restart);
        CHECK(d.action == StartDecision::Action::Play);
        CHECK(d.offset == minutes(20) + seconds(30));
        CHECK(d.lateness == minutes(20) + seconds(30));
        REQUIRE(d.occurrence);
        CHECK(ms(d.occurrence->start) == ms(utc(2024, 5, 5, 1, 0)));
    }
    // Within the grace: from the top.
    CHECK(make(spec).decide_start(utc(2024, 5, 5, 1, 0, 1)).offset == milliseconds(0));
    CHECK(make(spec).decide_start(utc(2024, 5, 5, 1, 0, 1)).action == StartDecision::Action::Play);
    // Outside the window: nothing.
    CHECK(make(spec).decide_start(utc(2024, 5, 5, 2, 0)).action == StartDecision::Action::Idle);
    CHECK(make(spec).decide_start(utc(2024, 5, 5, 0, 59, 59)).action == StartDecision::Action::Idle);
    // Resume past the end of a 15-minute playlist: nothing left.
    CHECK(make(spec).decide_start(restart, minutes(15)).action == StartDecision::Action::Idle);

    spec.late_policy = LatePolicy::Restart;
    {
        const auto d = make(spec).decide_start(restart);
        CHECK(d.action == StartDecision::Action::Play);
        CHECK(d.offset == milliseconds(0));
    }
    spec.late_policy = LatePolicy::Skip;
    CHECK(make(spec).decide_start(restart).action == StartDecision::Action::Skip);

    // No duration: the window is the content.
    auto open = daily("Asia/Ho_Chi_Minh", 2024y / May / 1, hours(8));
    const auto s = make(open);
    const auto d = s.decide_start(utc(2024, 5, 5, 1, 5), minutes(10));
    CHECK(d.action == StartDecision::Action::Play);
    CHECK(d.offset == minutes(5));
    REQUIRE(d.occurrence);
    REQUIRE(d.occurrence->end);
    CHECK(ms(*d.occurrence->end) == ms(utc(2024, 5, 5, 1, 10)));
    CHECK(s.decide_start(utc(2024, 5, 5, 1, 12), minutes(10)).action == StartDecision::Action::Idle);
    CHECK(s.decide_start(utc(2024, 5, 5, 1, 5)).action == StartDecision::Action::Idle);
}

TEST_CASE("invalid_schedules_are_refused", "[schedule]") {
    auto base = daily("Asia/Ho_Chi_Minh", 2024y / May / 1, hours(8), hours(1));
    auto refused = [](ScheduleSpec spec, const char* needle) {
        const auto s = Schedule::make(std::move(spec));
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().code == loa::engine::RpcCode::InvalidArgument);
        INFO(s.error().message);
        CHECK(s.error().message.find(needle) != std::string::npos);
    };
    {
        auto s = base;
        s.time_zone = "Mars/Olympus_Mons";
        refused(s, "Mars/Olympus_Mons");
    }
    {
        auto s = base;
        s.duration.reset();
        s.end = local_days(2024y / May / 1) + hours(7);  // before 08:00
        refused(s, "is not after start");
    }
    {
        auto s = base;
        s.end = local_days(2024y / May / 1) + hours(9);
        refused(s, "not both");
    }
    {
        auto s = base;
        s.duration = hours(25);
        refused(s, "next one starts");
    }
    {
        auto s = base;
        s.duration = seconds(0);
        refused(s, "positive");
    }
    {
        auto s = base;
        s.until = 2024y / April / 30;
        refused(s, "before the first date");
    }
    {
        auto s = base;
        s.first_date = 2024y / February / 30;
        refused(s, "not a valid date");
    }
    {
        auto s = base;
        s.start_time = hours(24);
        refused(s, "within a day");
    }
    {
        auto s = base;
        s.recurrence = Recurrence::Weekdays;
        refused(s, "weekday");
    }
    {
        auto s = base;
        s.recurrence = Recurrence::EveryNDays;
        s.every_days = 0;
        refused(s, "1..366");
    }
    {
        // Mondays and Tuesdays: windows must be shorter than one day.
        auto s = base;
        s.recurrence = Recurrence::Weekdays;
        s.weekdays.set(Monday.c_encoding()).set(Tuesday.c_encoding());
        s.duration = hours(24);
        refused(s, "1 day");
        s.duration = hours(23);
        CHECK(Schedule::make(s).ok());
    }
    // A one-shot window may be as long as it likes; links resolve too.
    auto once = base;
    once.recurrence = Recurrence::Once;
    once.duration = hours(48);
    once.time_zone = "Asia/Saigon";
    CHECK(Schedule::make(once).ok());
}

TEST_CASE("schedule_names_round_trip", "[schedule]") {
    for (auto r : {Recurrence::Once, Recurrence::Daily, Recurrence::Weekdays, Recurrence::EveryNDays}) {
        CHECK(parse_recurrence(to_string(r)) == r);
    }
    for (auto p : {LatePolicy::Resume, LatePolicy::Restart, LatePolicy::Skip}) {
        CHECK(parse_late_policy(to_string(p)) == p);
    }
    CHECK_FALSE(parse_recurrence("hourly"));
    CHECK_FALSE(parse_late_policy("later"));
}
