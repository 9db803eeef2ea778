// One live studio feeding a programme and an emergency alert at once,
// through the control calls on a running engine: a district programme plays
// studio "bv" to communes A and B; an EMERGENCY alert with the same studio,
// raised for commune A, is not refused: cluster a hears the alert's message
// and then the studio, cluster b keeps hearing the studio through the
// programme. Cancelling the alert leaves the programme reading the studio,
// and cluster a hears it through the programme again. Audio is judged by
// its content and order (detected tones), never by wall time; the studio is
// paced by the packets the speakers receive.

#include <array>
#include <chrono>
#include <cmath>
#include <functional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <catch2/catch.hpp>

#include "loa/codecs/opus_decoder.h"
#include "loa/codecs/tone_analysis.h"
#include "loa/engine/alert_control.h"
#include "loa/engine/control_service.h"
#include "loa/engine/engine.h"
#include "loa/engine/ingest.h"
#include "loa/engine/programme_control.h"
#include "loa/engine/programme_manager.h"
#include "loa/engine/studio_control.h"
#include "loa/engine/studio_source.h"
#include "loa/transport/rtp_packet.h"
#include "alerts_fixture.h"
#include "control_calls.h"
#include "rtp_listener.h"
#include "temp_dir.h"
#include "tone_rtp_stream.h"

using namespace loa::engine;
namespace pb = loa::control::v1;
using boost::asio::ip::udp;
using loa::test::tones_of;

namespace {

constexpr std::uint32_t kStudioSsrc = 0x5151;
constexpr double kStudioHz = 1500.0;
constexpr double kClipHz = 440.0;

bool near(const std::vector<int>& got, const std::vector<double>& want) {
    if (got.size() != want.size()) return false;
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (std::abs(got[i] - want[i]) > 5.0) return false;
    }
    return true;
}

// The tones of `pcm` are `want` (+-5 Hz), in order.
#define CHECK_TONES(pcm, ...)                                     \
    do {                                                          \
        const auto tones = tones_of(pcm);                         \
        INFO("tones " << ::Catch::Detail::stringify(tones));      \
        CHECK(near(tones, __VA_ARGS__));                          \
    } while (false)

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

// A studio pushing a 1.5 kHz tone as RTP to the engine's ingest socket.
struct Studio {
    boost::asio::io_context io;
    udp::socket socket{io, udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0)};
    udp::endpoint to;
    loa::test::ToneRtpStream tone{{kStudioSsrc, 100, 0, kStudioHz}};
    explicit Studio(udp::endpoint ingest) : to(std::move(ingest)) {}
    void send() { socket.send_to(boost::asio::buffer(tone.next()), to); }
};

// Decodes the RTP of `ssrc` reaching `speaker` until the studio's tone has
// played for half a second at its end. Every RTP packet the speaker gets
// makes the studio send one: the studio is paced by the engine's media clock.
std::vector<float> hear_studio(loa::test::RtpListener& speaker, std::uint32_t ssrc, Studio& studio) {
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
        if (trailing_windows_of(pcm, kStudioHz) >= 5) return pcm;
    }
    FAIL("ssrc " << ssrc << " did not carry the studio (" << pcm.size() / 48 << " ms decoded, tones "
                 << ::Catch::Detail::stringify(tones_of(pcm)) << ")");
    return pcm;
}

// Zones P > D > {A, B}; cluster a in A, b in B; studio "bv" in D. The
// engine runs its media thread from the start.
struct Fixture : loa::test::ControlCalls<Fixture> {
    ControlService& control_service() { return *service; }

    loa::test::TempDir dir{"loa-studio-share"};
    Store store{dir / "state.db"};
    ManualClock clock{0, 1'700'000'000'000'000'000};
    SystemClock media_clock;
    Engine engine;
    loa::test::RtpListener a, b;
    std::unique_ptr<ControlService> service;
    std::unique_ptr<ProgrammeManager> manager;
    std::unique_ptr<ProgrammeControl> programmes;
    std::unique_ptr<StudioControl> studios;
    std::unique_ptr<AlertControl> alerts;

    static EngineConfig config(const std::filesystem::path& state_dir) {
        EngineConfig c;
        c.engine.listen = udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0);
        c.engine.ingest_listen = udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0);
        c.engine.fanout_threads = 1;
        c.engine.realtime_priority = 0;
        c.engine.state_dir = state_dir;  // studios may be declared: the ingest socket opens
        return c;
    }

    Fixture() : engine(config(dir.path()), media_clock) {
        store.write([&] {
            store.insert_zone({"P", "Province", ZoneKind::Province, ""});
            store.insert_zone({"D", "District", ZoneKind::District, "P"});
            store.insert_zone({"A", "Commune A", ZoneKind::Commune, "D"});
            store.insert_zone({"B", "Commune B", ZoneKind::Commune, "D"});
            store.insert_cluster({"a", "a", "A", a.address(), "", true});
            store.insert_cluster({"b", "b", "B", b.address(), "", true});
        });
        engine.start();
        service = std::make_unique<ControlService>(store, clock, 1000);
        manager = std::make_unique<ProgrammeManager>(engine);
        programmes = std::make_unique<ProgrammeControl>(store, *manager, clock);
        programmes->set_clip_dir(service->clip_catalog().dir());
        REQUIRE(programmes->refresh_topology().ok());
        studios = std::make_unique<StudioControl>(store, engine);
        service->set_studio_control(studios.get());
        service->set_programme_control(programmes.get());
        alerts = std::make_unique<AlertControl>(store, *manager, clock);
        alerts->set_clip_dir(service->clip_catalog().dir());
        service->set_alert_control(alerts.get());
        pb::DeclareStudioRequest d;
        d.set_name("bv");
        d.set_zone_id("D");
        d.set_ssrc(kStudioSsrc);
        ok<pb::Studio>("DeclareStudio", d);
    }
    ~Fixture() {
        service->set_alert_control(nullptr);
        service->set_programme_control(nullptr);
        service->set_studio_control(nullptr);
        alerts.reset();
        studios.reset();
        programmes.reset();
        manager.reset();
        service.reset();
        engine.stop();
    }

    const StudioSource* studio_source_of(std::uint64_t manager_id) {
        const auto group = manager->group_of(manager_id);
        REQUIRE(group);
        const auto* p = engine.runtime_programme(*group);
        REQUIRE(p != nullptr);
        REQUIRE(p->sources().size() == 1);
        return dynamic_cast<const StudioSource*>(p->sources().front().get());
    }
};

}  // namespace

TEST_CASE("emergency_alert_shares_a_studio_on_air_with_a_programme", "[engine][alerts][studios][studio_readers]") {
    Fixture f;
    const auto clip = f.upload_sine(kClipHz, 0.6);  // long enough for a loudness measurement
    Studio studio(*f.engine.ingest_endpoint());

    // The district programme plays the studio to both communes.
    pb::StartProgrammeRequest live;
    live.set_name("district news");
    live.set_level(pb::DISTRICT);
    live.add_zone_ids("D");
    live.set_studio("bv");
    const auto news = f.ok<pb::StartProgrammeResponse>("StartProgramme", live).id();
    const auto news_info = f.manager->info(news);
    REQUIRE(news_info);
    const auto news_ssrc = news_info->ssrc;
    const auto* news_src = f.studio_source_of(news);
    REQUIRE(news_src != nullptr);
    CHECK_TONES(hear_studio(f.b, news_ssrc, studio), {kStudioHz});

    // An emergency for commune A with the same studio: the message, then the studio.
    pb::RaiseAlertRequest alert;
    alert.set_name("dam release");
    alert.set_level(pb::EMERGENCY);
    alert.add_zone_ids("A");
    alert.set_clip_id(clip);
    alert.set_attention_tone(false);
    alert.set_studio("bv");
    alert.set_duration_s(600);
    const auto raised = f.ok<pb::RaiseAlertResponse>("RaiseAlert", alert);
    pb::GetAlertStatusRequest status;
    status.set_id(raised.id());
    const auto alert_ssrc = f.ok<pb::GetAlertStatusResponse>("GetAlertStatus", status).alert().ssrc();
    REQUIRE(alert_ssrc != 0);
    REQUIRE(alert_ssrc != news_ssrc);
    const auto* alert_src = f.studio_source_of(AlertControl::kProgrammeIdBase + raised.id());
    REQUIRE(alert_src != nullptr);
    CHECK(alert_src->lead_in() != nullptr);
    CHECK(f.engine.studio_status("bv")->programme_groups.size() == 2);
    CHECK(&alert_src->feed() == &news_src->feed());
    CHECK(alert_src->attachment().reader != news_src->attachment().reader);

    // Cluster a: the alert's clip, then the studio joined at the live edge.
    const auto at_a = hear_studio(f.a, alert_ssrc, studio);
    CHECK_TONES(at_a, {kClipHz, kStudioHz});
    CHECK(alert_src->studio_counters().lead_in_done.load());
    // Cluster b: still the programme, still the studio.
    CHECK_TONES(hear_studio(f.b, news_ssrc, studio), {kStudioHz});
    // Both read every packet; neither queue overflowed.
    CHECK(alert_src->playout_stats().received.load() > 0);
    CHECK(news_src->playout_stats().received.load() > alert_src->playout_stats().received.load());
    CHECK(news_src->attachment().reader->counters().queue_full.load() == 0);
    CHECK(alert_src->attachment().reader->counters().queue_full.load() == 0);
    loa::engine::v1::StudioStats st;
    REQUIRE(f.engine.studio_status("bv", &st));
    CHECK(st.readers() == 2);
    CHECK(st.program() == "district news");

    // Cancelled: the programme keeps the studio, and a hears it there again.
    pb::CancelAlertRequest cancel;
    cancel.set_id(raised.id());
    f.ok<pb::CancelAlertResponse>("CancelAlert", cancel);
    CHECK(f.engine.studio_status("bv")->programme_groups.size() == 1);
    CHECK(f.studio_source_of(news) == news_src);
    const auto received = news_src->playout_stats().received.load();
    CHECK_TONES(hear_studio(f.a, news_ssrc, studio), {kStudioHz});
    CHECK(news_src->playout_stats().received.load() > received);
    CHECK(news_src->studio_counters().live.load());
}
