#include "loa/codecs/clip_reader.h"

#include <samplerate.h>
#include <sndfile.h>

#include <algorithm>
#include <string>
#include <system_error>
#include <vector>

#include "loa/codecs/audio_format.h"

namespace loa::codecs {

namespace {

/// Source frames decoded per libsndfile call.
constexpr std::size_t kChunkFrames = 4096;

std::string format_name(int format) {
    const int major = format & SF_FORMAT_TYPEMASK;
    const int sub = format & SF_FORMAT_SUBMASK;
    switch (major) {
        case SF_FORMAT_WAV: return "WAV";
        case SF_FORMAT_WAVEX: return "WAV";
        case SF_FORMAT_RF64: return "WAV";
        case SF_FORMAT_W64: return "W64";
        case SF_FORMAT_AIFF: return "AIFF";
        case SF_FORMAT_AU: return "AU";
        case SF_FORMAT_CAF: return "CAF";
        case SF_FORMAT_FLAC: return "FLAC";
        case SF_FORMAT_MPEG: return "MP3";
        case SF_FORMAT_OGG:
            switch (sub) {
                case SF_FORMAT_VORBIS: return "OGG/Vorbis";
                case SF_FORMAT_OPUS: return "OGG/Opus";
                case SF_FORMAT_FLAC: return "OGG/FLAC";
                default: return "OGG";
            }
        default: break;
    }
    SF_FORMAT_INFO fi{};
    fi.format = major;
    if (sf_command(nullptr, SFC_GET_FORMAT_INFO, &fi, sizeof(fi)) == 0 && fi.name != nullptr) {
        return fi.name;
    }
    return "unknown";
}

}  // namespace

struct ClipReader::Impl {
    std::filesystem::path path;
    ClipInfo info;
    SNDFILE* sf = nullptr;
    SRC_STATE* src = nullptr;  // null when the file is already at 48 kHz
    double ratio = 1.0;

    std::vector<float> interleaved;  // kChunkFrames * channels
    std::vector<float> mono;         // kChunkFrames
    std::size_t in_pos = 0;          // next unconsumed sample in `mono`
    std::size_t in_len = 0;          // valid samples in `mono`
    bool input_eof = false;          // libsndfile has nothing more
    bool output_done = false;        // resampler flushed; only EndOfStream from now on

    Impl() = default;
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;
    ~Impl() { close(); }

    void close() noexcept {
        if (src != nullptr) {
            src_delete(src);
            src = nullptr;
        }
        if (sf != nullptr) {
            sf_close(sf);
            sf = nullptr;
        }
    }

    [[noreturn]] void fail(Status status, const std::string& why) const {
        throw Error(status, "cannot open clip '" + path.string() + "': " + why);
    }

    void open() {
        SF_INFO sfi{};
        sf = sf_open(path.c_str(), SFM_READ, &sfi);
        if (sf == nullptr) {
            const int code = sf_error(nullptr);
            const std::string why = sf_strerror(nullptr);
            std::error_code ec;
            if (!std::filesystem::exists(path, ec)) {
                fail(Status::IoError, "no such file");
            }
            fail(code == SF_ERR_SYSTEM ? Status::IoError : Status::Unsupported, why);
        }
        if (sfi.samplerate <= 0 || sfi.channels <= 0) {
            fail(Status::Unsupported, "invalid sample rate or channel count in header");
        }
        info.source_rate = sfi.samplerate;
        info.source_channels = sfi.channels;
        info.source_frames = sfi.frames;
        info.format = format_name(sfi.format);

        interleaved.assign(kChunkFrames * static_cast<std::size_t>(sfi.channels), 0.0f);
        mono.assign(kChunkFrames, 0.0f);
        if (sfi.samplerate != kSampleRate) {
            int err = 0;
            src = src_new(SRC_SINC_MEDIUM_QUALITY, 1, &err);
            if (src == nullptr) {
                fail(Status::Internal, std::string("resampler: ") + src_strerror(err));
            }
            ratio = static_cast<double>(kSampleRate) / sfi.samplerate;
        }
        in_pos = in_len = 0;
        input_eof = output_done = false;
    }

    /// Decodes the next chunk into `mono`. Returns IoError on a decode error.
    Status fill() noexcept {
        const auto channels = static_cast<std::size_t>(info.source_channels);
        const sf_count_t got =
            sf_readf_float(sf, interleaved.data(), static_cast<sf_count_t>(kChunkFrames));
        in_pos = 0;
        in_len = got > 0 ? static_cast<std::size_t>(got) : 0;
        if (in_len == 0) {
            input_eof = true;
            return sf_error(sf) == SF_ERR_NO_ERROR ? Status::Ok : Status::IoError;
        }
        const float scale = 1.0f / static_cast<float>(channels);
        for (std::size_t f = 0; f < in_len; ++f) {
            float acc = 0.0f;
            for (std::size_t c = 0; c < channels; ++c) {
                acc += interleaved[f * channels + c];
            }
            mono[f] = acc * scale;
        }
        return Status::Ok;
    }

    Status read(std::span<float> out, std::size_t& got) noexcept {
        got = 0;
        if (sf == nullptr) {  // a failed reopen in rewind()
            std::fill(out.begin(), out.end(), 0.0f);
            return Status::IoError;
        }
        while (got < out.size() && !output_done) {
            if (in_pos == in_len && !input_eof) {
                const Status s = fill();
                if (s != Status::Ok) {
                    output_done = true;
                    std::fill(out.begin() + static_cast<std::ptrdiff_t>(got), out.end(), 0.0f);
                    return s;
                }
            }
            if (src == nullptr) {
                if (in_pos == in_len) {
                    output_done = input_eof;
                    continue;
                }
                const std::size_t n = std::min(out.size() - got, in_len - in_pos);
                std::copy_n(mono.begin() + static_cast<std::ptrdiff_t>(in_pos), n,
                            out.begin() + static_cast<std::ptrdiff_t>(got));
                in_pos += n;
                got += n;
                continue;
            }
            SRC_DATA d{};
            d.data_in = mono.data() + in_pos;
            d.input_frames = static_cast<long>(in_len - in_pos);
            d.data_out = out.data() + got;
            d.output_frames = static_cast<long>(std::min<std::size_t>(out.size() - got, 1u << 20));
            d.end_of_input = input_eof ? 1 : 0;
            d.src_ratio = ratio;
            const int err = src_process(src, &d);
            if (err != 0) {
                output_done = true;
                std::fill(out.begin() + static_cast<std::ptrdiff_t>(got), out.end(), 0.0f);
                return Status::Internal;
            }
            in_pos += static_cast<std::size_t>(d.input_frames_used);
            got += static_cast<std::size_t>(d.output_frames_gen);
            if (input_eof && d.output_frames_gen == 0 && in_pos == in_len) {
                output_done = true;
            } else if (!input_eof && d.input_frames_used == 0 && d.output_frames_gen == 0 &&
                       in_pos != in_len) {
                output_done = true;  // resampler made no progress; never spin
                std::fill(out.begin() + static_cast<std::ptrdiff_t>(got), out.end(), 0.0f);
                return Status::Internal;
            }
        }
        if (got < out.size()) {
            std::fill(out.begin() + static_cast<std::ptrdiff_t>(got), out.end(), 0.0f);
            return Status::EndOfStream;
        }
        return Status::Ok;
    }

    Status rewind() {
        if (sf == nullptr || sf_seek(sf, 0, SEEK_SET) < 0) {
            // Some decoders cannot seek; reopening starts over just the same.
            close();
            try {
                open();
            } catch (const Error& e) {
                return e.status();
            }
            return Status::Ok;
        }
        if (src != nullptr && src_reset(src) != 0) {
            return Status::Internal;
        }
        in_pos = in_len = 0;
        input_eof = output_done = false;
        return Status::Ok;
    }
};

ClipReader::ClipReader(const std::filesystem::path& path) : impl_(std::make_unique<Impl>()) {
    impl_->path = path;
    impl_->open();
}

ClipReader::~ClipReader() = default;

const ClipInfo& ClipReader::info() const noexcept { return impl_->info; }

const std::filesystem::path& ClipReader::path() const noexcept { return impl_->path; }

Status ClipReader::read(std::span<float> out, std::size_t& got) { return impl_->read(out, got); }

Status ClipReader::rewind() {
    try {
        return impl_->rewind();
    } catch (...) {
        return Status::Internal;
    }
}

}  // namespace loa::codecs
