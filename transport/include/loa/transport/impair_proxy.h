#pragma once
// UDP impairment proxy: datagrams sent to the listen endpoint are forwarded to
// the target through an ImpairmentModel (loss, delay, jitter, reordering,
// duplication); datagrams the target sends back are forwarded to the last
// client address (so RTCP and replies work), unimpaired unless a reverse
// model is configured.
//
// The proxy serves one client at a time: every client is seen by the target
// as the proxy's single upstream socket, and replies go to whichever client
// sent last. Datagrams waiting for their release time sit in a bounded timer
// queue on the proxy's io_context (steady clock); equal release times leave in
// the order they were decided (a duplicate after its original). The model's
// time base is nanoseconds of the steady clock since start(); packet index n
// is the n-th datagram received in that direction, so a seed gives the same
// decisions every run (the timing of real sockets still varies).
//
// Threads: the constructor opens the sockets (throws on failure). start() and
// stop() from one control thread; the proxy runs on its own thread in
// between. stats(), local_endpoint(), upstream_endpoint(): any thread.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "loa/transport/impairment.h"
#include "loa/transport/udp_socket.h"

namespace loa::transport {

struct ImpairProxyConfig {
    boost::asio::ip::udp::endpoint listen;  // e.g. 127.0.0.1:0 (port 0 = ephemeral)
    boost::asio::ip::udp::endpoint target;
    ImpairmentConfig forward;                // client -> target
    std::optional<ImpairmentConfig> reverse; // target -> client; nullopt = unimpaired
    std::size_t max_held = 65536;            // datagrams waiting for release; more are dropped
    UdpOptions socket_options{};
};

/// Counters; every field is a plain atomic load.
struct ImpairProxyStats {
    // client -> target
    std::uint64_t received = 0;     // datagrams from the client
    std::uint64_t forwarded = 0;    // datagrams sent to the target (duplicates included)
    std::uint64_t dropped = 0;      // dropped by the model
    std::uint64_t duplicated = 0;   // extra copies made by the model
    std::uint64_t reordered = 0;    // datagrams held back by the model
    // target -> client
    std::uint64_t reverse_received = 0;
    std::uint64_t reverse_forwarded = 0;
    std::uint64_t reverse_dropped = 0;     // by the reverse model, or no client known yet
    std::uint64_t reverse_duplicated = 0;
    std::uint64_t reverse_reordered = 0;
    // both directions
    std::uint64_t overflow = 0;     // dropped because max_held datagrams were waiting
    std::uint64_t send_errors = 0;  // the kernel refused a send (datagram lost)
    std::uint64_t held = 0;         // datagrams waiting for release now
};

class ImpairProxy {
public:
    /// Opens the listen socket and an upstream socket (ephemeral port, the
    /// target's family). Throws boost::system::system_error or
    /// std::invalid_argument (bad model config).
    explicit ImpairProxy(ImpairProxyConfig config);
    /// Stops the proxy if it runs; datagrams still held are discarded.
    ~ImpairProxy();
    ImpairProxy(const ImpairProxy&) = delete;
    ImpairProxy& operator=(const ImpairProxy&) = delete;

    /// Starts the proxy thread; the model's clock starts now. Once only.
    void start();
    /// Stops and joins the proxy thread; held datagrams are discarded.
    /// Idempotent.
    void stop();

    /// Where clients send (the bound address, with the real port).
    [[nodiscard]] boost::asio::ip::udp::endpoint local_endpoint() const;
    [[nodiscard]] std::uint16_t local_port() const { return local_endpoint().port(); }
    /// The source address the target sees.
    [[nodiscard]] boost::asio::ip::udp::endpoint upstream_endpoint() const;
    [[nodiscard]] ImpairProxyStats stats() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace loa::transport
