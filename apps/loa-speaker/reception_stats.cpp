#include "loa-speaker/reception_stats.h"

#include <algorithm>
#include <cstdlib>

namespace loa::speaker {

void ReceptionStats::reset(std::uint32_t ssrc) noexcept {
    ssrc_ = ssrc;
    started_ = false;
    unwrapper_.reset();
    base_ext_ = max_ext_ = 0;
    received_ = expected_prior_ = received_prior_ = 0;
    has_transit_ = false;
    last_transit_ = 0;
    jitter_ = 0.0;
}

void ReceptionStats::on_packet(std::uint16_t seq, std::uint32_t rtp_timestamp,
                               std::int64_t arrival_ns) noexcept {
    const std::int64_t ext = unwrapper_.unwrap(seq);
    if (!started_) {
        started_ = true;
        base_ext_ = max_ext_ = ext;
    } else if (ext > max_ext_) {
        max_ext_ = ext;
    } else if (ext < base_ext_) {
        base_ext_ = ext;  // reordered ahead of the first packet
    }
    ++received_;

    // Arrival in RTP units (modulo 2^32, like the timestamps).
    const auto arrival_rtp = static_cast<std::uint32_t>(
        static_cast<std::uint64_t>(arrival_ns / 1000) * static_cast<std::uint64_t>(clock_rate_) / 1'000'000u);
    const auto transit = static_cast<std::int32_t>(arrival_rtp - rtp_timestamp);
    if (has_transit_) {
        const std::int64_t d = std::abs(static_cast<std::int64_t>(transit) - last_transit_);
        jitter_ += (static_cast<double>(d) - jitter_) / 16.0;
    }
    last_transit_ = transit;
    has_transit_ = true;
}

void ReceptionStats::on_sender_report(std::uint64_t ntp_timestamp, std::int64_t arrival_ns) noexcept {
    has_sr_ = true;
    lsr_ = transport::ntp_middle32(ntp_timestamp);
    sr_arrival_ns_ = arrival_ns;
}

transport::RtcpReportBlock ReceptionStats::make_report_block(std::int64_t now_ns) noexcept {
    transport::RtcpReportBlock b;
    b.ssrc = ssrc_;
    const std::int64_t exp = expected();
    const std::int64_t lost = exp - received_;
    b.cumulative_lost = static_cast<std::int32_t>(std::clamp<std::int64_t>(lost, -0x800000, 0x7FFFFF));
    const std::int64_t exp_interval = exp - expected_prior_;
    const std::int64_t rec_interval = received_ - received_prior_;
    const std::int64_t lost_interval = exp_interval - rec_interval;
    expected_prior_ = exp;
    received_prior_ = received_;
    if (exp_interval > 0 && lost_interval > 0) {
        b.fraction_lost = static_cast<std::uint8_t>(std::min<std::int64_t>((lost_interval << 8) / exp_interval, 255));
    }
    b.highest_seq = static_cast<std::uint32_t>(max_ext_);
    b.jitter = static_cast<std::uint32_t>(jitter_);
    if (has_sr_) {
        b.lsr = lsr_;
        const std::int64_t delay_ns = std::max<std::int64_t>(now_ns - sr_arrival_ns_, 0);
        b.dlsr = static_cast<std::uint32_t>((delay_ns / 1000) * 65536 / 1'000'000);
    }
    return b;
}

}  // namespace loa::speaker
