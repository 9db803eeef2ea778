#pragma once
// A speaker receiver on Boost.Asio: one UDP socket for RTP and RTCP (RFC 5761
// multiplexing, symmetric RTP), periodic RTCP reports, and a playout driver
// that pulls frames from the pipeline either on a steady-clock timer (file or
// null sink, absolute deadlines) or to keep a ring buffer filled for a sound
// card callback.
//
// Threads: construct, start*() and stop() on the thread that runs `io` (or
// before it runs); all handlers run on that one thread. counters() may be
// read from any thread.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "loa-speaker/float_ring.h"
#include "loa-speaker/speaker_config.h"
#include "loa-speaker/speaker_pipeline.h"
#include "loa/transport/rtp_packet.h"
#include "loa/transport/udp_receive.h"

namespace loa::speaker {

class Speaker {
public:
    /// Receives the next output frame (48 kHz mono) on the io thread.
    using FrameSink = std::function<void(std::span<const float>)>;

    /// Opens and binds the socket (throws boost::system::system_error or
    /// std::invalid_argument) and joins `group` if given, on the interface
    /// holding `group_interface` (default: the kernel's choice). To receive
    /// both the group's and unicast datagrams, `listen` must be the wildcard
    /// address. Every datagram's destination is read (unicast or multicast)
    /// and decides between streams of equal level (see SpeakerPipeline).
    /// A zero `config.ssrc` is replaced by a random one.
    Speaker(boost::asio::io_context& io, SpeakerConfig config,
            const boost::asio::ip::udp::endpoint& listen,
            const std::optional<boost::asio::ip::address>& group = {},
            const std::optional<boost::asio::ip::address>& group_interface = {});
    ~Speaker();
    Speaker(const Speaker&) = delete;
    Speaker& operator=(const Speaker&) = delete;

    /// The bound address (with the real port when listening on port 0).
    boost::asio::ip::udp::endpoint local_endpoint() const;

    /// Starts receiving and reporting (first report at once, then every
    /// report interval on absolute deadlines).
    void start();

    /// Playout paced by the steady clock: every `frame_samples` / 48 kHz one
    /// frame is rendered and handed to `sink` (deadlines start + n * period,
    /// so sleep jitter never accumulates).
    void start_clocked_playout(FrameSink sink, std::size_t frame_samples = 960);

    /// Playout paced by a consumer of `ring` (the sound card): twice per
    /// block the ring is topped up with blocks of `frame_samples` while it
    /// holds less than `fill_target` samples. Keep both small (e.g. 5 ms
    /// blocks, 20 ms target): the playout holds the network buffer, the ring
    /// only bridges to the card, and its pace is what the playout's drift
    /// control follows. `ring` must outlive the speaker.
    void start_ring_playout(FloatRing& ring, std::size_t fill_target, std::size_t frame_samples = 240);

    /// Cancels the timers and closes the socket; handlers stop re-arming.
    void stop();

    const Counters& counters() const noexcept { return pipeline_.counters(); }
    std::uint32_t own_ssrc() const noexcept { return pipeline_.own_ssrc(); }
    /// io thread only.
    SpeakerPipeline& pipeline() noexcept { return pipeline_; }

private:
    using Clock = std::chrono::steady_clock;
    static std::int64_t now_ns() noexcept;

    void receive();
    void drain();
    void send_report(std::int64_t now_ns);
    void schedule_report();
    void schedule_clocked();
    void schedule_ring();

    boost::asio::io_context& io_;
    Clock::time_point start_tp_;
    SpeakerPipeline pipeline_;
    boost::asio::ip::udp::socket socket_;
    boost::asio::steady_timer report_timer_;
    boost::asio::steady_timer playout_timer_;
    std::chrono::nanoseconds report_period_;
    std::uint64_t report_index_ = 0;

    std::array<std::uint8_t, transport::kMaxRtpPacket + 1> rx_{};
    transport::ReceivedDatagram rx_datagram_;
    std::array<std::uint8_t, kMaxReportBytes> tx_{};

    FrameSink sink_;
    FloatRing* ring_ = nullptr;
    std::size_t ring_fill_target_ = 0;
    std::vector<float> frame_;
    Clock::time_point playout_start_;
    std::chrono::nanoseconds playout_period_{0};
    std::uint64_t playout_index_ = 0;
    bool stopped_ = false;
};

}  // namespace loa::speaker
