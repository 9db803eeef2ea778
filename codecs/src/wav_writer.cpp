#include "loa/codecs/wav_writer.h"

#include <sndfile.h>

#include <string>
#include <utility>

namespace loa::codecs {

struct WavWriter::Impl {
    SNDFILE* file = nullptr;
    std::filesystem::path path;
    int channels = 1;
    std::int64_t frames = 0;

    ~Impl() {
        if (file != nullptr) sf_close(file);
    }
};

WavWriter::WavWriter(const std::filesystem::path& path, WavSampleFormat format, int sample_rate,
                     int channels)
    : impl_(std::make_unique<Impl>()) {
    if (sample_rate <= 0 || channels <= 0) {
        throw Error(Status::BadArgument, "wav writer: invalid sample rate or channel count for " +
                                             path.string());
    }
    SF_INFO info{};
    info.samplerate = sample_rate;
    info.channels = channels;
    info.format = SF_FORMAT_WAV |
                  (format == WavSampleFormat::Pcm16 ? SF_FORMAT_PCM_16 : SF_FORMAT_FLOAT);
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    if (f == nullptr) {
        throw Error(Status::IoError,
                    "cannot create WAV file " + path.string() + ": " + sf_strerror(nullptr));
    }
    if (format == WavSampleFormat::Pcm16) {
        // Out-of-range floats clip instead of wrapping around.
        sf_command(f, SFC_SET_CLIPPING, nullptr, SF_TRUE);
    }
    impl_->file = f;
    impl_->path = path;
    impl_->channels = channels;
}

WavWriter::~WavWriter() = default;
WavWriter::WavWriter(WavWriter&&) noexcept = default;
WavWriter& WavWriter::operator=(WavWriter&&) noexcept = default;

Status WavWriter::write(std::span<const float> samples) noexcept {
    if (!impl_ || impl_->file == nullptr) return Status::BadArgument;
    const auto ch = static_cast<std::size_t>(impl_->channels);
    if (samples.size() % ch != 0) return Status::BadArgument;
    if (samples.empty()) return Status::Ok;
    const auto frames = static_cast<sf_count_t>(samples.size() / ch);
    const sf_count_t n = sf_writef_float(impl_->file, samples.data(), frames);
    if (n > 0) impl_->frames += n;
    return n == frames ? Status::Ok : Status::IoError;
}

void WavWriter::flush() noexcept {
    if (impl_ && impl_->file != nullptr) {
        sf_command(impl_->file, SFC_UPDATE_HEADER_NOW, nullptr, 0);
        sf_write_sync(impl_->file);
    }
}

Status WavWriter::close() noexcept {
    if (!impl_ || impl_->file == nullptr) return Status::Ok;
    const int rc = sf_close(impl_->file);
    impl_->file = nullptr;
    return rc == 0 ? Status::Ok : Status::IoError;
}

bool WavWriter::is_open() const noexcept { return impl_ && impl_->file != nullptr; }

std::int64_t WavWriter::frames_written() const noexcept { return impl_ ? impl_->frames : 0; }

const std::filesystem::path& WavWriter::path() const noexcept {
    static const std::filesystem::path empty;
    return impl_ ? impl_->path : empty;
}

}  // namespace loa::codecs
