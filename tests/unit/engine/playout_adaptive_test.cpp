// engine::Playout under jitter, burst loss and clock drift, with an imposed
// target delay, DTX gaps and 10 ms packets: time-stretch and drift
// compensation, driven in simulated time with real Opus packets.
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

TEST_CASE("adapts_to_jitter", "[playout]") {
    const auto payloads = encode_tone(100);
    Playout p;
    StreamSpec s;
    transport::ImpairmentModel jittery(jitter_config(40 * kMs, 7));
    auto packets = impaired_arrivals(s, payloads, 1500, jittery);  // 30 s of 0..40 ms jitter
    transport::ImpairmentModel clean(jitter_config(0, 7));
    const auto calm = impaired_arrivals(s, payloads, 3500, clean, 1500);  // then 70 s clean
    packets.insert(packets.end(), calm.begin(), calm.end());
    sort_by_arrival(packets);
    Sim sim{p, packets};
    sim.keep_output = false;
    sim.run_until(5 * kSec);
    const auto underruns_startup = p.stats().underruns.load();
    const auto concealed_startup = p.stats().concealed.load();
    sim.run_until(30 * kSec);
    const int jitter_target = p.stats().target_delay_ms.load();
    const int jitter_delay = p.stats().current_delay_ms.load();
    const auto concealed_jitter = p.stats().concealed.load() - concealed_startup;
    const auto underruns_jitter = p.stats().underruns.load() - underruns_startup;
    sim.run_until(99 * kSec);
    const int clean_target = p.stats().target_delay_ms.load();
    const int clean_delay = p.stats().current_delay_ms.load();
    WARN("adapts_to_jitter: 40 ms jitter: target " << jitter_target << " ms, delay " << jitter_delay
         << " ms, concealed " << concealed_jitter << " of 1250 frames, underruns " << underruns_jitter
         << "; clean again: target " << clean_target << " ms, delay " << clean_delay << " ms; accelerated "
         << p.stats().accelerated_samples.load() << " expanded " << p.stats().expanded_samples.load());
    CHECK(jitter_target >= 50);
    CHECK(jitter_target <= 70);
    CHECK(std::abs(jitter_delay - jitter_target) <= 5);
    CHECK(concealed_jitter <= 25);  // <= 2 %
    CHECK(clean_target <= 25);
    CHECK(std::abs(clean_delay - clean_target) <= 5);
    CHECK(p.stats().lost.load() == p.stats().late.load());  // nothing was dropped by the network
}

TEST_CASE("imposed_target_delay", "[playout]") {
    const auto payloads = encode_tone(100);
    PlayoutConfig cfg;
    cfg.fixed_delay_ms = 100;
    Playout p(cfg);
    StreamSpec s;
    Sim sim{p, clean_arrivals(s, payloads, 1000)};
    sim.run_until(3 * kSec);
    CHECK(p.stats().target_delay_ms.load() == 100);
    CHECK(std::abs(p.stats().current_delay_ms.load() - 100) <= 5);
    // Imposed later: 150 ms, reached by expanding.
    p.set_target_delay_ms(150);
    sim.run_until(8 * kSec);
    CHECK(p.stats().target_delay_ms.load() == 150);
    CHECK(std::abs(p.stats().current_delay_ms.load() - 150) <= 5);
    // Back to adaptive: about one packet time, reached by accelerating.
    p.set_target_delay_ms(std::nullopt);
    sim.run_until(16 * kSec);
    CHECK(p.stats().target_delay_ms.load() <= 25);
    CHECK(std::abs(p.stats().current_delay_ms.load() - p.stats().target_delay_ms.load()) <= 5);
    CHECK(p.stats().underruns.load() == 0);
    CHECK(p.stats().concealed.load() == 0);
    CHECK(p.stats().expanded_samples.load() >= 48 * 50);
    CHECK(p.stats().accelerated_samples.load() >= 48 * 120);
    // Imposed values are clamped to [one packet time, max_delay_ms].
    p.set_target_delay_ms(5);
    CHECK(p.stats().target_delay_ms.load() == 20);
    p.set_target_delay_ms(100000);
    CHECK(p.stats().target_delay_ms.load() == 500);
    // The stretched tone keeps its pitch.
    const auto fit = codecs::fit_tone(sim.output_after(1 * kSec));
    CHECK(fit.frequency_hz == Approx(1000.0).margin(1.0));
}

TEST_CASE("tone_through_burst_loss_and_jitter", "[playout][quality]") {
    // 60 s of a 1 kHz tone with in-band FEC through seeded Gilbert-Elliott
    // loss (5 %, bursts of 2 on average) and 0..40 ms jitter (reordering).
    const auto payloads = encode_tone(500, 1000.0, codecs::Content::Speech, 10);
    Playout p;
    StreamSpec s;
    transport::ImpairmentConfig ic = jitter_config(40 * kMs, 2024);
    ic.loss = transport::LossModel::GilbertElliott;
    ic.gilbert_elliott = transport::GilbertElliottParams::from_mean(0.05, 2.0);
    transport::ImpairmentModel model(ic);
    const std::size_t count = 3000;
    Sim sim{p, impaired_arrivals(s, payloads, count, model)};
    sim.run_until(5 * kSec);
    const auto underruns_startup = p.stats().underruns.load();
    const auto concealed_startup = p.stats().concealed.load();
    const auto fec_startup = p.stats().recovered_fec.load();
    sim.run_until(60 * kSec - 100 * kMs);
    const double loss_rate = static_cast<double>(model.counts().dropped) / static_cast<double>(count);
    const double frames = 55.0 * 50.0;
    const double concealed = static_cast<double>(p.stats().concealed.load() - concealed_startup) / frames;
    const double fec = static_cast<double>(p.stats().recovered_fec.load() - fec_startup) / frames;
    const auto fit = codecs::fit_tone(sim.output_after(5 * kSec));
    WARN("tone_through_burst_loss_and_jitter: loss " << loss_rate * 100 << " %, concealed " << concealed * 100
         << " %, recovered by FEC " << fec * 100 << " %, late " << p.stats().late.load() << ", target "
         << p.stats().target_delay_ms.load() << " ms, delay " << p.stats().current_delay_ms.load()
         << " ms, underruns after start-up " << p.stats().underruns.load() - underruns_startup << ", tone "
         << fit.frequency_hz << " Hz, SNR " << fit.snr_db << " dB");
    CHECK(loss_rate > 0.03);
    CHECK(fit.frequency_hz == Approx(1000.0).margin(2.0));
    CHECK(p.stats().underruns.load() == underruns_startup);
    CHECK(concealed < loss_rate);
    CHECK(fec > 0.0);
}

namespace {

/// Sender clock off by `ppm` against the consumer's: 10 simulated minutes of
/// a 1 kHz tone, rendered in 20 ms blocks on the consumer clock.
void run_drift(double ppm) {
    const auto payloads = encode_tone(110, 1000.0, codecs::Content::Music, 0, 128000);
    Playout p;
    StreamSpec s;
    const double sender_period_ns = 20e6 / (1.0 + ppm * 1e-6);  // consumer ns per sender packet
    const std::int64_t duration = 600 * kSec;
    const std::int64_t phase = 11 * kMs;
    std::vector<float> buf(960);
    std::size_t next_packet = 0;
    double worst_db = -200.0;
    std::size_t windows = 0;
    std::size_t bad_windows = 0;
    std::int64_t worst_at = 0;
    std::vector<float> last_second;
    for (std::int64_t now = phase; now < duration; now += 20 * kMs) {
        while (true) {
            const auto arrival = static_cast<std::int64_t>(std::llround(static_cast<double>(next_packet) * sender_period_ns)) +
                                 3 * kMs;
            if (arrival > now) break;
            push_bytes(p, stream_packet(s, payloads, next_packet), arrival);
            ++next_packet;
        }
        p.render(buf, now);
        if (now < 2 * kSec) continue;
        // The tone's frequency in consumer time is 1000 Hz * (1 + applied
        // correction): fit it per window on a 0.25 Hz grid around 1000 Hz.
        double best = 0.0;
        for (int k = -8; k <= 8; ++k) {
            best = std::min(best, codecs::sine_residual_db(buf, 1000.0 + 0.25 * k));
        }
        ++windows;
        if (best > -30.0) ++bad_windows;
        if (best > worst_db) {
            worst_db = best;
            worst_at = now;
        }
        if (now > duration - 1 * kSec) last_second.insert(last_second.end(), buf.begin(), buf.end());
    }
    const auto fit = codecs::fit_tone(last_second);
    WARN("drift " << ppm << " ppm: delay " << p.stats().current_delay_ms.load() << " ms, target "
         << p.stats().target_delay_ms.load() << " ms, correction " << p.stats().drift_ppm.load()
         << " ppm, accelerated " << p.stats().accelerated_samples.load() << " expanded "
         << p.stats().expanded_samples.load() << " samples, worst window residual " << worst_db << " dB at "
         << worst_at / kMs << " ms (" << bad_windows << " of " << windows << " above -30 dB), last second "
         << fit.frequency_hz << " Hz");
    CHECK(p.stats().underruns.load() == 0);
    CHECK(p.stats().overflows.load() == 0);
    CHECK(p.stats().concealed.load() == 0);
    CHECK(p.stats().late.load() == 0);
    CHECK(std::abs(p.stats().current_delay_ms.load() - p.stats().target_delay_ms.load()) <= 5);
    CHECK(std::abs(p.stats().drift_ppm.load() - ppm) <= 50);
    CHECK(worst_db <= -30.0);
}

}  // namespace

TEST_CASE("drift_plus_200ppm", "[playout][drift]") { run_drift(200.0); }

TEST_CASE("drift_minus_200ppm", "[playout][drift]") { run_drift(-200.0); }

TEST_CASE("dtx_gap_resumes_without_loss", "[playout]") {
    // A sender in DTX stops sending during silence: the sequence numbers run
    // on without a hole, the timestamp jumps by the silent time, and the first
    // packet after it carries the marker bit. Nothing is lost or late, and the
    // stream plays again at its target delay.
    const auto payloads = encode_tone(100);
    Playout p;
    StreamSpec s;
    std::vector<SimPacket> packets;
    constexpr std::size_t kBefore = 100;
    constexpr std::size_t kSilentFrames = 50;  // 1 s without packets
    for (std::size_t i = 0; i < 2 * kBefore; ++i) {
        const std::size_t frame = i < kBefore ? i : i + kSilentFrames;
        const auto seq = static_cast<std::uint16_t>(s.first_seq + i);
        const auto ts = static_cast<std::uint32_t>(s.first_ts + frame * s.samples);
        packets.push_back({static_cast<std::int64_t>(frame) * s.period_ns, i,
                           make_rtp(seq, ts, s.ssrc, payload_for(payloads, i), i == kBefore)});
    }
    Sim sim{p, packets};
    // Up to the last packet's arrival: after it the stream has simply ended.
    sim.run_until(static_cast<std::int64_t>(2 * kBefore + kSilentFrames - 1) * s.period_ns + 5 * kMs);
    INFO("target " << p.stats().target_delay_ms.load() << " current " << p.stats().current_delay_ms.load()
                   << " concealed " << p.stats().concealed.load());
    CHECK(p.stats().frames_decoded.load() >= 2 * kBefore - 2);  // the last one or two are still buffered
    CHECK(p.stats().lost.load() == 0);
    CHECK(p.stats().late.load() == 0);
    CHECK(p.stats().ssrc_changes.load() == 1);
    CHECK(std::abs(p.stats().current_delay_ms.load() - p.stats().target_delay_ms.load()) <= 5);
    // The tone is back after the pause.
    const auto resumed = sim.output_after(static_cast<std::int64_t>(kBefore + kSilentFrames) * s.period_ns + 300 * kMs);
    REQUIRE(resumed.size() > 24000);
    const auto fit = codecs::fit_tone(resumed.first(24000));
    CHECK(fit.frequency_hz == Approx(1000.0).margin(1.0));
    CHECK(fit.snr_db > 20.0);
}

TEST_CASE("clean_network_10ms_packets", "[playout]") {
    const auto payloads = encode_tone(200, 1000.0, codecs::Content::Speech, 10, 64000, 10);
    Playout p;
    StreamSpec s;
    s.samples = 480;
    s.period_ns = 10 * kMs;
    Sim sim{p, clean_arrivals(s, payloads, 800)};
    sim.block = 480;
    sim.phase_ns = 3 * kMs;
    sim.run_until(8 * kSec);
    INFO("target " << p.stats().target_delay_ms.load() << " current " << p.stats().current_delay_ms.load());
    CHECK(p.stats().underruns.load() == 0);
    CHECK(p.stats().concealed.load() == 0);
    CHECK(p.stats().lost.load() == 0);
    CHECK(p.stats().target_delay_ms.load() <= 15);
    CHECK(std::abs(p.stats().current_delay_ms.load() - p.stats().target_delay_ms.load()) <= 5);
    const auto fit = codecs::fit_tone(sim.output_after(1 * kSec).first(4 * 48000));
    CHECK(fit.frequency_hz == Approx(1000.0).margin(1.0));
    CHECK(fit.snr_db > 20.0);
}
