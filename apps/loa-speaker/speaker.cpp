#include "loa-speaker/speaker.h"

#include <random>
#include <utility>

#include <boost/asio/buffer.hpp>

#include "loa/codecs/audio_format.h"
#include "loa/transport/udp_receive.h"
#include "loa/transport/udp_socket.h"

namespace loa::speaker {

namespace {

SpeakerConfig with_ssrc(SpeakerConfig c) {
    validate(c);
    std::random_device rd;
    while (c.ssrc == 0) c.ssrc = static_cast<std::uint32_t>(rd());
    return c;
}

boost::asio::ip::udp::socket open_socket(boost::asio::io_context& io,
                                         const boost::asio::ip::udp::endpoint& listen,
                                         const std::optional<boost::asio::ip::address>& group,
                                         const std::optional<boost::asio::ip::address>& group_interface) {
    transport::UdpOptions opts;
    opts.reuse_address = group.has_value();
    opts.receive_buffer_bytes = 1 << 20;
    opts.send_buffer_bytes = 256 << 10;
    auto s = transport::open_udp(io, listen, opts);
    transport::enable_destination_info(s);
    if (group) transport::join_multicast(s, *group, group_interface);
    return s;
}

}  // namespace

std::int64_t Speaker::now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

Speaker::Speaker(boost::asio::io_context& io, SpeakerConfig config,
                 const boost::asio::ip::udp::endpoint& listen,
                 const std::optional<boost::asio::ip::address>& group,
                 const std::optional<boost::asio::ip::address>& group_interface)
    : io_(io),
      start_tp_(Clock::now()),
      pipeline_(with_ssrc(std::move(config)),
                std::chrono::duration_cast<std::chrono::nanoseconds>(start_tp_.time_since_epoch()).count()),
      socket_(open_socket(io, listen, group, group_interface)),
      report_timer_(io),
      playout_timer_(io),
      report_period_(std::chrono::milliseconds(1000)) {}

Speaker::~Speaker() = default;

boost::asio::ip::udp::endpoint Speaker::local_endpoint() const { return socket_.local_endpoint(); }

void Speaker::start() {
    report_period_ = std::chrono::milliseconds(pipeline_.config().report_interval_ms);
    receive();
    schedule_report();
}

void Speaker::receive() {
    socket_.async_wait(boost::asio::ip::udp::socket::wait_read, [this](const boost::system::error_code& ec) {
        if (stopped_ || ec == boost::asio::error::operation_aborted) return;
        if (!ec) drain();
        receive();
    });
}

void Speaker::drain() {
    // At most a batch per wake-up, so that a flood cannot hold off the
    // playout and report timers on this thread (the wait completes again at
    // once while datagrams are queued).
    constexpr int kMaxBatch = 64;
    for (int i = 0; i < kMaxBatch && !stopped_; ++i) {
        // A failed receive (would_block: drained) ends the batch.
        if (transport::receive_datagram(socket_.native_handle(), rx_, rx_datagram_)) return;
        const std::int64_t now = now_ns();
        (void)pipeline_.on_datagram(std::span<const std::uint8_t>(rx_.data(), rx_datagram_.size),
                                    rx_datagram_.from, now, rx_datagram_.delivery);
        if (pipeline_.take_report_request()) send_report(now);
    }
}

void Speaker::send_report(std::int64_t now) {
    const std::size_t n = pipeline_.build_report(tx_, now);
    if (n == 0) return;
    bool sent = false;
    for (const auto& dest : pipeline_.report_destinations()) {
        if (!dest) continue;
        boost::system::error_code ec;
        socket_.send_to(boost::asio::buffer(tx_.data(), n), *dest, 0, ec);
        if (!ec) sent = true;
    }
    if (sent) pipeline_.count_report_sent();
}

void Speaker::schedule_report() {
    report_timer_.expires_at(start_tp_ + report_period_ * static_cast<std::int64_t>(report_index_));
    report_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (stopped_ || ec) return;
        send_report(now_ns());
        // Skip deadlines missed during a stall instead of bursting reports.
        const auto elapsed = Clock::now() - start_tp_;
        const auto due = static_cast<std::uint64_t>(elapsed / report_period_) + 1;
        report_index_ = std::max(report_index_ + 1, due);
        schedule_report();
    });
}

void Speaker::start_clocked_playout(FrameSink sink, std::size_t frame_samples) {
    sink_ = std::move(sink);
    frame_.assign(frame_samples, 0.0f);
    playout_period_ = std::chrono::nanoseconds(static_cast<std::int64_t>(frame_samples) * 1'000'000'000 /
                                               codecs::kSampleRate);
    playout_start_ = Clock::now();
    playout_index_ = 0;
    schedule_clocked();
}

void Speaker::schedule_clocked() {
    playout_timer_.expires_at(playout_start_ + playout_period_ * static_cast<std::int64_t>(playout_index_));
    playout_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (stopped_ || ec) return;
        // Render every frame whose deadline has passed (a sound card would have
        // consumed them); after a long stall skip ahead instead of bursting.
        constexpr int kMaxCatchUp = 10;
        int rendered = 0;
        const auto now_tp = Clock::now();
        while (playout_start_ + playout_period_ * static_cast<std::int64_t>(playout_index_) <= now_tp &&
               rendered < kMaxCatchUp) {
            // The block's time on the sink's clock is its deadline, not this
            // (jittery) wake-up: the playout's drift control must see the
            // sink's steady pace.
            const auto deadline = playout_start_ + playout_period_ * static_cast<std::int64_t>(playout_index_);
            const std::int64_t now =
                std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
            pipeline_.render(frame_, now);
            if (sink_) sink_(frame_);
            if (pipeline_.take_report_request()) send_report(now);
            ++playout_index_;
            ++rendered;
        }
        const auto due = static_cast<std::uint64_t>((now_tp - playout_start_) / playout_period_) + 1;
        playout_index_ = std::max(playout_index_, due);
        schedule_clocked();
    });
}

void Speaker::start_ring_playout(FloatRing& ring, std::size_t fill_target, std::size_t frame_samples) {
    ring_ = &ring;
    ring_fill_target_ = fill_target;
    frame_.assign(frame_samples, 0.0f);
    // Poll twice per block so the ring never sinks much below the target.
    playout_period_ = std::chrono::nanoseconds(static_cast<std::int64_t>(frame_samples) * 1'000'000'000 /
                                               codecs::kSampleRate / 2);
    playout_start_ = Clock::now();
    playout_index_ = 0;
    schedule_ring();
}

void Speaker::schedule_ring() {
    playout_timer_.expires_at(playout_start_ + playout_period_ * static_cast<std::int64_t>(playout_index_));
    playout_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (stopped_ || ec) return;
        while (ring_->size() + frame_.size() <= ring_fill_target_ && ring_->writable() >= frame_.size()) {
            const std::int64_t now = now_ns();
            pipeline_.render(frame_, now);
            ring_->write(frame_);
            if (pipeline_.take_report_request()) send_report(now);
        }
        const auto due = static_cast<std::uint64_t>((Clock::now() - playout_start_) / playout_period_) + 1;
        playout_index_ = std::max(playout_index_ + 1, due);
        schedule_ring();
    });
}

void Speaker::stop() {
    stopped_ = true;
    report_timer_.cancel();
    playout_timer_.cancel();
    boost::system::error_code ec;
    socket_.cancel(ec);
    socket_.close(ec);
}

}  // namespace loa::speaker
