// Schedules with a live studio window instead of a playlist: created,
// listed and refused (both or neither of playlist and studio, no window end,
// unknown studio, scope) through the Control service; the window's Live
// programme reads the studio from the window's start to its end, heard by a
// cluster on loopback; an engine restart inside the window puts it back on
// the air live; a studio at its reader limit makes the start fail and retry;
// RemoveStudio is refused while a schedule names the studio (the v12 table:
// schedule_studio_store_test.cpp). Control time is a ManualClock set to
// local times in Asia/Ho_Chi_Minh (UTC+7); audio is judged by its tone,
// never by wall time.

#include <array>
#include <chrono>
#include <cmath>
#include <sstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <catch2/catch.hpp>

#include "loa/codecs/opus_decoder.h"
#include "loa/codecs/tone_analysis.h"
#include "loa/engine/control_service.h"
#include "loa/engine/engine.h"
#include "loa/engine/ingest.h"
#include "loa/engine/programme_control.h"
#include "loa/engine/programme_manager.h"
#include "loa/engine/schedule_control.h"
#include "loa/engine/studio_control.h"
#include "loa/engine/studio_source.h"
#include "loa/transport/rtp_packet.h"
#include "control_calls.h"
#include "rtp_listener.h"
#include "temp_dir.h"
#include "tone_rtp_stream.h"

using namespace loa::engine;
namespace pb = loa::control::v1;
using boost::asio::ip::udp;

namespace {

constexpr std::uint32_t kStudioSsrc = 0x5151;
constexpr double kStudioHz = 1500.0;

/// Unix ns of a local time in Asia/Ho_Chi_Minh (UTC+7) on `day` of March 2026.
std::int64_t hcm_ns(unsigned day, int h, int m, int s = 0) {
    const auto t = std::chrono::sys_days(std::chrono::year(2026) / std::chrono::March / std::chrono::day(day)) +
                   std::chrono::hours(h - 7) + std::chrono::minutes(m) + std::chrono::seconds(s);
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
std::int64_t hcm_ms(unsigned day, int h, int m, int s = 0) { return hcm_ns(day, h, m, s) / 1'000'000; }

// How many whole 100 ms windows at the end of `pcm` hold `hz` (SNR >= 20 dB).
int trailing_windows_of(const std::vector<float>& pcm, double hz) {
    int n = 0;
    for (std::size_t end = pcm.size() - pcm.size() % 4800; end >= 4800; end -= 4800) {
        const auto fit = loa::codecs::fit_tone(std::span<const float>(pcm.data() + end - 4800, 4800));
        if (fit.snr_db < 20.0 || std::abs(fit.frequency_hz - hz) > 5.0) break;
        ++n;
    }
    return n;
}

// A studio pushing a 1.5 kHz tone as RTP to the engine's ingest socket.
struct StudioSender {
    boost::asio::io_context io;
    udp::socket socket{io, udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0)};
    udp::endpoint to;
    loa::test::ToneRtpStream tone{{kStudioSsrc, 100, 0, kStudioHz}};
    explicit StudioSender(udp::endpoint ingest) : to(std::move(ingest)) {}
    void send() { socket.send_to(boost::asio::buffer(tone.next()), to); }
};

// True once `speaker` has decoded half a second of the studio's tone in the
// RTP of `ssrc`. Every RTP packet the speaker gets makes the studio send
// one: the studio is paced by the engine's media clock, not by ours.
bool hears_studio(loa::test::RtpListener& speaker, std::uint32_t ssrc, StudioSender& studio) {
    loa::codecs::OpusDecoder decoder;
    std::vector<float> pcm;
    std::array<float, loa::codecs::kMaxFrameSamples> frame{};
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < until) {
        const auto packet = speaker.receive();
        loa::transport::RtpView v;
        if (packet.empty() || loa::transport::RtpView::parse(packet, v) != loa::transport::Status::Ok) continue;
        studio.send();
        if (v.ssrc() != ssrc) continue;
        std::size_t n = 0;
        if (decoder.decode(v.payload(), frame, n) != loa::codecs::Status::Ok) return false;
        pcm.insert(pcm.end(), frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(n));
        if (trailing_windows_of(pcm, kStudioHz) >= 5) return true;
    }
    return false;
}

EngineConfig engine_config(const std::filesystem::path& state_dir) {
    EngineConfig c;
    c.engine.listen = udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0);
    c.engine.ingest_listen = udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0);
    c.engine.fanout_threads = 1;
    c.engine.realtime_priority = 0;
    c.engine.state_dir = state_dir;  // studios may be declared: the ingest socket opens
    return c;
}

// Zones P > D > {A, B}; cluster a in A, b in B; studio "bv" in D and
// "commune-a" in A. The control side can be torn down without ending
// anything (a killed engine) and built again on the same database. The
// control clock starts at 22:00:00 local time on 10 March 2026.
struct Fixture : loa::test::ControlCalls<Fixture> {
    ControlService& control_service() { return *service; }

    loa::test::TempDir dir{"loa-schedule-studio"};
    Store store{dir / "state.db"};
    ManualClock clock{0, hcm_ns(10, 22, 0)};
    SystemClock media_clock;
    Engine engine;
    loa::test::RtpListener a, b;
    std::unique_ptr<ControlService> service;
    std::unique_ptr<ProgrammeManager> manager;
    std::unique_ptr<ProgrammeControl> programmes;
    std::unique_ptr<StudioControl> studios;
    std::unique_ptr<ScheduleControl> schedules;
    std::vector<std::string> restore_problems;

    explicit Fixture(bool start_media) : engine(engine_config(dir.path()), media_clock) {
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
        declare("bv", "D", kStudioSsrc);
        declare("commune-a", "A", 0x7777);
    }
    ~Fixture() {
        close();
        engine.stop();
    }

    void declare(const std::string& name, const std::string& zone, std::uint32_t ssrc) {
        pb::DeclareStudioRequest d;
        d.set_name(name);
        d.set_zone_id(zone);
        d.set_ssrc(ssrc);
        ok<pb::Studio>("DeclareStudio", d);
    }

    void open() {
        service = std::make_unique<ControlService>(store, clock, 1000);
        manager = std::make_unique<ProgrammeManager>(engine);
        programmes = std::make_unique<ProgrammeControl>(store, *manager, clock);
        programmes->set_clip_dir(service->clip_catalog().dir());
        REQUIRE(programmes->refresh_topology().ok());
        studios = std::make_unique<StudioControl>(store, engine);
        REQUIRE(studios->restore().empty());
        service->set_studio_control(studios.get());
        REQUIRE(programmes->restore().empty());
        service->set_programme_control(programmes.get());
        schedules = std::make_unique<ScheduleControl>(store, *manager, clock);
        schedules->set_clip_dir(service->clip_catalog().dir());
        restore_problems = schedules->restore();
        service->set_schedule_control(schedules.get());
    }
    void close() {
        if (!service) return;
        service->set_schedule_control(nullptr);
        service->set_programme_control(nullptr);
        service->set_studio_control(nullptr);
        schedules.reset();
        studios.reset();
        programmes.reset();
        manager.reset();
        service.reset();
    }

    /// A one-shot studio window on 10 March at `start` for `duration_s`.
    static pb::CreateScheduleRequest live(const std::string& name, const std::string& zone, const std::string& start,
                                          double duration_s, const std::string& studio = "bv") {
        pb::CreateScheduleRequest r;
        r.set_name(name);
        r.add_zone_ids(zone);
        r.set_recurrence(pb::RECURRENCE_ONCE);
        r.set_first_date("2026-03-10");
        r.set_start_time(start);
        if (duration_s > 0) r.set_duration_s(duration_s);
        r.set_studio(studio);
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
    std::size_t readers(const std::string& studio = "bv") const {
        return engine.studio_status(studio)->programme_groups.size();
    }
    // The studio source of a schedule's programme (nullptr: another kind).
    const StudioSource* studio_source_of(std::uint64_t schedule) {
        const auto group = manager->group_of(pid(schedule));
        REQUIRE(group);
        const Program* p = engine.runtime_programme(*group);
        REQUIRE(p != nullptr);
        REQUIRE(p->sources().size() == 1);
        return dynamic_cast<const StudioSource*>(p->sources().front().get());
    }
    std::vector<EventRow> events_of(int kind, std::uint64_t after = 0) const {
        std::vector<EventRow> out;
        for (auto& e : store.events_after(after, 1000)) {
            if (e.kind == kind) out.push_back(std::move(e));
        }
        return out;
    }
    // What must not change when a call is refused.
    std::string snapshot() const {
        std::ostringstream os;
        os << store.schedules().size() << "|" << store.last_event_seq() << "|" << manager->list().size() << "|"
           << schedules->size() << "|" << store.studios().size();
        return os.str();
    }
};

}  // namespace

TEST_CASE("studio_schedule_is_created_listed_and_checked", "[engine][schedules][studios][control]") {
    Fixture f(false);
    const auto clip = f.upload_sine(440.0, 1.0);
    const auto viewer_a = f.make_operator("view-a", pb::VIEWER, "A", pb::COMMUNE);
    const auto op_a = f.make_operator("op-a", pb::OPERATOR, "A", pb::COMMUNE);
    const auto op_b = f.make_operator("op-b", pb::OPERATOR, "B", pb::COMMUNE);
    const auto op_d = f.make_operator("op-d", pb::OPERATOR, "D", pb::DISTRICT);
    const auto refused = [&](const pb::CreateScheduleRequest& r, const std::string& token, pb::StatusCode code,
                             const std::string& says) {
        const auto before = f.snapshot();
        const auto out = f.call("CreateSchedule", r, token);
        INFO(pb::StatusCode_Name(out.code()) << ": " << out.message());
        CHECK(out.code() == code);
        CHECK(out.message().find(says) != std::string::npos);
        CHECK(f.snapshot() == before);
    };

    // Exactly one of playlist and studio; a live window needs an end.
    auto both = Fixture::live("both", "A", "08:00", 600);
    both.add_items()->set_clip_id(clip);
    refused(both, {}, pb::INVALID_ARGUMENT, "either a playlist (items) or a studio, not both");
    auto neither = Fixture::live("neither", "A", "08:00", 600);
    neither.clear_studio();
    refused(neither, {}, pb::INVALID_ARGUMENT, "or give a studio instead");
    refused(Fixture::live("endless", "A", "08:00", 0), {}, pb::INVALID_ARGUMENT, "a studio window needs an end");
    refused(Fixture::live("ghost", "A", "08:00", 600, "nope"), {}, pb::NOT_FOUND, "no studio 'nope'");
    // Scope: viewers only look; a commune's operator cannot use a district
    // studio or another commune's; nor a zone outside its own.
    refused(Fixture::live("v", "A", "08:00", 600, "commune-a"), viewer_a, pb::PERMISSION_DENIED, "viewers");
    refused(Fixture::live("x", "B", "08:00", 600), op_b, pb::PERMISSION_DENIED, "studio 'bv' of zone 'D'");
    refused(Fixture::live("y", "B", "08:00", 600, "commune-a"), op_b, pb::PERMISSION_DENIED,
            "outside the caller's zone 'B'");
    refused(Fixture::live("z", "B", "08:00", 600, "commune-a"), op_a, pb::PERMISSION_DENIED, "target zone");

    // Allowed: the commune with its own studio (an end time this time), the
    // district with its studio to a commune.
    auto mine = Fixture::live("village hour", "A", "23:00", 0, "commune-a");
    mine.set_end_time("23:30");
    const auto id_a = f.create(mine, op_a);
    auto district = Fixture::live("district news", "A", "22:30", 900);
    district.set_recurrence(pb::RECURRENCE_DAILY);
    const auto created = f.ok<pb::CreateScheduleResponse>("CreateSchedule", district, op_d);
    const auto id_d = created.id();
    REQUIRE(created.next_size() == 3);
    CHECK(created.next(0).start_unix_ms() == hcm_ms(10, 22, 30));
    CHECK(created.next(0).end_unix_ms() == hcm_ms(10, 22, 45));
    const auto rows = f.store.schedules();
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].studio == "commune-a");
    CHECK(rows[0].items.empty());
    CHECK(rows[0].duration_s == 1800);
    CHECK(rows[1].studio == "bv");
    const auto made = f.events_of(pb::SCHEDULE_CREATED);
    REQUIRE(made.size() == 2);
    CHECK(made[1].message.find("studio 'bv' live") != std::string::npos);

    // Listed with its studio and no items, to the callers who see it.
    const auto listed = f.ok<pb::ListSchedulesResponse>("ListSchedules", pb::ListSchedulesRequest(), op_a);
    REQUIRE(listed.schedules_size() == 2);
    CHECK(listed.schedules(0).id() == id_a);
    CHECK(listed.schedules(0).studio() == "commune-a");
    CHECK(listed.schedules(0).items_size() == 0);
    CHECK(listed.schedules(0).duration_s() == 1800.0);
    CHECK(listed.schedules(1).studio() == "bv");
    CHECK(f.ok<pb::ListSchedulesResponse>("ListSchedules", pb::ListSchedulesRequest(), op_b).schedules_size() == 0);

    // Deleting a studio schedule leaves the studio free to be removed.
    pb::DeleteScheduleRequest del;
    del.set_id(id_a);
    f.ok<pb::DeleteScheduleResponse>("DeleteSchedule", del, op_a);
    del.set_id(id_d);
    f.ok<pb::DeleteScheduleResponse>("DeleteSchedule", del, op_d);
    CHECK(f.store.schedules().empty());
    pb::RemoveStudioRequest rm;
    rm.set_name("commune-a");
    f.ok<pb::RemoveStudioResponse>("RemoveStudio", rm);
}

TEST_CASE("studio_window_plays_the_studio_live_until_its_end", "[engine][schedules][studios]") {
    Fixture f(true);
    StudioSender studio(*f.engine.ingest_endpoint());
    const auto id = f.create(Fixture::live("evening live", "A", "22:00:10", 60));
    const auto seq = f.store.last_event_seq();
    f.tick();
    CHECK_FALSE(f.on_air(id));
    CHECK(f.readers() == 0);

    f.set_ms(hcm_ms(10, 22, 0, 10));
    f.tick();
    REQUIRE(f.on_air(id));
    const auto info = f.manager->info(Fixture::pid(id));
    REQUIRE(info);
    CHECK(info->kind == ProgrammeKind::Live);
    CHECK(info->level == Priority::Scheduled);
    CHECK(info->target_zones == std::vector<std::string>{"A"});
    const auto* src = f.studio_source_of(id);
    REQUIRE(src != nullptr);
    CHECK(src->lead_in() == nullptr);
    CHECK(f.readers() == 1);
    const auto started = f.events_of(pb::PROGRAMME_STARTED, seq);
    REQUIRE(started.size() == 1);
    CHECK(started[0].message.find("studio 'bv' live") != std::string::npos);
    CHECK(started[0].message.find("late") == std::string::npos);

    // Listed on air; ListProgrammes shows the window's programme.
    const auto listed = f.ok<pb::ListSchedulesResponse>("ListSchedules", pb::ListSchedulesRequest());
    REQUIRE(listed.schedules_size() == 1);
    CHECK(listed.schedules(0).programme_id() == Fixture::pid(id));
    CHECK(listed.schedules(0).next(0).on_air());
    const auto programmes = f.ok<pb::ListProgrammesResponse>("ListProgrammes", pb::ListProgrammesRequest());
    REQUIRE(programmes.programmes_size() == 1);
    CHECK(programmes.programmes(0).name() == "schedule:evening live");

    // Cluster a hears the studio through it.
    CHECK(hears_studio(f.a, info->ssrc, studio));
    CHECK(src->playout_stats().received.load() > 0);

    // The window's end takes it off the air and frees the studio's reader.
    f.set_ms(hcm_ms(10, 22, 1, 10) - 1);
    f.tick();
    CHECK(f.on_air(id));
    f.advance_ms(1);
    f.tick();
    CHECK_FALSE(f.on_air(id));
    CHECK(f.readers() == 0);
    const auto stopped = f.events_of(pb::PROGRAMME_STOPPED, seq);
    REQUIRE(stopped.size() == 1);
    CHECK(stopped[0].message.find("its window closed") != std::string::npos);
    CHECK(f.store.schedules().front().done_start_unix_ms == hcm_ms(10, 22, 0, 10));
    CHECK(f.ok<pb::ListProgrammesResponse>("ListProgrammes", pb::ListProgrammesRequest()).programmes_size() == 0);
}

TEST_CASE("restart_inside_studio_window_goes_live_again", "[engine][schedules][studios]") {
    Fixture f(false);
    // Open now (22:00 for 10 min): started by the call itself. A second one
    // to commune B with late policy restart, a third with skip.
    const auto resume = f.create(Fixture::live("resume", "A", "22:00", 600));
    auto r = Fixture::live("restart", "B", "22:00", 600);
    r.set_late_policy(pb::LATE_RESTART);
    const auto restart = f.create(r);
    r = Fixture::live("skip", "D", "22:00", 600, "commune-a");
    r.set_late_policy(pb::LATE_SKIP);
    const auto skip = f.create(r);
    REQUIRE(f.on_air(resume));
    REQUIRE(f.on_air(restart));
    REQUIRE(f.on_air(skip));
    CHECK(f.readers() == 2);

    // Killed 30 s into the window: the readers go with the programmes.
    f.advance_ms(30'000);
    f.close();
    CHECK(f.readers() == 0);
    f.open();
    CHECK(f.restore_problems.empty());
    const auto seq = f.store.last_event_seq();
    f.tick();

    // Live again at once, no offset into a feed, whatever resume or restart says.
    REQUIRE(f.on_air(resume));
    REQUIRE(f.on_air(restart));
    CHECK(f.studio_source_of(resume) != nullptr);
    CHECK(f.studio_source_of(restart) != nullptr);
    CHECK(f.readers() == 2);
    const auto started = f.events_of(pb::PROGRAMME_STARTED, seq);
    REQUIRE(started.size() == 2);
    for (const auto& e : started) {
        CHECK(e.message.find("studio 'bv' live, joined 30.0 s late") != std::string::npos);
        CHECK(e.message.find("into its playlist") == std::string::npos);
    }
    const auto listed = f.ok<pb::ListSchedulesResponse>("ListSchedules", pb::ListSchedulesRequest());
    REQUIRE(listed.schedules_size() == 3);
    CHECK(listed.schedules(0).programme_id() == Fixture::pid(resume));
    CHECK(listed.schedules(0).position_ms() == 0);
    // Skip lets the window go, and says so.
    CHECK_FALSE(f.on_air(skip));
    CHECK(f.readers("commune-a") == 0);
    const auto notices = f.events_of(pb::ENGINE_NOTICE, seq);
    REQUIRE(notices.size() == 1);
    CHECK(notices[0].subject == "schedule/" + std::to_string(skip));

    // Both end at the window's end.
    f.set_ms(hcm_ms(10, 22, 10));
    f.tick();
    CHECK_FALSE(f.on_air(resume));
    CHECK_FALSE(f.on_air(restart));
    CHECK(f.readers() == 0);
    CHECK(f.manager->list().empty());
}

TEST_CASE("studio_window_at_the_reader_limit_fails_and_retries", "[engine][schedules][studios]") {
    Fixture f(false);
    // Four programmes read the studio: it has no reader left.
    pb::StartProgrammeRequest news;
    news.set_name("district news");
    news.set_level(pb::DISTRICT);
    news.add_zone_ids("B");
    news.set_studio("bv");
    std::vector<std::uint64_t> ids;
    for (std::size_t i = 0; i < StudioFeed::kMaxReaders; ++i) {
        ids.push_back(f.ok<pb::StartProgrammeResponse>("StartProgramme", news).id());
    }
    CHECK(f.readers() == StudioFeed::kMaxReaders);

    const auto id = f.create(Fixture::live("evening live", "A", "22:00:10", 60));
    const auto seq = f.store.last_event_seq();
    f.set_ms(hcm_ms(10, 22, 0, 10));
    f.tick();
    CHECK_FALSE(f.on_air(id));
    auto notices = f.events_of(pb::ENGINE_NOTICE, seq);
    REQUIRE(notices.size() == 1);
    CHECK(notices[0].subject == "schedule/" + std::to_string(id));
    CHECK(notices[0].message.find("could not start") != std::string::npos);
    CHECK(notices[0].message.find("studio 'bv' already feeds 4") != std::string::npos);
    CHECK(notices[0].message.find("tried again every 5 s") != std::string::npos);
    CHECK(f.readers() == StudioFeed::kMaxReaders);

    // Retried after 5 s, announced once per window.
    f.advance_ms(ScheduleControl::kRetryMs - 1);
    f.tick();
    CHECK_FALSE(f.on_air(id));
    f.advance_ms(1);
    f.tick();
    CHECK_FALSE(f.on_air(id));
    CHECK(f.events_of(pb::ENGINE_NOTICE, seq).size() == 1);

    // A programme stops: the next try goes live, late.
    pb::StopProgrammeRequest stop;
    stop.set_id(ids.back());
    f.ok<pb::StopProgrammeResponse>("StopProgramme", stop);
    f.advance_ms(ScheduleControl::kRetryMs);
    f.tick();
    REQUIRE(f.on_air(id));
    CHECK(f.readers() == StudioFeed::kMaxReaders);
    const auto started = f.events_of(pb::PROGRAMME_STARTED, seq);
    REQUIRE(started.size() == 1);
    CHECK(started[0].message.find("studio 'bv' live, joined 10.0 s late") != std::string::npos);
}

TEST_CASE("remove_studio_refused_while_a_schedule_uses_it", "[engine][schedules][studios][control]") {
    Fixture f(false);
    const auto id = f.create(Fixture::live("weekend", "A", "08:00", 600, "commune-a"));
    pb::RemoveStudioRequest rm;
    rm.set_name("commune-a");
    const auto before = f.snapshot();
    const auto out = f.call("RemoveStudio", rm);
    INFO(out.message());
    CHECK(out.code() == pb::FAILED_PRECONDITION);
    CHECK(out.message().find("schedule " + std::to_string(id) + " ('weekend')") != std::string::npos);
    CHECK(f.snapshot() == before);
    CHECK(f.engine.studio_status("commune-a"));

    pb::DeleteScheduleRequest del;
    del.set_id(id);
    f.ok<pb::DeleteScheduleResponse>("DeleteSchedule", del);
    f.ok<pb::RemoveStudioResponse>("RemoveStudio", rm);
    CHECK_FALSE(f.store.studio("commune-a"));
}
