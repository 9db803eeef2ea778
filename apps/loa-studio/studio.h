#pragma once
// loa-studio on Boost.Asio: one UDP socket for RTP and RTCP (RFC 5761), a
// SendLoop woken on absolute steady-clock deadlines (paced sources) or every
// poll period (a capture device's ring), and a receive loop for the RTCP that
// comes back.
//
// Threads: construct, start(), stop() and every handler on the thread that
// runs `io`. The steady clock is std::chrono::steady_clock (CLOCK_MONOTONIC
// on Linux), so click times are comparable across processes.

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "loa-studio/send_loop.h"
#include "loa/transport/rtp_packet.h"
#include "loa/transport/udp_socket.h"

#include <boost/asio/steady_timer.hpp>

namespace loa::studio {

struct StudioNetConfig {
    boost::asio::ip::udp::endpoint to;    // the engine's ingest address
    boost::asio::ip::udp::endpoint bind;  // local address; port 0 = ephemeral
    std::chrono::nanoseconds poll_period{std::chrono::milliseconds(2)};  // driven sources
};

/// Monotonic and wall-clock nanoseconds as the studio uses them.
std::int64_t monotonic_ns() noexcept;
std::int64_t unix_ns() noexcept;

class Studio {
public:
    /// Opens and binds the socket (boost::system::system_error) and builds
    /// the loop (std::invalid_argument / codecs::Error). `source` must
    /// outlive the studio.
    Studio(boost::asio::io_context& io, const StudioNetConfig& net, const SendLoopConfig& loop,
           BlockSource& source);
    ~Studio();
    Studio(const Studio&) = delete;
    Studio& operator=(const Studio&) = delete;

    boost::asio::ip::udp::endpoint local_endpoint() const;

    /// Starts the stream now: the first paced block is due 10 ms later.
    /// `on_finished` runs (on the io thread) once the loop has finished by
    /// itself (end of file, --duration, source error).
    void start(std::function<void()> on_finished);
    /// Finishes the stream (last packet, SR + SDES + BYE), cancels timers,
    /// closes the socket. Idempotent.
    void stop();

    SendLoop& loop() noexcept { return *loop_; }

private:
    void arm();
    void receive();
    bool send(std::span<const std::uint8_t> datagram) noexcept;

    boost::asio::io_context& io_;
    StudioNetConfig net_;
    boost::asio::ip::udp::socket socket_;
    boost::asio::steady_timer timer_;
    SendLoopConfig loop_config_;
    BlockSource& source_;
    std::unique_ptr<SendLoop> loop_;
    std::function<void()> on_finished_;
    std::array<std::uint8_t, transport::kMaxRtpPacket + 1> rx_{};
    boost::asio::ip::udp::endpoint rx_from_;
    bool stopped_ = false;
};

}  // namespace loa::studio
