#pragma once
// Shared by the engine unit tests: engine configurations for tests that build
// a real Engine on loopback, a run-time tone programme, and waiting on a
// condition another thread makes true.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/udp.hpp>

#include "loa/engine/config.h"
#include "loa/engine/programme_manager.h"

namespace loa::test {

/// An engine sending from 127.0.0.1:0 with one fan-out thread and no
/// real-time priority.
inline loa::engine::EngineConfig loopback_engine_config() {
    loa::engine::EngineConfig c;
    c.engine.listen = boost::asio::ip::udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0);
    c.engine.fanout_threads = 1;
    c.engine.realtime_priority = 0;
    return c;
}

/// The same with an ingest socket on 127.0.0.1:0 and a state folder: the
/// control plane may declare studios, so the ingest socket opens.
inline loa::engine::EngineConfig studio_engine_config(const std::filesystem::path& state_dir) {
    auto c = loopback_engine_config();
    c.engine.ingest_listen = boost::asio::ip::udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), 0);
    c.engine.state_dir = state_dir;
    return c;
}

/// A run-time programme `id` (also its sequence) of a `hz` tone at `level`
/// to `zones`, named "tone-<id>".
inline loa::engine::RuntimeProgramme tone_programme(std::uint64_t id, loa::engine::Priority level,
                                                    std::vector<std::string> zones, double hz) {
    loa::engine::RuntimeProgramme p;
    p.id = id;
    p.name = "tone-" + std::to_string(id);
    p.level = level;
    p.target_zones = std::move(zones);
    p.sequence = id;
    loa::engine::SourceConfig s;
    s.type = loa::engine::SourceConfig::Type::Tone;
    s.frequency_hz = hz;
    p.sources.push_back(s);
    return p;
}

/// Waits (up to 10 s, checking every 2 ms) until `pred()` holds.
template <typename Pred>
bool eventually(Pred pred) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));  // allowed: the poll step of a condition wait
    }
    return true;
}

}  // namespace loa::test
