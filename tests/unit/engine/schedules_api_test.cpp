// Schedules through the Control service: CreateSchedule / ListSchedules /
// DeleteSchedule / NextOccurrences, the tick that starts and stops a
// window's programme, the late policy after an engine restart inside a
// window, an alert over a schedule, refusals that store nothing, and the
// playlist source's start offset. Time is a ManualClock set to local times
// in Asia/Ho_Chi_Minh (UTC+7, no DST); audio is checked by content and
// order, never by wall time.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sqlite3.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "loa/codecs/tone_analysis.h"
#include "loa/codecs/wav_writer.h"
#include "loa/engine/alert_control.h"
#include "loa/engine/clip_catalog.h"
#include "loa/engine/control_service.h"
#include "loa/engine/engine.h"
#include "loa/engine/playlist.h"
#include "loa/engine/programme_control.h"
#include "loa/engine/programme_manager.h"
#include "loa/engine/schedule_control.h"
#include "control_calls.h"
#include "rtp_listener.h"
#include "temp_dir.h"

using namespace loa::engine;
namespace pb = loa::control::v1;
using loa::test::file_bytes;
using loa::test::write_sine;
using boost::asio::ip::udp;

namespace {

constexpr std::size_t kFrame = 960;  // 20 ms at 48 kHz

/// Unix ns of a local time in Asia/Ho_Chi_Minh (UTC+7) on `day` of March 2026.
std::int64_t hcm_ns(unsigned day, int h, int m, int s = 0) {
    const auto t = std::chrono::sys_days(std::chrono::year(2026) / std::chrono::March / std::chrono::day(day)) +
                   std::chrono::hours(h - 7) + std::chrono::minutes(m) + std::chrono::seconds(s);
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
std::int64_t hcm_ms(unsigned day, int h, int m, int s = 0) { return hcm_ns(day, h, m, s) / 1'000'000; }

struct Played {
    std::vector<float> pcm;
    std::vector<std::uint32_t> items;  // item of every frame
    std::size_t frames() const { return items.size(); }
};

// Plays a playlist source to its end, waiting for its producer (never for
// the clock).
Played play_out(PlaylistSource& src, std::size_t max_frames = 20000) {
    Played out;
    std::array<float, kFrame> frame{};
    for (std::size_t n = 0; n < max_frames; ++n) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (src.buffered() == 0 && !src.produced_all() && std::chrono::steady_clock::now() < until) {
            std::this_thread::yield();
        }
        if (!src.render(frame)) return out;
        out.pcm.insert(out.pcm.end(), frame.begin(), frame.end());
        out.items.push_back(src.progress().item.load());
    }
    FAIL("the playlist did not end");
    return out;
}

// The tones of a stretch, in order: 100 ms windows fitted with an SNR of
// 20 dB or more, equal neighbours collapsed.
std::vector<int> tones_of(const std::vector<float>& pcm) {
    std::vector<int> out;
    for (std::size_t at = 0; at + 4800 <= pcm.size(); at += 4800) {
        const auto fit = loa::codecs::fit_tone(std::span<const float>(pcm.data() + at, 4800));
        if (fit.snr_db < 20.0) continue;
        const int hz = static_cast<int>(std::lround(fit.frequency_hz));
        if (out.empty() || std::abs(out.back() - hz) > 5) out.push_back(hz);
    }
    return out;
}

using Listener = loa::test::RtpListener;

EngineConfig engine_config() {
    EngineConfig c;
    c.engine.listen = udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0);
    c.engine.fanout_threads = 1;
    c.engine.realtime_priority = 0;
    return c;
}

// Zones P > D > {A, B}; cluster a in A, b in B. The control side can be
// torn down without ending anything, as a killed engine would, and built
// again on the same database. The control clock starts at 22:00:00 local
// time on 10 March 2026 (a Tuesday).
struct Fixture : loa::test::ControlCalls<Fixture> {
    ControlService& control_service() { return *service; }

    loa::test::TempDir dir{"loa-schedules"};
    Store store{dir / "state.db"};
    ManualClock clock{0, hcm_ns(10, 22, 0)};
    SystemClock media_clock;
    Engine engine;
    Listener a, b;
    std::unique_ptr<ControlService> service;
    std::unique_ptr<ProgrammeManager> manager;
    std::unique_ptr<ProgrammeControl> programmes;
    std::unique_ptr<AlertControl> alerts;
    std::unique_ptr<ScheduleControl> schedules;
    std::vector<std::string> restore_problems;

    explicit Fixture(bool start_media) : engine(engine_config(), media_clock) {
        store.write([&] {
            store.insert_zone({"P", "Province", ZoneKind::Province, ""});
            store.insert_zone({"D", "District", ZoneKind::District, "P"});
            store.insert_zone({"A", "Commune A", ZoneKind::Commune, "D"});
            store.insert_zone({"B", "Commune B", ZoneKind::Commune, "D"});
            store.insert_cluster({"a", "a", "A", a.address(), "", true});
            store.insert_cluster({"b", "b", "B", b.address(), "", true});
        });
        if (start_media) engine.start();
        open();
    }
    ~Fixture() {
        close();
        engine.stop();
    }

    void open() {
        service = std::make_unique<ControlService>(store, clock, 1000);
        manager = std::make_unique<ProgrammeManager>(engine);
        programmes = std::make_unique<ProgrammeControl>(store, *manager, clock);
        programmes->set_clip_dir(service->clip_catalog().dir());
        REQUIRE(programmes->refresh_topology().ok());
        REQUIRE(programmes->restore().empty());
        service->set_programme_control(programmes.get());
        alerts = std::make_unique<AlertControl>(store, *manager, clock);
        alerts->set_clip_dir(service->clip_catalog().dir());
        service->set_alert_control(alerts.get());
        REQUIRE(alerts->restore().empty());
        schedules = std::make_unique<ScheduleControl>(store, *manager, clock);
        schedules->set_clip_dir(service->clip_catalog().dir());
        restore_problems = schedules->restore();
        service->set_schedule_control(schedules.get());
    }
    // Drops the control side without ending anything (a crash, as far as the
    // database is concerned).
    void close() {
        if (!service) return;
        service->set_schedule_control(nullptr);
        service->set_alert_control(nullptr);
        service->set_programme_control(nullptr);
        schedules.reset();
        alerts.reset();
        programmes.reset();
        manager.reset();
        service.reset();
    }

    /// A one-shot on 10 March at `start` for `duration_s`, playing `clip`.
    static pb::CreateScheduleRequest once(const std::string& name, const std::string& zone, const std::string& start,
                                          double duration_s, std::uint64_t clip) {
        pb::CreateScheduleRequest r;
        r.set_name(name);
        r.add_zone_ids(zone);
        r.set_recurrence(pb::RECURRENCE_ONCE);
        r.set_first_date("2026-03-10");
        r.set_start_time(start);
        r.set_duration_s(duration_s);
        r.add_items()->set_clip_id(clip);
        return r;
    }

    std::uint64_t create(const pb::CreateScheduleRequest& r, const std::string& token = {}) {
        return ok<pb::CreateScheduleResponse>("CreateSchedule", r, token).id();
    }

    std::int64_t now_ms() const { return clock.unix_ns() / 1'000'000; }
    void advance_ms(std::int64_t ms) { clock.advance(ms * 1'000'000); }
    void set_ms(std::int64_t unix_ms) { clock.advance(unix_ms * 1'000'000 - clock.unix_ns()); }
    void tick() { service->tick(now_ms()); }

    static std::uint64_t pid(std::uint64_t schedule) { return ScheduleControl::kProgrammeIdBase + schedule; }
    bool on_air(std::uint64_t schedule) const { return manager->contains(pid(schedule)); }

    std::vector<EventRow> events_of(int kind, std::uint64_t after = 0) const {
        std::vector<EventRow> out;
        for (auto& e : store.events_after(after, 1000)) {
            if (e.kind == kind) out.push_back(std::move(e));
        }
        return out;
    }

    // The schedule's playlist source inside the engine (engine not started only).
    PlaylistSource* source_of(std::uint64_t schedule) {
        const auto group = manager->group_of(pid(schedule));
        REQUIRE(group);
        const Program* p = engine.runtime_programme(*group);
        REQUIRE(p != nullptr);
        REQUIRE(p->sources().size() == 1);
        return dynamic_cast<PlaylistSource*>(p->sources().front().get());
    }

    std::optional<ScheduleRow> row(std::uint64_t id) const {
        for (auto& r : store.schedules()) {
            if (r.id == id) return r;
        }
        return std::nullopt;
    }

    // What must not change when a call is refused.
    std::string snapshot() const {
        std::ostringstream os;
        os << store.schedules().size() << "|" << store.last_event_seq() << "|" << manager->list().size() << "|"
           << schedules->size();
        for (const auto& c : store.clips()) os << "|" << c.id << ":" << c.uses;
        return os.str();
    }
};

}  // namespace

TEST_CASE("playlist_starts_at_an_offset", "[engine][schedules][playlist]") {
    loa::test::TempDir dir("loa-playlist-offset");
    write_sine(dir / "msg.wav", 440.0, 1.0);
    auto spec_at = [&](std::int64_t offset_ms) {
        PlaylistSpec spec;
        spec.items.push_back(PlaylistItem::tone_sequence({{1000.0, 500}}, -12.0));  // 25 frames
        spec.items.push_back(PlaylistItem::gap(300));                               // 15 frames
        spec.items.push_back(PlaylistItem::clip(dir / "msg.wav", -3.0));            // 50 frames
        spec.repeats = 2;
        spec.interval_ms = 200;  // 10 frames before the second play
        spec.start_offset_ms = offset_ms;
        spec.progress = std::make_shared<PlaylistProgress>();
        return spec;
    };
    PlaylistSource whole(spec_at(0), kFrame);
    const auto all = play_out(whole);
    REQUIRE(all.frames() == 2 * 90 + 10);
    CHECK(tones_of(all.pcm) == std::vector<int>{1000, 440, 1000, 440});

    // Offsets in the tones, the gap, the clip, the interval, the second play,
    // and one that is not a whole frame: what plays is the rest of the whole
    // play-out, sample for sample.
    for (const std::int64_t offset : {0, 100, 610, 1000, 1830, 1990, 2345}) {
        INFO("offset " << offset << " ms");
        PlaylistSource part(spec_at(offset), kFrame);
        const auto rest = play_out(part);
        const auto skipped = static_cast<std::size_t>(offset / 20);
        REQUIRE(rest.frames() == all.frames() - skipped);
        CHECK(rest.items.front() == all.items[skipped]);
        CHECK(std::equal(rest.pcm.begin(), rest.pcm.end(), all.pcm.begin() + static_cast<std::ptrdiff_t>(skipped * kFrame)));
        CHECK(part.progress().finished.load());
        if (offset > 0) CHECK(part.description().find("from " + std::to_string(offset) + " ms") != std::string::npos);
    }

    // Past the end: nothing plays, the source ends at once.
    PlaylistSource past(spec_at(10'000), kFrame);
    CHECK(play_out(past).frames() == 0);
    CHECK(past.progress().finished.load());
}

TEST_CASE("scheduled_programme_runs_across_midnight", "[engine][schedules]") {
    Fixture f(false);
    const auto clip = f.upload_sine(440.0, 1.0);
    // Every night 23:30 - 00:30, from 10 March.
    pb::CreateScheduleRequest req;
    req.set_name("late news");
    req.add_zone_ids("A");
    req.set_recurrence(pb::RECURRENCE_DAILY);
    req.set_first_date("2026-03-10");
    req.set_start_time("23:30");
    req.set_end_time("00:30");
    req.add_items()->set_clip_id(clip);
    const auto created = f.ok<pb::CreateScheduleResponse>("CreateSchedule", req);
    const auto id = created.id();
    REQUIRE(created.next_size() == 3);
    CHECK(created.next(0).local_start() == "2026-03-10 23:30:00");
    CHECK(created.next(0).start_unix_ms() == hcm_ms(10, 23, 30));
    CHECK(created.next(0).end_unix_ms() == hcm_ms(11, 0, 30));
    CHECK(created.next(1).local_start() == "2026-03-11 23:30:00");
    CHECK(created.next(0).time_zone() == "Asia/Ho_Chi_Minh");
    const auto stored = f.row(id);
    REQUIRE(stored);
    CHECK(stored->duration_s == 3600);
    CHECK(f.store.clip(static_cast<std::int64_t>(clip))->uses == 1);
    CHECK(f.events_of(pb::SCHEDULE_CREATED).size() == 1);

    // Two nights ahead: two windows, in order.
    pb::NextOccurrencesRequest next;
    next.set_hours(48);
    const auto occ = f.ok<pb::NextOccurrencesResponse>("NextOccurrences", next);
    REQUIRE(occ.occurrences_size() == 2);
    CHECK(occ.occurrences(0).local_start() == "2026-03-10 23:30:00");
    CHECK(occ.occurrences(1).local_start() == "2026-03-11 23:30:00");
    CHECK(occ.occurrences(0).schedule_name() == "late news");
    CHECK_FALSE(occ.occurrences(0).on_air());

    const auto seq = f.store.last_event_seq();
    f.tick();
    CHECK_FALSE(f.on_air(id));
    f.set_ms(hcm_ms(10, 23, 30) - 1);
    f.tick();
    CHECK_FALSE(f.on_air(id));
    f.advance_ms(1);
    f.tick();
    REQUIRE(f.on_air(id));
    const auto info = f.manager->info(Fixture::pid(id));
    CHECK(info->level == Priority::Scheduled);
    CHECK(info->target_zones == std::vector<std::string>{"A"});
    CHECK(info->state == ProgrammeState::Audible);
    auto started = f.events_of(pb::PROGRAMME_STARTED, seq);
    REQUIRE(started.size() == 1);
    CHECK(started[0].message.find("2026-03-10 23:30:00 Asia/Ho_Chi_Minh") != std::string::npos);
    CHECK(started[0].zone_id == "A");

    // Past midnight the window of the 10th plays on.
    f.set_ms(hcm_ms(11, 0, 10));
    f.tick();
    CHECK(f.on_air(id));
    pb::ListSchedulesRequest list;
    auto listed = f.ok<pb::ListSchedulesResponse>("ListSchedules", list);
    REQUIRE(listed.schedules_size() == 1);
    CHECK(listed.schedules(0).programme_id() == Fixture::pid(id));
    CHECK(listed.schedules(0).start_time() == "23:30:00");
    CHECK(listed.schedules(0).duration_s() == 3600.0);
    REQUIRE(listed.schedules(0).next_size() == 4);  // on air + 3 next
    CHECK(listed.schedules(0).next(0).on_air());
    CHECK(listed.schedules(0).next(0).local_start() == "2026-03-10 23:30:00");
    CHECK(listed.schedules(0).next(1).local_start() == "2026-03-11 23:30:00");

    // 00:30 closes it.
    f.set_ms(hcm_ms(11, 0, 30) - 1);
    f.tick();
    CHECK(f.on_air(id));
    f.advance_ms(1);
    f.tick();
    CHECK_FALSE(f.on_air(id));
    const auto stopped = f.events_of(pb::PROGRAMME_STOPPED, seq);
    REQUIRE(stopped.size() == 1);
    CHECK(stopped[0].message.find("its window closed") != std::string::npos);
    CHECK(f.row(id)->done_start_unix_ms == hcm_ms(10, 23, 30));
    CHECK(f.ok<pb::ListSchedulesResponse>("ListSchedules", list).schedules(0).programme_id() == 0);

    // The next night again.
    f.set_ms(hcm_ms(11, 23, 30));
    f.tick();
    CHECK(f.on_air(id));
    started = f.events_of(pb::PROGRAMME_STARTED, seq);
    REQUIRE(started.size() == 2);
    CHECK(started[1].message.find("2026-03-11 23:30:00") != std::string::npos);
}

TEST_CASE("engine_restart_inside_window_resumes_playlist_at_offset", "[engine][schedules]") {
    Fixture f(false);
    const auto low = f.upload_sine(440.0, 2.0);   // 100 frames
    const auto high = f.upload_sine(660.0, 3.0);  // 150 frames
    // Playlist: 440 Hz 2 s, 1 s gap, 660 Hz 3 s = 6 s; one window 22:00:10
    // for 60 s on each of three schedules that differ only in late policy.
    auto make = [&](const std::string& name, const std::string& zone, pb::LatePolicy late) {
        auto r = Fixture::once(name, zone, "22:00:10", 60, low);
        r.add_items()->set_gap_ms(1000);
        auto* i = r.add_items();
        i->set_clip_id(high);
        i->set_gain_db(-3.0);
        r.set_late_policy(late);
        return f.create(r);
    };
    const auto resume = make("resume", "A", pb::LATE_RESUME);
    const auto restart = make("restart", "B", pb::LATE_RESTART);
    const auto skip = make("skip", "D", pb::LATE_SKIP);
    f.set_ms(hcm_ms(10, 22, 0, 10));
    f.tick();
    CHECK(f.on_air(resume));
    CHECK(f.on_air(restart));
    CHECK(f.on_air(skip));

    // The engine dies 3.5 s into the window and comes back.
    f.advance_ms(3500);
    f.close();
    f.open();
    CHECK(f.restore_problems.empty());
    REQUIRE(f.schedules->size() == 3);
    const auto seq = f.store.last_event_seq();
    f.tick();

    // resume: joins 3.5 s in, half a second into the 660 Hz clip.
    REQUIRE(f.on_air(resume));
    auto* src = f.source_of(resume);
    REQUIRE(src != nullptr);
    CHECK(src->description().find("from 3500 ms") != std::string::npos);
    const auto resumed = play_out(*src);
    CHECK(resumed.frames() == 300 - 175);
    CHECK(resumed.items.front() == 2);
    CHECK(tones_of(resumed.pcm) == std::vector<int>{660});
    // restart: from the top.
    REQUIRE(f.on_air(restart));
    const auto restarted = play_out(*f.source_of(restart));
    CHECK(restarted.frames() == 300);
    CHECK(restarted.items.front() == 0);
    CHECK(tones_of(restarted.pcm) == std::vector<int>{440, 660});
    // skip: lets this window go, and says so.
    CHECK_FALSE(f.on_air(skip));
    const auto started = f.events_of(pb::PROGRAMME_STARTED, seq);
    REQUIRE(started.size() == 2);
    CHECK(started[0].message.find("joined 3.5 s late at 3.5 s into its playlist") != std::string::npos);
    CHECK(started[1].message.find("from the top 3.5 s late") != std::string::npos);
    const auto notices = f.events_of(pb::ENGINE_NOTICE, seq);
    REQUIRE(notices.size() == 1);
    CHECK(notices[0].subject == "schedule/" + std::to_string(skip));
    CHECK(notices[0].message.find("skipped") != std::string::npos);
    CHECK(f.row(skip)->done_start_unix_ms == hcm_ms(10, 22, 0, 10));

    // Both playlists have ended: their programmes stop inside the window.
    f.advance_ms(100);
    f.tick();
    CHECK_FALSE(f.on_air(resume));
    CHECK_FALSE(f.on_air(restart));
    const auto stopped = f.events_of(pb::PROGRAMME_STOPPED, seq);
    REQUIRE(stopped.size() == 2);
    CHECK(stopped[0].message.find("its playlist ended") != std::string::npos);
    CHECK(f.row(restart)->done_start_unix_ms == hcm_ms(10, 22, 0, 10));

    // Another restart, still inside the window: nothing plays twice.
    f.advance_ms(5000);
    f.close();
    f.open();
    f.tick();
    CHECK_FALSE(f.on_air(resume));
    CHECK_FALSE(f.on_air(restart));
    CHECK_FALSE(f.on_air(skip));
    CHECK(f.manager->list().empty());
}

TEST_CASE("alert_over_schedule_gives_it_back", "[engine][schedules][alerts]") {
    Fixture f(true);
    const auto music = f.upload_sine(523.0, 1.0);
    const auto message = f.upload_sine(880.0, 0.5);
    // A window open now (22:00 for an hour) to the whole district: the
    // 1 s clip and an hour of silence, so it outlives the test.
    auto req = Fixture::once("evening", "D", "22:00", 3600, music);
    req.add_items()->set_gap_ms(3'600'000);
    const auto id = f.create(req);
    REQUIRE(f.on_air(id));  // started by the call itself
    const auto ssrc = f.manager->info(Fixture::pid(id))->ssrc;
    REQUIRE(f.a.hears(ssrc));
    REQUIRE(f.b.hears(ssrc));

    pb::RaiseAlertRequest alert;
    alert.set_name("flood");
    alert.add_zone_ids("A");
    alert.set_clip_id(message);
    alert.set_repeats(100);
    alert.set_duration_s(600);
    const auto alert_id = f.ok<pb::RaiseAlertResponse>("RaiseAlert", alert).id();
    pb::GetAlertStatusRequest status;
    status.set_id(alert_id);
    const auto alert_ssrc = f.ok<pb::GetAlertStatusResponse>("GetAlertStatus", status).alert().ssrc();
    CHECK(f.a.hears(alert_ssrc));
    CHECK(f.manager->info(Fixture::pid(id))->listeners == 1);  // b still hears the schedule
    CHECK(f.b.hears(ssrc));

    pb::CancelAlertRequest cancel;
    cancel.set_id(alert_id);
    f.ok<pb::CancelAlertResponse>("CancelAlert", cancel);
    CHECK(f.a.hears(ssrc));  // back to the schedule
    const auto info = f.manager->info(Fixture::pid(id));
    CHECK(info->state == ProgrammeState::Audible);
    CHECK(info->listeners == 2);

    // An alert to the whole district preempts the schedule everywhere; it
    // plays on unheard and comes back when the alert ends.
    alert.clear_zone_ids();
    alert.add_zone_ids("D");
    cancel.set_id(f.ok<pb::RaiseAlertResponse>("RaiseAlert", alert).id());
    f.tick();
    CHECK(f.manager->info(Fixture::pid(id))->state == ProgrammeState::Preempted);
    CHECK(f.on_air(id));
    f.ok<pb::CancelAlertResponse>("CancelAlert", cancel);
    f.tick();
    CHECK(f.manager->info(Fixture::pid(id))->listeners == 2);
    CHECK(f.a.hears(ssrc));
    CHECK(f.b.hears(ssrc));
    pb::ListSchedulesRequest list;
    CHECK(f.ok<pb::ListSchedulesResponse>("ListSchedules", list).schedules(0).programme_id() == Fixture::pid(id));
}

TEST_CASE("invalid_schedules_are_refused_and_nothing_stored", "[engine][schedules][control]") {
    Fixture f(false);
    const auto clip = f.upload_sine(440.0, 1.0);
    const auto good = Fixture::once("ok", "A", "08:00", 600, clip);
    struct Case {
        const char* what;
        std::function<void(pb::CreateScheduleRequest&)> edit;
        const char* message;
    };
    const std::vector<Case> cases = {
        {"unknown time zone", [](auto& r) { r.set_time_zone("Mars/Olympus_Mons"); }, "unknown time zone"},
        {"unknown clip", [](auto& r) { r.mutable_items(0)->set_clip_id(999); }, "unknown clip 999"},
        {"invalid date", [](auto& r) { r.set_first_date("2026-02-30"); }, "not a date"},
        {"bad start", [](auto& r) { r.set_start_time("25:00"); }, "not a time of day"},
        {"no start", [](auto& r) { r.clear_start_time(); }, "start time"},
        {"zero duration", [](auto& r) { r.set_duration_s(0); }, "duration"},
        {"negative duration", [](auto& r) { r.set_duration_s(-5); }, "duration"},
        {"until before first date",
         [](auto& r) {
             r.set_recurrence(pb::RECURRENCE_DAILY);
             r.set_until_date("2026-03-01");
         },
         "before the first date"},
        {"window as long as a day",
         [](auto& r) {
             r.set_recurrence(pb::RECURRENCE_DAILY);
             r.set_duration_s(86400);
         },
         "does not end before the next one starts"},
        {"no weekday", [](auto& r) { r.set_recurrence(pb::RECURRENCE_WEEKDAYS); }, "at least one weekday"},
        {"weekday 8",
         [](auto& r) {
             r.set_recurrence(pb::RECURRENCE_WEEKDAYS);
             r.add_weekdays(8);
         },
         "weekdays are 1"},
        {"N = 0", [](auto& r) { r.set_recurrence(pb::RECURRENCE_EVERY_N_DAYS); }, "N in 1..366"},
        {"N = 400",
         [](auto& r) {
             r.set_recurrence(pb::RECURRENCE_EVERY_N_DAYS);
             r.set_every_days(400);
         },
         "N in 1..366"},
        {"no items", [](auto& r) { r.clear_items(); }, "1 to 100 item"},
        {"only a gap",
         [](auto& r) {
             r.clear_items();
             r.add_items()->set_gap_ms(500);
         },
         "at least one clip"},
        {"zero gap", [](auto& r) { r.add_items()->set_gap_ms(0); }, "a gap must last"},
        {"gain too high", [](auto& r) { r.mutable_items(0)->set_gain_db(40); }, "gain"},
        {"empty item", [](auto& r) { r.add_items(); }, "neither a clip nor a gap"},
        {"no name", [](auto& r) { r.clear_name(); }, "name"},
        {"no zone", [](auto& r) { r.clear_zone_ids(); }, "target zone"},
        {"unknown zone", [](auto& r) { r.set_zone_ids(0, "Z"); }, "unknown zone 'Z'"},
        {"bad level", [](auto& r) { r.set_level(static_cast<pb::Level>(9)); }, "level"},
        {"playlist longer than the gap between windows",
         [](auto& r) {
             r.set_recurrence(pb::RECURRENCE_DAILY);
             r.clear_duration_s();
             for (int i = 0; i < 25; ++i) r.add_items()->set_gap_ms(3'600'000);
         },
         "the playlist is the window"},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        auto req = good;
        c.edit(req);
        const auto before = f.snapshot();
        const auto r = f.call("CreateSchedule", req);
        INFO(r.message());
        CHECK(r.code() == pb::INVALID_ARGUMENT);
        CHECK(r.message().find(c.message) != std::string::npos);
        CHECK(f.snapshot() == before);
    }
    CHECK(f.store.schedules().empty());
    CHECK(f.store.clip(static_cast<std::int64_t>(clip))->uses == 0);
    // The unedited request is fine.
    f.create(good);
    CHECK(f.store.schedules().size() == 1);
}

TEST_CASE("authorisation_matrix_schedules", "[engine][schedules][control][auth]") {
    Fixture f(false);
    const auto clip = f.upload_sine(440.0, 1.0);
    const auto clip_b = f.upload_sine(660.0, 1.0, "B");  // only callers of B (or above) see it
    const auto viewer_a = f.make_operator("view-a", pb::VIEWER, "A", pb::COMMUNE);
    const auto op_a = f.make_operator("op-a", pb::OPERATOR, "A", pb::COMMUNE);
    const auto op_b = f.make_operator("op-b", pb::OPERATOR, "B", pb::COMMUNE);
    const auto viewer_d = f.make_operator("view-d", pb::VIEWER, "D", pb::PROVINCE);
    const auto op_d = f.make_operator("op-d", pb::OPERATOR, "D", pb::SCHEDULED);

    auto refused = [&](const pb::CreateScheduleRequest& r, const std::string& tok, pb::StatusCode code) {
        const auto before = f.snapshot();
        const auto out = f.call("CreateSchedule", r, tok);
        INFO(out.message());
        CHECK(out.code() == code);
        CHECK(f.snapshot() == before);
    };
    auto req = Fixture::once("mine", "A", "08:00", 600, clip);
    refused(req, viewer_a, pb::PERMISSION_DENIED);  // viewers only look
    auto in_b = req;
    in_b.set_zone_ids(0, "B");
    refused(in_b, op_a, pb::PERMISSION_DENIED);  // outside its commune
    auto district = req;
    district.set_level(pb::DISTRICT);
    refused(district, op_a, pb::PERMISSION_DENIED);  // above its level
    auto commune = req;
    commune.set_level(pb::COMMUNE);
    refused(commune, op_d, pb::PERMISSION_DENIED);  // op-d may use SCHEDULED at most
    auto foreign_clip = req;
    foreign_clip.mutable_items(0)->set_clip_id(clip_b);
    refused(foreign_clip, op_a, pb::INVALID_ARGUMENT);  // B's clip is unknown to A

    const auto id = f.create(commune, op_a);
    const auto id_b = f.create(Fixture::once("theirs", "B", "09:00", 600, clip_b), op_b);

    // Each commune sees its own; the district sees both; NextOccurrences likewise.
    auto names = [&](const std::string& tok) {
        std::vector<std::string> out;
        const auto listed = f.ok<pb::ListSchedulesResponse>("ListSchedules", pb::ListSchedulesRequest(), tok);
        for (const auto& s : listed.schedules()) out.push_back(s.name());
        return out;
    };
    CHECK(names(op_a) == std::vector<std::string>{"mine"});
    CHECK(names(op_b) == std::vector<std::string>{"theirs"});
    CHECK(names(viewer_d) == std::vector<std::string>{"mine", "theirs"});
    pb::NextOccurrencesRequest next;
    const auto occ_a = f.ok<pb::NextOccurrencesResponse>("NextOccurrences", next, op_a);
    REQUIRE(occ_a.occurrences_size() == 0);  // 08:00 on the 10th is over at 22:00
    next.set_hours(0.5);
    CHECK(f.ok<pb::NextOccurrencesResponse>("NextOccurrences", next, viewer_d).occurrences_size() == 0);
    next.set_hours(1000);
    CHECK(f.call("NextOccurrences", next).code() == pb::INVALID_ARGUMENT);

    // Deleting: unknown to another commune, refused to viewers and to a
    // caller below the schedule's level, allowed to its commune's operator.
    pb::DeleteScheduleRequest del;
    del.set_id(id);
    auto before = f.snapshot();
    CHECK(f.call("DeleteSchedule", del, op_b).code() == pb::NOT_FOUND);
    CHECK(f.call("DeleteSchedule", del, viewer_a).code() == pb::PERMISSION_DENIED);
    CHECK(f.call("DeleteSchedule", del, viewer_d).code() == pb::PERMISSION_DENIED);
    CHECK(f.call("DeleteSchedule", del, op_d).code() == pb::PERMISSION_DENIED);  // commune level > scheduled
    CHECK(f.snapshot() == before);
    f.ok<pb::DeleteScheduleResponse>("DeleteSchedule", del, op_a);
    CHECK(f.call("DeleteSchedule", del, op_a).code() == pb::NOT_FOUND);
    del.set_id(id_b);
    f.ok<pb::DeleteScheduleResponse>("DeleteSchedule", del, op_b);
    CHECK(f.store.schedules().empty());
}

TEST_CASE("schedules_pin_clips_list_next_and_delete", "[engine][schedules][control]") {
    Fixture f(false);
    const auto clip = f.upload_sine(440.0, 1.0);
    // Monday and Wednesday 06:00 - 06:15, and every 3 days at 18:00 for 10 min.
    pb::CreateScheduleRequest weekly;
    weekly.set_name("morning");
    weekly.add_zone_ids("A");
    weekly.set_recurrence(pb::RECURRENCE_WEEKDAYS);
    weekly.add_weekdays(1);
    weekly.add_weekdays(3);
    weekly.set_first_date("2026-03-10");
    weekly.set_start_time("06:00");
    weekly.set_end_time("06:15");
    weekly.set_late_policy(pb::LATE_SKIP);
    auto* item = weekly.add_items();
    item->set_clip_id(clip);
    item->set_gain_db(-6);
    weekly.add_items()->set_gap_ms(2000);
    weekly.add_items()->set_clip_id(clip);
    const auto w = f.create(weekly);
    pb::CreateScheduleRequest every;
    every.set_name("evening");
    every.add_zone_ids("B");
    every.set_recurrence(pb::RECURRENCE_EVERY_N_DAYS);
    every.set_every_days(3);
    every.set_first_date("2026-03-11");
    every.set_until_date("2026-03-20");
    every.set_start_time("18:00:00");
    every.set_duration_s(600);
    every.add_items()->set_clip_id(clip);
    const auto e = f.create(every);
    CHECK(f.store.clip(static_cast<std::int64_t>(clip))->uses == 3);
    pb::DeleteClipRequest del_clip;
    del_clip.set_id(clip);
    CHECK(f.call("DeleteClip", del_clip).code() == pb::FAILED_PRECONDITION);

    pb::ListSchedulesRequest list;
    list.set_next_count(2);
    const auto listed = f.ok<pb::ListSchedulesResponse>("ListSchedules", list);
    REQUIRE(listed.schedules_size() == 2);
    const auto& s = listed.schedules(0);
    CHECK(s.id() == w);
    CHECK(s.recurrence() == pb::RECURRENCE_WEEKDAYS);
    CHECK(std::vector<std::uint32_t>(s.weekdays().begin(), s.weekdays().end()) == std::vector<std::uint32_t>{1, 3});
    CHECK(s.late_policy() == pb::LATE_SKIP);
    CHECK(s.time_zone() == "Asia/Ho_Chi_Minh");
    CHECK(s.duration_s() == 900.0);
    REQUIRE(s.items_size() == 3);
    CHECK(s.items(0).gain_db() == -6.0);
    CHECK(s.items(1).gap_ms() == 2000);
    CHECK(s.playlist_ms() == 1000 + 2000 + 1000);
    REQUIRE(s.next_size() == 2);
    CHECK(s.next(0).local_start() == "2026-03-11 06:00:00");  // Wednesday
    CHECK(s.next(1).local_start() == "2026-03-16 06:00:00");  // Monday
    CHECK(listed.schedules(1).until_date() == "2026-03-20");
    CHECK(listed.schedules(1).every_days() == 3);

    // A week ahead, both schedules' windows in time order; the every-3-days
    // one stops after the 20th.
    pb::NextOccurrencesRequest next;
    next.set_hours(24 * 14);
    std::vector<std::string> seen;
    const auto windows = f.ok<pb::NextOccurrencesResponse>("NextOccurrences", next);
    for (const auto& o : windows.occurrences()) seen.push_back(o.local_start() + " " + o.schedule_name());
    CHECK(seen == std::vector<std::string>{
                      "2026-03-11 06:00:00 morning", "2026-03-11 18:00:00 evening", "2026-03-14 18:00:00 evening",
                      "2026-03-16 06:00:00 morning", "2026-03-17 18:00:00 evening", "2026-03-18 06:00:00 morning",
                      "2026-03-20 18:00:00 evening", "2026-03-23 06:00:00 morning"});

    // On air, then deleted: the programme stops, the clips are free again.
    f.set_ms(hcm_ms(11, 18, 0));
    f.tick();
    REQUIRE(f.on_air(e));
    const auto seq = f.store.last_event_seq();
    pb::DeleteScheduleRequest del;
    del.set_id(e);
    f.ok<pb::DeleteScheduleResponse>("DeleteSchedule", del);
    CHECK_FALSE(f.on_air(e));
    CHECK(f.events_of(pb::SCHEDULE_DELETED, seq).size() == 1);
    const auto stopped = f.events_of(pb::PROGRAMME_STOPPED, seq);
    REQUIRE(stopped.size() == 1);
    CHECK(stopped[0].message.find("deleted") != std::string::npos);
    CHECK(f.store.clip(static_cast<std::int64_t>(clip))->uses == 2);
    del.set_id(w);
    f.ok<pb::DeleteScheduleResponse>("DeleteSchedule", del);
    CHECK(f.store.clip(static_cast<std::int64_t>(clip))->uses == 0);
    CHECK(f.call("DeleteClip", del_clip).code() == pb::OK);
    f.tick();
    CHECK(f.manager->list().empty());
    CHECK(f.store.schedules().empty());
}

TEST_CASE("schedule_tick_retries_failed_commits", "[engine][schedules][control]") {
    Fixture f(false);
    const auto clip = f.upload_sine(440.0, 1.0);
    const auto id = f.create(Fixture::once("news", "A", "22:00:05", 60, clip));
    // The state directory turns read-only: the window still starts (switching
    // never waits for the database), its event waits in the outbox.
    f.store.set_read_only(true);
    f.set_ms(hcm_ms(10, 22, 0, 5));
    const auto seq = f.store.last_event_seq();
    f.tick();
    CHECK(f.on_air(id));
    CHECK(f.store.last_event_seq() == seq);
    CHECK(f.schedules->outbox().size() == 1);
    f.store.set_read_only(false);
    f.advance_ms(100);
    f.tick();
    CHECK(f.schedules->outbox().empty());
    CHECK(f.events_of(pb::PROGRAMME_STARTED, seq).size() == 1);
}

TEST_CASE("schedules_table_round_trips_and_version_7_migrates", "[engine][schedules][store]") {
    loa::test::TempDir dir("loa-schedules-store");
    const auto db = dir / "state.db";
    {
        Store s(db);
        REQUIRE(s.schema_version() == Store::kSchemaVersion);
        s.write([&] { s.insert_zone({"hn", "Ha Noi", ZoneKind::Province, ""}); });
    }
    {
        // Back to version 7, as the studios step left it.
        sqlite3* h = nullptr;
        REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
        REQUIRE(sqlite3_exec(h, "DROP TABLE schedule_items; DROP TABLE schedules; UPDATE schema_version SET version = 7;",
                             nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close(h);
    }
    Store s(db);
    REQUIRE(s.schema_version() == Store::kSchemaVersion);
    CHECK(s.zone("hn"));
    CHECK(s.schedules().empty());
    ClipRow clip;
    clip.name = "c";
    clip.sha256 = std::string(64, 'a');
    clip.ext = "wav";
    std::int64_t clip_id = 0;
    s.write([&] { clip_id = s.insert_clip(clip); });
    ScheduleRow r;
    r.name = "Bản tin sáng";
    r.level = 2;
    r.zones = "hn";
    r.time_zone = "Asia/Ho_Chi_Minh";
    r.recurrence = "weekdays";
    r.first_date = "2026-03-10";
    r.start_s = 6 * 3600;
    r.duration_s = 900;
    r.until_date = "2026-12-31";
    r.weekdays = 0b0101010;
    r.late_policy = "skip";
    r.items = {{clip_id, -3.5, 0}, {0, 0.0, 2500}, {clip_id, 1.25, 0}};
    r.created_unix_ms = 42;
    r.created_by = "ann";
    std::uint64_t first = 0, second = 0;
    s.write([&] {
        first = s.insert_schedule(r);
        second = s.insert_schedule(r);
    });
    CHECK(second == first + 1);
    s.write([&] { s.set_schedule_done(first, 1234); });
    auto all = s.schedules();
    REQUIRE(all.size() == 2);
    const auto& a = all[0];
    CHECK(a.id == first);
    CHECK(a.name == r.name);
    CHECK(a.level == 2);
    CHECK(a.recurrence == "weekdays");
    CHECK(a.start_s == 6 * 3600);
    CHECK(a.duration_s == 900);
    CHECK(a.until_date == "2026-12-31");
    CHECK(a.weekdays == 0b0101010);
    CHECK(a.late_policy == "skip");
    CHECK(a.done_start_unix_ms == 1234);
    CHECK(all[1].done_start_unix_ms == 0);
    REQUIRE(a.items.size() == 3);
    CHECK(a.items[0].clip_id == clip_id);
    CHECK(a.items[0].gain_db == -3.5);
    CHECK(a.items[1].clip_id == 0);
    CHECK(a.items[1].gap_ms == 2500);
    CHECK(a.items[2].gain_db == 1.25);
    // A stored row reads back as the same library schedule.
    const auto spec = ScheduleControl::spec_of(a);
    REQUIRE(spec);
    const auto made = Schedule::make(*spec);
    REQUIRE(made.ok());
    CHECK(made.value().spec().weekdays.count() == 3);
    s.write([&] { s.delete_schedule(first); });
    all = s.schedules();
    REQUIRE(all.size() == 1);
    CHECK(all[0].items.size() == 3);
    CHECK(s.integrity_check() == "ok");
}

TEST_CASE("engine_time_zone_setting_is_checked", "[engine][schedules][config]") {
    CHECK(parse_config("", "t.toml", "/").engine.time_zone == "Asia/Ho_Chi_Minh");
    CHECK(parse_config("[engine]\ntime_zone = \"Europe/Paris\"\n", "t.toml", "/").engine.time_zone == "Europe/Paris");
    for (const char* bad : {"Mars/Olympus_Mons", ""}) {
        INFO(bad);
        try {
            (void)parse_config(std::string("[engine]\ntime_zone = \"") + bad + "\"\n", "t.toml", "/");
            FAIL("accepted");
        } catch (const ConfigError& e) {
            CHECK(std::string(e.what()).find("engine.time_zone: is not a known IANA time zone") != std::string::npos);
        }
    }
}
