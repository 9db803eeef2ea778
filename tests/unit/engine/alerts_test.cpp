// Emergency alerts: the playlist source they play, and RaiseAlert /
// CancelAlert / ListAlerts / GetAlertStatus through the Control service
// (refusals, bad input, the authorisation matrix, commit failures); the
// control server's tick. Their life on the air (repeats, expiry, cancel,
// confirmation, restart) is in alerts_lifecycle_test.cpp. The audio is
// checked by its content and order, never by wall time.

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <thread>

#include <catch2/catch.hpp>

#include "alerts_fixture.h"
#include "loa/engine/control_server.h"
#include "loa/engine/playlist.h"

using namespace loa::engine;
namespace pb = loa::control::v1;
using loa::test::peak_of;
using loa::test::play_out;
using loa::test::tones_of;
using loa::test::write_sine;

namespace {
constexpr std::size_t kFrame = loa::test::kAlertFrame;
using Fixture = loa::test::ClipAlertsFixture;
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
    CHECK(f.service->handle(env, loa::test::kRootPeer).response.code() == pb::INVALID_ARGUMENT);
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
