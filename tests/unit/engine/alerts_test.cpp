// Emergency alerts: the playlist source they play, RaiseAlert / CancelAlert /
// ListAlerts / GetAlertStatus through the Control service, expiry and the
// end of the last play on the tick, confirmation from cluster reports, and
// restoring an alert after a restart. Time for expiry is a ManualClock; the
// audio is checked by its content and order, never by wall time.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
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
#include "loa/engine/cluster_registry.h"
#include "loa/engine/control_server.h"
#include "loa/engine/control_service.h"
#include "loa/engine/engine.h"
#include "loa/engine/playlist.h"
#include "loa/engine/programme_control.h"
#include "loa/engine/programme_manager.h"
#include "loa/transport/cluster_status.h"
#include "loa/transport/rtcp_packet.h"
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
const PeerInfo kRoot{true, true, 0};
// One run of consecutive frames with the same (play, item) tag.
struct Run {
    std::uint32_t play = 0;
    std::uint32_t item = 0;
    std::vector<float> pcm;
};

// Plays a playlist source to its end (waiting for the producer, never for
// the clock) and cuts what it played into runs by tag.
std::vector<Run> play_out(PlaylistSource& src, std::size_t max_frames = 20000) {
    std::vector<Run> runs;
    std::array<float, kFrame> frame{};
    for (std::size_t n = 0; n < max_frames; ++n) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (src.buffered() == 0 && !src.produced_all() && std::chrono::steady_clock::now() < until) {
            std::this_thread::yield();
        }
        if (!src.render(frame)) return runs;
        const auto play = src.progress().play.load();
        const auto item = src.progress().item.load();
        if (runs.empty() || runs.back().play != play || runs.back().item != item) runs.push_back({play, item, {}});
        runs.back().pcm.insert(runs.back().pcm.end(), frame.begin(), frame.end());
    }
    FAIL("the playlist did not end");
    return runs;
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

float peak_of(const std::vector<float>& pcm) {
    float p = 0.0f;
    for (const float v : pcm) p = std::max(p, std::abs(v));
    return p;
}

using Listener = loa::test::RtpListener;

std::vector<std::uint8_t> report(const std::string& cname, std::uint32_t playing, bool amplifier_on) {
    std::vector<std::uint8_t> buf(512);
    loa::transport::RtcpWriter w(buf);
    loa::transport::RtcpReportBlock b;
    b.ssrc = playing;
    REQUIRE(w.add_rr(0xABCD0001, std::span(&b, 1)) == loa::transport::Status::Ok);
    REQUIRE(w.add_sdes_cname(0xABCD0001, cname) == loa::transport::Status::Ok);
    loa::transport::ClusterStatus st;
    st.playing_ssrc = playing;
    st.volume_pct = 80;
    st.amplifier_on = amplifier_on;
    std::array<std::uint8_t, loa::transport::kClusterStatusSize> app{};
    REQUIRE(loa::transport::encode_cluster_status(st, app) == loa::transport::Status::Ok);
    REQUIRE(w.add_app(0xABCD0001, loa::transport::kClusterStatusSubtype, "LOAS", app) == loa::transport::Status::Ok);
    buf.resize(w.size());
    return buf;
}

EngineConfig engine_config() {
    EngineConfig c;
    c.engine.listen = udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0);
    c.engine.fanout_threads = 1;
    c.engine.realtime_priority = 0;
    return c;
}

// Zones P > D > {A, B}; clusters a and c in A, b in B (c has no address).
// The control side (service, manager, programmes, alerts) can be torn down
// without ending anything, as a killed engine would, and built again on the
// same database.
struct Fixture : loa::test::ControlCalls<Fixture> {
    ControlService& control_service() { return *service; }

    loa::test::TempDir dir{"loa-alerts"};
    Store store{dir / "state.db"};
    ManualClock clock{0, 1'700'000'000'000'000'000};
    SystemClock media_clock;
    Engine engine;
    Listener a, b;
    ClusterRegistry registry{{{"a", udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 6001)},
                              {"b", udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 6002)},
                              {"c", udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 6003)}},
                             15'000'000'000};
    std::unique_ptr<ControlService> service;
    std::unique_ptr<ProgrammeManager> manager;
    std::unique_ptr<ProgrammeControl> programmes;
    std::unique_ptr<AlertControl> alerts;
    std::vector<std::string> restore_problems;

    explicit Fixture(bool start_media) : engine(engine_config(), media_clock) {
        store.write([&] {
            store.insert_zone({"P", "Province", ZoneKind::Province, ""});
            store.insert_zone({"D", "District", ZoneKind::District, "P"});
            store.insert_zone({"A", "Commune A", ZoneKind::Commune, "D"});
            store.insert_zone({"B", "Commune B", ZoneKind::Commune, "D"});
            store.insert_cluster({"a", "a", "A", a.address(), "", true});
            store.insert_cluster({"b", "b", "B", b.address(), "", true});
            store.insert_cluster({"c", "c", "A", "", "", true});
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
        restore_problems = alerts->restore();
        service->set_live_state_provider([this](const std::string& id) -> std::optional<loa::engine::v1::ClusterState> {
            const auto snap = registry.find(id);
            if (!snap) return std::nullopt;
            loa::engine::v1::ClusterState st;
            st.set_id(snap->id);
            st.set_online(snap->online);
            if (snap->has_status) {
                st.set_playing_ssrc(snap->status.playing_ssrc);
                st.set_amplifier_on(snap->status.amplifier_on);
            }
            return st;
        });
    }
    // Drops the control side without ending anything (a crash, as far as the
    // database is concerned).
    void close() {
        if (!service) return;
        service->set_alert_control(nullptr);
        service->set_programme_control(nullptr);
        alerts.reset();
        programmes.reset();
        manager.reset();
        service.reset();
    }

    pb::RaiseAlertRequest alert_to(std::vector<std::string> zones, std::uint64_t clip) const {
        pb::RaiseAlertRequest r;
        r.set_name("flood");
        for (const auto& z : zones) r.add_zone_ids(z);
        r.set_clip_id(clip);
        r.set_duration_s(60);
        return r;
    }

    std::int64_t now_ms() const { return clock.unix_ns() / 1'000'000; }
    void advance_ms(std::int64_t ms) { clock.advance(ms * 1'000'000); }

    std::vector<EventRow> events_of(int kind, std::uint64_t after = 0) const {
        std::vector<EventRow> out;
        for (auto& e : store.events_after(after, 1000)) {
            if (e.kind == kind) out.push_back(std::move(e));
        }
        return out;
    }

    // The alert's playlist source inside the engine (engine not started only).
    PlaylistSource* source_of(std::uint64_t alert_id) {
        const auto group = manager->group_of(AlertControl::kProgrammeIdBase + alert_id);
        REQUIRE(group);
        const Program* p = engine.runtime_programme(*group);
        REQUIRE(p != nullptr);
        REQUIRE(p->sources().size() == 1);
        return dynamic_cast<PlaylistSource*>(p->sources().front().get());
    }
    const Program* programme_of(std::uint64_t alert_id) {
        const auto group = manager->group_of(AlertControl::kProgrammeIdBase + alert_id);
        return group ? engine.runtime_programme(*group) : nullptr;
    }

    // What must not change when a call is refused.
    std::string snapshot() const {
        std::ostringstream os;
        os << store.alerts().size() << "|" << store.last_event_seq() << "|" << manager->list().size() << "|"
           << alerts->size() << "|" << store.meta("last_alert_id").value_or("-");
        for (const auto& c : store.clips()) os << "|" << c.id << ":" << c.uses;
        return os.str();
    }
};

}  // namespace

TEST_CASE("playlist_plays_items_in_order_then_ends", "[engine][alerts][playlist]") {
    loa::test::TempDir dir("loa-playlist");
    write_sine(dir / "msg.wav", 440.0, 0.5);
    PlaylistSpec spec;
    spec.items.push_back(PlaylistItem::tone_sequence(attention_chime(), kAttentionChimeLevelDb));
    spec.items.push_back(PlaylistItem::clip(dir / "msg.wav", -6.0));
    spec.items.push_back(PlaylistItem::clip(dir / "missing.wav"));  // skipped
    spec.repeats = 2;
    spec.interval_ms = 300;
    spec.progress = std::make_shared<PlaylistProgress>();
    PlaylistSource src(spec, kFrame);

    const auto runs = play_out(src);
    // chime, clip, interval, chime, clip: the missing clip plays nothing.
    REQUIRE(runs.size() == 5);
    CHECK(runs[0].play == 0);
    CHECK(runs[0].item == 0);
    CHECK(tones_of(runs[0].pcm) == std::vector<int>{960, 853, 960, 853});
    CHECK(runs[0].pcm.size() == 2 * 48000);
    CHECK(peak_of(runs[0].pcm) == Approx(0.5).margin(0.02));  // -6 dBFS
    CHECK(runs[1].item == 1);
    CHECK(tones_of(runs[1].pcm) == std::vector<int>{440});
    CHECK(runs[1].pcm.size() == 25 * kFrame);
    CHECK(peak_of(runs[1].pcm) == Approx(0.25).margin(0.02));  // 0.5 at -6 dB
    CHECK(runs[2].play == 1);
    CHECK(runs[2].item == 3);  // the interval before play 1
    CHECK(runs[2].pcm.size() == 15 * kFrame);
    CHECK(peak_of(runs[2].pcm) == 0.0f);
    CHECK(runs[3].play == 1);
    CHECK(tones_of(runs[3].pcm) == std::vector<int>{960, 853, 960, 853});
    CHECK(tones_of(runs[4].pcm) == std::vector<int>{440});

    CHECK(src.progress().finished.load());
    CHECK(src.progress().skipped_items.load() == 2);
    CHECK(src.error().find("missing.wav") != std::string::npos);
    CHECK(src.counters().frames.load() == src.progress().frames.load());
    std::array<float, kFrame> frame{};
    frame.fill(1.0f);
    CHECK_FALSE(src.render(frame));  // and it stays ended, silent
    CHECK(frame[0] == 0.0f);
}

TEST_CASE("playlist_stops_cleanly_while_its_producer_waits", "[engine][alerts][playlist]") {
    PlaylistSpec spec;
    spec.items.push_back(PlaylistItem::gap(10'000));
    spec.repeats = 50;
    auto src = std::make_unique<PlaylistSource>(spec, kFrame, 4);
    // The producer fills its 4-frame ring, then waits for the media side.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (src->buffered() < 4 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    REQUIRE(src->buffered() == 4);
    std::array<float, kFrame> frame{};
    for (int i = 0; i < 3; ++i) {
        frame.fill(1.0f);
        CHECK(src->render(frame));
        CHECK(peak_of(std::vector<float>(frame.begin(), frame.end())) == 0.0f);
    }
    CHECK(src->progress().frames.load() == 3);
    CHECK(src->counters().underruns.load() == 0);
    CHECK_FALSE(src->progress().finished.load());
    src.reset();  // joins a producer blocked on a full ring
}

TEST_CASE("commune_operator_cannot_raise_emergency", "[engine][alerts][control]") {
    Fixture f(false);
    const auto clip = f.upload_sine(440.0, 0.3);
    const auto commune = f.make_operator("op-a", pb::OPERATOR, "A", pb::COMMUNE);
    const auto province = f.make_operator("op-p", pb::OPERATOR, "P", pb::EMERGENCY);
    const auto viewer = f.make_operator("view", pb::VIEWER, "", pb::EMERGENCY);
    const auto before = f.snapshot();

    // The default level is EMERGENCY: above a commune operator's.
    auto req = f.alert_to({"A"}, clip);
    auto r = f.call("RaiseAlert", req, commune);
    CHECK(r.code() == pb::PERMISSION_DENIED);
    CHECK(r.message().find("emergency") != std::string::npos);
    req.set_level(pb::PROVINCE);
    CHECK(f.call("RaiseAlert", req, commune).code() == pb::PERMISSION_DENIED);
    // Outside its commune, even at its own level.
    auto other = f.alert_to({"B"}, clip);
    other.set_level(pb::COMMUNE);
    CHECK(f.call("RaiseAlert", other, commune).code() == pb::PERMISSION_DENIED);
    CHECK(f.call("RaiseAlert", f.alert_to({"A"}, clip), viewer).code() == pb::PERMISSION_DENIED);
    CHECK(f.snapshot() == before);

    // At its own level, to its own commune: allowed.
    auto own = f.alert_to({"A"}, clip);
    own.set_level(pb::COMMUNE);
    const auto low = f.ok<pb::RaiseAlertResponse>("RaiseAlert", own, commune);
    CHECK(low.clusters_targeted() == 2);  // a and c
    // A province operator allowed EMERGENCY raises one over the province.
    const auto high = f.ok<pb::RaiseAlertResponse>("RaiseAlert", f.alert_to({"P"}, clip), province);
    CHECK(high.id() == low.id() + 1);
    CHECK(f.store.alerts().size() == 2);
    CHECK(f.store.clip(static_cast<std::int64_t>(clip))->uses == 2);
    CHECK(f.events_of(pb::ALERT_RAISED).size() == 2);
    const auto* p = f.programme_of(high.id());
    REQUIRE(p != nullptr);
    CHECK(p->config().priority == Priority::Emergency);
    REQUIRE(p->config().alert);
    CHECK(p->config().alert->volume_pct == 100);

    // The commune operator can neither cancel the emergency alert nor see
    // clusters outside its commune; it may cancel its own.
    pb::CancelAlertRequest cancel;
    cancel.set_id(high.id());
    CHECK(f.call("CancelAlert", cancel, commune).code() == pb::PERMISSION_DENIED);
    pb::GetAlertStatusRequest status;
    status.set_id(high.id());
    const auto seen = f.ok<pb::GetAlertStatusResponse>("GetAlertStatus", status, commune);
    CHECK(seen.alert().clusters_targeted() == 2);
    CHECK(f.ok<pb::ListAlertsResponse>("ListAlerts", pb::ListAlertsRequest(), commune).alerts_size() == 2);
    cancel.set_id(low.id());
    f.ok<pb::CancelAlertResponse>("CancelAlert", cancel, commune);
    CHECK(f.store.alerts().size() == 1);
    CHECK(f.store.clip(static_cast<std::int64_t>(clip))->uses == 1);
}

TEST_CASE("alert_bad_input_is_refused_and_nothing_stored", "[engine][alerts][control]") {
    Fixture f(false);
    const auto clip = f.upload_sine(440.0, 0.3);
    const auto before = f.snapshot();
    const auto refused = [&](pb::RaiseAlertRequest req, pb::StatusCode code) {
        const auto r = f.call("RaiseAlert", req);
        INFO(r.message());
        CHECK(r.code() == code);
        CHECK_FALSE(r.message().empty());
        CHECK(f.snapshot() == before);
    };
    auto req = f.alert_to({}, clip);
    refused(req, pb::INVALID_ARGUMENT);  // no zone
    refused(f.alert_to({"A", "nowhere"}, clip), pb::INVALID_ARGUMENT);
    refused(f.alert_to({"A"}, clip + 7), pb::INVALID_ARGUMENT);  // unknown clip
    refused(f.alert_to({"A"}, 0), pb::INVALID_ARGUMENT);         // no audio
    req = f.alert_to({"A"}, clip);
    req.set_duration_s(0);
    req.set_expires_unix_ms(f.now_ms() - 1);
    refused(req, pb::INVALID_ARGUMENT);  // expiry in the past
    req.set_expires_unix_ms(f.now_ms());
    refused(req, pb::INVALID_ARGUMENT);  // ... or now
    req = f.alert_to({"A"}, clip);
    req.set_expires_unix_ms(f.now_ms() + 60'000);
    refused(req, pb::INVALID_ARGUMENT);  // expiry and duration together
    req = f.alert_to({"A"}, clip);
    req.set_duration_s(-5);
    refused(req, pb::INVALID_ARGUMENT);
    req.set_duration_s(std::nan(""));
    refused(req, pb::INVALID_ARGUMENT);
    req = f.alert_to({"A"}, clip);
    req.set_volume_pct(101);
    refused(req, pb::INVALID_ARGUMENT);
    req.set_volume_pct(-1);
    refused(req, pb::INVALID_ARGUMENT);
    req = f.alert_to({"A"}, clip);
    req.set_repeats(0);
    refused(req, pb::INVALID_ARGUMENT);
    req.set_repeats(-3);
    refused(req, pb::INVALID_ARGUMENT);
    req.set_repeats(AlertControl::kMaxRepeats + 1);
    refused(req, pb::INVALID_ARGUMENT);
    req = f.alert_to({"A"}, clip);
    req.set_interval_s(-1);
    refused(req, pb::INVALID_ARGUMENT);
    req = f.alert_to({"A"}, clip);
    req.set_level(static_cast<pb::Level>(9));
    refused(req, pb::INVALID_ARGUMENT);
    // A studio that does not exist (as StartProgramme: NOT_FOUND); a studio
    // needs an expiry (checked first). More in alerts_studio_test.cpp.
    req = f.alert_to({"A"}, clip);
    req.set_studio("district-studio");
    refused(req, pb::NOT_FOUND);
    req.set_duration_s(0);
    refused(req, pb::INVALID_ARGUMENT);
    // Garbage payload.
    pb::Envelope env;
    env.set_method("RaiseAlert");
    env.set_payload("\xff\xff\xff");
    CHECK(f.service->handle(env, kRoot).response.code() == pb::INVALID_ARGUMENT);
    // Unknown ids.
    pb::CancelAlertRequest cancel;
    cancel.set_id(42);
    CHECK(f.call("CancelAlert", cancel).code() == pb::NOT_FOUND);
    pb::GetAlertStatusRequest status;
    status.set_id(42);
    CHECK(f.call("GetAlertStatus", status).code() == pb::NOT_FOUND);
    CHECK(f.snapshot() == before);

    // Without alert control the calls are UNAVAILABLE.
    f.service->set_alert_control(nullptr);
    CHECK(f.call("RaiseAlert", f.alert_to({"A"}, clip)).code() == pb::UNAVAILABLE);
    CHECK(f.call("ListAlerts", pb::ListAlertsRequest()).code() == pb::UNAVAILABLE);
}

TEST_CASE("alert_repeats_then_expires", "[engine][alerts]") {
    // The media thread is not running: this test plays the alert's source
    // itself, so content and order are exact and no wall time is involved.
    Fixture f(false);
    const auto clip = f.upload_sine(440.0, 0.3);

    // Three plays, one second apart, no expiry: it ends after its last play.
    auto req = f.alert_to({"A"}, clip);
    req.set_duration_s(0);
    req.set_repeats(3);
    req.set_interval_s(1.0);
    req.set_volume_pct(80);
    const auto done = f.ok<pb::RaiseAlertResponse>("RaiseAlert", req).id();
    CHECK(f.programme_of(done)->config().alert->volume_pct == 80);
    f.service->tick(f.now_ms());
    CHECK(f.alerts->size() == 1);  // still playing

    auto* src = f.source_of(done);
    REQUIRE(src != nullptr);
    const auto runs = play_out(*src);
    std::vector<std::string> order;
    for (const auto& run : runs) {
        const auto tones = tones_of(run.pcm);
        if (tones == std::vector<int>{960, 853, 960, 853}) order.push_back("chime");
        else if (tones == std::vector<int>{440}) order.push_back("message");
        else if (peak_of(run.pcm) == 0.0f) order.push_back("silence " + std::to_string(run.pcm.size() / 48) + " ms");
        else order.push_back("?");
    }
    CHECK(order == std::vector<std::string>{"chime", "message", "silence 1000 ms", "chime", "message",
                                            "silence 1000 ms", "chime", "message"});
    pb::GetAlertStatusRequest status;
    status.set_id(done);
    CHECK(f.ok<pb::GetAlertStatusResponse>("GetAlertStatus", status).alert().play() == 3);

    // Another with many plays and a 10 s expiry: ends on time, mid-play.
    auto long_req = f.alert_to({"B"}, clip);
    long_req.set_duration_s(10);
    long_req.set_repeats(100);
    const auto expiring = f.ok<pb::RaiseAlertResponse>("RaiseAlert", long_req).id();
    const auto seq = f.store.last_event_seq();

    f.advance_ms(100);
    f.service->tick(f.now_ms());  // the first alert played all its plays
    CHECK(f.store.alerts().size() == 1);
    CHECK(f.programme_of(done) == nullptr);
    auto ended = f.events_of(pb::ALERT_ENDED, seq);
    REQUIRE(ended.size() == 1);
    CHECK(ended[0].subject == "alert/" + std::to_string(done));
    CHECK(ended[0].message.find("every play done") != std::string::npos);

    f.advance_ms(9'800);  // 9.9 s after raising
    f.service->tick(f.now_ms());
    CHECK(f.programme_of(expiring) != nullptr);
    f.advance_ms(100);  // 10 s
    f.service->tick(f.now_ms());
    CHECK(f.programme_of(expiring) == nullptr);
    CHECK(f.store.alerts().empty());
    CHECK(f.alerts->size() == 0);
    ended = f.events_of(pb::ALERT_ENDED, seq);
    REQUIRE(ended.size() == 2);
    CHECK(ended[1].message.find("expired") != std::string::npos);
    CHECK(f.store.clip(static_cast<std::int64_t>(clip))->uses == 0);
    CHECK(f.manager->list().empty());
    CHECK(f.ok<pb::ListAlertsResponse>("ListAlerts", pb::ListAlertsRequest()).alerts_size() == 0);
}

TEST_CASE("cancel_alert_restores_schedule", "[engine][alerts]") {
    Fixture f(true);
    const auto clip = f.upload_sine(440.0, 0.5);
    // What the communes hear before the alert: a scheduled-level programme each.
    pb::StartProgrammeRequest sched;
    sched.set_name("morning");
    sched.set_level(pb::SCHEDULED);
    sched.add_zone_ids("A");
    sched.set_tone_hz(523.0);
    const auto morning = f.ok<pb::StartProgrammeResponse>("StartProgramme", sched).id();
    sched.clear_zone_ids();
    sched.add_zone_ids("B");
    sched.set_name("music");
    const auto music = f.ok<pb::StartProgrammeResponse>("StartProgramme", sched).id();
    const auto ssrc_morning = f.manager->info(morning)->ssrc;
    const auto ssrc_music = f.manager->info(music)->ssrc;
    REQUIRE(f.a.hears(ssrc_morning));
    REQUIRE(f.b.hears(ssrc_music));

    auto req = f.alert_to({"A"}, clip);
    req.set_repeats(100);
    const auto id = f.ok<pb::RaiseAlertResponse>("RaiseAlert", req).id();
    pb::GetAlertStatusRequest status;
    status.set_id(id);
    const auto ssrc_alert = f.ok<pb::GetAlertStatusResponse>("GetAlertStatus", status).alert().ssrc();
    CHECK(f.a.hears(ssrc_alert));
    CHECK(f.manager->info(morning)->state == ProgrammeState::Preempted);
    CHECK(f.manager->info(music)->state == ProgrammeState::Audible);  // B is not targeted

    // Clips in use by an alert cannot be deleted.
    pb::DeleteClipRequest del;
    del.set_id(clip);
    CHECK(f.call("DeleteClip", del).code() == pb::FAILED_PRECONDITION);

    const auto seq = f.store.last_event_seq();
    pb::CancelAlertRequest cancel;
    cancel.set_id(id);
    f.ok<pb::CancelAlertResponse>("CancelAlert", cancel);
    CHECK(f.a.hears(ssrc_morning));  // back to what it played before
    CHECK(f.manager->info(morning)->state == ProgrammeState::Audible);
    CHECK(f.manager->info(morning)->listeners == 1);
    CHECK(f.store.alerts().empty());
    const auto ended = f.events_of(pb::ALERT_ENDED, seq);
    REQUIRE(ended.size() == 1);
    CHECK(ended[0].message.find("cancelled by local admin") != std::string::npos);
    CHECK(f.call("CancelAlert", cancel).code() == pb::NOT_FOUND);
    CHECK(f.call("DeleteClip", del).code() == pb::OK);

    // An alert whose programme is stopped behind its back ends on the next tick.
    const auto clip2 = f.upload_sine(660.0, 0.5);
    const auto lost = f.ok<pb::RaiseAlertResponse>("RaiseAlert", f.alert_to({"B"}, clip2)).id();
    pb::StopProgrammeRequest stop;
    stop.set_id(AlertControl::kProgrammeIdBase + lost);
    f.ok<pb::StopProgrammeResponse>("StopProgramme", stop);
    f.service->tick(f.now_ms());
    CHECK(f.store.alerts().empty());
    CHECK(f.events_of(pb::ALERT_ENDED, seq).back().message.find("its programme was stopped") != std::string::npos);
    CHECK(f.b.hears(ssrc_music));
}

TEST_CASE("alert_confirmation_counts_offline_clusters", "[engine][alerts]") {
    Fixture f(false);
    const auto clip = f.upload_sine(440.0, 0.3);
    auto req = f.alert_to({"P"}, clip);
    req.set_repeats(100);
    const auto id = f.ok<pb::RaiseAlertResponse>("RaiseAlert", req).id();
    pb::GetAlertStatusRequest status;
    status.set_id(id);
    auto st = f.ok<pb::GetAlertStatusResponse>("GetAlertStatus", status);
    const auto ssrc = st.alert().ssrc();
    REQUIRE(ssrc != 0);
    // Nobody has reported yet: all three are offline.
    CHECK(st.alert().clusters_targeted() == 3);
    CHECK(st.offline_size() == 3);
    const auto seq = f.store.last_event_seq();

    // a plays the alert with its amplifier on; b still plays something else;
    // c is never heard from.
    const udp::endpoint from(boost::asio::ip::make_address("127.0.0.1"), 40000);
    std::string who;
    bool came_online = false;
    REQUIRE(f.registry.on_rtcp(report("a", ssrc, true), from, 0, 0, who, came_online) ==
            ClusterRegistry::Result::Accepted);
    REQUIRE(f.registry.on_rtcp(report("b", 0x1234, false), from, 0, 0, who, came_online) ==
            ClusterRegistry::Result::Accepted);
    st = f.ok<pb::GetAlertStatusResponse>("GetAlertStatus", status);
    CHECK(std::vector<std::string>(st.confirmed().begin(), st.confirmed().end()) == std::vector<std::string>{"a"});
    CHECK(std::vector<std::string>(st.not_confirmed().begin(), st.not_confirmed().end()) ==
          std::vector<std::string>{"b"});
    CHECK(std::vector<std::string>(st.offline().begin(), st.offline().end()) == std::vector<std::string>{"c"});
    CHECK(st.alert().clusters_confirmed() == 1);
    CHECK(st.alert().clusters_not_confirmed() == 1);
    CHECK(st.alert().clusters_offline() == 1);

    // The tick announces the change once a second has passed.
    f.service->tick(f.now_ms());
    CHECK(f.events_of(pb::ALERT_CONFIRMATION, seq).empty());
    f.advance_ms(1000);
    f.service->tick(f.now_ms());
    auto conf = f.events_of(pb::ALERT_CONFIRMATION, seq);
    REQUIRE(conf.size() == 1);
    CHECK(conf[0].message.find("1 of 3 cluster(s) confirmed, 1 not confirmed, 1 offline") != std::string::npos);

    // b switches, but with its amplifier off: not confirmed; then on.
    REQUIRE(f.registry.on_rtcp(report("b", ssrc, false), from, 0, 0, who, came_online) ==
            ClusterRegistry::Result::Accepted);
    f.advance_ms(1000);
    f.service->tick(f.now_ms());
    CHECK(f.events_of(pb::ALERT_CONFIRMATION, seq).size() == 1);  // counts unchanged
    REQUIRE(f.registry.on_rtcp(report("b", ssrc, true), from, 0, 0, who, came_online) ==
            ClusterRegistry::Result::Accepted);
    f.advance_ms(1000);
    f.service->tick(f.now_ms());
    conf = f.events_of(pb::ALERT_CONFIRMATION, seq);
    REQUIRE(conf.size() == 2);
    CHECK(conf[1].message.find("2 of 3 cluster(s) confirmed, 0 not confirmed, 1 offline") != std::string::npos);

    // Rate limit: a change one second after an announcement waits for the next.
    (void)f.registry.sweep(16'000'000'000);  // a and b fall silent: offline
    f.advance_ms(1000);
    f.service->tick(f.now_ms());
    CHECK(f.events_of(pb::ALERT_CONFIRMATION, seq).size() == 2);
    f.advance_ms(1000);
    f.service->tick(f.now_ms());
    conf = f.events_of(pb::ALERT_CONFIRMATION, seq);
    REQUIRE(conf.size() == 3);
    CHECK(conf[2].message.find("0 of 3 cluster(s) confirmed, 0 not confirmed, 3 offline") != std::string::npos);

    // A commune viewer sees only its commune's clusters.
    const auto viewer = f.make_operator("view-b", pb::VIEWER, "B", pb::EMERGENCY);
    st = f.ok<pb::GetAlertStatusResponse>("GetAlertStatus", status, viewer);
    CHECK(st.alert().clusters_targeted() == 1);
    CHECK(std::vector<std::string>(st.offline().begin(), st.offline().end()) == std::vector<std::string>{"b"});
    const auto list = f.ok<pb::ListAlertsResponse>("ListAlerts", pb::ListAlertsRequest(), viewer);
    REQUIRE(list.alerts_size() == 1);
    CHECK(list.alerts(0).clusters_offline() == 1);
}

TEST_CASE("restart_during_alert_resumes_alert", "[engine][alerts]") {
    Fixture f(false);
    const auto clip = f.upload_sine(440.0, 1.0);  // 1 s message
    // Chime (2 s) + message (1 s) + 2 s interval: one play every 5 s.
    auto req = f.alert_to({"A"}, clip);
    req.set_repeats(4);
    req.set_interval_s(2.0);
    req.set_duration_s(60);
    req.set_volume_pct(70);
    const auto id = f.ok<pb::RaiseAlertResponse>("RaiseAlert", req).id();
    pb::GetAlertStatusRequest status;
    status.set_id(id);
    const auto before = f.ok<pb::GetAlertStatusResponse>("GetAlertStatus", status).alert();
    // Another one expires while the engine is down.
    auto brief = f.alert_to({"B"}, clip);
    brief.set_duration_s(5);
    const auto brief_id = f.ok<pb::RaiseAlertResponse>("RaiseAlert", brief).id();

    // The engine dies 12 s in (during the third play) and comes back.
    f.advance_ms(12'000);
    f.close();
    f.open();
    CHECK(f.restore_problems.empty());
    REQUIRE(f.alerts->size() == 2);
    const auto seq = f.store.last_event_seq();

    // The first alert is back on the air with the same id, SSRC, level,
    // volume and expiry, and plays on from the interrupted (third) play.
    const auto after = f.ok<pb::GetAlertStatusResponse>("GetAlertStatus", status).alert();
    CHECK(after.ssrc() == before.ssrc());
    CHECK(after.expires_unix_ms() == before.expires_unix_ms());
    CHECK(after.raised_unix_ms() == before.raised_unix_ms());
    const auto* p = f.programme_of(id);
    REQUIRE(p != nullptr);
    CHECK(p->config().priority == Priority::Emergency);
    REQUIRE(p->config().alert);
    CHECK(p->config().alert->volume_pct == 70);
    auto* src = f.source_of(id);
    REQUIRE(src != nullptr);
    CHECK(src->description() == "playlist of 2 item(s) x 2");  // plays 3 and 4
    std::array<float, kFrame> frame{};
    while (src->buffered() == 0) std::this_thread::yield();
    REQUIRE(src->render(frame));
    CHECK(f.ok<pb::GetAlertStatusResponse>("GetAlertStatus", status).alert().play() == 3);

    // The one that expired while the engine was down ends at the first tick.
    f.service->tick(f.now_ms());
    auto ended = f.events_of(pb::ALERT_ENDED, seq);
    REQUIRE(ended.size() == 1);
    CHECK(ended[0].subject == "alert/" + std::to_string(brief_id));
    CHECK(ended[0].message.find("expired") != std::string::npos);
    REQUIRE(f.store.alerts().size() == 1);

    // New ids go on after the restored ones.
    CHECK(f.ok<pb::RaiseAlertResponse>("RaiseAlert", f.alert_to({"B"}, clip)).id() == brief_id + 1);

    // The restored alert plays until its expiry (60 s after it was raised).
    f.advance_ms(60'000 - 12'000 - 1);
    f.service->tick(f.now_ms());
    CHECK(f.programme_of(id) != nullptr);
    f.advance_ms(1);
    f.service->tick(f.now_ms());
    CHECK(f.programme_of(id) == nullptr);
    ended = f.events_of(pb::ALERT_ENDED, seq);
    REQUIRE(ended.size() == 2);
    CHECK(ended[1].subject == "alert/" + std::to_string(id));
    CHECK(f.store.alerts().size() == 1);  // the one raised after the restart
    CHECK(f.store.clip(static_cast<std::int64_t>(clip))->uses == 1);
}

TEST_CASE("authorisation_matrix_alerts", "[engine][alerts][control][auth]") {
    // Every role x caller level x alert level, inside and outside the
    // caller's commune: RaiseAlert and CancelAlert are allowed only inside,
    // for operators and admins, at levels up to their own.
    Fixture f(false);
    const auto clip = f.upload_sine(440.0, 0.3);
    for (const auto role : {pb::VIEWER, pb::OPERATOR, pb::ADMIN}) {
        for (const auto level : {pb::COMMUNE, pb::DISTRICT}) {
            const auto tok = f.make_operator(
                "caller-" + std::to_string(static_cast<int>(role)) + "-" + std::to_string(static_cast<int>(level)),
                role, "A", level);
            for (const auto al : {pb::COMMUNE, pb::DISTRICT, pb::EMERGENCY}) {
                for (const bool inside : {true, false}) {
                    const bool allowed = inside && role >= pb::OPERATOR && al <= level;
                    INFO("caller " << pb::Role_Name(role) << "/" << pb::Level_Name(level) << " alert "
                                   << pb::Level_Name(al) << " inside " << inside);
                    auto req = f.alert_to({inside ? "A" : "B"}, clip);
                    req.set_level(al);
                    auto before = f.snapshot();
                    const auto raised = f.call("RaiseAlert", req, tok);
                    INFO(pb::StatusCode_Name(raised.code()) << ": " << raised.message());
                    if (allowed) {
                        REQUIRE(raised.code() == pb::OK);
                        CHECK(f.snapshot() != before);
                        pb::RaiseAlertResponse r;
                        REQUIRE(r.ParseFromString(raised.payload()));
                        pb::CancelAlertRequest cancel;
                        cancel.set_id(r.id());
                        f.ok<pb::CancelAlertResponse>("CancelAlert", cancel);
                    } else {
                        REQUIRE(raised.code() == pb::PERMISSION_DENIED);
                        CHECK(f.snapshot() == before);
                    }
                    // One raised by the local admin, cancelled by the caller.
                    pb::CancelAlertRequest cancel;
                    cancel.set_id(f.ok<pb::RaiseAlertResponse>("RaiseAlert", req).id());
                    before = f.snapshot();
                    const auto cancelled = f.call("CancelAlert", cancel, tok);
                    INFO(pb::StatusCode_Name(cancelled.code()) << ": " << cancelled.message());
                    if (allowed) {
                        REQUIRE(cancelled.code() == pb::OK);
                        CHECK(f.snapshot() != before);
                    } else {
                        REQUIRE(cancelled.code() == pb::PERMISSION_DENIED);
                        CHECK(f.snapshot() == before);
                        f.ok<pb::CancelAlertResponse>("CancelAlert", cancel);
                    }
                }
            }
        }
    }
    CHECK(f.store.alerts().empty());
    CHECK(f.manager->list().empty());
}

TEST_CASE("alert_commit_failures_leave_nothing_half_done", "[engine][alerts][control]") {
    Fixture f(false);
    const auto clip = f.upload_sine(440.0, 0.3);
    const auto id = f.ok<pb::RaiseAlertResponse>("RaiseAlert", f.alert_to({"A"}, clip)).id();
    const auto seq = f.store.last_event_seq();

    // The state directory turns read-only: a new alert is refused and not on the air.
    f.store.set_read_only(true);
    const auto refused = f.call("RaiseAlert", f.alert_to({"B"}, clip));
    CHECK(refused.code() == pb::UNAVAILABLE);
    CHECK(f.manager->list().size() == 1);
    CHECK(f.alerts->size() == 1);

    // Cancelling takes the alert off the air at once, even though its end
    // cannot be committed yet; the tick commits it once it can.
    pb::CancelAlertRequest cancel;
    cancel.set_id(id);
    CHECK(f.call("CancelAlert", cancel).code() == pb::UNAVAILABLE);
    CHECK(f.programme_of(id) == nullptr);
    CHECK(f.manager->list().empty());
    f.service->tick(f.now_ms());
    CHECK(f.store.alerts().size() == 1);
    f.store.set_read_only(false);
    f.service->tick(f.now_ms());
    CHECK(f.store.alerts().empty());
    CHECK(f.alerts->size() == 0);
    CHECK(f.store.clip(static_cast<std::int64_t>(clip))->uses == 0);
    const auto ended = f.events_of(pb::ALERT_ENDED, seq);
    REQUIRE(ended.size() == 1);
    CHECK(ended[0].message.find("cancelled by local admin") != std::string::npos);
    CHECK(f.events_of(pb::ALERT_RAISED, seq).empty());
}

TEST_CASE("control_server_ticks_the_service", "[engine][control][server]") {
    loa::test::TempDir dir("loa-tick");
    Store store(dir / "state.db");
    ManualClock clock;
    ControlService service(store, clock, 1000);
    std::atomic<int> ticks{0};
    std::atomic<std::int64_t> seen{0};
    service.add_tick_hook([&](std::int64_t now_unix_ms) {
        seen = now_unix_ms;
        ++ticks;
    });
    ControlServerOptions o;
    o.socket_path = dir / "control.sock";
    o.tick_interval_ms = 10;
    ControlServer server(service, o);
    server.start();
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (ticks.load() < 3 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    server.stop();
    CHECK(ticks.load() >= 3);
    CHECK(seen.load() == clock.unix_ns() / 1'000'000);  // the service's clock, on the control thread
}
