#pragma once
// Reception statistics of one RTP source per RFC 3550 (A.3 loss, A.8
// interarrival jitter) and the report block built from them. Time is passed
// in. One owner thread; no allocation.

#include <cstdint>

#include "loa/transport/rtcp_packet.h"
#include "loa/transport/rtp_packet.h"

namespace loa::speaker {

class ReceptionStats {
public:
    explicit ReceptionStats(int clock_rate = 48000) noexcept : clock_rate_(clock_rate) {}

    /// Starts over for a new source.
    void reset(std::uint32_t ssrc) noexcept;

    /// Records one packet of the source (duplicates and late ones included, as
    /// RFC 3550 counts them). `arrival_ns`: monotonic arrival time.
    void on_packet(std::uint16_t seq, std::uint32_t rtp_timestamp, std::int64_t arrival_ns) noexcept;

    /// Remembers the last SR heard (for LSR/DLSR).
    void on_sender_report(std::uint64_t ntp_timestamp, std::int64_t arrival_ns) noexcept;

    /// Builds the report block at `now_ns` and starts the next report interval
    /// (fraction lost is relative to the previous call).
    transport::RtcpReportBlock make_report_block(std::int64_t now_ns) noexcept;

    bool has_source() const noexcept { return started_; }
    std::uint32_t ssrc() const noexcept { return ssrc_; }
    std::int64_t expected() const noexcept { return started_ ? max_ext_ - base_ext_ + 1 : 0; }
    std::int64_t received() const noexcept { return received_; }
    /// Interarrival jitter in RTP timestamp units.
    double jitter() const noexcept { return jitter_; }

private:
    int clock_rate_;
    std::uint32_t ssrc_ = 0;
    bool started_ = false;
    transport::SequenceUnwrapper unwrapper_;
    std::int64_t base_ext_ = 0;
    std::int64_t max_ext_ = 0;
    std::int64_t received_ = 0;
    std::int64_t expected_prior_ = 0;
    std::int64_t received_prior_ = 0;
    bool has_transit_ = false;
    std::int32_t last_transit_ = 0;
    double jitter_ = 0.0;
    bool has_sr_ = false;
    std::uint32_t lsr_ = 0;
    std::int64_t sr_arrival_ns_ = 0;
};

}  // namespace loa::speaker
