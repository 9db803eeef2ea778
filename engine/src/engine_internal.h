#pragma once
// Engine's private parts shared by its source files (engine.cpp,
// engine_studios.cpp, engine_threads.cpp, engine_stats.cpp). Private to engine/src.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "loa/engine/engine.h"
#include "loa/engine/ingest.h"
#include "loa/engine/studio_source.h"

namespace loa::engine {

namespace asio = boost::asio;
using asio::ip::udp;

// One bound socket of the engine's RTP/RTCP port. Every fan-out shard sends
// through its own socket (SO_REUSEPORT on one port, so clusters see one
// source); reports arriving on any of them are read by the I/O thread.
struct Receiver {
    explicit Receiver(udp::socket s) : socket(std::move(s)) {}
    udp::socket socket;
    std::array<std::uint8_t, 2048> buf{};
    udp::endpoint from;
};

struct Engine::Io {
    asio::io_context context;
    std::vector<std::unique_ptr<Receiver>> v4;
    std::vector<std::unique_ptr<Receiver>> v6;
    std::unique_ptr<Receiver> ingest;  // studios' RTP (when studios are declared or may be added)
    IngestRouter router;               // I/O thread
    std::optional<asio::steady_timer> sweep_timer;
};

// A studio: its ingest feed and the sources that read it. Fields other
// than the feed belong to the control thread.
struct Engine::Studio {
    // A run-time programme (not being removed) reading the feed.
    struct Feeding {
        std::uint32_t group;
        const StudioSource* source;
    };
    Studio(const StudioConfig& c, bool rt)
        : config(c), feed(StudioMatch{c.name, c.ssrc, c.source_address}), runtime(rt) {}
    StudioConfig config;
    StudioFeed feed;
    bool runtime = false;                  // added by add_studio()
    const StudioSource* source = nullptr;  // config studios: the source of their programme (nullptr: none)
    // Run-time studios only:
    std::vector<Feeding> feeding;      // in the order they took it (at most StudioFeed::kMaxReaders)
    std::size_t holders = 0;           // studio sources of run-time programmes alive (removed ones too)
    std::uint64_t removed_ticket = 0;  // IngestRouter ticket of the table that left it out
    // The source whose playout the studio's stats show.
    const StudioSource* shown() const noexcept { return feeding.empty() ? source : feeding.front().source; }
};

}  // namespace loa::engine
