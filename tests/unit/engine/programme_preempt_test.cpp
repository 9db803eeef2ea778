// Per-cluster preemption of run-time programmes: a clip pauses only when all
// its clusters are taken and resumes (or restarts, or is dropped) per its
// policy. One-cluster topology changes: programme_incremental_test.cpp.

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "loa/codecs/wav_writer.h"
#include "loa/engine/engine.h"
#include "loa/engine/program.h"
#include "loa/engine/programme_control.h"
#include "loa/engine/programme_manager.h"
#include "loa/engine/source.h"
#include "loa/transport/rtcp_packet.h"
#include "loa/transport/rtp_packet.h"
#include "loa/transport/udp_socket.h"
#include "allocation_counter.h"
#include "engine_test_util.h"
#include "temp_dir.h"
#include "udp_receiver.h"

using namespace loa::engine;
using boost::asio::ip::udp;

namespace {

constexpr std::size_t kFrame = 960;  // 20 ms at 48 kHz

// Frame f of the clip holds the constant value (f % 200 + 1) / 256: the
// frame a render() returns tells where in the clip it was taken from.
void write_ramp(const std::filesystem::path& path, std::size_t frames) {
    loa::codecs::WavWriter w(path, loa::codecs::WavSampleFormat::Pcm16, 48000, 1);
    std::vector<float> buf(frames * kFrame);
    for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<float>((i / kFrame) % 200 + 1) / 256.0f;
    REQUIRE(w.write(buf) == loa::codecs::Status::Ok);
    REQUIRE(w.close() == loa::codecs::Status::Ok);
}

int frame_index(std::span<const float> frame) {
    return static_cast<int>(std::lround(frame[kFrame / 2] * 256.0f)) - 1;  // -1: silence
}

bool wait_until(const std::function<bool()>& done, std::chrono::seconds limit = std::chrono::seconds(10)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::yield();
    }
    return true;
}

// The next frame the clip plays (skipping silence while the decoder catches up).
int next_frame(ClipSource& clip, bool* more = nullptr) {
    std::vector<float> out(kFrame);
    int index = -1;
    REQUIRE(wait_until([&] {
        const bool m = clip.render(out);
        if (more != nullptr) *more = m;
        index = frame_index(out);
        return index >= 0 || !m;
    }));
    return index;
}

RuntimeProgramme clip_programme(std::uint64_t id, std::vector<std::string> zones, const std::filesystem::path& path,
                                PreemptPolicy policy) {
    RuntimeProgramme p;
    p.id = id;
    p.name = "clip-" + std::to_string(id);
    p.level = Priority::Commune;
    p.target_zones = std::move(zones);
    p.sequence = id;
    p.kind = ProgrammeKind::Clip;
    p.policy = policy;
    SourceConfig s;
    s.type = SourceConfig::Type::Clip;
    s.path = path;
    s.loop = true;
    p.sources.push_back(s);
    return p;
}

RuntimeProgramme tone_programme(std::uint64_t id, Priority level, std::vector<std::string> zones) {
    return loa::test::tone_programme(id, level, std::move(zones), 700.0);
}

// P > A > A1, A2 (villages); B beside A.
std::vector<ZoneSpec> village_zones() { return {{"P", ""}, {"A", "P"}, {"A1", "A"}, {"A2", "A"}, {"B", "P"}}; }

// A running engine with two speakers' sockets in villages A1 and A2.
struct Stage {
    SystemClock clock;
    Engine engine{loa::test::loopback_engine_config(), clock};
    loa::test::UdpReceiver a1, a2;
    ProgrammeManager manager{engine};

    Stage() {
        engine.start();
        REQUIRE(manager.set_topology(village_zones(), {{"a1", "A1", a1.endpoint()}, {"a2", "A2", a2.endpoint()}})
                    .ok());
    }
    ~Stage() { engine.stop(); }

    const Program& program(std::uint64_t id) {
        const auto group = manager.group_of(id);
        REQUIRE(group);
        const Program* p = engine.runtime_programme(*group);
        REQUIRE(p != nullptr);
        return *p;
    }
    const ClipSource& clip(std::uint64_t id) {
        const auto* c = dynamic_cast<const ClipSource*>(program(id).sources().front().get());
        REQUIRE(c != nullptr);
        return *c;
    }
};

}  // namespace

TEST_CASE("clip_source_holds_and_rewinds", "[engine][preempt]") {
    loa::test::TempDir dir("loa-clip-rewind");
    write_ramp(dir / "ramp.wav", 60);
    ClipSource clip(dir / "ramp.wav", false, kFrame, 8);
    for (int f = 0; f < 10; ++f) REQUIRE(next_frame(clip) == f);
    CHECK(clip.position() == 10);

    // Held: nothing is pulled, the next frame is the one after.
    for (int i = 0; i < 50; ++i) clip.hold();
    CHECK(clip.position() == 10);
    CHECK(next_frame(clip) == 10);

    // Rewound: the frames already decoded ahead are skipped.
    REQUIRE(clip.rewind());
    CHECK(next_frame(clip) == 0);
    CHECK(clip.position() == 1);
    CHECK(next_frame(clip) == 1);

    // Played to its end, then rewound: it plays again.
    bool more = true;
    int last = 1;
    while (more) {
        const int f = next_frame(clip, &more);
        if (more) {
            CHECK(f == last + 1);
            last = f;
        }
    }
    CHECK(last == 59);
    REQUIRE(clip.rewind());
    CHECK(next_frame(clip) == 0);
    CHECK(next_frame(clip) == 1);

    // A rewind asked for while held takes effect during the hold.
    REQUIRE(clip.rewind());
    REQUIRE(wait_until([&] {
        clip.hold();
        return clip.position() == 0;
    }));
    CHECK(next_frame(clip) == 0);

    ClipSource missing(dir / "missing.wav", false, kFrame);
    REQUIRE(wait_until([&] { return missing.ready(); }));
    CHECK_FALSE(missing.rewind());
}

TEST_CASE("paused_programme_sends_nothing_and_resumes_in_place", "[engine][preempt]") {
    loa::test::TempDir dir("loa-program-pause");
    write_ramp(dir / "ramp.wav", 100);
    boost::asio::io_context io;
    auto sock = loa::transport::open_udp(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    loa::test::UdpReceiver rx;
    loa::transport::FanoutSender fanout({}, sock.native_handle(), -1);
    const std::vector<loa::transport::Destination> dests{{rx.endpoint(), 0}};
    REQUIRE(fanout.set_destinations(0, dests) == 0);
    loa::transport::PacketPool pool(64);
    ManualClock clock;

    ProgramConfig config;
    config.name = "clip";
    config.ssrc = 0xC11B;
    SourceConfig s;
    s.type = SourceConfig::Type::Clip;
    s.path = dir / "ramp.wav";
    s.loop = true;
    config.sources.push_back(s);
    Program prog(config, 0, "engine-test");
    const auto& clip = dynamic_cast<const ClipSource&>(*prog.sources().front());
    REQUIRE(wait_until([&] { return clip.ready(); }));

    std::uint64_t position_at_pause = 0;
    auto frame = [&] {
        prog.produce_frame(clock.now_ns(), clock.unix_ns(), pool, fanout, clock);
        clock.advance(20'000'000);
    };
    // The counter counts (it is linked in and sees this thread).
    loa::test::start_counting_allocations();
    auto probe = std::make_unique<std::vector<float>>(kFrame);
    REQUIRE(loa::test::stop_counting_allocations() >= 1);
    probe.reset();
    // Media-thread work with allocations counted: 5 frames, 10 paused, 5.
    loa::test::start_counting_allocations();
    for (int i = 0; i < 5; ++i) frame();
    prog.set_paused(true);
    position_at_pause = clip.position();
    for (int i = 0; i < 10; ++i) frame();
    const auto position_after_pause = clip.position();
    prog.set_paused(false);
    for (int i = 0; i < 5; ++i) frame();
    CHECK(loa::test::stop_counting_allocations() == 0);
    CHECK(position_after_pause == position_at_pause);
    CHECK(prog.counters().frames_paused.load() == 10);
    CHECK(prog.counters().frames_encoded.load() == 10);

    // Ten packets: sequence numbers run on, RTP time jumps over the pause,
    // the first after it is marked.
    std::vector<std::uint8_t> d;
    std::vector<std::vector<std::uint8_t>> rtp;
    while (rtp.size() < 10) {
        REQUIRE(rx.receive(d));
        if (!loa::transport::looks_like_rtcp(d)) rtp.push_back(d);
    }
    for (std::size_t i = 1; i < rtp.size(); ++i) {
        loa::transport::RtpView a, b;
        REQUIRE(loa::transport::RtpView::parse(rtp[i - 1], a) == loa::transport::Status::Ok);
        REQUIRE(loa::transport::RtpView::parse(rtp[i], b) == loa::transport::Status::Ok);
        CHECK(loa::transport::seq_delta(a.sequence(), b.sequence()) == 1);
        CHECK(b.marker() == (i == 5));
        CHECK(b.timestamp() - a.timestamp() == (i == 5 ? 11u * kFrame : kFrame));
    }
}

TEST_CASE("fully_preempted_clip_pauses_and_resumes_where_it_stopped", "[engine][preempt]") {
    loa::test::TempDir dir("loa-preempt-resume");
    write_ramp(dir / "ramp.wav", 150);
    Stage st;
    REQUIRE(st.manager.start(clip_programme(1, {"A"}, dir / "ramp.wav", PreemptPolicy::Pause)).ok());
    CHECK_FALSE(st.manager.info(1)->paused);
    const auto& prog = st.program(1);
    const auto& clip = st.clip(1);
    REQUIRE(wait_until([&] { return clip.position() >= 25; }));

    // An emergency takes both its clusters: the clip stops where it is.
    REQUIRE(st.manager.start(tone_programme(2, Priority::Emergency, {"A"})).ok());
    CHECK(st.manager.info(1)->state == ProgrammeState::Preempted);
    CHECK(st.manager.info(1)->paused);
    CHECK(st.manager.destinations(1).empty());
    REQUIRE(wait_until([&] { return prog.counters().frames_paused.load() >= 1; }));
    const auto paused_at = prog.counters().frames_paused.load();
    const auto position = clip.position();
    const auto encoded = prog.counters().frames_encoded.load();
    REQUIRE(wait_until([&] { return prog.counters().frames_paused.load() >= paused_at + 15; }));
    CHECK(clip.position() == position);
    CHECK(prog.counters().frames_encoded.load() == encoded);

    // The emergency ends: both clusters rejoin it and it goes on from there.
    REQUIRE(st.manager.stop(2));
    CHECK(st.manager.info(1)->state == ProgrammeState::Audible);
    CHECK_FALSE(st.manager.info(1)->paused);
    CHECK(st.manager.destinations(1).size() == 2);
    CHECK(st.engine.destination_count(prog) == 2);
    REQUIRE(wait_until([&] { return prog.counters().frames_encoded.load() >= encoded + 10; }));
    const auto resumed = clip.position();
    const auto played = prog.counters().frames_encoded.load() - encoded;
    CHECK(resumed > position);
    CHECK(resumed <= position + played + 1);
}

TEST_CASE("partly_preempted_clip_plays_on_and_its_clusters_rejoin_live", "[engine][preempt]") {
    loa::test::TempDir dir("loa-preempt-part");
    write_ramp(dir / "ramp.wav", 150);
    Stage st;
    REQUIRE(st.manager.start(clip_programme(1, {"A"}, dir / "ramp.wav", PreemptPolicy::Pause)).ok());
    const auto& prog = st.program(1);
    REQUIRE(wait_until([&] { return st.clip(1).position() >= 10; }));

    // The emergency takes a1 only: the clip plays on for a2.
    REQUIRE(st.manager.start(tone_programme(2, Priority::Emergency, {"A1"})).ok());
    CHECK(st.manager.info(1)->state == ProgrammeState::Audible);
    CHECK_FALSE(st.manager.info(1)->paused);
    CHECK(st.manager.info(1)->listeners == 1);
    CHECK(st.manager.info(1)->targeted == 2);
    CHECK(st.manager.destinations(1) == std::vector<udp::endpoint>{st.a2.endpoint()});
    const auto encoded = prog.counters().frames_encoded.load();
    REQUIRE(wait_until([&] { return prog.counters().frames_encoded.load() >= encoded + 10; }));

    // a1 rejoins it live when the emergency ends.
    REQUIRE(st.manager.stop(2));
    auto both = std::vector<udp::endpoint>{st.a1.endpoint(), st.a2.endpoint()};
    std::sort(both.begin(), both.end());
    CHECK(st.manager.destinations(1) == both);
    CHECK(prog.counters().frames_paused.load() == 0);

    // Also when its last cluster is taken by a cluster change, not a start.
    REQUIRE(st.manager.start(tone_programme(3, Priority::Emergency, {"A2"})).ok());
    REQUIRE(st.manager.put_cluster({"a1", "A2", st.a1.endpoint()}).ok());
    CHECK(st.manager.info(1)->paused);
    CHECK(st.manager.info(1)->listeners == 0);
    REQUIRE(st.manager.put_cluster({"a1", "A1", st.a1.endpoint()}).ok());
    CHECK_FALSE(st.manager.info(1)->paused);
    CHECK(st.manager.destinations(1) == std::vector<udp::endpoint>{st.a1.endpoint()});
}

TEST_CASE("preempted_clip_restart_policy_plays_from_the_start", "[engine][preempt]") {
    loa::test::TempDir dir("loa-preempt-restart");
    write_ramp(dir / "ramp.wav", 150);
    Stage st;
    REQUIRE(st.manager.start(clip_programme(1, {"A"}, dir / "ramp.wav", PreemptPolicy::Restart)).ok());
    CHECK(st.manager.info(1)->policy == PreemptPolicy::Restart);
    const auto& prog = st.program(1);
    const auto& clip = st.clip(1);
    REQUIRE(wait_until([&] { return clip.position() >= 40; }));

    REQUIRE(st.manager.start(tone_programme(2, Priority::Emergency, {"P"})).ok());
    CHECK(st.manager.info(1)->paused);
    // Back at its start while it waits.
    REQUIRE(wait_until([&] { return clip.position() == 0; }));
    const auto encoded = prog.counters().frames_encoded.load();

    REQUIRE(st.manager.stop(2));
    CHECK_FALSE(st.manager.info(1)->paused);
    REQUIRE(wait_until([&] { return prog.counters().frames_encoded.load() >= encoded + 5; }));
    const auto position = clip.position();
    const auto played = prog.counters().frames_encoded.load() - encoded;
    CHECK(position >= 1);
    CHECK(position <= played + 1);
}

TEST_CASE("preempted_clip_drop_policy_is_removed", "[engine][preempt]") {
    loa::test::TempDir dir("loa-preempt-drop");
    write_ramp(dir / "ramp.wav", 50);
    Stage st;
    REQUIRE(st.manager.start(clip_programme(1, {"A"}, dir / "ramp.wav", PreemptPolicy::Drop)).ok());
    const auto group = *st.manager.group_of(1);
    // Partly preempted: it stays.
    REQUIRE(st.manager.start(tone_programme(2, Priority::Emergency, {"A1"})).ok());
    CHECK(st.manager.contains(1));
    // Fully preempted: it is gone, from the engine too.
    REQUIRE(st.manager.start(tone_programme(3, Priority::Province, {"A2"})).ok());
    CHECK_FALSE(st.manager.contains(1));
    CHECK(st.engine.runtime_programme(group) == nullptr);
    CHECK(st.manager.list().size() == 2);
    // A live programme is never dropped or paused: it runs on unheard.
    auto live = tone_programme(4, Priority::Commune, {"A"});
    live.policy = PreemptPolicy::Drop;
    REQUIRE(st.manager.start(live).ok());
    CHECK(st.manager.contains(4));
    CHECK(st.manager.info(4)->state == ProgrammeState::Preempted);
    CHECK_FALSE(st.manager.info(4)->paused);
}

TEST_CASE("preempt_policy_is_persisted_and_dropped_programmes_are_reported", "[engine][preempt]") {
    loa::test::TempDir dir("loa-preempt-store");
    write_ramp(dir / "ramp.wav", 50);
    Store store(dir / "state.db");
    SystemClock clock;
    Engine engine(loa::test::loopback_engine_config(), clock);
    loa::test::UdpReceiver a;
    store.write([&] {
        store.insert_zone({"P", "Province", ZoneKind::Province, ""});
        store.insert_zone({"A", "Commune A", ZoneKind::Commune, "P"});
        store.insert_cluster({"a", "a", "A", "127.0.0.1:" + std::to_string(a.endpoint().port()), "", true});
    });
    std::uint64_t restart_id = 0;
    {
        ProgrammeManager manager(engine);
        ProgrammeControl control(store, manager, clock);
        REQUIRE(control.refresh_topology().ok());
        ProgrammeRequest r;
        r.level = Priority::Commune;
        r.target_zones = {"A"};
        r.source = ProgrammeRequest::Source::ClipPath;
        r.clip_path = (dir / "ramp.wav").string();
        r.on_preempt = PreemptPolicy::Restart;
        const auto admin = Caller::local_admin();
        const auto restarting = control.start(admin, r);
        REQUIRE(restarting.ok());
        restart_id = restarting.value();
        CHECK(control.row(restart_id)->preempt_policy == static_cast<int>(PreemptPolicy::Restart));
        store.write([&] { store.insert_programme(*control.row(restart_id)); });

        r.on_preempt = PreemptPolicy::Drop;
        const auto dropping = control.start(admin, r);
        REQUIRE(dropping.ok());
        CHECK(control.dropped().empty());
        ProgrammeRequest alarm;
        alarm.level = Priority::Emergency;
        alarm.target_zones = {"P"};
        const auto emergency = control.start(admin, alarm);
        REQUIRE(emergency.ok());
        // The drop policy programme is over; the restart one waits.
        const auto dropped = control.dropped();
        REQUIRE(dropped.size() == 1);
        CHECK(dropped.front().id == dropping.value());
        CHECK(dropped.front().preempt_policy == static_cast<int>(PreemptPolicy::Drop));
        control.forget(dropping.value());
        CHECK(control.dropped().empty());
        CHECK(manager.info(restart_id)->paused);
    }
    // Restored with its policy.
    ProgrammeManager manager(engine);
    ProgrammeControl control(store, manager, clock);
    REQUIRE(control.refresh_topology().ok());
    REQUIRE(control.restore().empty());
    REQUIRE(manager.info(restart_id));
    CHECK(manager.info(restart_id)->policy == PreemptPolicy::Restart);
    CHECK(store.programmes().front().preempt_policy == static_cast<int>(PreemptPolicy::Restart));
}
