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
// A studio whose feed nobody consumes yet (a run-time studio before a
// programme takes it) still latches and is counted, but its packets are
// dropped as idle instead of piling up in the queue.
//
// Threads: offer() on the ingest I/O thread only; take() on the media thread
// only; set_consuming() on the control thread; counters, latched_address()
// and last_packet_ns() from any thread.

#include <array>
#include <atomic>
#include <climits>
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
    std::atomic<std::uint64_t> idle{0};             // valid, but no consumer: dropped
};

/// What identifies a studio's packets.
struct StudioMatch {
    std::string name;
    std::optional<std::uint32_t> ssrc;                       // match by SSRC...
    std::optional<boost::asio::ip::address> source_address;  // ...and/or by sender host
};

class StudioFeed {
public:
    enum class Offer { Accepted, ForeignAddress, QueueFull, Idle };

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

    /// Control thread. Whether valid packets are queued for the media thread
    /// (true, the default: a source consumes the feed) or latched, counted as
    /// idle and dropped (false: nothing would take them).
    void set_consuming(bool consuming) noexcept { consuming_.store(consuming, std::memory_order_release); }
    bool consuming() const noexcept { return consuming_.load(std::memory_order_acquire); }

    /// Address currently latched (I/O thread only).
    std::optional<boost::asio::ip::udp::endpoint> latched() const;
    /// The latched address as last published by the I/O thread (any thread;
    /// IPv4 only, like the ingest socket); nullopt before the first packet.
    std::optional<boost::asio::ip::udp::endpoint> latched_address() const noexcept;
    /// Arrival time of the last valid packet from the latched address (any
    /// thread); nullopt before the first.
    std::optional<std::int64_t> last_packet_ns() const noexcept;
    const StudioCounters& counters() const noexcept { return counters_; }

private:
    static constexpr std::int64_t kNever = INT64_MIN;

    StudioMatch match_;
    std::int64_t relatch_after_ns_;
    std::vector<IngestPacket> slots_;
    transport::SpscQueue<IngestPacket*> free_;   // media thread -> I/O thread
    transport::SpscQueue<IngestPacket*> ready_;  // I/O thread -> media thread
    // I/O thread only:
    std::optional<boost::asio::ip::udp::endpoint> latched_;
    std::int64_t last_packet_ns_ = 0;
    // Published by the I/O thread for status readers:
    std::atomic<std::uint64_t> latched_v4_{0};  // IPv4 address << 16 | port, 0 = none
    std::atomic<std::int64_t> last_seen_ns_{kNever};
    std::atomic<bool> consuming_{true};
    StudioCounters counters_;
};

/// Demultiplexes the ingest socket's datagrams to studios.
///
/// The studio table may change while datagrams are routed: the control
/// thread publishes a new immutable table with one atomic pointer swap, and
/// route() works from whichever table it loaded, without a lock. A replaced
/// table (and any feed only it named) stays valid until released() says no
/// route() can still be using it; collect_garbage() then frees the table.
/// Progress protocol (as FanoutSender's destination sets): route() stores
/// started = n, loads the table, and stores finished = n when done; a swap
/// reads `started` after the exchange, and what it replaced is unused once
/// `finished` has reached that value.
///
/// Threads: add(), publish(), released(), collect_garbage() on one control
/// thread; route() on one I/O thread. The router does not own the feeds.
class IngestRouter {
public:
    enum class Result { Accepted, Malformed, Rtcp, UnknownStudio, ForeignAddress, QueueFull, Idle };

    IngestRouter();
    ~IngestRouter();
    IngestRouter(const IngestRouter&) = delete;
    IngestRouter& operator=(const IngestRouter&) = delete;

    /// Control thread. Appends a studio to the table (publish() of the
    /// current feeds plus this one).
    void add(StudioFeed* feed);
    /// Control thread. Replaces the table: route() matches `feeds` in this
    /// order (the first match takes the packet) from its next datagram on.
    /// Returns a ticket for released(). Allocates; the swap itself cannot fail.
    std::uint64_t publish(std::vector<StudioFeed*> feeds);
    /// Control thread. True once no route() can still read a table that
    /// publish() call `ticket` (or an earlier one) replaced: a feed left out
    /// of every table since then is no longer touched by the I/O thread.
    bool released(std::uint64_t ticket) const noexcept;
    /// Control thread. Frees replaced tables that are released; returns how many.
    std::size_t collect_garbage();
    /// Control thread. The feeds of the current table.
    const std::vector<StudioFeed*>& feeds() const noexcept { return current_; }

    /// I/O thread. Routes one datagram. `matched` (optional) is set to the
    /// feed that took it (Accepted, ForeignAddress, QueueFull, Idle), else nullptr.
    Result route(std::span<const std::uint8_t> datagram, const boost::asio::ip::udp::endpoint& from,
                 std::int64_t now_ns, StudioFeed** matched = nullptr) noexcept;

private:
    struct Table {
        std::vector<StudioFeed*> feeds;
    };
    struct Retired {
        const Table* table;
        std::uint64_t ticket;
    };

    std::atomic<const Table*> table_{nullptr};
    alignas(64) std::atomic<std::uint64_t> started_{0};   // I/O thread writes
    std::atomic<std::uint64_t> finished_{0};              // I/O thread writes
    std::vector<StudioFeed*> current_;                    // control thread
    std::vector<Retired> retired_;                        // control thread
};

}  // namespace loa::engine
