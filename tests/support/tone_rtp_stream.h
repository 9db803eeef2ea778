#pragma once
// Test helper: Opus packets of a continuous tone wrapped in RTP, as loa-studio
// or the engine sends them (speech, in-band FEC, 20 ms frames).

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "loa/codecs/audio_format.h"
#include "loa/codecs/dsp.h"
#include "loa/codecs/opus_encoder.h"
#include "loa/transport/rtp_packet.h"

namespace loa::test {

struct ToneRtpParams {
    std::uint32_t ssrc = 0;
    std::uint16_t first_seq = 0;
    std::uint32_t first_timestamp = 0;
    double hz = 1000.0;
    std::uint8_t payload_type = 96;
    int expected_loss_pct = 10;  // the encoder's FEC hint
};

class ToneRtpStream {
public:
    static constexpr std::size_t kFrame = 960;  // 20 ms

    explicit ToneRtpStream(const ToneRtpParams& p)
        : ssrc_(p.ssrc),
          payload_type_(p.payload_type),
          seq_(p.first_seq),
          ts_(p.first_timestamp),
          tone_(p.hz, 0.5),
          encoder_(config(p.expected_loss_pct)) {}

    std::vector<std::uint8_t> next(bool marker = false) {
        std::array<float, kFrame> pcm{};
        tone_.render(pcm);
        std::array<std::uint8_t, codecs::kMaxOpusPacketBytes> opus{};
        std::size_t opus_len = 0;
        REQUIRE(encoder_.encode(pcm, opus, opus_len) == codecs::Status::Ok);
        std::vector<std::uint8_t> pkt(transport::kMaxRtpPacket);
        transport::RtpHeaderFields h;
        h.marker = marker;
        h.payload_type = payload_type_;
        h.sequence = seq_++;
        h.timestamp = ts_;
        h.ssrc = ssrc_;
        ts_ += static_cast<std::uint32_t>(kFrame);
        std::size_t n = 0;
        REQUIRE(transport::write_rtp(pkt, h, {}, std::span<const std::uint8_t>(opus.data(), opus_len), n) ==
                transport::Status::Ok);
        pkt.resize(n);
        return pkt;
    }

    /// The sender's clock moves on without sending (a dropped connection).
    void skip(int frames) {
        std::array<float, kFrame> pcm{};
        for (int i = 0; i < frames; ++i) tone_.render(pcm);
        ts_ += static_cast<std::uint32_t>(static_cast<std::size_t>(frames) * kFrame);
        seq_ = static_cast<std::uint16_t>(seq_ + frames);
    }

private:
    static codecs::OpusEncoderConfig config(int expected_loss_pct) {
        codecs::OpusEncoderConfig c;
        c.bitrate_bps = 64000;
        c.content = codecs::Content::Speech;
        c.inband_fec = true;
        c.expected_loss_pct = expected_loss_pct;
        return c;
    }
    std::uint32_t ssrc_;
    std::uint8_t payload_type_;
    std::uint16_t seq_;
    std::uint32_t ts_;
    codecs::ToneGenerator tone_;
    codecs::OpusEncoder encoder_;
};

}  // namespace loa::test
