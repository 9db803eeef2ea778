// ControlService: the clip calls (BeginClipUpload, UploadClipChunk,
// FinishClipUpload, ListClips, DeleteClip). Files and uploads are the
// ClipCatalog's; the catalogue rows the Store's.
//
// Scope: a clip belongs to a zone (the caller's own by default, or one inside
// its subtree) or, when uploaded by a whole-network caller without a zone, is
// global. Everyone sees global clips and the clips of their subtree;
// uploading and deleting need role operator. A clip whose `uses` count is not
// 0 (set by the programmes/schedules that play it) cannot be deleted.
#include <algorithm>
#include <cstdio>
#include <set>

#include "loa/engine/control_service.h"

#include "control_util.h"

namespace loa::engine {

namespace pb = loa::control::v1;

namespace {

using control_util::fail;
using control_util::parse;
using control_util::scope_name;

void require_operator(const Caller& c, const char* action) { control_util::require_role(c, Role::Operator, action); }
std::string who(const Caller& c) { return control_util::caller_name(c); }
/// Who may continue an upload: the same operator (or the local admin).
std::string owner_of(const Caller& c) { return c.is_local_admin() ? std::string("\n local admin") : c.operator_name; }

pb::Clip clip_to_proto(const ClipRow& c) {
    pb::Clip out;
    out.set_id(static_cast<std::uint64_t>(c.id));
    out.set_name(c.name);
    out.set_zone_id(c.zone_id);
    out.set_sha256(c.sha256);
    out.set_size_bytes(static_cast<std::uint64_t>(c.size_bytes));
    out.set_duration_ms(c.duration_ms);
    out.set_sample_rate(static_cast<std::uint32_t>(c.sample_rate));
    out.set_channels(static_cast<std::uint32_t>(c.channels));
    out.set_format(c.format);
    out.set_loudness_lufs(c.loudness_lufs);
    out.set_created_unix_ms(c.created_unix_ms);
    out.set_created_by(c.created_by);
    out.set_uses(static_cast<std::uint32_t>(std::max<std::int64_t>(0, c.uses)));
    return out;
}

}  // namespace

void ControlService::open_clip_catalog() {
    clips_ = std::make_unique<ClipCatalog>(store_.path().parent_path() / "clips", clock_);
    // Content files no row names (a crash between rename and commit, or
    // between a delete's commit and unlink) go too.
    std::set<std::string> referenced;
    for (const auto& c : store_.clips()) referenced.insert(c.sha256);
    clips_->remove_unreferenced(referenced);
}

std::string ControlService::begin_clip_upload(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::BeginClipUploadRequest>(payload, "BeginClipUploadRequest");
    require_operator(caller, "BeginClipUpload");
    if (req.name().empty()) fail(RpcCode::InvalidArgument, "clip name must not be empty");
    if (req.name().size() > 200) fail(RpcCode::InvalidArgument, "clip name is longer than 200 bytes");
    const std::string zone = req.zone_id().empty() ? caller.zone_id : req.zone_id();
    if (!zone.empty() && !store_.zone(zone)) fail(RpcCode::NotFound, "no zone '" + zone + "'");
    const bool inside = zone.empty() ? caller.zone_id.empty() : store_.zone_within(zone, caller.zone_id);
    if (!inside) fail(RpcCode::PermissionDenied, scope_name(zone) + " is outside your scope (" + scope_name(caller.zone_id) + ")");
    if (const auto existing = store_.clip_by_sha256(zone, req.sha256())) {
        fail(RpcCode::AlreadyExists, "this file is already clip " + std::to_string(existing->id) + " ('" +
                                         existing->name + "') in " + scope_name(zone));
    }
    ClipCatalog::Begin b{req.name(), zone, req.total_size(), req.sha256(), owner_of(caller)};
    pb::BeginClipUploadResponse r;
    r.set_upload_id(clips_->begin(b));
    r.set_max_chunk_bytes(static_cast<std::uint32_t>(ClipCatalog::kMaxChunkBytes));
    r.set_idle_timeout_ms(ClipCatalog::kIdleTimeoutNs / 1'000'000);
    return r.SerializeAsString();
}

std::string ControlService::upload_clip_chunk(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::UploadClipChunkRequest>(payload, "UploadClipChunkRequest");
    require_operator(caller, "UploadClipChunk");
    const auto& d = req.data();
    pb::UploadClipChunkResponse r;
    r.set_received_bytes(clips_->chunk(req.upload_id(), owner_of(caller), req.offset(),
                                       {reinterpret_cast<const std::uint8_t*>(d.data()), d.size()}));
    return r.SerializeAsString();
}

std::string ControlService::finish_clip_upload(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::FinishClipUploadRequest>(payload, "FinishClipUploadRequest");
    require_operator(caller, "FinishClipUpload");
    const auto f = clips_->finish(req.upload_id(), owner_of(caller));
    ClipRow c;
    c.name = f.meta.name;
    c.zone_id = f.meta.zone_id;
    c.sha256 = f.meta.sha256;
    c.ext = f.analysis.ext;
    c.size_bytes = static_cast<std::int64_t>(f.meta.total_size);
    c.duration_ms = f.analysis.duration_ms;
    c.sample_rate = f.analysis.sample_rate;
    c.channels = f.analysis.channels;
    c.format = f.analysis.format;
    c.loudness_lufs = f.analysis.loudness_lufs;
    c.created_unix_ms = now_unix_ms();
    c.created_by = who(caller);
    std::uint64_t seq = 0;
    try {
        // The zone may have gone, or the same file been added, while uploading.
        if (!c.zone_id.empty() && !store_.zone(c.zone_id)) fail(RpcCode::NotFound, "no zone '" + c.zone_id + "'");
        if (const auto existing = store_.clip_by_sha256(c.zone_id, c.sha256)) {
            fail(RpcCode::AlreadyExists, "this file is already clip " + std::to_string(existing->id));
        }
        store_.write([&] {
            c.id = store_.insert_clip(c);
            char detail[96];
            std::snprintf(detail, sizeof detail, " (%.1f s, %s, %.1f LUFS)", static_cast<double>(c.duration_ms) / 1000.0,
                          c.format.c_str(), c.loudness_lufs);
            seq = add_event(pb::CLIP_ADDED, "clip/" + std::to_string(c.id), c.zone_id,
                            who(caller) + " added clip " + std::to_string(c.id) + " '" + c.name + "'" + detail);
        });
    } catch (...) {
        if (store_.clip_sha256_refs(c.sha256) == 0) {
            try {
                clips_->remove_file(c.sha256, c.ext);
            } catch (const std::exception&) {
                // Left for the sweep at the next start.
            }
        }
        throw;
    }
    notify(seq);
    return clip_to_proto(c).SerializeAsString();
}

std::string ControlService::list_clips(const Caller& caller, const std::string& payload) {
    parse<pb::ListClipsRequest>(payload, "ListClipsRequest");
    clips_->expire();
    pb::ListClipsResponse r;
    for (const auto& c : store_.clips()) {
        if (c.zone_id.empty() || store_.zone_within(c.zone_id, caller.zone_id)) *r.add_clips() = clip_to_proto(c);
    }
    return r.SerializeAsString();
}

std::string ControlService::delete_clip(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::DeleteClipRequest>(payload, "DeleteClipRequest");
    require_operator(caller, "DeleteClip");
    const auto id = static_cast<std::int64_t>(req.id());
    const auto c = store_.clip(id);
    if (!c) fail(RpcCode::NotFound, "no clip " + std::to_string(req.id()));
    const bool inside = c->zone_id.empty() ? caller.zone_id.empty() : store_.zone_within(c->zone_id, caller.zone_id);
    if (!inside) {
        fail(RpcCode::PermissionDenied, "clip " + std::to_string(c->id) + " of " + scope_name(c->zone_id) +
                                            " is outside your scope (" + scope_name(caller.zone_id) + ")");
    }
    if (c->uses > 0) {
        fail(RpcCode::FailedPrecondition,
             "clip " + std::to_string(c->id) + " is in use by " + std::to_string(c->uses) + " programme(s)/schedule(s)");
    }
    std::uint64_t seq = 0;
    store_.write([&] {
        store_.delete_clip(c->id);
        seq = add_event(pb::CONFIG_CHANGED, "clip/" + std::to_string(c->id), c->zone_id,
                        who(caller) + " deleted clip " + std::to_string(c->id) + " '" + c->name + "'");
    });
    // After the commit: the file goes when no other row shares it (a crash
    // here leaves it for the sweep at the next start).
    if (store_.clip_sha256_refs(c->sha256) == 0) {
        try {
            clips_->remove_file(c->sha256, c->ext);
        } catch (const std::exception&) {
        }
    }
    notify(seq);
    return pb::DeleteClipResponse().SerializeAsString();
}

}  // namespace loa::engine
