// Engine: the studio table (config and run-time studios), published to the
// I/O thread's IngestRouter, and each studio's status.
#include <algorithm>
#include <stdexcept>

#include "engine_internal.h"

namespace loa::engine {

Engine::Studio* Engine::find_studio(const std::string& name) const noexcept {
    for (const auto& st : studios_) {
        if (st->config.name == name) return st.get();
    }
    for (const auto& st : runtime_studios_) {
        if (st->config.name == name) return st.get();
    }
    return nullptr;
}

std::uint64_t Engine::publish_studios() {
    std::vector<StudioFeed*> feeds;
    feeds.reserve(studios_.size() + runtime_studios_.size());
    // Config studios route only to the source that consumes them.
    for (const auto& st : studios_) {
        if (st->source != nullptr) feeds.push_back(&st->feed);
    }
    for (const auto& st : runtime_studios_) feeds.push_back(&st->feed);
    return io_->router.publish(std::move(feeds));
}

std::size_t Engine::collect_studios() {
    const auto before = retired_studios_.size();
    std::erase_if(retired_studios_, [&](const std::unique_ptr<Studio>& st) {
        return st->holders == 0 && io_->router.released(st->removed_ticket);
    });
    io_->router.collect_garbage();
    return before - retired_studios_.size();
}

void Engine::add_studio(const StudioConfig& config) {
    collect_studios();
    if (!io_->ingest) throw std::runtime_error("the engine has no ingest socket: studios cannot be added");
    if (!config.ssrc && !config.source_address) {
        throw std::invalid_argument("studio '" + config.name + "' needs an ssrc, a source address or both");
    }
    if (const Studio* other = find_studio(config.name)) {
        throw std::invalid_argument("studio '" + config.name + "' already exists" +
                                    (other->runtime ? std::string() : std::string(" (declared in the config)")));
    }
    for (const auto* list : {&studios_, &runtime_studios_}) {
        for (const auto& o : *list) {
            if (o->config.ssrc == config.ssrc && o->config.source_address == config.source_address) {
                throw std::invalid_argument("studios '" + o->config.name + "' and '" + config.name +
                                            "' cannot be told apart (same ssrc and source address)");
            }
        }
    }
    // Idle (packets counted and dropped) until a programme attaches a reader.
    runtime_studios_.push_back(std::make_unique<Studio>(config, true));
    try {
        (void)publish_studios();
    } catch (...) {
        runtime_studios_.pop_back();
        throw;
    }
}

Engine::StudioRemoval Engine::remove_studio(const std::string& name) {
    collect_programmes();
    auto it = std::find_if(runtime_studios_.begin(), runtime_studios_.end(),
                           [&](const std::unique_ptr<Studio>& st) { return st->config.name == name; });
    if (it == runtime_studios_.end()) return StudioRemoval::NotFound;
    if (!(*it)->feeding.empty()) return StudioRemoval::Busy;
    retired_studios_.reserve(retired_studios_.size() + 1);
    const auto at = it - runtime_studios_.begin();
    std::unique_ptr<Studio> st = std::move(*it);
    runtime_studios_.erase(it);
    std::uint64_t ticket = 0;
    try {
        ticket = publish_studios();
    } catch (...) {
        runtime_studios_.insert(runtime_studios_.begin() + at, std::move(st));
        throw;
    }
    // Out of the table: freed once the I/O thread has finished with the old one.
    st->removed_ticket = ticket;
    retired_studios_.push_back(std::move(st));
    collect_studios();
    return StudioRemoval::Removed;
}

std::vector<std::string> Engine::runtime_studios() const {
    std::vector<std::string> out;
    for (const auto& st : runtime_studios_) out.push_back(st->config.name);
    return out;
}

std::optional<StudioStatus> Engine::studio_status(const std::string& name, loa::engine::v1::StudioStats* stats) const {
    const Studio* st = find_studio(name);
    if (st == nullptr) return std::nullopt;
    StudioStatus out;
    out.runtime = st->runtime;
    for (const auto& f : st->feeding) out.programme_groups.push_back(f.group);
    if (!st->feeding.empty()) out.programme_group = st->feeding.front().group;
    if (const auto last = st->feed.last_packet_ns()) {
        out.receiving = clock_.now_ns() - *last < StudioSource::kSilentAfterNs;
    }
    if (stats != nullptr) fill_studio_stats(*st, *stats);
    return out;
}

}  // namespace loa::engine
