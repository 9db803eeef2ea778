#include "loa/codecs/opus_decoder.h"

#include <opus/opus.h>

#include <algorithm>
#include <string>

#include "loa/codecs/audio_format.h"

namespace loa::codecs {

namespace {

/// libopus accepts concealment and FEC lengths in multiples of 2.5 ms.
constexpr std::size_t kQuantum = kSampleRate / 400;
/// Longest duration libopus decodes in one call (120 ms).
constexpr std::size_t kMaxDecodeSamples = static_cast<std::size_t>(kSampleRate) * 120 / 1000;

Status from_opus_error(int rc) noexcept {
    switch (rc) {
        case OPUS_BAD_ARG: return Status::BadArgument;
        case OPUS_BUFFER_TOO_SMALL: return Status::BufferTooSmall;
        case OPUS_INVALID_PACKET: return Status::CorruptPacket;
        default: return Status::Internal;
    }
}

bool valid_length(std::size_t n) noexcept { return n > 0 && n % kQuantum == 0 && n <= kMaxDecodeSamples; }

}  // namespace

struct OpusDecoder::Impl {
    ::OpusDecoder* dec = nullptr;

    Impl() = default;
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;
    ~Impl() {
        if (dec != nullptr) {
            opus_decoder_destroy(dec);
        }
    }
};

OpusDecoder::OpusDecoder() : impl_(std::make_unique<Impl>()) {
    int err = OPUS_OK;
    impl_->dec = opus_decoder_create(kSampleRate, kChannels, &err);
    if (err != OPUS_OK || impl_->dec == nullptr) {
        throw Error(Status::Internal, std::string("opus decoder: create failed: ") + opus_strerror(err));
    }
}

OpusDecoder::~OpusDecoder() = default;
OpusDecoder::OpusDecoder(OpusDecoder&&) noexcept = default;
OpusDecoder& OpusDecoder::operator=(OpusDecoder&&) noexcept = default;

Status OpusDecoder::decode(std::span<const std::uint8_t> packet, std::span<float> out,
                           std::size_t& samples) noexcept {
    samples = 0;
    if (!impl_) {
        return Status::Internal;
    }
    if (packet.empty() || packet.size() > kMaxOpusPacketBytes) {
        return Status::CorruptPacket;
    }
    const std::size_t need = packet_samples(packet);
    if (need == 0) {
        return Status::CorruptPacket;
    }
    if (out.size() < need) {
        return Status::BufferTooSmall;
    }
    const int n = opus_decode_float(impl_->dec, packet.data(), static_cast<opus_int32>(packet.size()),
                                    out.data(), static_cast<int>(need), 0);
    if (n < 0) {
        std::fill_n(out.begin(), need, 0.0f);
        return from_opus_error(n);
    }
    samples = static_cast<std::size_t>(n);
    return Status::Ok;
}

Status OpusDecoder::decode_fec(std::span<const std::uint8_t> next_packet,
                               std::span<float> out) noexcept {
    if (!impl_) {
        return Status::Internal;
    }
    if (!valid_length(out.size())) {
        return Status::BadArgument;
    }
    if (next_packet.empty() || next_packet.size() > kMaxOpusPacketBytes ||
        packet_samples(next_packet) == 0) {
        std::fill(out.begin(), out.end(), 0.0f);
        return Status::CorruptPacket;
    }
    const int n = opus_decode_float(impl_->dec, next_packet.data(),
                                    static_cast<opus_int32>(next_packet.size()), out.data(),
                                    static_cast<int>(out.size()), 1);
    if (n < 0) {
        std::fill(out.begin(), out.end(), 0.0f);
        return from_opus_error(n);
    }
    if (static_cast<std::size_t>(n) < out.size()) {
        std::fill(out.begin() + n, out.end(), 0.0f);
    }
    return Status::Ok;
}

Status OpusDecoder::conceal(std::span<float> out) noexcept {
    if (!impl_) {
        return Status::Internal;
    }
    if (!valid_length(out.size())) {
        return Status::BadArgument;
    }
    const int n = opus_decode_float(impl_->dec, nullptr, 0, out.data(), static_cast<int>(out.size()), 0);
    if (n < 0) {
        std::fill(out.begin(), out.end(), 0.0f);
        return from_opus_error(n);
    }
    if (static_cast<std::size_t>(n) < out.size()) {
        std::fill(out.begin() + n, out.end(), 0.0f);
    }
    return Status::Ok;
}

std::size_t OpusDecoder::packet_samples(std::span<const std::uint8_t> packet) noexcept {
    if (packet.empty() || packet.size() > kMaxOpusPacketBytes) {
        return 0;
    }
    const unsigned char* frames[48] = {};
    opus_int16 sizes[48] = {};
    if (opus_packet_parse(packet.data(), static_cast<opus_int32>(packet.size()), nullptr, frames,
                          sizes, nullptr) <= 0) {
        return 0;
    }
    const int n = opus_packet_get_nb_samples(packet.data(), static_cast<opus_int32>(packet.size()),
                                             kSampleRate);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
}

// libopus 1.3.1 has no opus_packet_has_lbrr(), so the flag is read here.
// RFC 6716 4.2.3-4.2.4: a SILK or hybrid frame starts with one VAD flag per
// 20 ms SILK frame and then the LBRR flag, per channel (mid, then side). These
// header bits are coded with probability 1/2 at the very start of the range
// coder, so they are the most significant bits of the frame's first byte.
bool OpusDecoder::packet_has_fec(std::span<const std::uint8_t> packet) noexcept {
    if (packet.empty() || packet.size() > kMaxOpusPacketBytes) {
        return false;
    }
    const std::uint8_t toc = packet[0];
    const unsigned config = static_cast<unsigned>(toc >> 3);
    if (config >= 16) {
        return false;  // CELT-only: no SILK layer, no LBRR
    }
    const unsigned char* frames[48] = {};
    opus_int16 sizes[48] = {};
    const int count = opus_packet_parse(packet.data(), static_cast<opus_int32>(packet.size()), nullptr,
                                        frames, sizes, nullptr);
    if (count <= 0 || sizes[0] <= 0 || frames[0] == nullptr) {
        return false;
    }
    const int frame_samples_48k = opus_packet_get_samples_per_frame(packet.data(), kSampleRate);
    const int silk_frames = frame_samples_48k > 960 ? frame_samples_48k / 960 : 1;
    const bool stereo = (toc & 0x04u) != 0;
    const unsigned first = frames[0][0];
    bool lbrr = ((first >> (7 - silk_frames)) & 1u) != 0;
    if (stereo) {
        lbrr = lbrr || ((first >> (6 - 2 * silk_frames)) & 1u) != 0;
    }
    return lbrr;
}

void OpusDecoder::reset() noexcept {
    if (impl_) {
        opus_decoder_ctl(impl_->dec, OPUS_RESET_STATE);
    }
}

}  // namespace loa::codecs
