// Alerts with a live studio (attention chime, clip, then the studio until the
// alert ends), their refusals and restart; the StudioSource lead-in they play
// through; and confirmation counts that follow changes of zones and clusters
// during an alert. Control time is a ManualClock; audio is judged by its
// content and order (detected tones), never by wall time.

#include <array>
#include <chrono>
#include <functional>
#include <sstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <catch2/catch.hpp>

#include "alerts_fixture.h"
#include "loa/codecs/opus_decoder.h"
#include "loa/engine/ingest.h"
#include "loa/engine/studio_source.h"
#include "loa/transport/rtp_packet.h"
#include "tone_rtp_stream.h"

using namespace loa::engine;
namespace pb = loa::control::v1;
using boost::asio::ip::udp;
using loa::test::eventually;
using loa::test::tones_of;

namespace {

constexpr std::size_t kFrame = loa::test::kAlertFrame;
constexpr std::int64_t kMs = 1'000'000;
constexpr std::uint32_t kStudioSsrc = 0x5151;
constexpr double kStudioHz = 1500.0;

// Tone lists equal within 5 Hz (Opus moves a fitted tone by a hertz or so).
class SameTones : public Catch::MatcherBase<std::vector<int>> {
public:
    explicit SameTones(std::vector<int> want) : want_(std::move(want)) {}
    bool match(const std::vector<int>& got) const override {
        if (got.size() != want_.size()) return false;
        for (std::size_t i = 0; i < got.size(); ++i) {
            if (std::abs(got[i] - want_[i]) > 5) return false;
        }
        return true;
    }
    std::string describe() const override { return "are the tones " + ::Catch::Detail::stringify(want_) + " (+-5 Hz)"; }

private:
    std::vector<int> want_;
};

// How many whole 100 ms windows at the end of `pcm` hold `hz`.
int trailing_windows_of(const std::vector<float>& pcm, double hz) {
    int n = 0;
    for (std::size_t end = pcm.size() - pcm.size() % 4800; end >= 4800; end -= 4800) {
        const auto fit = loa::codecs::fit_tone(std::span<const float>(pcm.data() + end - 4800, 4800));
        if (fit.snr_db < 20.0 || std::abs(fit.frequency_hz - hz) > 5.0) break;
        ++n;
    }
    return n;
}

using Listener = loa::test::RtpListener;

// A studio pushing a 1.5 kHz tone as RTP to the engine's ingest socket.
struct Studio {
    boost::asio::io_context io;
    udp::socket socket{io, udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0)};
    udp::endpoint to;
    loa::test::ToneRtpStream tone{{kStudioSsrc, 100, 0, kStudioHz}};
    explicit Studio(udp::endpoint ingest) : to(std::move(ingest)) {}
    void send() { socket.send_to(boost::asio::buffer(tone.next()), to); }
};

// Decodes the RTP of `ssrc` reaching `speaker` (loopback keeps the order)
// until `enough(pcm)`. Every RTP packet the speaker gets makes the studio
// send one packet: the studio is paced by the engine's own media clock.
std::vector<float> hear(Listener& speaker, std::uint32_t ssrc, Studio& studio,
                        const std::function<bool(const std::vector<float>&)>& enough) {
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
        REQUIRE(decoder.decode(v.payload(), frame, n) == loa::codecs::Status::Ok);
        pcm.insert(pcm.end(), frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(n));
        if (enough(pcm)) return pcm;
    }
    FAIL("the speaker did not hear enough of ssrc " << ssrc << " (" << pcm.size() / 48 << " ms decoded, tones "
                                                    << ::Catch::Detail::stringify(tones_of(pcm)) << ")");
    return pcm;
}

// The alert fixture with run-time studios, and studio "bv" in D.
struct Fixture : loa::test::AlertsFixture {
    explicit Fixture(bool start_media) : AlertsFixture("loa-alerts-studio", start_media, true) {
        pb::DeclareStudioRequest d;
        d.set_name("bv");
        d.set_zone_id("D");
        d.set_ssrc(kStudioSsrc);
        ok<pb::Studio>("DeclareStudio", d);
    }

    static pb::RaiseAlertRequest alert_to(const std::string& zone, std::uint64_t clip, const std::string& studio) {
        pb::RaiseAlertRequest r;
        r.set_name("dam release");
        r.add_zone_ids(zone);
        r.set_clip_id(clip);
        r.set_studio(studio);
        r.set_duration_s(60);
        return r;
    }
    pb::Alert status_of(std::uint64_t id) {
        pb::GetAlertStatusRequest s;
        s.set_id(id);
        return ok<pb::GetAlertStatusResponse>("GetAlertStatus", s).alert();
    }
    const StudioSource* studio_source_of(std::uint64_t alert_id) {
        const auto* p = programme_of(alert_id);
        REQUIRE(p != nullptr);
        REQUIRE(p->sources().size() == 1);
        return dynamic_cast<const StudioSource*>(p->sources().front().get());
    }
    // What must not change when a call is refused.
    std::string snapshot() const {
        std::ostringstream os;
        os << store.alerts().size() << "|" << store.last_event_seq() << "|" << manager->list().size() << "|"
           << alerts->size() << "|" << store.meta("last_alert_id").value_or("-") << "|"
           << "readers=" << engine.studio_status("bv")->programme_groups.size();
        return os.str();
    }
};

std::vector<std::string> ids(const google::protobuf::RepeatedPtrField<std::string>& list) {
    return {list.begin(), list.end()};
}

}  // namespace

TEST_CASE("studio_lead_in_plays_first_then_the_live_edge", "[studio_source][alerts]") {
    ManualClock clock{1'000 * kMs};
    StudioFeed feed{{"bv", kStudioSsrc, std::nullopt}};
    StudioSource source(feed, clock, kFrame);
    PlaylistSpec spec;
    spec.items.push_back(PlaylistItem::tone_sequence({{700.0, 400}}, -6.0));  // 20 frames
    spec.progress = std::make_shared<PlaylistProgress>();
    auto lead = std::make_unique<PlaylistSource>(spec, kFrame);
    auto* lead_in = lead.get();
    source.set_lead_in(std::move(lead));
    REQUIRE(source.lead_in() == lead_in);
    REQUIRE(eventually([&] { return lead_in->produced_all(); }));

    loa::test::ToneRtpStream studio({kStudioSsrc, 100, 0, 440.0});
    const udp::endpoint from(boost::asio::ip::make_address("127.0.0.1"), 40000);
    std::vector<float> out;
    for (int i = 0; i < 70; ++i) {
        REQUIRE(feed.offer(studio.next(), from, clock.now_ns()) == StudioFeed::Offer::Accepted);
        clock.advance(1 * kMs);
        std::array<float, kFrame> frame{};
        CHECK(source.render(frame));
        out.insert(out.end(), frame.begin(), frame.end());
        clock.advance(19 * kMs);
        if (i == 19) {
            CHECK(source.studio_counters().lead_in_frames.load() == 20);
            CHECK_FALSE(source.studio_counters().lead_in_done.load());
            CHECK(source.studio_counters().live_frames.load() == 0);
        }
    }
    // The lead-in first, then the studio: the studio's packets were taken all
    // along (none queued up, none dropped), so it plays from the live edge.
    CHECK(tones_of(std::span<const float>(out.data(), 20 * kFrame)) == std::vector<int>{700});
    CHECK(tones_of(std::span<const float>(out.data() + 25 * kFrame, 45 * kFrame)) == std::vector<int>{440});
    const auto& sc = source.studio_counters();
    CHECK(sc.lead_in_done.load());
    CHECK(sc.lead_in_frames.load() == 20);
    CHECK(sc.live_frames.load() == 50);
    CHECK(spec.progress->finished.load());
    CHECK(source.playout_stats().received.load() == 70);
    CHECK(source.playout_stats().overflows.load() == 0);
    CHECK(source.playout_stats().current_delay_ms.load() <= 100);
    CHECK(feed.counters().queue_full.load() == 0);
}

TEST_CASE("alert_with_studio_plays_chime_clip_then_studio", "[engine][alerts][studios]") {
    Fixture f(true);
    const auto clip = f.upload_sine(440.0, 0.6);  // long enough for a loudness measurement
    Studio studio(*f.engine.ingest_endpoint());

    const auto raised = f.ok<pb::RaiseAlertResponse>("RaiseAlert", Fixture::alert_to("A", clip, "bv"));
    CHECK(raised.clusters_targeted() == 2);
    auto st = f.status_of(raised.id());
    CHECK(st.studio() == "bv");
    REQUIRE(st.ssrc() != 0);
    const auto* src = f.studio_source_of(raised.id());
    REQUIRE(src != nullptr);
    REQUIRE(src->lead_in() != nullptr);
    CHECK(f.programme_of(raised.id())->config().priority == Priority::Emergency);
    CHECK(f.events_of(pb::ALERT_RAISED).back().message.find("1 play(s), then studio 'bv' live") != std::string::npos);

    // What cluster a hears: the chime, the message, then the studio (and
    // nothing else in between), until the studio has played half a second.
    const auto pcm = hear(f.a, st.ssrc(), studio,
                          [](const std::vector<float>& heard) { return trailing_windows_of(heard, kStudioHz) >= 5; });
    CHECK_THAT(tones_of(pcm), SameTones({960, 853, 960, 853, 440, 1500}));
    st = f.status_of(raised.id());
    CHECK(st.studio_live());
    CHECK(st.play() == 1);
    CHECK(src->studio_counters().lead_in_done.load());
    CHECK(src->studio_counters().live.load());

    // Every play done, the studio plays on: the alert has not completed.
    f.advance_ms(10'000);
    f.service->tick(f.now_ms());
    CHECK(f.alerts->size() == 1);
    CHECK(f.programme_of(raised.id()) != nullptr);
    // Cancelling ends it and frees the studio.
    pb::CancelAlertRequest cancel;
    cancel.set_id(raised.id());
    f.ok<pb::CancelAlertResponse>("CancelAlert", cancel);
    CHECK_FALSE(f.engine.studio_status("bv")->programme_group);
    CHECK(f.store.alerts().empty());
}

TEST_CASE("studio_only_alert_plays_the_studio_at_once", "[engine][alerts][studios]") {
    Fixture f(true);
    Studio studio(*f.engine.ingest_endpoint());
    auto req = Fixture::alert_to("B", 0, "bv");
    req.set_attention_tone(false);
    const auto id = f.ok<pb::RaiseAlertResponse>("RaiseAlert", req).id();
    const auto* src = f.studio_source_of(id);
    REQUIRE(src != nullptr);
    CHECK(src->lead_in() == nullptr);
    auto st = f.status_of(id);
    CHECK(st.studio_live());
    CHECK(st.play() == 0);
    CHECK(f.events_of(pb::ALERT_RAISED).back().message.find(": studio 'bv' live, expires in 60 s") !=
          std::string::npos);

    // Cluster b hears the studio and nothing before it.
    const auto pcm = hear(f.b, st.ssrc(), studio,
                          [](const std::vector<float>& heard) { return trailing_windows_of(heard, kStudioHz) >= 5; });
    CHECK_THAT(tones_of(pcm), SameTones({1500}));

    // It ends at its expiry.
    f.advance_ms(60'000);
    f.service->tick(f.now_ms());
    CHECK(f.programme_of(id) == nullptr);
    CHECK(f.events_of(pb::ALERT_ENDED).back().message.find("expired") != std::string::npos);
    CHECK_FALSE(f.engine.studio_status("bv")->programme_group);
}

TEST_CASE("alert_studio_refusals", "[engine][alerts][studios][control]") {
    Fixture f(false);
    const auto clip = f.upload_sine(440.0, 0.3);
    pb::DeclareStudioRequest d;
    d.set_name("commune-a");
    d.set_zone_id("A");
    d.set_ssrc(0x7777);
    f.ok<pb::Studio>("DeclareStudio", d);
    const auto op_b = f.make_operator("op-b", pb::OPERATOR, "B", pb::EMERGENCY);
    auto before = f.snapshot();
    const auto refused = [&](const pb::RaiseAlertRequest& req, pb::StatusCode code, const std::string& token,
                             const std::string& says) {
        const auto r = f.call("RaiseAlert", req, token);
        INFO(pb::StatusCode_Name(r.code()) << ": " << r.message());
        CHECK(r.code() == code);
        CHECK(r.message().find(says) != std::string::npos);
        CHECK(f.snapshot() == before);
    };

    refused(Fixture::alert_to("A", clip, "nope"), pb::NOT_FOUND, {}, "no studio 'nope'");
    auto forever = Fixture::alert_to("A", clip, "bv");
    forever.set_duration_s(0);
    refused(forever, pb::INVALID_ARGUMENT, {}, "needs an expiry");
    // A commune-B operator allowed EMERGENCY: its own commune, a studio of commune A.
    refused(Fixture::alert_to("B", clip, "commune-a"), pb::PERMISSION_DENIED, op_b, "outside the caller's zone 'B'");
    // ... and a district studio is outside its commune too.
    refused(Fixture::alert_to("B", 0, "bv"), pb::PERMISSION_DENIED, op_b, "studio 'bv' of zone 'D'");

    // A studio on the air with a programme feeds an alert too, and a second
    // alert; each reads it through its own queue.
    pb::StartProgrammeRequest live;
    live.set_name("district news");
    live.set_level(pb::DISTRICT);
    live.add_zone_ids("B");
    live.set_studio("bv");
    const auto news = f.ok<pb::StartProgrammeResponse>("StartProgramme", live).id();
    const auto id = f.ok<pb::RaiseAlertResponse>("RaiseAlert", Fixture::alert_to("A", clip, "bv")).id();
    const auto id2 = f.ok<pb::RaiseAlertResponse>("RaiseAlert", Fixture::alert_to("B", 0, "bv")).id();
    f.ok<pb::StartProgrammeResponse>("StartProgramme", live);
    CHECK(f.engine.studio_status("bv")->programme_groups.size() == StudioFeed::kMaxReaders);

    // Beyond the limit: refused, nothing changed; removing the studio too.
    before = f.snapshot();
    CHECK(before.ends_with("readers=4"));
    refused(Fixture::alert_to("A", 0, "bv"), pb::RESOURCE_EXHAUSTED, {},
            "studio 'bv' already feeds 4 programme(s) or alert(s)");
    const auto again = f.call("StartProgramme", live);
    CHECK(again.code() == pb::RESOURCE_EXHAUSTED);
    pb::RemoveStudioRequest rm;
    rm.set_name("bv");
    CHECK(f.call("RemoveStudio", rm).code() == pb::FAILED_PRECONDITION);
    CHECK(f.snapshot() == before);

    // An alert cancelled frees its reader; the others keep theirs.
    pb::CancelAlertRequest cancel;
    cancel.set_id(id);
    f.ok<pb::CancelAlertResponse>("CancelAlert", cancel);
    CHECK(f.engine.studio_status("bv")->programme_groups.size() == 3);
    CHECK(f.programme_of(id2) != nullptr);
    CHECK(f.manager->contains(news));
    f.ok<pb::RaiseAlertResponse>("RaiseAlert", Fixture::alert_to("A", clip, "bv"));
}

TEST_CASE("restart_during_studio_alert_resumes_it", "[engine][alerts][studios]") {
    Fixture f(false);
    const auto clip = f.upload_sine(440.0, 1.0);
    // Chime (2 s) + message (1 s), twice, 2 s apart: plays over 8 s in, then the studio.
    auto req = Fixture::alert_to("A", clip, "bv");
    req.set_repeats(2);
    req.set_interval_s(2.0);
    req.set_volume_pct(70);
    const auto id = f.ok<pb::RaiseAlertResponse>("RaiseAlert", req).id();
    const auto ssrc = f.status_of(id).ssrc();

    // Killed during the second play: back with that play, then the studio.
    f.advance_ms(6'000);
    f.close();
    f.open();
    CHECK(f.restore_problems.empty());
    auto st = f.status_of(id);
    CHECK(st.ssrc() == ssrc);
    CHECK(st.studio() == "bv");
    CHECK_FALSE(st.studio_live());
    const auto* src = f.studio_source_of(id);
    REQUIRE(src != nullptr);
    REQUIRE(src->lead_in() != nullptr);
    CHECK(src->lead_in()->description() == "playlist of 2 item(s) x 1");
    CHECK(f.programme_of(id)->config().alert->volume_pct == 70);
    CHECK(f.engine.studio_status("bv")->programme_group);

    // Killed again after the last play: straight back to the studio.
    f.advance_ms(3'000);  // 9 s in
    f.close();
    f.open();
    CHECK(f.restore_problems.empty());
    src = f.studio_source_of(id);
    REQUIRE(src != nullptr);
    CHECK(src->lead_in() == nullptr);
    st = f.status_of(id);
    CHECK(st.studio_live());
    CHECK(st.play() == 2);

    // It plays until its expiry.
    f.advance_ms(60'000 - 9'000 - 1);
    f.service->tick(f.now_ms());
    CHECK(f.programme_of(id) != nullptr);
    f.advance_ms(1);
    f.service->tick(f.now_ms());
    CHECK(f.programme_of(id) == nullptr);
    CHECK(f.store.alerts().empty());
    CHECK_FALSE(f.engine.studio_status("bv")->programme_group);
}

TEST_CASE("alert_counts_follow_topology_changes", "[engine][alerts]") {
    Fixture f(false);
    const auto clip = f.upload_sine(440.0, 0.3);
    auto req = Fixture::alert_to("A", clip, "");
    req.set_repeats(100);
    const auto raised = f.ok<pb::RaiseAlertResponse>("RaiseAlert", req);
    CHECK(raised.clusters_targeted() == 2);  // a, c
    const auto seq = f.store.last_event_seq();
    pb::GetAlertStatusRequest status;
    status.set_id(raised.id());

    // A cluster registered in the targeted commune during the alert is counted.
    f.store.write([&] { f.store.insert_cluster({"d", "d", "A", "127.0.0.1:6004", "", true}); });
    auto st = f.ok<pb::GetAlertStatusResponse>("GetAlertStatus", status);
    CHECK(st.alert().clusters_targeted() == 3);
    CHECK(ids(st.offline()) == std::vector<std::string>{"a", "c", "d"});
    f.advance_ms(1000);
    f.service->tick(f.now_ms());
    auto conf = f.events_of(pb::ALERT_CONFIRMATION, seq);
    REQUIRE(conf.size() == 1);
    CHECK(conf[0].message.find("0 of 3 cluster(s) confirmed, 0 not confirmed, 3 offline") != std::string::npos);

    // Disabled, moved in, in a new zone below: the counts follow each change.
    f.store.write([&] { f.store.update_cluster({"c", "c", "A", "", "", false}); });
    f.store.write([&] { f.store.update_cluster({"b", "b", "A", f.b.address(), "", true}); });
    f.store.write([&] {
        f.store.insert_zone({"A1", "Village 1", ZoneKind::Village, "A"});
        f.store.insert_cluster({"e", "e", "A1", "127.0.0.1:6005", "", true});
    });
    st = f.ok<pb::GetAlertStatusResponse>("GetAlertStatus", status);
    CHECK(ids(st.offline()) == std::vector<std::string>{"a", "b", "d", "e"});
    const auto list = f.ok<pb::ListAlertsResponse>("ListAlerts", pb::ListAlertsRequest());
    REQUIRE(list.alerts_size() == 1);
    CHECK(list.alerts(0).clusters_targeted() == 4);
    f.advance_ms(2000);
    f.service->tick(f.now_ms());
    conf = f.events_of(pb::ALERT_CONFIRMATION, seq);
    REQUIRE(conf.size() == 2);
    CHECK(conf[1].message.find("0 of 4 cluster(s) confirmed, 0 not confirmed, 4 offline") != std::string::npos);

    // Scoped callers see their part: commune B has nothing targeted left.
    const auto viewer_b = f.make_operator("view-b", pb::VIEWER, "B", pb::EMERGENCY);
    const auto viewer_a1 = f.make_operator("view-a1", pb::VIEWER, "A1", pb::EMERGENCY);
    CHECK(f.call("GetAlertStatus", status, viewer_b).code() == pb::NOT_FOUND);  // not aimed at B
    st = f.ok<pb::GetAlertStatusResponse>("GetAlertStatus", status, viewer_a1);
    CHECK(ids(st.offline()) == std::vector<std::string>{"e"});

    // A cluster deleted during the alert drops out.
    f.store.write([&] { f.store.delete_cluster("d"); });
    st = f.ok<pb::GetAlertStatusResponse>("GetAlertStatus", status);
    CHECK(st.alert().clusters_targeted() == 3);
}
