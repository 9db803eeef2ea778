// loa-speaker's side of preemption and emergency alerts, on the socket-free
// pipeline with passed-in time: the packets come from real engine Programs
// (priority and alert header extensions, marker on the first packet; see
// preemption_rig.h), the amplifier hook writes a temporary file or runs a
// script, and the output is judged by its tones (each programme plays its own
// frequency). Unicast against multicast delivery: preemption_delivery_test.cpp.

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "loa-speaker/speaker_config.h"
#include "loa-speaker/speaker_pipeline.h"
#include "loa/codecs/tone_analysis.h"
#include "loa/engine/stream_signal.h"
#include "loa/transport/cluster_status.h"
#include "loa/transport/rtcp_packet.h"
#include "preemption_rig.h"
#include "temp_dir.h"

using namespace loa;
using namespace loa::test::preempt;

namespace {

std::string read_file(const std::filesystem::path& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

// A GPIO "value" file stand-in (the hook never creates it).
std::filesystem::path gpio_file(const test::TempDir& dir) {
    const auto path = dir / "gpio-value";
    std::ofstream(path) << "x";
    return path;
}

}  // namespace

TEST_CASE("alert_survives_loss_of_first_packets", "[speaker][alert]") {
    test::TempDir dir("loa-alert");
    auto cfg = config();
    cfg.amp_gpio = gpio_file(dir).string();
    cfg.amp_auto = false;  // the amplifier goes on for the alert only
    Rig rig(cfg);
    const auto commune = engine_packets(programme(0xC0AA, engine::Priority::Commune, 440.0), 100);
    const auto alert = engine_packets(programme(0xA1E7, engine::Priority::Emergency, 1000.0, engine::AlertSignal{30}), 100);

    // The commune programme plays: amplifier off, configured volume.
    for (int i = 0; i < 50; ++i) rig.slot({&commune[static_cast<std::size_t>(i)]});
    REQUIRE(rig.p.amp_hook().wait_applied(std::chrono::seconds(10)));
    CHECK(read_file(cfg.amp_gpio) == "0");
    CHECK_FALSE(rig.p.amplifier_on());
    CHECK(rig.p.volume_pct() == 100);
    CHECK(max_window_amplitude(rig.slots_audio(30, 50), 440.0) == Approx(0.5).margin(0.05));
    (void)rig.take_report_requested();

    // The alert starts; its first 5 packets (the marked one among them) are
    // lost, and stale commune packets are still in flight beside it.
    const std::size_t switch_slot = rig.slots;
    std::vector<speaker::DatagramKind> kinds;
    for (std::size_t i = 5; i < 100; ++i) {
        if (i < 15) {
            rig.slot({&alert[i], &commune[50 + i - 5]}, &kinds);
        } else {
            rig.slot({&alert[i]}, &kinds);
        }
        if (i == 5) {
            // The first packet that arrives switches everything at once.
            CHECK(rig.take_report_requested());
            CHECK(rig.p.counters().snapshot().playing_ssrc == 0xA1E7u);
            CHECK(rig.p.amplifier_on());
            CHECK(rig.p.volume_pct() == 30);
            CHECK(rig.p.alert_active());
            const auto st = rig.report();
            CHECK(st.playing_ssrc == 0xA1E7u);
            CHECK(st.amplifier_on);
            CHECK(st.volume_pct == 30);
        }
    }
    CHECK(std::count(kinds.begin(), kinds.end(), speaker::DatagramKind::Media) == 95);
    CHECK(std::count(kinds.begin(), kinds.end(), speaker::DatagramKind::Outranked) == 10);

    // The hook switched the amplifier on.
    REQUIRE(rig.p.amp_hook().wait_applied(std::chrono::seconds(10)));
    CHECK(read_file(cfg.amp_gpio) == "1");
    CHECK(rig.p.amp_hook().applied() == 2);  // off at start, on for the alert
    CHECK(rig.p.amp_hook().failures() == 0);

    const auto c = rig.p.counters().snapshot();
    CHECK(c.outranked == 10);
    CHECK(c.malformed == 0);
    CHECK(c.ssrc_changes == 2);
    CHECK(c.alert);
    CHECK(c.amplifier_on);
    CHECK(c.volume_pct == 30);

    // The alert tone plays at the forced volume (0.5 x 30 %), and nothing of
    // the commune programme is heard after the switch.
    const auto tail = rig.slots_audio(rig.slots - 50, rig.slots);
    const auto fit = codecs::fit_tone(tail);
    CHECK(fit.frequency_hz == Approx(1000.0).margin(2.0));
    CHECK(fit.amplitude == Approx(0.15).margin(0.02));
    CHECK(fit.snr_db > 15.0);
    CHECK(max_window_amplitude(rig.slots_audio(switch_slot, rig.slots), 440.0) < 0.02);
}

TEST_CASE("higher_level_preempts_at_once_with_flush", "[speaker][alert]") {
    Rig rig(config());
    const auto commune = engine_packets(programme(0xC0AA, engine::Priority::Commune, 440.0), 100);
    const auto province = engine_packets(programme(0xB0B0, engine::Priority::Province, 880.0), 60);

    for (std::size_t i = 0; i < 50; ++i) rig.slot({&commune[i]});
    CHECK(max_window_amplitude(rig.slots_audio(30, 50), 440.0) == Approx(0.5).margin(0.05));
    (void)rig.take_report_requested();

    // The province programme starts while commune packets are still coming:
    // it takes over on its first packet, the commune ones are ignored.
    const std::size_t switch_slot = rig.slots;
    for (std::size_t i = 0; i < 60; ++i) {
        if (i < 20) {
            rig.slot({&commune[50 + i], &province[i]});
        } else {
            rig.slot({&province[i]});
        }
        if (i == 0) CHECK(rig.take_report_requested());  // the engine hears of the switch at once
    }
    const auto c = rig.p.counters().snapshot();
    CHECK(c.playing_ssrc == 0xB0B0u);
    CHECK(c.outranked == 19);  // the commune packet before the switch was still played
    CHECK(c.ssrc_changes == 2);
    CHECK_FALSE(rig.p.amplifier_on());  // no hook, no alert
    CHECK(rig.p.volume_pct() == 100);

    // No old audio after the switch: the buffered commune audio was flushed,
    // and the province tone starts within the playout delay.
    const auto after = rig.slots_audio(switch_slot, rig.slots);
    CHECK(max_window_amplitude(after, 440.0) < 0.02);
    const std::size_t onset = codecs::first_above(after, 0.05f);
    CHECK(onset <= 5 * kFrame);  // a few 20 ms blocks: the target delay, not a drained buffer
    const auto fit = codecs::fit_tone(rig.slots_audio(rig.slots - 40, rig.slots));
    CHECK(fit.frequency_hz == Approx(880.0).margin(2.0));
    CHECK(fit.amplitude == Approx(0.5).margin(0.05));
}

TEST_CASE("lower_level_returns_after_short_silence", "[speaker][alert][preempt]") {
    auto cfg = config();
    cfg.preempt_hold_ms = 500;
    Rig rig(cfg);
    const auto province = engine_packets(programme(0xB0B0, engine::Priority::Province, 880.0), 50);
    const auto commune = engine_packets(programme(0xC0AA, engine::Priority::Commune, 440.0), 140);

    for (std::size_t i = 0; i < 50; ++i) rig.slot({&province[i]});
    // The province programme ends; the cluster rejoins the commune one, which
    // kept playing for others: unmarked packets from the middle of its stream.
    // The province stream is over once it has been quiet for 3 packet times
    // (60 ms): the commune packets 20 and 40 ms after its last one are still
    // ignored (they could be stale), the one 60 ms after it plays, and so does
    // everything after: not 500 ms of the programme lost.
    const std::size_t back_slot = rig.slots;
    std::vector<speaker::DatagramKind> kinds;
    {
        transport::RtpView v;
        REQUIRE(transport::RtpView::parse(commune[40], v) == transport::Status::Ok);
        REQUIRE_FALSE(v.marker());
    }
    for (std::size_t i = 40; i < 140; ++i) rig.slot({&commune[i]}, &kinds);
    REQUIRE(kinds.size() == 100);
    CHECK(std::count(kinds.begin(), kinds.begin() + 2, speaker::DatagramKind::Outranked) == 2);
    CHECK(std::count(kinds.begin() + 2, kinds.end(), speaker::DatagramKind::Media) == 98);
    const auto c = rig.p.counters().snapshot();
    CHECK(c.outranked == 2);
    CHECK(c.playing_ssrc == 0xC0AAu);
    CHECK(c.ssrc_changes == 2);
    // The commune tone is heard within the two ignored packets plus the
    // playout delay (40 ms) of the return, and plays on without a gap.
    const auto after = rig.slots_audio(back_slot, rig.slots);
    CHECK(codecs::first_above(after, 0.05f) <= 6 * kFrame);
    CHECK(max_window_amplitude(rig.slots_audio(back_slot + 10, rig.slots), 880.0) < 0.02);
    const auto fit = codecs::fit_tone(rig.slots_audio(back_slot + 10, rig.slots));
    CHECK(fit.frequency_hz == Approx(440.0).margin(2.0));
    CHECK(fit.amplitude == Approx(0.5).margin(0.05));
    CHECK(c.concealed == 0);
}

TEST_CASE("stale_lower_level_packets_ignored_while_higher_flows", "[speaker][alert][preempt]") {
    Rig rig(config());
    const auto province = engine_packets(programme(0xB0B0, engine::Priority::Province, 880.0), 80);
    const auto commune = engine_packets(programme(0xC0AA, engine::Priority::Commune, 440.0), 80);

    for (std::size_t i = 0; i < 20; ++i) rig.slot({&province[i]});
    // Stale commune packets keep arriving beside the flowing province stream,
    // and the province stream loses single packets (20 ms more silence than
    // usual, then 40 ms since its last packet when a commune one comes first):
    // none of it lets the commune stream in.
    std::vector<speaker::DatagramKind> kinds;
    for (std::size_t i = 20; i < 80; ++i) {
        const auto* stale = &commune[i];
        if (i % 10 == 5) {
            rig.slot({stale}, &kinds);  // province[i] lost
        } else if (i % 10 == 6) {
            rig.slot({stale, &province[i]}, &kinds);  // the stale one first, 40 ms after province[i - 2]
        } else {
            rig.slot({&province[i], stale}, &kinds);
        }
    }
    const auto c = rig.p.counters().snapshot();
    CHECK(c.outranked == 60);
    CHECK(std::count(kinds.begin(), kinds.end(), speaker::DatagramKind::Media) == 54);
    CHECK(c.playing_ssrc == 0xB0B0u);
    CHECK(c.ssrc_changes == 1);
    CHECK(max_window_amplitude(rig.slots_audio(10, rig.slots), 440.0) < 0.02);
}

TEST_CASE("quiet_time_follows_the_stream_packet_time", "[speaker][alert][preempt]") {
    Rig rig(config());
    auto prov = programme(0xB0B0, engine::Priority::Province, 880.0);
    prov.ptime_ms = 60;
    const auto province = engine_packets(prov, 20);
    const auto commune = engine_packets(programme(0xC0AA, engine::Priority::Commune, 440.0), 100);

    // 60 ms packets: one every third slot. Packet 10 is lost; stale commune
    // packets arrive in every slot of the 120 ms gap and are ignored.
    std::vector<speaker::DatagramKind> kinds;
    for (std::size_t i = 0; i < 20; ++i) {
        if (i == 10) {
            rig.slot({&commune[3 * i]}, &kinds);
        } else {
            rig.slot({&province[i]}, &kinds);
        }
        rig.slot({&commune[3 * i + 1]}, &kinds);
        rig.slot({&commune[3 * i + 2]}, &kinds);
    }
    CHECK(std::count(kinds.begin(), kinds.end(), speaker::DatagramKind::Outranked) == 41);
    CHECK(rig.p.counters().snapshot().playing_ssrc == 0xB0B0u);

    // The province programme ends. Its quiet time is 3 x 60 ms: commune
    // packets 60 (after the two above), 80, ... 160 ms after its last one are
    // ignored, the one 180 ms after it plays.
    kinds.clear();
    for (std::size_t i = 60; i < 100; ++i) rig.slot({&commune[i]}, &kinds);
    CHECK(std::count(kinds.begin(), kinds.begin() + 6, speaker::DatagramKind::Outranked) == 6);
    CHECK(std::count(kinds.begin() + 6, kinds.end(), speaker::DatagramKind::Media) == 34);
    CHECK(rig.p.counters().snapshot().playing_ssrc == 0xC0AAu);
}

TEST_CASE("quiet_time_covers_playout_delay_capped_by_hold", "[speaker][alert][preempt]") {
    // A 300 ms playout delay: a gap in arrivals within that jitter is not an
    // end, and ending earlier would flush audio still to be played. The hold
    // caps the quiet time in every case, even below the 60 ms floor.
    const auto province = engine_packets(programme(0xB0B0, engine::Priority::Province, 880.0), 40);
    const auto commune = engine_packets(programme(0xC0AA, engine::Priority::Commune, 440.0), 80);
    for (const auto& [hold_ms, ignored] : {std::pair{500, 14L}, std::pair{100, 4L}, std::pair{40, 1L}}) {
        CAPTURE(hold_ms);
        auto cfg = config();
        cfg.jitter_ms = 300;
        cfg.preempt_hold_ms = hold_ms;
        Rig rig(cfg);
        for (std::size_t i = 0; i < 40; ++i) rig.slot({&province[i]});
        REQUIRE(rig.p.counters().snapshot().target_delay_ms == 300);
        std::vector<speaker::DatagramKind> kinds;
        for (std::size_t i = 40; i < 80; ++i) rig.slot({&commune[i]}, &kinds);
        CHECK(std::count(kinds.begin(), kinds.end(), speaker::DatagramKind::Outranked) == ignored);
        CHECK(std::count(kinds.begin() + ignored, kinds.end(), speaker::DatagramKind::Media) == 40 - ignored);
        CHECK(rig.p.counters().snapshot().playing_ssrc == 0xC0AAu);
    }
}

TEST_CASE("rtcp_bye_of_playing_stream_ends_hold", "[speaker][alert][preempt]") {
    auto cfg = config();
    cfg.jitter_ms = 300;  // a quiet time of 300 ms without the BYE
    Rig rig(cfg);
    const auto province = engine_packets(programme(0xB0B0, engine::Priority::Province, 880.0), 30);
    const auto commune = engine_packets(programme(0xC0AA, engine::Priority::Commune, 440.0), 60);
    const auto bye = [](std::uint32_t ssrc) {
        std::vector<std::uint8_t> buf(256);
        transport::RtcpWriter w(buf);
        REQUIRE(w.add_sr(ssrc, transport::RtcpSenderInfo{}) == transport::Status::Ok);
        REQUIRE(w.add_bye(ssrc) == transport::Status::Ok);
        buf.resize(w.size());
        return buf;
    };
    const auto bye_other = bye(0x1234);
    const auto bye_province = bye(0xB0B0);

    for (std::size_t i = 0; i < 30; ++i) rig.slot({&province[i]});
    std::vector<speaker::DatagramKind> kinds;
    // A BYE of some other SSRC changes nothing: the stale packet is ignored.
    rig.slot({&bye_other, &commune[30]}, &kinds);
    // The playing stream's BYE ends the hold at once.
    rig.slot({&bye_province, &commune[31]}, &kinds);
    for (std::size_t i = 32; i < 60; ++i) rig.slot({&commune[i]}, &kinds);
    using K = speaker::DatagramKind;
    REQUIRE(kinds.size() == 32);
    CHECK(kinds[0] == K::Control);
    CHECK(kinds[1] == K::Outranked);
    CHECK(kinds[2] == K::Control);
    CHECK(std::count(kinds.begin() + 3, kinds.end(), K::Media) == 29);
    const auto c = rig.p.counters().snapshot();
    CHECK(c.outranked == 1);
    CHECK(c.playing_ssrc == 0xC0AAu);
}

TEST_CASE("equal_level_newest_wins_previous_needs_marker", "[speaker][alert]") {
    Rig rig(config());
    const auto a = engine_packets(programme(0xAAA1, engine::Priority::Commune, 440.0), 60);
    const auto b = engine_packets(programme(0xBBB2, engine::Priority::Commune, 880.0), 60);
    for (std::size_t i = 0; i < 20; ++i) rig.slot({&a[i]});
    // B (same level, newer) takes over even without its marked first packet;
    // A's stragglers do not take it back.
    for (std::size_t i = 1; i < 30; ++i) {
        if (i < 10) {
            rig.slot({&b[i], &a[20 + i]});
        } else {
            rig.slot({&b[i]});
        }
    }
    auto c = rig.p.counters().snapshot();
    CHECK(c.playing_ssrc == 0xBBB2u);
    CHECK(c.outranked == 9);
    CHECK(c.ssrc_changes == 2);
    // A packet without a valid level is below every level: ignored too.
    std::vector<std::uint8_t> unlabelled(transport::kMaxRtpPacket);
    {
        transport::RtpView v;
        REQUIRE(transport::RtpView::parse(a[40], v) == transport::Status::Ok);
        transport::RtpHeaderFields h;
        h.payload_type = v.payload_type();
        h.sequence = 9;
        h.timestamp = 9;
        h.ssrc = 0xCCC3;
        std::size_t n = 0;
        REQUIRE(transport::write_rtp(unlabelled, h, {}, v.payload(), n) == transport::Status::Ok);
        unlabelled.resize(n);
    }
    std::vector<speaker::DatagramKind> kinds;
    rig.slot({&b[30], &unlabelled}, &kinds);
    CHECK(kinds == std::vector<speaker::DatagramKind>{speaker::DatagramKind::Media, speaker::DatagramKind::Outranked});
    c = rig.p.counters().snapshot();
    CHECK(c.playing_ssrc == 0xBBB2u);
    CHECK(c.malformed == 0);
}

TEST_CASE("alert_ends_volume_returns_to_normal", "[speaker][alert]") {
    test::TempDir dir("loa-alert");
    auto cfg = config();
    cfg.volume_pct = 80;
    cfg.amp_gpio = gpio_file(dir).string();
    cfg.amp_auto = false;
    Rig rig(cfg);
    const auto alert = engine_packets(programme(0xA1E7, engine::Priority::Emergency, 1000.0, engine::AlertSignal{100}), 60);
    const auto commune = engine_packets(programme(0xC0AA, engine::Priority::Commune, 440.0), 120);

    for (std::size_t i = 0; i < 60; ++i) rig.slot({&alert[i]});
    CHECK(rig.p.volume_pct() == 100);
    CHECK(rig.p.amplifier_on());
    auto fit = codecs::fit_tone(rig.slots_audio(30, 60));
    CHECK(fit.frequency_hz == Approx(1000.0).margin(2.0));
    CHECK(fit.amplitude == Approx(0.5).margin(0.05));  // forced to 100 %
    REQUIRE(rig.p.amp_hook().wait_applied(std::chrono::seconds(10)));
    CHECK(read_file(cfg.amp_gpio) == "1");
    (void)rig.take_report_requested();

    // The alert ends; the commune programme comes back after the hold and
    // plays at the configured 80 %, amplifier off again (no --amp-auto).
    for (std::size_t i = 0; i < 120; ++i) rig.slot({&commune[i]});
    CHECK_FALSE(rig.p.alert_active());
    CHECK(rig.p.volume_pct() == 80);
    CHECK_FALSE(rig.p.amplifier_on());
    CHECK(rig.take_report_requested());
    const auto st = rig.report();
    CHECK(st.playing_ssrc == 0xC0AAu);
    CHECK(st.volume_pct == 80);
    CHECK_FALSE(st.amplifier_on);
    REQUIRE(rig.p.amp_hook().wait_applied(std::chrono::seconds(10)));
    CHECK(read_file(cfg.amp_gpio) == "0");
    CHECK(rig.p.amp_hook().applied() == 3);
    fit = codecs::fit_tone(rig.slots_audio(rig.slots - 50, rig.slots));
    CHECK(fit.frequency_hz == Approx(440.0).margin(2.0));
    CHECK(fit.amplitude == Approx(0.4).margin(0.04));  // 0.5 x 80 %
    const auto c = rig.p.counters().snapshot();
    CHECK_FALSE(c.alert);
    CHECK(c.amp_switches == 2);
}

TEST_CASE("amplifier_off_after_idle", "[speaker][alert]") {
    test::TempDir dir("loa-amp");
    // The command hook: a script that logs its argument.
    const auto log = dir / "amp.log";
    const auto script = dir / "amp.sh";
    std::ofstream(script) << "#!/bin/sh\necho \"$1\" >> '" << log.string() << "'\n";
    REQUIRE(::chmod(script.c_str(), 0755) == 0);
    auto cfg = config();
    cfg.amp_command = script.string();
    cfg.amp_gpio = gpio_file(dir).string();
    cfg.amp_idle_ms = 10'000;  // amp_auto is on by default
    Rig rig(cfg);
    const auto commune = engine_packets(programme(0xC0AA, engine::Priority::Commune, 440.0), 50);

    rig.silent_slots(10);
    CHECK_FALSE(rig.p.amplifier_on());  // nothing played yet
    for (std::size_t i = 0; i < 50; ++i) {
        rig.slot({&commune[i]});
        if (i == 0) CHECK(rig.p.amplifier_on());  // on with the first packet
    }
    REQUIRE(rig.p.amp_hook().wait_applied(std::chrono::seconds(10)));
    CHECK(read_file(cfg.amp_gpio) == "1");

    // The last packet arrived at slot 59 + 1 ms. 10 s later (500 slots) the
    // amplifier goes off, not before.
    rig.silent_slots(499);
    CHECK(rig.p.amplifier_on());
    rig.silent_slots(1);
    CHECK_FALSE(rig.p.amplifier_on());
    (void)rig.take_report_requested();
    CHECK_FALSE(rig.report().amplifier_on);

    REQUIRE(rig.p.amp_hook().wait_applied(std::chrono::seconds(10)));
    CHECK(read_file(cfg.amp_gpio) == "0");
    CHECK(read_file(log) == "off\non\noff\n");
    CHECK(rig.p.amp_hook().failures() == 0);
}

TEST_CASE("amplifier_hook_failure_counted", "[speaker][alert]") {
    test::TempDir dir("loa-amp");
    speaker::AmpHook hook({(dir / "no-such-program").string(), (dir / "no-such-file").string(),
                           std::chrono::milliseconds(10000)});
    CHECK(hook.configured());
    hook.request(true);
    REQUIRE(hook.wait_applied(std::chrono::seconds(10)));
    CHECK(hook.applied() == 1);
    CHECK(hook.failures() == 1);
    CHECK_FALSE(std::filesystem::exists(dir / "no-such-file"));  // never created
    // A failed change is tried again on the next request for the same state.
    hook.request(true);
    REQUIRE(hook.wait_applied(std::chrono::seconds(10)));
    CHECK(hook.applied() == 2);

    speaker::AmpHook none({});
    CHECK_FALSE(none.configured());
    none.request(true);
    CHECK(none.wait_applied(std::chrono::milliseconds(0)));
    CHECK(none.applied() == 0);
}
