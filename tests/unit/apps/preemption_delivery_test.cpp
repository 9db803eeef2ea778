// loa-speaker preemption between a group's programme sent by multicast and a
// cluster's own programme sent by unicast, on the socket-free pipeline with
// passed-in time. The engine ranks the unicast one at least as high, so at
// equal level it wins whichever arrives first; a higher level still wins
// whatever the delivery. Each programme plays its own tone.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "loa/codecs/tone_analysis.h"
#include "loa/transport/rtcp_packet.h"
#include "preemption_rig.h"

using namespace loa;
using namespace loa::test::preempt;
using K = speaker::DatagramKind;

namespace {

constexpr auto kUni = transport::Delivery::Unicast;
constexpr auto kMulti = transport::Delivery::Multicast;

constexpr double kGroupHz = 440.0;  // the group's programme X (multicast)
constexpr double kOwnHz = 880.0;    // the cluster's own programme Y (unicast)

long count(const std::vector<K>& kinds, K k) { return std::count(kinds.begin(), kinds.end(), k); }

// Checks that the last 40 slots play `hz` alone and `other` is not heard
// from slot `from` on.
void check_plays(const Rig& rig, double hz, double other, std::size_t from) {
    const auto fit = codecs::fit_tone(rig.slots_audio(rig.slots - 40, rig.slots));
    CHECK(fit.frequency_hz == Approx(hz).margin(2.0));
    CHECK(fit.amplitude == Approx(0.5).margin(0.05));
    CHECK(max_window_amplitude(rig.slots_audio(from, rig.slots), other) < 0.02);
}

std::vector<std::uint8_t> bye(std::uint32_t ssrc) {
    std::vector<std::uint8_t> buf(256);
    transport::RtcpWriter w(buf);
    REQUIRE(w.add_sr(ssrc, transport::RtcpSenderInfo{}) == transport::Status::Ok);
    REQUIRE(w.add_bye(ssrc) == transport::Status::Ok);
    buf.resize(w.size());
    return buf;
}

}  // namespace

TEST_CASE("preempt_equal_level_multicast_refused_while_unicast_flows", "[speaker][preempt][multicast]") {
    Rig rig(config());
    const auto own = engine_packets(programme(0x0001, engine::Priority::Commune, kOwnHz), 100);
    const auto group = engine_packets(programme(0x6001, engine::Priority::Commune, kGroupHz), 100);

    for (std::size_t i = 0; i < 20; ++i) rig.slot({{&own[i], kUni}});
    // The group's programme starts (marked first packet included) after the
    // cluster's own one: the newer stream, yet it never gets in, whether its
    // packets arrive before or after the unicast ones of the same slot.
    std::vector<K> kinds;
    for (std::size_t i = 0; i < 80; ++i) {
        if (i % 2 == 0) {
            rig.slot({{&group[i], kMulti}, {&own[20 + i], kUni}}, &kinds);
        } else {
            rig.slot({{&own[20 + i], kUni}, {&group[i], kMulti}}, &kinds);
        }
    }
    CHECK(count(kinds, K::Outranked) == 80);
    CHECK(count(kinds, K::Media) == 80);
    const auto c = rig.p.counters().snapshot();
    CHECK(c.outranked == 80);
    CHECK(c.playing_ssrc == 0x0001u);
    CHECK(c.ssrc_changes == 1);
    check_plays(rig, kOwnHz, kGroupHz, 0);
}

TEST_CASE("preempt_equal_level_unicast_takes_over_from_multicast_at_once", "[speaker][preempt][multicast]") {
    Rig rig(config());
    const auto group = engine_packets(programme(0x6001, engine::Priority::Commune, kGroupHz), 100);
    const auto own = engine_packets(programme(0x0001, engine::Priority::Commune, kOwnHz), 100);

    for (std::size_t i = 0; i < 30; ++i) rig.slot({{&group[i], kMulti}});
    (void)rig.take_report_requested();
    // The cluster's own programme joins in mid-stream (its marked first
    // packet lost): its first packet switches, the group's packets still
    // coming beside it are ignored from then on, in either order in a slot.
    const std::size_t switch_slot = rig.slots;
    std::vector<K> kinds;
    for (std::size_t i = 1; i < 70; ++i) {
        if (i % 2 == 0) {
            rig.slot({{&group[29 + i], kMulti}, {&own[i], kUni}}, &kinds);
        } else {
            rig.slot({{&own[i], kUni}, {&group[29 + i], kMulti}}, &kinds);
        }
        if (i == 1) {
            CHECK(kinds == std::vector<K>{K::Media, K::Outranked});
            CHECK(rig.p.counters().snapshot().playing_ssrc == 0x0001u);
            CHECK(rig.take_report_requested());  // the engine hears of the switch at once
        }
    }
    CHECK(count(kinds, K::Outranked) == 69);
    CHECK(count(kinds, K::Media) == 69);
    const auto c = rig.p.counters().snapshot();
    CHECK(c.outranked == 69);
    CHECK(c.playing_ssrc == 0x0001u);
    CHECK(c.ssrc_changes == 2);
    // No group audio after the switch (the playout flushed it).
    check_plays(rig, kOwnHz, kGroupHz, switch_slot);
}

TEST_CASE("preempt_multicast_takes_over_when_unicast_goes_quiet", "[speaker][preempt][multicast]") {
    Rig rig(config());
    const auto own = engine_packets(programme(0x0001, engine::Priority::Commune, kOwnHz), 40);
    const auto group = engine_packets(programme(0x6001, engine::Priority::Commune, kGroupHz), 120);

    std::vector<K> kinds;
    for (std::size_t i = 0; i < 40; ++i) rig.slot({{&own[i], kUni}, {&group[i], kMulti}}, &kinds);
    CHECK(count(kinds, K::Outranked) == 40);
    // The cluster's own programme ends without a BYE. It is over once quiet
    // for 3 packet times (60 ms): the group's packets 20 and 40 ms after its
    // last one are still ignored, the one 60 ms after it plays, and so does
    // everything after.
    const std::size_t back_slot = rig.slots;
    kinds.clear();
    for (std::size_t i = 40; i < 120; ++i) rig.slot({{&group[i], kMulti}}, &kinds);
    REQUIRE(kinds.size() == 80);
    CHECK(count(kinds, K::Outranked) == 2);
    CHECK(kinds[0] == K::Outranked);
    CHECK(kinds[1] == K::Outranked);
    CHECK(std::count(kinds.begin() + 2, kinds.end(), K::Media) == 78);
    const auto c = rig.p.counters().snapshot();
    CHECK(c.outranked == 42);
    CHECK(c.playing_ssrc == 0x6001u);
    check_plays(rig, kGroupHz, kOwnHz, back_slot + 10);
}

TEST_CASE("preempt_multicast_takes_over_after_unicast_bye", "[speaker][preempt][multicast]") {
    auto cfg = config();
    cfg.jitter_ms = 300;  // a quiet time of 300 ms: only the BYE ends the hold early
    Rig rig(cfg);
    const auto own = engine_packets(programme(0x0001, engine::Priority::Commune, kOwnHz), 30);
    const auto group = engine_packets(programme(0x6001, engine::Priority::Commune, kGroupHz), 60);
    const auto own_bye = bye(0x0001);
    const auto group_bye = bye(0x6001);

    for (std::size_t i = 0; i < 30; ++i) rig.slot({{&own[i], kUni}});
    std::vector<K> kinds;
    // The group's BYE (a stream that is not playing) changes nothing; the
    // playing stream's BYE lets the group's next packet in at once.
    rig.slot({{&group_bye, kMulti}, {&group[30], kMulti}}, &kinds);
    rig.slot({{&own_bye, kUni}, {&group[31], kMulti}}, &kinds);
    for (std::size_t i = 32; i < 60; ++i) rig.slot({{&group[i], kMulti}}, &kinds);
    REQUIRE(kinds.size() == 32);
    CHECK(kinds[0] == K::Control);
    CHECK(kinds[1] == K::Outranked);
    CHECK(kinds[2] == K::Control);
    CHECK(std::count(kinds.begin() + 3, kinds.end(), K::Media) == 29);
    const auto c = rig.p.counters().snapshot();
    CHECK(c.outranked == 1);
    CHECK(c.playing_ssrc == 0x6001u);
}

TEST_CASE("preempt_higher_level_multicast_beats_lower_level_unicast", "[speaker][preempt][multicast]") {
    Rig rig(config());
    const auto own = engine_packets(programme(0x0001, engine::Priority::Commune, kOwnHz), 100);
    const auto group = engine_packets(programme(0x6001, engine::Priority::Province, kGroupHz), 60);

    for (std::size_t i = 0; i < 40; ++i) rig.slot({{&own[i], kUni}});
    const std::size_t switch_slot = rig.slots;
    std::vector<K> kinds;
    for (std::size_t i = 0; i < 60; ++i) {
        rig.slot({{&own[40 + i], kUni}, {&group[i], kMulti}}, &kinds);
        if (i == 0) CHECK(rig.p.counters().snapshot().playing_ssrc == 0x6001u);  // at once
    }
    REQUIRE(kinds.size() == 120);
    CHECK(kinds[0] == K::Media);  // the unicast packet before the switch still played
    CHECK(kinds[1] == K::Media);
    CHECK(count(kinds, K::Outranked) == 59);
    const auto c = rig.p.counters().snapshot();
    CHECK(c.outranked == 59);
    CHECK(c.playing_ssrc == 0x6001u);
    CHECK(c.ssrc_changes == 2);
    check_plays(rig, kGroupHz, kOwnHz, switch_slot);
}

TEST_CASE("preempt_lower_level_unicast_never_beats_higher_level_multicast", "[speaker][preempt][multicast]") {
    Rig rig(config());
    const auto group = engine_packets(programme(0x6001, engine::Priority::Province, kGroupHz), 100);
    const auto own = engine_packets(programme(0x0001, engine::Priority::Commune, kOwnHz), 80);

    for (std::size_t i = 0; i < 20; ++i) rig.slot({{&group[i], kMulti}});
    // The cluster's own programme (from its marked first packet on) keeps
    // coming by unicast beside the flowing higher-level group programme.
    std::vector<K> kinds;
    for (std::size_t i = 0; i < 80; ++i) {
        if (i % 2 == 0) {
            rig.slot({{&own[i], kUni}, {&group[20 + i], kMulti}}, &kinds);
        } else {
            rig.slot({{&group[20 + i], kMulti}, {&own[i], kUni}}, &kinds);
        }
    }
    CHECK(count(kinds, K::Outranked) == 80);
    CHECK(count(kinds, K::Media) == 80);
    const auto c = rig.p.counters().snapshot();
    CHECK(c.outranked == 80);
    CHECK(c.playing_ssrc == 0x6001u);
    CHECK(c.ssrc_changes == 1);
    check_plays(rig, kGroupHz, kOwnHz, 0);
}

TEST_CASE("preempt_equal_level_multicast_streams_newest_wins", "[speaker][preempt][multicast]") {
    // Between two streams of the same delivery the rule is unchanged: the
    // newest wins, the one just left needs its marker to come back.
    Rig rig(config());
    const auto a = engine_packets(programme(0x6001, engine::Priority::Commune, kGroupHz), 60);
    const auto b = engine_packets(programme(0x6002, engine::Priority::Commune, kOwnHz), 60);
    for (std::size_t i = 0; i < 20; ++i) rig.slot({{&a[i], kMulti}});
    std::vector<K> kinds;
    for (std::size_t i = 1; i < 30; ++i) {
        if (i < 10) {
            rig.slot({{&b[i], kMulti}, {&a[20 + i], kMulti}}, &kinds);
        } else {
            rig.slot({{&b[i], kMulti}}, &kinds);
        }
    }
    const auto c = rig.p.counters().snapshot();
    CHECK(c.playing_ssrc == 0x6002u);
    CHECK(c.outranked == 9);
    CHECK(c.ssrc_changes == 2);
}
