#pragma once
// Live studio ingest: the engine's ingest socket receives each studio's RTP
// (pushed by loa-studio), recognises the studio by SSRC or source address,
// latches it to the address of its first valid packet, and hands every
// accepted packet to each of the studio's readers on the media thread.
//
// Latching: a studio is bound to the address its first valid packet came
// from; packets from any other address are dropped (and counted) until the
// studio has been silent for `relatch_after_ns` (2 s), after which the next
// valid packet re-latches it (a 4G studio that reconnects comes back by
// itself). Authentication arrives with the security step.
//
// Readers: one studio may feed up to kMaxReaders consumers at once (its
// programmes and alerts). Each reader slot has its own pool of packet slots
// and its own bounded single-producer/single-consumer queue, so every reader
// gets every accepted packet, in order, and a reader that falls behind drops
// (and counts) only its own packets. A slot's storage is allocated on the
// control thread the first time it is attached and kept until the feed is
// destroyed, so the I/O and media threads never see it go away; a detached
// slot can be attached again at once. Packets queued for an earlier
// attachment of a slot are skipped by the next one (each packet carries the
// attachment's generation).
//
// A studio nobody reads (a run-time studio before a programme takes it)
// still latches and is counted, but its packets are dropped as idle.
//
// Threads: offer() on the ingest I/O thread only; Reader::take() and
// Reader::give_back() on the media thread only; attach() and detach() on the
// control thread; counters, readers(), latched_address() and last_packet_ns()
// from any thread.

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
    std::int64_t arrival_ns = 0;   // monotonic time the I/O thread received it
    std::uint64_t generation = 0;  // the reader attachment it was queued for
    std::span<const std::uint8_t> bytes() const noexcept { return {data.data(), size}; }
};

/// Per studio. `accepted` counts datagrams (queued for at least one reader),
/// `queue_full` counts drops per reader (a datagram two full readers could
/// not take counts twice), `idle` datagrams no reader was attached for.
struct StudioCounters {
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> foreign_address{0};  // right studio, wrong (unlatched) address
    std::atomic<std::uint64_t> queue_full{0};       // a reader did not keep up: dropped for it
    std::atomic<std::uint64_t> relatched{0};        // re-latched after silence
    std::atomic<std::uint64_t> idle{0};             // valid, but no reader: dropped
};

/// Per reader slot, over all its attachments.
struct StudioReaderCounters {
    std::atomic<std::uint64_t> queued{0};      // packets queued for it
    std::atomic<std::uint64_t> queue_full{0};  // packets dropped because its queue was full
    std::atomic<std::uint64_t> stale{0};       // queued for an earlier attachment: skipped by take()
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

    /// The most readers one studio feeds at once.
    static constexpr std::size_t kMaxReaders = 4;

    /// One reader slot: a packet pool and a queue. Lives as long as the feed.
    class Reader {
    public:
        explicit Reader(std::size_t index, std::size_t queue_depth);
        Reader(const Reader&) = delete;
        Reader& operator=(const Reader&) = delete;

        /// Media thread. Next packet queued for the current attachment, if
        /// any (packets of an earlier one are given back and counted stale).
        /// Lock-free, no allocation.
        bool take(IngestPacket*& out) noexcept;
        /// Media thread. Returns a packet obtained from take() to the pool.
        void give_back(IngestPacket* packet) noexcept;

        /// Any thread. Whether the slot is attached, and its attachment number.
        bool attached() const noexcept { return attached_.load(std::memory_order_acquire); }
        std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }
        std::size_t index() const noexcept { return index_; }
        const StudioReaderCounters& counters() const noexcept { return counters_; }

    private:
        friend class StudioFeed;
        // I/O thread. False (counted) when the queue is full.
        bool offer(std::span<const std::uint8_t> packet, std::int64_t now_ns) noexcept;

        std::size_t index_;
        std::vector<IngestPacket> slots_;
        transport::SpscQueue<IngestPacket*> free_;   // media thread -> I/O thread
        transport::SpscQueue<IngestPacket*> ready_;  // I/O thread -> media thread
        std::atomic<bool> attached_{false};
        std::atomic<std::uint64_t> generation_{0};  // written by the control thread
        StudioReaderCounters counters_;
    };

    /// One attachment of a reader slot (attach()); false when none was free.
    struct Attachment {
        Reader* reader = nullptr;
        std::uint64_t generation = 0;
        explicit operator bool() const noexcept { return reader != nullptr; }
        /// Whether this attachment still holds its slot (any thread).
        bool current() const noexcept {
            return reader != nullptr && reader->attached() && reader->generation() == generation;
        }
    };

    /// `queue_depth`: packets each reader may have queued.
    explicit StudioFeed(StudioMatch match, std::int64_t relatch_after_ns = 2'000'000'000,
                        std::size_t queue_depth = 128);
    ~StudioFeed();
    StudioFeed(const StudioFeed&) = delete;
    StudioFeed& operator=(const StudioFeed&) = delete;

    const StudioMatch& match() const noexcept { return match_; }

    /// I/O thread. `packet` is already a valid RTP packet for this studio.
    /// Accepted: queued for at least one reader; QueueFull: every attached
    /// reader's queue was full; Idle: no reader attached.
    Offer offer(std::span<const std::uint8_t> packet, const boost::asio::ip::udp::endpoint& from,
                std::int64_t now_ns) noexcept;

    /// Control thread. Takes the lowest free reader slot (allocating its
    /// queue the first time); the reader gets every packet accepted from the
    /// I/O thread's next datagram on. An empty Attachment when all
    /// kMaxReaders are in use. Throws std::bad_alloc only.
    Attachment attach();
    /// Control thread. Frees the attachment's slot: nothing more is queued
    /// for it and it may be attached again at once. False (and nothing done)
    /// when it no longer holds the slot (detached before).
    bool detach(const Attachment& attachment) noexcept;
    /// Readers attached now (any thread).
    std::size_t readers() const noexcept;
    /// Reader slot `index` (< kMaxReaders), nullptr when never attached (any thread).
    const Reader* reader(std::size_t index) const noexcept;

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
    std::size_t queue_depth_;
    // Reader slots: owned by the control thread, published to the I/O and
    // media threads through readers_ (set once per slot, never cleared).
    std::array<std::unique_ptr<Reader>, kMaxReaders> owned_;
    std::array<std::atomic<Reader*>, kMaxReaders> readers_{};
    // I/O thread only:
    std::optional<boost::asio::ip::udp::endpoint> latched_;
    std::int64_t last_packet_ns_ = 0;
    // Published by the I/O thread for status readers:
    std::atomic<std::uint64_t> latched_v4_{0};  // IPv4 address << 16 | port, 0 = none
    std::atomic<std::int64_t> last_seen_ns_{kNever};
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

    /// I/O thread. Routes one datagram (to every reader of the matching
    /// feed). `matched` (optional) is set to the feed that took it (Accepted,
    /// ForeignAddress, QueueFull, Idle), else nullptr.
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
