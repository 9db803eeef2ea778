#include "loa/codecs/opus_encoder.h"

#include <opus/opus.h>

#include <algorithm>
#include <string>

#include "loa/codecs/audio_format.h"

namespace loa::codecs {

namespace {

constexpr int kMinBitrate = 6000;
constexpr int kMaxBitrate = 510000;

bool valid_bitrate(int bps) noexcept { return bps >= kMinBitrate && bps <= kMaxBitrate; }

void check(bool ok, const std::string& what) {
    if (!ok) {
        throw Error(Status::BadArgument, "opus encoder: " + what);
    }
}

}  // namespace

struct OpusEncoder::Impl {
    ::OpusEncoder* enc = nullptr;
    std::size_t frame_size = 0;

    Impl() = default;
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;
    ~Impl() {
        if (enc != nullptr) {
            opus_encoder_destroy(enc);
        }
    }

    int ctl(int request, opus_int32 value) noexcept { return opus_encoder_ctl(enc, request, value); }
};

OpusEncoder::OpusEncoder(const OpusEncoderConfig& config) : config_(config) {
    check(is_valid_ptime_ms(config.ptime_ms),
          "ptime " + std::to_string(config.ptime_ms) + " ms is not one of 10, 20, 40, 60");
    check(valid_bitrate(config.bitrate_bps),
          "bitrate " + std::to_string(config.bitrate_bps) + " bps is outside " +
              std::to_string(kMinBitrate) + ".." + std::to_string(kMaxBitrate));
    check(config.complexity >= 0 && config.complexity <= 10,
          "complexity " + std::to_string(config.complexity) + " is outside 0..10");
    check(config.expected_loss_pct >= 0 && config.expected_loss_pct <= 100,
          "expected loss " + std::to_string(config.expected_loss_pct) + "% is outside 0..100");

    const bool speech = config.content == Content::Speech;
    if (!speech) {
        config_.inband_fec = false;
    }

    impl_ = std::make_unique<Impl>();
    impl_->frame_size = frame_samples(config.ptime_ms);
    int err = OPUS_OK;
    impl_->enc = opus_encoder_create(kSampleRate, kChannels,
                                     speech ? OPUS_APPLICATION_VOIP : OPUS_APPLICATION_AUDIO, &err);
    if (err != OPUS_OK || impl_->enc == nullptr) {
        throw Error(Status::Internal, std::string("opus encoder: create failed: ") + opus_strerror(err));
    }
    const struct {
        int request;
        opus_int32 value;
    } settings[] = {
        {OPUS_SET_BITRATE_REQUEST, config_.bitrate_bps},
        {OPUS_SET_COMPLEXITY_REQUEST, config_.complexity},
        {OPUS_SET_SIGNAL_REQUEST, speech ? OPUS_SIGNAL_VOICE : OPUS_SIGNAL_MUSIC},
        {OPUS_SET_INBAND_FEC_REQUEST, config_.inband_fec ? 1 : 0},
        {OPUS_SET_PACKET_LOSS_PERC_REQUEST, config_.expected_loss_pct},
        {OPUS_SET_VBR_REQUEST, 1},
        // Hybrid mode exists only for 10/20 ms frames, so a 40/60 ms hybrid
        // packet is several 20 ms frames whose in-band FEC covers only the last
        // 20 ms of the previous packet. Capping speech at wideband keeps SILK's
        // native 40/60 ms frames, whose LBRR covers the whole lost packet.
        {OPUS_SET_MAX_BANDWIDTH_REQUEST,
         speech && config_.inband_fec && config_.ptime_ms > 20 ? OPUS_BANDWIDTH_WIDEBAND
                                                               : OPUS_BANDWIDTH_FULLBAND},
    };
    for (const auto& s : settings) {
        const int rc = impl_->ctl(s.request, s.value);
        if (rc != OPUS_OK) {
            throw Error(Status::Internal, std::string("opus encoder: ctl ") + std::to_string(s.request) +
                                              " failed: " + opus_strerror(rc));
        }
    }
}

OpusEncoder::~OpusEncoder() = default;
OpusEncoder::OpusEncoder(OpusEncoder&&) noexcept = default;
OpusEncoder& OpusEncoder::operator=(OpusEncoder&&) noexcept = default;

std::size_t OpusEncoder::frame_size() const noexcept { return impl_ ? impl_->frame_size : 0; }

Status OpusEncoder::encode(std::span<const float> pcm, std::span<std::uint8_t> out,
                           std::size_t& written) noexcept {
    written = 0;
    if (!impl_) {
        return Status::Internal;
    }
    if (pcm.size() != impl_->frame_size) {
        return Status::BadArgument;
    }
    if (out.empty()) {
        return Status::BufferTooSmall;
    }
    const auto max_bytes = static_cast<opus_int32>(std::min(out.size(), kMaxOpusPacketBytes));
    const opus_int32 n = opus_encode_float(impl_->enc, pcm.data(), static_cast<int>(pcm.size()),
                                           out.data(), max_bytes);
    if (n < 0) {
        return n == OPUS_BUFFER_TOO_SMALL ? Status::BufferTooSmall
               : n == OPUS_BAD_ARG        ? Status::BadArgument
                                          : Status::Internal;
    }
    written = static_cast<std::size_t>(n);
    return Status::Ok;
}

Status OpusEncoder::set_expected_loss(int pct) noexcept {
    if (!impl_) {
        return Status::Internal;
    }
    if (pct < 0 || pct > 100) {
        return Status::BadArgument;
    }
    if (impl_->ctl(OPUS_SET_PACKET_LOSS_PERC_REQUEST, pct) != OPUS_OK) {
        return Status::Internal;
    }
    config_.expected_loss_pct = pct;
    return Status::Ok;
}

Status OpusEncoder::set_bitrate(int bps) noexcept {
    if (!impl_) {
        return Status::Internal;
    }
    if (!valid_bitrate(bps)) {
        return Status::BadArgument;
    }
    if (impl_->ctl(OPUS_SET_BITRATE_REQUEST, bps) != OPUS_OK) {
        return Status::Internal;
    }
    config_.bitrate_bps = bps;
    return Status::Ok;
}

}  // namespace loa::codecs
