// ListAsRun: the as-run log (asrun.h) by time range and zone, in pages, and
// the recorder's place in the Control service (live state, tick hook).
//
// Scope: any caller (viewer and up) sees the rows of zones inside its
// subtree; a zone filter narrows that to the zone's subtree. Bad input is
// INVALID_ARGUMENT with what was wrong (from after to, page size above the
// maximum, a zone that does not exist, a page token this call never gave);
// a zone outside the caller's subtree is PERMISSION_DENIED.

#include <exception>
#include <optional>

#include "loa/control/v1/control.pb.h"
#include "loa/engine/asrun.h"
#include "loa/engine/control_service.h"

#include "control_util.h"

namespace loa::engine {

namespace {
namespace pb = loa::control::v1;

using control_util::fail;
using control_util::parse;
using control_util::scope_name;

constexpr std::uint32_t kDefaultPageSize = 1000;
constexpr std::uint32_t kMaxPageSize = 10000;

std::vector<std::string> split_names(const std::string& text) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at < text.size()) {
        auto end = text.find("; ", at);
        if (end == std::string::npos) end = text.size();
        if (end > at) out.push_back(text.substr(at, end - at));
        at = end + 2;
    }
    return out;
}

pb::AsRunEntry entry_of(const AsRunRow& r) {
    pb::AsRunEntry e;
    e.set_id(static_cast<std::uint64_t>(r.id));
    e.set_programme_id(r.programme_id);
    e.set_kind(r.kind);
    e.set_name(r.name);
    e.set_zone_id(r.zone_id);
    e.set_level(static_cast<pb::Level>(r.level + 1));
    e.set_ssrc(r.ssrc);
    e.set_start_unix_ms(r.start_unix_ms);
    e.set_end_unix_ms(r.end_unix_ms.value_or(0));
    e.set_on_air(!r.end_unix_ms.has_value());
    e.set_end_reason(r.end_reason);
    for (auto& name : split_names(r.preempted_by)) e.add_preempted_by(std::move(name));
    e.set_preempted_ms(r.preempted_ms);
    e.set_clusters_targeted(r.targeted);
    e.set_clusters_confirmed(r.confirmed);
    return e;
}

// A page token is the decimal id of the last entry of the previous page.
std::optional<std::int64_t> id_of_token(const std::string& token) {
    if (token.empty() || token.size() > 18) return std::nullopt;
    std::int64_t id = 0;
    for (const char c : token) {
        if (c < '0' || c > '9') return std::nullopt;
        id = id * 10 + (c - '0');
    }
    if (id <= 0) return std::nullopt;
    return id;
}

}  // namespace

void ControlService::set_asrun_recorder(AsRunRecorder* r) {
    asrun_ = r;
    if (r == nullptr) return;
    // Read live_ at call time: the provider may be set after this.
    r->set_cluster_live([this](const std::string& id) -> std::optional<ClusterLive> {
        if (!live_) return std::nullopt;
        const auto s = live_(id);
        if (!s) return std::nullopt;
        return ClusterLive{s->online(), s->playing_ssrc(), s->amplifier_on()};
    });
    if (asrun_hook_added_) return;
    asrun_hook_added_ = true;
    add_tick_hook([this](std::int64_t now) {
        if (asrun_ != nullptr) asrun_->tick(now);
    });
}

std::string ControlService::list_asrun(const Caller& caller, const std::string& payload) {
    const auto req = parse<pb::ListAsRunRequest>(payload, "ListAsRunRequest");
    control_util::require_role(caller, Role::Viewer, "ListAsRun");
    const auto now = now_unix_ms();
    if (req.from_unix_ms() < 0 || req.to_unix_ms() < 0) {
        fail(RpcCode::InvalidArgument, "from_unix_ms and to_unix_ms must not be negative");
    }
    // to = 0: up to now, plays starting this very millisecond included.
    const std::int64_t from = req.from_unix_ms();
    const std::int64_t to = req.to_unix_ms() == 0 ? now + 1 : req.to_unix_ms();
    if (from > to) {
        fail(RpcCode::InvalidArgument, "from (" + std::to_string(from) + " ms) is after to (" +
                                           std::to_string(req.to_unix_ms() == 0 ? now : to) + " ms)");
    }
    if (req.page_size() > kMaxPageSize) {
        fail(RpcCode::InvalidArgument, "page_size " + std::to_string(req.page_size()) + " is above the maximum of " +
                                           std::to_string(kMaxPageSize));
    }
    const std::size_t page = req.page_size() == 0 ? kDefaultPageSize : req.page_size();
    std::int64_t after = 0;
    if (!req.page_token().empty()) {
        const auto id = id_of_token(req.page_token());
        if (!id) fail(RpcCode::InvalidArgument, "page_token '" + req.page_token() + "' was not given by ListAsRun");
        after = *id;
    }
    std::string root = caller.zone_id;
    if (!req.zone_id().empty()) {
        if (!store_.zone(req.zone_id())) fail(RpcCode::InvalidArgument, "unknown zone '" + req.zone_id() + "'");
        if (!store_.zone_within(req.zone_id(), caller.zone_id)) {
            fail(RpcCode::PermissionDenied,
                 "zone '" + req.zone_id() + "' is outside your scope (" + scope_name(caller.zone_id) + ")");
        }
        root = req.zone_id();
    }
    // What the recorder holds goes in first, so the answer is up to date. A
    // failing write is the tick's to report; the rows stored are still listed.
    if (asrun_ != nullptr) {
        try {
            asrun_->flush(now);
        } catch (const std::exception&) {
        }
    }
    auto rows = store_.asrun(from, to, root, after, page + 1);
    pb::ListAsRunResponse out;
    if (rows.size() > page) {
        rows.resize(page);
        out.set_next_page_token(std::to_string(rows.back().id));
    }
    for (const auto& r : rows) *out.add_entries() = entry_of(r);
    return out.SerializeAsString();
}

}  // namespace loa::engine
