#pragma once
// Test helper: calls into a ControlService as the local administrator (a
// root peer on the Unix socket) or with a token, without a socket. A fixture
// mixes it in and says where its service is:
//
//     struct Fixture : loa::test::ControlCalls<Fixture> {
//         loa::test::TempDir dir{"..."};                 // for upload_sine
//         loa::engine::ControlService& control_service();
//     };
//
// Also the WAV helpers the clip-using control tests share.

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "loa/codecs/wav_writer.h"
#include "loa/control/v1/control.pb.h"
#include "loa/engine/clip_catalog.h"
#include "loa/engine/control_service.h"

namespace loa::test {

/// A root peer on the Unix socket: token-less requests are the local admin.
inline const loa::engine::PeerInfo kRootPeer{true, true, 0};

/// Writes `seconds` of a sine at `hz` as a 48 kHz mono 16-bit WAV.
inline void write_sine(const std::filesystem::path& path, double hz, double seconds, double amplitude = 0.5) {
    loa::codecs::WavWriter w(path, loa::codecs::WavSampleFormat::Pcm16, 48000, 1);
    std::vector<float> buf(static_cast<std::size_t>(seconds * 48000));
    for (std::size_t i = 0; i < buf.size(); ++i) {
        buf[i] = static_cast<float>(amplitude * std::sin(2.0 * M_PI * hz * static_cast<double>(i) / 48000.0));
    }
    REQUIRE(w.write(buf) == loa::codecs::Status::Ok);
    REQUIRE(w.close() == loa::codecs::Status::Ok);
}

inline std::string file_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

template <class Derived>
class ControlCalls {
public:
    /// One request; the answer whatever its code.
    loa::control::v1::Response call(const std::string& method, const google::protobuf::Message& req,
                                    const std::string& token = {}) {
        loa::control::v1::Envelope env;
        env.set_request_id(1);
        env.set_method(method);
        env.set_token(token);
        env.set_payload(req.SerializeAsString());
        return self().control_service().handle(env, kRootPeer).response;
    }

    /// One request that must succeed; its answer parsed as `Resp`.
    template <class Resp>
    Resp ok(const std::string& method, const google::protobuf::Message& req, const std::string& token = {}) {
        const auto r = call(method, req, token);
        INFO(method << ": " << loa::control::v1::StatusCode_Name(r.code()) << ": " << r.message());
        REQUIRE(r.code() == loa::control::v1::OK);
        Resp out;
        REQUIRE(out.ParseFromString(r.payload()));
        return out;
    }

    /// Creates an operator (as the local admin); returns its token.
    std::string make_operator(const std::string& name, loa::control::v1::Role role, const std::string& zone,
                              loa::control::v1::Level level) {
        loa::control::v1::CreateOperatorRequest o;
        o.set_name(name);
        o.set_role(role);
        o.set_zone_id(zone);
        o.set_max_level(level);
        return ok<loa::control::v1::CreateOperatorResponse>("CreateOperator", o).token();
    }

    /// Uploads a sine WAV through the clip calls (global unless `zone`);
    /// returns the clip's id.
    std::uint64_t upload_sine(double hz, double seconds, const std::string& zone = {}) {
        namespace pb = loa::control::v1;
        const auto path = self().dir / ("sine-" + std::to_string(static_cast<int>(hz)) + "-" + zone + ".wav");
        write_sine(path, hz, seconds);
        const auto bytes = file_bytes(path);
        loa::engine::Sha256 h;
        h.update({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
        pb::BeginClipUploadRequest begin;
        begin.set_name("sine");
        begin.set_total_size(bytes.size());
        begin.set_sha256(h.hex_final());
        begin.set_zone_id(zone);
        const auto began = ok<pb::BeginClipUploadResponse>("BeginClipUpload", begin);
        pb::UploadClipChunkRequest chunk;
        chunk.set_upload_id(began.upload_id());
        chunk.set_offset(0);
        chunk.set_data(bytes);
        ok<pb::UploadClipChunkResponse>("UploadClipChunk", chunk);
        pb::FinishClipUploadRequest finish;
        finish.set_upload_id(began.upload_id());
        return ok<pb::Clip>("FinishClipUpload", finish).id();
    }

private:
    Derived& self() { return static_cast<Derived&>(*this); }
};

}  // namespace loa::test
