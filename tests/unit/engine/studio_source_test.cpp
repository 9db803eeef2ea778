// A live studio as a programme source: packets queued by the ingest thread
// come out of the StudioSource as the studio's audio on the media clock; a
// silent studio gives way to its fallback, and the live feed takes over again
// when packets come back.

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "loa/codecs/audio_format.h"
#include "loa/codecs/dsp.h"
#include "loa/codecs/opus_encoder.h"
#include "loa/codecs/tone_analysis.h"
#include "loa/engine/clock.h"
#include "loa/engine/ingest.h"
#include "loa/engine/studio_source.h"
#include "loa/transport/rtp_packet.h"
#include "tone_rtp_stream.h"

using namespace loa;
using boost::asio::ip::make_address;
using boost::asio::ip::udp;

namespace {

constexpr std::int64_t kMs = 1'000'000;
constexpr std::size_t kFrame = 960;  // 20 ms
const udp::endpoint kStudio(make_address("127.0.0.1"), 40000);

// What loa-studio sends: a tone, Opus with in-band FEC, RTP.
class StudioStream : public test::ToneRtpStream {
public:
    StudioStream(std::uint32_t ssrc, double hz)
        : ToneRtpStream({ssrc, 65000, 4'000'000'000u, hz, 96, 10}) {}  // the sequence wraps during the tests
};

// One 20 ms media tick: the studio's packet (if any) arrives, then the source renders.
struct Rig {
    engine::ManualClock clock{1'000 * kMs};
    engine::StudioFeed feed{{"district-7", 0x5151u, std::nullopt}};
    std::unique_ptr<engine::StudioSource> source;
    std::vector<float> out;

    explicit Rig(std::unique_ptr<engine::Source> fallback = nullptr) {
        source = std::make_unique<engine::StudioSource>(feed, clock, kFrame, std::move(fallback));
    }

    void tick(StudioStream* stream) {
        if (stream != nullptr) {
            REQUIRE(feed.offer(stream->next(), kStudio, clock.now_ns()) == engine::StudioFeed::Offer::Accepted);
        }
        clock.advance(1 * kMs);  // the media tick comes a little after the arrival
        std::array<float, kFrame> frame{};
        CHECK(source->render(frame));
        out.insert(out.end(), frame.begin(), frame.end());
        clock.advance(19 * kMs);
    }

    std::span<const float> tail(std::size_t end_frame, std::size_t frames) const {
        REQUIRE(end_frame * kFrame <= out.size());
        return {out.data() + (end_frame - frames) * kFrame, frames * kFrame};
    }
};

}  // namespace

TEST_CASE("studio_packets_in_tone_out", "[studio_source]") {
    Rig rig;
    StudioStream studio(0x5151, 440.0);
    for (int i = 0; i < 150; ++i) rig.tick(&studio);  // 3 s
    CHECK(rig.source->live());
    const auto fit = codecs::fit_tone(rig.tail(150, 100));  // the last 2 s
    CHECK(fit.frequency_hz == Approx(440.0).margin(2.0));
    CHECK(fit.amplitude == Approx(0.5).margin(0.1));
    CHECK(fit.snr_db > 20.0);
    const auto& ps = rig.source->playout_stats();
    CHECK(ps.received.load() == 150);
    CHECK(ps.lost.load() == 0);
    CHECK(ps.underruns.load() == 0);
    // A clean, evenly paced feed plays with little delay.
    CHECK(ps.target_delay_ms.load() <= 60);
    const auto& sc = rig.source->studio_counters();
    CHECK(sc.resumed.load() == 1);
    CHECK(sc.went_silent.load() == 0);
    CHECK(rig.source->counters().frames.load() == 150);
}

TEST_CASE("studio_silent_plays_fallback_then_resumes_live", "[studio_source]") {
    // The fallback here is a 1 kHz tone (a looped clip in the engine).
    Rig rig(std::make_unique<engine::ToneSource>(1000.0, -6.0));
    StudioStream studio(0x5151, 440.0);

    // Before the studio's first packet: the fallback.
    for (int i = 0; i < 25; ++i) rig.tick(nullptr);
    CHECK_FALSE(rig.source->live());
    CHECK(codecs::fit_tone(rig.tail(25, 20)).frequency_hz == Approx(1000.0).margin(2.0));

    // Live for 2 s.
    for (int i = 0; i < 100; ++i) rig.tick(&studio);
    CHECK(rig.source->live());
    CHECK(codecs::fit_tone(rig.tail(125, 50)).frequency_hz == Approx(440.0).margin(2.0));

    // The studio drops out for 2 s: within about half a second (plus what
    // was buffered) the fallback plays.
    for (int i = 0; i < 100; ++i) {
        rig.tick(nullptr);
        studio.skip(1);
    }
    CHECK_FALSE(rig.source->live());
    CHECK(rig.source->studio_counters().went_silent.load() == 1);
    const auto fallback = codecs::fit_tone(rig.tail(225, 50));  // the last second of the gap
    CHECK(fallback.frequency_hz == Approx(1000.0).margin(2.0));
    CHECK(fallback.snr_db > 20.0);
    // How long the gap took to hand over: frames before the fallback was steady.
    std::size_t handover = 0;
    for (std::size_t f = 125; f < 225; ++f) {
        if (codecs::fit_tone(rig.tail(f + 5, 5)).frequency_hz > 900.0) {
            handover = f - 125;
            break;
        }
    }
    INFO("fallback steady after " << handover * 20 << " ms of silence");
    CHECK(handover > 0);
    CHECK(handover <= 50);  // 1 s at most

    // Packets come back (same stream, the studio's clock moved on): live again.
    for (int i = 0; i < 100; ++i) rig.tick(&studio);
    CHECK(rig.source->live());
    CHECK(rig.source->studio_counters().resumed.load() == 2);
    const auto back = codecs::fit_tone(rig.tail(325, 50));
    CHECK(back.frequency_hz == Approx(440.0).margin(2.0));
    CHECK(back.snr_db > 20.0);
    CHECK(rig.source->studio_counters().fallback_frames.load() >= 25 + 50);
}

TEST_CASE("studio_silent_without_fallback_is_silence", "[studio_source]") {
    Rig rig;
    StudioStream studio(0x5151, 440.0);
    for (int i = 0; i < 50; ++i) rig.tick(&studio);
    for (int i = 0; i < 60; ++i) {
        rig.tick(nullptr);
        studio.skip(1);
    }
    CHECK_FALSE(rig.source->live());
    const auto gap = rig.tail(110, 20);
    CHECK(codecs::rms(gap) == 0.0);
    // The mix never waits: every tick rendered a frame.
    CHECK(rig.source->counters().frames.load() == 110);
}
