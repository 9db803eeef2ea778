#include "loa-studio/studio.h"

#include <boost/asio/buffer.hpp>

namespace loa::studio {

namespace {

boost::asio::ip::udp::socket open_socket(boost::asio::io_context& io, const StudioNetConfig& net) {
    transport::UdpOptions opts;
    opts.send_buffer_bytes = 256 << 10;
    opts.receive_buffer_bytes = 256 << 10;
    auto s = transport::open_udp(io, net.bind, opts);
    s.non_blocking(true);
    return s;
}

}  // namespace

std::int64_t monotonic_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::int64_t unix_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

Studio::Studio(boost::asio::io_context& io, const StudioNetConfig& net, const SendLoopConfig& loop,
               BlockSource& source)
    : io_(io), net_(net), socket_(open_socket(io, net)), timer_(io), loop_config_(loop), source_(source) {
    validate(loop.packetiser);
}

Studio::~Studio() = default;

boost::asio::ip::udp::endpoint Studio::local_endpoint() const { return socket_.local_endpoint(); }

bool Studio::send(std::span<const std::uint8_t> datagram) noexcept {
    boost::system::error_code ec;
    socket_.send_to(boost::asio::buffer(datagram.data(), datagram.size()), net_.to, 0, ec);
    return !ec;
}

void Studio::start(std::function<void()> on_finished) {
    on_finished_ = std::move(on_finished);
    loop_ = std::make_unique<SendLoop>(loop_config_, source_, monotonic_ns(),
                                       [this](std::span<const std::uint8_t> d) { return send(d); });
    receive();
    arm();
}

void Studio::arm() {
    std::int64_t wake = loop_->next_wake_ns();
    if (!source_.paced()) wake = std::min(wake, monotonic_ns() + net_.poll_period.count());
    timer_.expires_at(std::chrono::steady_clock::time_point(std::chrono::nanoseconds(wake)));
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec || stopped_) return;
        if (!loop_->tick(monotonic_ns(), unix_ns())) {
            if (on_finished_) on_finished_();
            return;
        }
        arm();
    });
}

void Studio::receive() {
    socket_.async_receive_from(boost::asio::buffer(rx_), rx_from_,
                               [this](const boost::system::error_code& ec, std::size_t n) {
                                   if (stopped_ || ec == boost::asio::error::operation_aborted) return;
                                   // ICMP errors (engine not up yet) surface here: ignore and go on.
                                   if (!ec) loop_->on_datagram(std::span<const std::uint8_t>(rx_.data(), n));
                                   receive();
                               });
}

void Studio::stop() {
    if (stopped_) return;
    if (loop_) loop_->finish(monotonic_ns(), unix_ns());
    stopped_ = true;
    timer_.cancel();
    boost::system::error_code ec;
    socket_.close(ec);
}

}  // namespace loa::studio
