#pragma once
// Shared by the clip tests (clips_test, clips_programme_test): a control
// service that can be torn down and built again on the same database, the
// chunked upload, and a snapshot of the catalogue.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "control_calls.h"
#include "loa/codecs/wav_writer.h"
#include "loa/engine/clip_catalog.h"
#include "loa/engine/clock.h"
#include "loa/engine/control_service.h"
#include "loa/engine/store.h"
#include "temp_dir.h"

namespace loa::test {

/// A 1 kHz sine of `amplitude` for `seconds` at `rate` Hz, `channels`
/// channels, written to `path`; returns the file's bytes.
inline std::string sine_wav(const std::filesystem::path& path, double seconds, double amplitude, int rate = 48000,
                            int channels = 1) {
    {
        loa::codecs::WavWriter w(path, loa::codecs::WavSampleFormat::Pcm16, rate, channels);
        const auto frames = static_cast<std::size_t>(seconds * rate);
        std::vector<float> buf(frames * static_cast<std::size_t>(channels));
        for (std::size_t i = 0; i < frames; ++i) {
            const auto v = static_cast<float>(amplitude * std::sin(2.0 * M_PI * 1000.0 * static_cast<double>(i) / rate));
            for (int c = 0; c < channels; ++c) buf[i * static_cast<std::size_t>(channels) + static_cast<std::size_t>(c)] = v;
        }
        REQUIRE(w.write(buf) == loa::codecs::Status::Ok);
        REQUIRE(w.close() == loa::codecs::Status::Ok);
    }
    return file_bytes(path);
}

inline std::string sha_of(const std::string& bytes) {
    loa::engine::Sha256 h;
    h.update({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
    return h.hex_final();
}

struct ClipsFixture : ControlCalls<ClipsFixture> {
    TempDir dir{"loa-clips"};
    std::unique_ptr<loa::engine::Store> store_ptr = std::make_unique<loa::engine::Store>(dir / "state.db");
    loa::engine::Store& store = *store_ptr;
    loa::engine::ManualClock clock{0, 1'700'000'000'000'000'000};
    std::unique_ptr<loa::engine::ControlService> service_ptr =
        std::make_unique<loa::engine::ControlService>(store, clock, 1000);
    loa::engine::ControlService& service = *service_ptr;

    loa::engine::ControlService& control_service() { return *service_ptr; }

    /// Begin + chunks of `chunk` bytes + finish; returns the finish response.
    loa::control::v1::Response upload(const std::string& bytes, const std::string& name, const std::string& token = {},
                                      const std::string& zone = {}, std::string sha = {},
                                      std::size_t chunk = 256 * 1024) {
        namespace pb = loa::control::v1;
        pb::BeginClipUploadRequest b;
        b.set_name(name);
        b.set_total_size(bytes.size());
        b.set_sha256(sha.empty() ? sha_of(bytes) : sha);
        b.set_zone_id(zone);
        const auto br = call("BeginClipUpload", b, token);
        if (br.code() != pb::OK) return br;
        pb::BeginClipUploadResponse began;
        REQUIRE(began.ParseFromString(br.payload()));
        for (std::size_t off = 0; off < bytes.size(); off += chunk) {
            pb::UploadClipChunkRequest c;
            c.set_upload_id(began.upload_id());
            c.set_offset(off);
            c.set_data(bytes.substr(off, chunk));
            const auto cr = call("UploadClipChunk", c, token);
            if (cr.code() != pb::OK) return cr;
        }
        pb::FinishClipUploadRequest f;
        f.set_upload_id(began.upload_id());
        return call("FinishClipUpload", f, token);
    }

    std::vector<std::string> clip_dir() const {
        std::vector<std::string> out;
        for (const auto& e : std::filesystem::directory_iterator(dir / "clips")) out.push_back(e.path().filename());
        std::sort(out.begin(), out.end());
        return out;
    }

    std::string snapshot() const {
        std::ostringstream os;
        for (const auto& c : store.clips()) os << "K " << c.id << "|" << c.zone_id << "|" << c.sha256 << "\n";
        for (const auto& f : clip_dir()) os << "F " << f << "\n";
        os << "E " << store.last_event_seq();
        return os.str();
    }
};

}  // namespace loa::test
