#pragma once
// Live studio ingest: the engine's ingest socket receives each studio's RTP
// (pushed by loa-studio), recognises the studio by SSRC or source address,
// latches it to the address of its first valid packet, and hands every
// accepted packet to the media thread through that studio's bounded
// single-producer/single-consumer queue.
//
// Latching: a studio is bound to the address its first valid packet came
// from; packets from any other address are dropped (and counted) until the
// studio has been silent for `relatch_after_ns` (2 s), after which the next
// valid packet re-latches it (a 4G studio that reconnects comes back by
// itself). Authentication arrives with the security step.
//
// Threads: offer() on the ingest I/O thread only; take() on the media thread
// only; counters from any thread.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/ip/udp.hpp>

#include "loa/transport/rtp_packet.h"
#include "loa/transport/spsc_queue.h"

namespace loa::engine {

/// One received datagram on its way to the media thread.
struct IngestPacket {
    std::array<std::uint8_t, transport::kMaxRtpPacket> data{};
    std::uint16_t size = 0;
    std::int64_t arrival_ns = 0;  // monotonic time the I/O thread received it
    std::span<const std::uint8_t> bytes() const noexcept { return {data.data(), size}; }
};

struct StudioCounters {
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> foreign_address{0};  // right studio, wrong (unlatched) address
    std::atomic<std::uint64_t> queue_full{0};       // media thread did not keep up: dropped
    std::atomic<std::uint64_t> relatched{0};        // re-latched after silence
};

/// What identifies a studio's packets.
struct StudioMatch {
    std::string name;
    std::optional<std::uint32_t> ssrc;                       // match by SSRC...
    std::optional<boost::asio::ip::address> source_address;  // ...and/or by sender host
};

class StudioFeed {
public:
    enum class Offer { Accepted, ForeignAddress, QueueFull };

    explicit StudioFeed(StudioMatch match, std::int64_t relatch_after_ns = 2'000'000'000,
                        std::size_t queue_depth = 128);

    const StudioMatch& match() const noexcept { return match_; }

    /// I/O thread. `packet` is already a valid RTP packet for this studio.
    Offer offer(std::span<const std::uint8_t> packet, const boost::asio::ip::udp::endpoint& from,
                std::int64_t now_ns) noexcept;

    /// Media thread. Next queued packet, if any. Lock-free, no allocation.
    bool take(IngestPacket*& out) noexcept;
    /// Media thread. Returns a packet obtained from take() to the pool.
    void give_back(IngestPacket* packet) noexcept;

    /// Address currently latched (I/O thread's view; for status only).
    std::optional<boost::asio::ip::udp::endpoint> latched() const;
    const StudioCounters& counters() const noexcept { return counters_; }

private:
    StudioMatch match_;
    std::int64_t relatch_after_ns_;
    std::vector<IngestPacket> slots_;
    transport::SpscQueue<IngestPacket*> free_;   // media thread -> I/O thread
    transport::SpscQueue<IngestPacket*> ready_;  // I/O thread -> media thread
    // I/O thread only:
    std::optional<boost::asio::ip::udp::endpoint> latched_;
    std::int64_t last_packet_ns_ = 0;
    StudioCounters counters_;
};

/// Demultiplexes the ingest socket's datagrams to studios.
class IngestRouter {
public:
    enum class Result { Accepted, Malformed, Rtcp, UnknownStudio, ForeignAddress, QueueFull };

    /// Adds a studio; the router does not own it. Control thread, before use.
    void add(StudioFeed* feed) { feeds_.push_back(feed); }

    /// I/O thread. Routes one datagram.
    Result route(std::span<const std::uint8_t> datagram, const boost::asio::ip::udp::endpoint& from,
                 std::int64_t now_ns) noexcept;

private:
    std::vector<StudioFeed*> feeds_;
};

}  // namespace loa::engine
