// Emergency alerts on the air: repeats and expiry on the tick (the audio
// played by the test itself, checked by content and order), cancelling back
// to the schedule, confirmation from cluster reports, and restoring an alert
// after a restart. Time for expiry is a ManualClock, never wall time.

#include <array>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "alerts_fixture.h"
#include "loa/transport/cluster_status.h"
#include "loa/transport/rtcp_packet.h"

using namespace loa::engine;
namespace pb = loa::control::v1;
using boost::asio::ip::udp;
using loa::test::peak_of;
using loa::test::play_out;
using loa::test::tones_of;

namespace {

constexpr std::size_t kFrame = loa::test::kAlertFrame;
using Fixture = loa::test::ClipAlertsFixture;

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

}  // namespace

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
