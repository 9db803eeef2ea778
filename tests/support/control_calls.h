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
// The WAV helpers the clip-using control tests share come with it
// (sine_wav.h).

#include <cstdint>
#include <string>

#include <catch2/catch.hpp>

#include "loa/control/v1/control.pb.h"
#include "loa/engine/clip_catalog.h"
#include "loa/engine/control_service.h"
#include "sine_wav.h"

namespace loa::test {

/// A root peer on the Unix socket: token-less requests are the local admin.
inline const loa::engine::PeerInfo kRootPeer{true, true, 0};

/// The request id every call() sends (its response echoes it).
inline constexpr std::uint64_t kCallRequestId = 1;

/// One call of an authorisation matrix judged by its answer and by what it
/// changed (`before` and `after`: snapshots of the state): allowed, it
/// succeeded and changed something; refused, it is PERMISSION_DENIED and
/// changed nothing.
inline void require_verdict(const loa::control::v1::Response& r, bool allowed, const std::string& before,
                            const std::string& after) {
    if (allowed) {
        REQUIRE(r.code() == loa::control::v1::OK);
        REQUIRE(after != before);
    } else {
        REQUIRE(r.code() == loa::control::v1::PERMISSION_DENIED);
        REQUIRE(after == before);
    }
}

template <class Derived>
class ControlCalls {
public:
    /// One request (from `peer`, by default a root peer on the Unix
    /// socket); the answer whatever its code.
    loa::control::v1::Response call(const std::string& method, const google::protobuf::Message& req,
                                    const std::string& token = {}, const loa::engine::PeerInfo& peer = kRootPeer) {
        loa::control::v1::Envelope env;
        env.set_request_id(kCallRequestId);
        env.set_method(method);
        env.set_token(token);
        env.set_payload(req.SerializeAsString());
        return self().control_service().handle(env, peer).response;
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

    /// Creates a zone named as its id (as the local admin).
    void zone(const std::string& id, loa::control::v1::ZoneKind kind, const std::string& parent) {
        loa::control::v1::CreateZoneRequest z;
        z.set_id(id);
        z.set_name(id);
        z.set_kind(kind);
        z.set_parent_id(parent);
        ok<loa::control::v1::Zone>("CreateZone", z);
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
