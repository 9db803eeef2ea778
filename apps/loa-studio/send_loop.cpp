#include "loa-studio/send_loop.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "loa/transport/rtcp_packet.h"
#include "loa/transport/rtp_packet.h"

namespace loa::studio {

SendLoop::SendLoop(const SendLoopConfig& config, BlockSource& source, std::int64_t start_ns, SendFn send)
    : config_(config),
      source_(source),
      clicks_(config.record_click_times ? dynamic_cast<const ClickSource*>(&source) : nullptr),
      send_(std::move(send)),
      packetiser_(config.packetiser),
      pacer_(start_ns),
      block_(kBlockSamples, 0.0f),
      next_rtcp_ns_(start_ns + std::max<std::int64_t>(config.rtcp_interval_ns, 1'000'000)) {
    if (clicks_ != nullptr) click_times_.reserve(1 << 16);
}

std::uint64_t SendLoop::sample_position(std::int64_t now_ns) const noexcept {
    return source_.paced() ? pacer_.samples_at(now_ns) : samples_;
}

void SendLoop::send_rtp(std::span<const std::uint8_t> packet) noexcept {
    if (packet.empty()) return;
    if (send_(packet)) {
        ++stats_.packets_sent;
        stats_.bytes_sent += packet.size();
    } else {
        ++stats_.send_errors;
    }
}

void SendLoop::send_rtcp(std::int64_t now_ns, std::int64_t unix_ns, bool bye) noexcept {
    const auto pkt = packetiser_.build_rtcp(sample_position(now_ns), transport::ntp_from_unix_ns(unix_ns), bye);
    if (pkt.empty()) return;
    if (send_(pkt)) {
        ++stats_.rtcp_sent;
    } else {
        ++stats_.send_errors;
    }
}

bool SendLoop::process_block(std::size_t got) noexcept {
    std::size_t use = got;
    bool limit_reached = false;
    if (config_.max_samples > 0 && samples_ + use >= config_.max_samples) {
        use = static_cast<std::size_t>(config_.max_samples - samples_);
        limit_reached = true;
    }
    const auto audio = std::span<const float>(block_).first(use);
    if (clicks_ != nullptr) {
        const std::uint64_t onset = clicks_->onset_in(samples_, use);
        if (onset != std::numeric_limits<std::uint64_t>::max()) {
            click_times_.push_back(pacer_.sample_time_ns(onset));
            ++stats_.clicks;
        }
    }
    meter_.add(audio);
    samples_ += use;
    stats_.samples_captured = samples_;
    // A block never spans two frames (packet times are whole blocks), except
    // the partial last one, which is at most one block.
    send_rtp(packetiser_.push(audio));
    stats_.frames_encoded = packetiser_.frames_encoded();
    stats_.encode_errors = packetiser_.encode_errors();
    return !limit_reached;
}

bool SendLoop::tick(std::int64_t now_ns, std::int64_t unix_ns) noexcept {
    if (!running_) return false;
    std::uint64_t due = 0;
    if (source_.paced()) {
        due = pacer_.take_due(now_ns);
        stats_.pacer_resyncs = pacer_.resyncs();
    } else {
        due = std::numeric_limits<std::uint64_t>::max();  // everything the device has delivered
    }
    bool stop = false;
    for (std::uint64_t i = 0; i < due && !stop; ++i) {
        std::size_t got = 0;
        const auto st = source_.read(block_, got);
        if (st == SourceStatus::NotReady) break;
        if (st == SourceStatus::Error) {
            error_ = source_.error();
            stop = true;
            break;
        }
        if (!process_block(got)) stop = true;
        if (st == SourceStatus::End) stop = true;
    }
    if (!first_sr_sent_ && stats_.packets_sent > 0) {
        first_sr_sent_ = true;
        send_rtcp(now_ns, unix_ns, false);
    }
    if (now_ns >= next_rtcp_ns_) {
        send_rtcp(now_ns, unix_ns, false);
        const std::int64_t period = std::max<std::int64_t>(config_.rtcp_interval_ns, 1'000'000);
        while (next_rtcp_ns_ <= now_ns) next_rtcp_ns_ += period;
    }
    if (stop) finish(now_ns, unix_ns);
    return running_;
}

std::int64_t SendLoop::next_wake_ns() const noexcept {
    if (!source_.paced()) return next_rtcp_ns_;
    return std::min(pacer_.next_deadline_ns(), next_rtcp_ns_);
}

void SendLoop::finish(std::int64_t now_ns, std::int64_t unix_ns) noexcept {
    if (finished_) return;
    finished_ = true;
    running_ = false;
    send_rtp(packetiser_.flush());
    stats_.frames_encoded = packetiser_.frames_encoded();
    stats_.encode_errors = packetiser_.encode_errors();
    send_rtcp(now_ns, unix_ns, true);
}

void SendLoop::on_datagram(std::span<const std::uint8_t> datagram) noexcept {
    transport::RtcpCompound rtcp;
    if (!transport::looks_like_rtcp(datagram) ||
        transport::parse_rtcp(datagram, rtcp, false) != transport::Status::Ok) {
        ++stats_.malformed_received;
        return;
    }
    ++stats_.rtcp_received;
    for (std::size_t i = 0; i < rtcp.block_count; ++i) {
        const auto& b = rtcp.blocks[i];
        if (b.ssrc != packetiser_.config().ssrc) continue;
        ++stats_.rr_blocks;
        stats_.last_fraction_lost = static_cast<double>(b.fraction_lost) / 256.0;
        stats_.last_jitter = b.jitter;
    }
}

}  // namespace loa::studio
