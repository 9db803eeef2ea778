#include "loa/codecs/resampler.h"

#include <samplerate.h>

#include <string>

namespace loa::codecs {

namespace {

int converter_type(ResamplerQuality q) noexcept {
    switch (q) {
        case ResamplerQuality::SincBest: return SRC_SINC_BEST_QUALITY;
        case ResamplerQuality::SincMedium: return SRC_SINC_MEDIUM_QUALITY;
        case ResamplerQuality::Linear: return SRC_LINEAR;
        case ResamplerQuality::SincFastest: break;
    }
    return SRC_SINC_FASTEST;
}

}  // namespace

struct Resampler::Impl {
    SRC_STATE* state = nullptr;
    bool fresh = true;  // no process() since creation or reset()

    Impl() = default;
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;
    ~Impl() {
        if (state != nullptr) src_delete(state);
    }
};

Resampler::Resampler(ResamplerQuality quality) : impl_(std::make_unique<Impl>()) {
    int err = 0;
    impl_->state = src_new(converter_type(quality), 1, &err);
    if (impl_->state == nullptr) {
        throw Error(Status::Internal, std::string("libsamplerate: ") + src_strerror(err));
    }
}

Resampler::~Resampler() = default;
Resampler::Resampler(Resampler&&) noexcept = default;
Resampler& Resampler::operator=(Resampler&&) noexcept = default;

Status Resampler::process(std::span<const float> in, std::span<float> out, double ratio,
                          std::size_t& used, std::size_t& generated) noexcept {
    used = 0;
    generated = 0;
    if (!impl_ || impl_->state == nullptr) return Status::Internal;
    if (!(ratio >= kMinRatio && ratio <= kMaxRatio)) return Status::BadArgument;
    if (out.empty()) return Status::Ok;
    if (impl_->fresh) {
        // Start at the requested ratio instead of gliding from libsamplerate's default.
        if (src_set_ratio(impl_->state, ratio) != 0) return Status::Internal;
        impl_->fresh = false;
    }
    SRC_DATA d{};
    d.data_in = in.data();
    d.data_out = out.data();
    d.input_frames = static_cast<long>(in.size());
    d.output_frames = static_cast<long>(out.size());
    d.end_of_input = 0;
    d.src_ratio = ratio;
    if (src_process(impl_->state, &d) != 0) return Status::Internal;
    used = static_cast<std::size_t>(d.input_frames_used);
    generated = static_cast<std::size_t>(d.output_frames_gen);
    last_ratio_ = ratio;
    return Status::Ok;
}

void Resampler::reset() noexcept {
    if (!impl_ || impl_->state == nullptr) return;
    src_reset(impl_->state);
    impl_->fresh = true;
    last_ratio_ = 1.0;
}

}  // namespace loa::codecs
