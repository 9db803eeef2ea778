// engine::Playout: the adaptive jitter buffer on a clean network, sequence
// numbers, SSRC changes, reordering, duplicates, late packets, FEC and long
// gaps, driven in simulated time with real Opus packets. Jitter, loss, drift
// and packet sizes: playout_adaptive_test.cpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "loa/codecs/tone_analysis.h"
#include "playout_sim.h"

using namespace loa;
using namespace loa::test;
using engine::PlayoutConfig;

TEST_CASE("clean_network_one_packet_delay", "[playout]") {
    const auto payloads = encode_tone(100);
    for (std::size_t block : {std::size_t{960}, std::size_t{480}}) {
        for (std::int64_t phase : {std::int64_t{0}, 3 * kMs, 7 * kMs, 19 * kMs}) {
            Playout p;
            StreamSpec s;
            Sim sim{p, clean_arrivals(s, payloads, 500)};
            sim.block = block;
            sim.phase_ns = phase;
            sim.run_until(2 * kSec);
            const auto underruns_startup = p.stats().underruns.load();
            sim.run_until(9 * kSec);
            INFO("block " << block << " phase " << phase / kMs << " ms; target " << p.stats().target_delay_ms.load()
                          << " current " << p.stats().current_delay_ms.load());
            CHECK(p.stats().underruns.load() == 0);
            CHECK(underruns_startup == 0);
            CHECK(p.stats().concealed.load() == 0);
            CHECK(p.stats().lost.load() == 0);
            CHECK(p.stats().target_delay_ms.load() >= 20);
            CHECK(p.stats().target_delay_ms.load() <= 25);
            CHECK(p.stats().current_delay_ms.load() <= 40);
            CHECK(std::abs(p.stats().current_delay_ms.load() - p.stats().target_delay_ms.load()) <= 5);
            const auto fit = codecs::fit_tone(sim.output_after(1 * kSec));
            CHECK(fit.frequency_hz == Approx(1000.0).margin(1.0));
            CHECK(fit.snr_db > 20.0);
        }
    }
}

TEST_CASE("seqnum_wrap", "[playout]") {
    const auto payloads = encode_tone(100);
    Playout p;
    StreamSpec s;
    s.first_seq = 65400;
    s.first_ts = 0xFFFF0000u;  // timestamps wrap too
    Sim sim{p, clean_arrivals(s, payloads, 300)};
    sim.run_until(6 * kSec);
    CHECK(p.stats().frames_decoded.load() == 300);
    CHECK(p.stats().lost.load() == 0);
    CHECK(p.stats().late.load() == 0);
    CHECK(p.stats().concealed.load() == 0);
    CHECK(p.stats().underruns.load() == 0);
    CHECK(p.stats().ssrc_changes.load() == 1);
    const auto fit = codecs::fit_tone(sim.output_after(1 * kSec).first(4 * 48000));
    CHECK(fit.frequency_hz == Approx(1000.0).margin(1.0));
}

TEST_CASE("ssrc_change_flushes", "[playout]") {
    const auto a = encode_tone(100, 1000.0);
    const auto b = encode_tone(100, 500.0);
    Playout p;
    StreamSpec sa;
    sa.ssrc = 0xAAAA;
    StreamSpec sb;
    sb.ssrc = 0xBBBB;
    sb.first_seq = 7;
    sb.first_ts = 999;
    sb.start_ns = 2 * kSec;
    auto packets = clean_arrivals(sa, a, 100);  // 0..2 s
    // A second programme preempts at 2 s; one straggler of the old one follows.
    auto pb = clean_arrivals(sb, b, 100);
    packets.insert(packets.end(), pb.begin(), pb.end());
    packets.push_back({2 * kSec + 5 * kMs, 100, stream_packet(sa, a, 100)});
    sort_by_arrival(packets);
    Sim sim{p, packets};
    sim.run_until(1 * kSec);
    CHECK(p.take_stream_change());
    CHECK_FALSE(p.take_stream_change());
    CHECK(p.stats().ssrc.load() == 0xAAAA);
    sim.run_until(2 * kSec + 30 * kMs);
    CHECK(p.take_stream_change());
    CHECK(p.stats().ssrc.load() == 0xBBBB);
    CHECK(p.stats().ssrc_changes.load() == 2);
    sim.run_until(4 * kSec);
    CHECK(p.stats().late.load() == 1);  // the straggler
    CHECK(p.stats().underruns.load() == 0);
    // The new programme is heard at once: 500 Hz from 2.06 s on, no 1 kHz left.
    const auto after = sim.output_after(2 * kSec + 60 * kMs).first(48000);
    const auto fit = codecs::fit_tone(after);
    CHECK(fit.frequency_hz == Approx(500.0).margin(1.0));
    CHECK(fit.snr_db > 15.0);
    // And nothing but silence and B between the switch and B's first frame.
    const auto before = sim.output_after(1 * kSec).first(48000);
    CHECK(codecs::fit_tone(before).frequency_hz == Approx(1000.0).margin(1.0));
    CHECK(p.has_stream());
    p.flush();
    CHECK_FALSE(p.has_stream());
}

TEST_CASE("reordered_packets_restored", "[playout]") {
    const auto payloads = encode_tone(100);
    PlayoutConfig cfg;
    cfg.min_delay_ms = 60;
    Playout p(cfg);
    StreamSpec s;
    auto packets = clean_arrivals(s, payloads, 400);
    std::size_t swapped = 0;
    for (std::size_t i = 5; i < packets.size(); i += 7) {
        packets[i].arrival += 30 * kMs;  // overtaken by the next one
        ++swapped;
    }
    sort_by_arrival(packets);
    Sim sim{p, packets};
    sim.run_until(8 * kSec - 60 * kMs);  // the stream ends at 8 s
    const auto swapped_pushed = static_cast<std::size_t>(std::count_if(
        sim.packets.begin(), sim.packets.begin() + static_cast<std::ptrdiff_t>(sim.next),
        [](const SimPacket& q) { return q.index >= 5 && q.index % 7 == 5; }));
    CHECK(p.stats().reordered.load() == swapped_pushed);
    CHECK(swapped_pushed + 1 >= swapped);
    CHECK(p.stats().lost.load() == 0);
    CHECK(p.stats().late.load() == 0);
    CHECK(p.stats().concealed.load() == 0);
    CHECK(p.stats().frames_decoded.load() >= 394);
    CHECK(p.stats().target_delay_ms.load() >= 60);
}

TEST_CASE("duplicate_dropped", "[playout]") {
    const auto payloads = encode_tone(100);
    Playout p;
    StreamSpec s;
    auto packets = clean_arrivals(s, payloads, 200);
    std::vector<SimPacket> dups;
    for (std::size_t i = 3; i < packets.size(); i += 5) {
        dups.push_back({packets[i].arrival + 2 * kMs, i, packets[i].bytes});
    }
    packets.insert(packets.end(), dups.begin(), dups.end());
    sort_by_arrival(packets);
    Sim sim{p, packets};
    sim.run_until(4 * kSec - 40 * kMs);  // the stream ends at 4 s
    const auto dups_pushed = static_cast<std::size_t>(std::count_if(
        sim.packets.begin(), sim.packets.begin() + static_cast<std::ptrdiff_t>(sim.next),
        [](const SimPacket& q) { return q.index % 5 == 3; })) / 2;
    CHECK(p.stats().duplicate.load() == dups_pushed);
    CHECK(dups_pushed >= 38);
    CHECK(p.stats().frames_decoded.load() >= 196);
    CHECK(p.stats().concealed.load() == 0);
    CHECK(p.stats().lost.load() == 0);
    // A copy pushed again afterwards is still a duplicate (or late), never played twice.
    const auto r = push_bytes(p, packets.front().bytes, sim.now);
    CHECK((r == PlayoutPush::Duplicate || r == PlayoutPush::Late));
}

TEST_CASE("late_packet_dropped", "[playout]") {
    const auto payloads = encode_tone(100, 1000.0, codecs::Content::Music);  // no FEC: PLC
    Playout p;
    StreamSpec s;
    auto packets = clean_arrivals(s, payloads, 200);
    packets[100].arrival += 300 * kMs;
    sort_by_arrival(packets);
    Sim sim{p, packets};
    std::optional<PlayoutPush> late_result;
    sim.before_render = [&](std::int64_t) {};
    sim.run_until(2 * kSec + 200 * kMs);
    // Push the late packet by hand to see the result.
    auto it = std::find_if(sim.packets.begin() + static_cast<std::ptrdiff_t>(sim.next), sim.packets.end(),
                           [](const SimPacket& q) { return q.index == 100; });
    REQUIRE(it != sim.packets.end());
    late_result = push_bytes(p, it->bytes, it->arrival);
    sim.packets.erase(it);
    sim.run_until(4 * kSec - 40 * kMs);
    CHECK(late_result == PlayoutPush::Late);
    CHECK(p.stats().late.load() == 1);
    CHECK(p.stats().lost.load() == 1);
    CHECK(p.stats().concealed.load() == 1);
    CHECK(p.stats().underruns.load() == 0);
    CHECK(p.stats().frames_decoded.load() >= 195);
}

TEST_CASE("late_packet_waited_for", "[playout]") {
    // Packet 100 comes 25 ms late, after packet 101: when its frame is due it
    // is missing while a later one is here, and there is no FEC (music mode).
    // The playout conceals a piece at a time for up to one packet time
    // instead of giving the frame up at once; the packet comes meanwhile and
    // is played whole, not dropped as late.
    const auto payloads = encode_tone(100, 1000.0, codecs::Content::Music);
    Playout p;
    StreamSpec s;
    auto packets = clean_arrivals(s, payloads, 200);
    packets[100].arrival += 25 * kMs;
    sort_by_arrival(packets);
    Sim sim{p, packets};
    sim.block = 480;
    sim.phase_ns = 3 * kMs;
    sim.run_until(2 * kSec + 10 * kMs);
    const auto expanded_before = p.stats().expanded_samples.load();
    sim.run_until(4 * kSec - 40 * kMs);
    INFO("target " << p.stats().target_delay_ms.load() << " current " << p.stats().current_delay_ms.load());
    CHECK(p.stats().late_played.load() == 1);
    CHECK(p.stats().late.load() == 0);
    CHECK(p.stats().lost.load() == 0);
    CHECK(p.stats().concealed.load() == 0);  // less than a frame of concealment while waiting
    CHECK(p.stats().underruns.load() == 0);
    CHECK(p.stats().frames_decoded.load() >= 197);
    CHECK(p.stats().expanded_samples.load() == expanded_before);  // no expand: the wait was concealment
    // The delay that the wait added is taken back.
    CHECK(p.stats().accelerated_samples.load() > 0);
    CHECK(std::abs(p.stats().current_delay_ms.load() - p.stats().target_delay_ms.load()) <= 5);
    const auto fit = codecs::fit_tone(sim.output_after(2500 * kMs).first(48000));
    CHECK(fit.frequency_hz == Approx(1000.0).margin(1.0));
}

TEST_CASE("late_fec_carrier_waited_for", "[playout]") {
    // Packet 100 is lost and packet 101, which carries its FEC copy, comes
    // 50 ms late: with a 60 ms delay, 102 is here when the frame of 100 is
    // due and 101 comes 10 ms after. The frame is held open for up to one
    // packet time, 101 comes meanwhile and the frame is rebuilt from its
    // FEC, whole.
    const auto payloads = encode_tone(200, 1000.0, codecs::Content::Speech, 20);
    PlayoutConfig cfg;
    cfg.min_delay_ms = 60;
    Playout p(cfg);
    StreamSpec s;
    auto packets = clean_arrivals(s, payloads, 200);
    packets[101].arrival += 50 * kMs;
    packets.erase(packets.begin() + 100);
    sort_by_arrival(packets);
    Sim sim{p, packets};
    sim.block = 480;
    sim.phase_ns = 3 * kMs;
    sim.run_until(4 * kSec - 40 * kMs);
    CHECK(p.stats().lost.load() == 1);
    CHECK(p.stats().recovered_fec.load() == 1);
    CHECK(p.stats().concealed.load() == 0);
    CHECK(p.stats().late.load() == 0);
    CHECK(p.stats().late_played.load() == 0);
    CHECK(p.stats().underruns.load() == 0);
    CHECK(std::abs(p.stats().current_delay_ms.load() - p.stats().target_delay_ms.load()) <= 5);
}

TEST_CASE("late_wait_is_bounded", "[playout]") {
    // The same late packet as in late_packet_waited_for with the wait turned
    // off, and one 60 ms late with the default wait: both frames are given
    // up (concealed) and the packets dropped as late when they come.
    for (const auto& [wait, extra_ms] : {std::pair{std::optional<int>(0), std::int64_t{25}},
                                         std::pair{std::optional<int>(), std::int64_t{60}}}) {
        const auto payloads = encode_tone(100, 1000.0, codecs::Content::Music);
        PlayoutConfig cfg;
        cfg.late_wait_ms = wait;
        Playout p(cfg);
        StreamSpec s;
        auto packets = clean_arrivals(s, payloads, 200);
        packets[100].arrival += extra_ms * kMs;
        sort_by_arrival(packets);
        Sim sim{p, packets};
        sim.block = 480;
        sim.phase_ns = 3 * kMs;
        sim.run_until(4 * kSec - 40 * kMs);
        INFO("wait " << (wait ? *wait : -1) << " ms, packet " << extra_ms << " ms late");
        CHECK(p.stats().late_played.load() == 0);
        CHECK(p.stats().late.load() == 1);
        CHECK(p.stats().lost.load() == 1);
        CHECK(p.stats().concealed.load() == 1);
        CHECK(p.stats().underruns.load() == 0);
    }
}

TEST_CASE("fec_recovers_single_loss", "[playout]") {
    const auto payloads = encode_tone(200, 1000.0, codecs::Content::Speech, 20);
    // FEC needs the packet after the lost one to be there when the lost one
    // is due: one packet time more than a clean network needs.
    PlayoutConfig cfg;
    cfg.min_delay_ms = 40;
    Playout p(cfg);
    StreamSpec s;
    auto packets = clean_arrivals(s, payloads, 200);
    std::vector<SimPacket> kept;
    for (auto& q : packets) {
        if (q.index != 40 && q.index != 80 && q.index != 120) kept.push_back(std::move(q));
    }
    Sim sim{p, kept};
    sim.run_until(4 * kSec - 60 * kMs);
    CHECK(p.stats().lost.load() == 3);
    CHECK(p.stats().recovered_fec.load() == 3);
    CHECK(p.stats().concealed.load() == 0);
    CHECK(p.stats().underruns.load() == 0);
    const auto fit = codecs::fit_tone(sim.output_after(500 * kMs).first(3 * 48000));
    CHECK(fit.frequency_hz == Approx(1000.0).margin(1.0));
}

TEST_CASE("long_gap_fades_out", "[playout]") {
    const auto payloads = encode_tone(100, 1000.0, codecs::Content::Music);
    Playout p;  // fade_after_ms = 100
    StreamSpec s;
    auto packets = clean_arrivals(s, payloads, 250);
    std::vector<SimPacket> kept;
    for (auto& q : packets) {
        if (q.index < 100 || q.index >= 150) kept.push_back(std::move(q));  // 1 s gap from 2 s on
    }
    Sim sim{p, kept};
    sim.run_until(5 * kSec - 60 * kMs);
    CHECK(p.stats().lost.load() == 50);
    // PLC for fade_after_ms (100 ms), then a 20 ms fade: about 6 frames.
    CHECK(p.stats().concealed.load() >= 5);
    CHECK(p.stats().concealed.load() <= 7);
    CHECK(p.stats().underruns.load() == 0);
    const auto delay = p.stats().current_delay_ms.load();
    // Packet 100 was due at about 2 s + delay: concealment up to 100 ms, then a 20 ms fade.
    const std::int64_t gap_start = 2 * kSec + delay * kMs;
    const auto early = sim.output_after(gap_start + 20 * kMs).first(960);
    CHECK(rms_of(early) > 0.05);  // PLC still sounds
    const auto silent = sim.output_after(gap_start + 160 * kMs).first(48000 * 7 / 10);
    CHECK(codecs::peak(silent) < 1e-6f);
    // The stream comes back after the gap.
    const auto back = sim.output_after(gap_start + 1100 * kMs).first(48000);
    CHECK(rms_of(back) > 0.2);
    CHECK(codecs::fit_tone(back).frequency_hz == Approx(1000.0).margin(1.0));
}
