#include "loa-speaker/speaker_pipeline.h"

#include <algorithm>

#include "loa/codecs/dsp.h"
#include "loa/transport/cluster_status.h"
#include "loa/transport/rtcp_packet.h"
#include "loa/transport/rtp_packet.h"

namespace loa::speaker {

namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

engine::PlayoutConfig playout_config(const SpeakerConfig& c) {
    engine::PlayoutConfig p;
    p.capacity = c.jitter_capacity;
    p.min_delay_ms = c.min_delay_ms;
    p.max_delay_ms = std::max(c.max_delay_ms, c.jitter_ms);
    if (c.jitter_ms > 0) p.fixed_delay_ms = c.jitter_ms;
    p.fade_after_ms = static_cast<int>(c.long_gap_ns / 1'000'000);
    return p;
}

std::uint32_t clamp32(std::uint64_t v) noexcept {
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(v, 0xFFFFFFFFu));
}

}  // namespace

SpeakerPipeline::SpeakerPipeline(const SpeakerConfig& config, std::int64_t start_ns)
    : config_(config), start_ns_(start_ns), playout_(playout_config(config)) {
    destinations_.resize(config_.engines.size());
    for (std::size_t i = 0; i < config_.engines.size(); ++i) {
        const auto& e = config_.engines[i];
        if (e.port) destinations_[i] = boost::asio::ip::udp::endpoint(e.address, *e.port);
    }
    set_volume(config_.volume_pct);
}

void SpeakerPipeline::set_volume(int pct) noexcept {
    volume_pct_ = std::clamp(pct, 0, 100);
    gain_ = static_cast<float>(volume_pct_) / 100.0f;
}

DatagramKind SpeakerPipeline::on_datagram(std::span<const std::uint8_t> bytes,
                                          const boost::asio::ip::udp::endpoint& from,
                                          std::int64_t now_ns) noexcept {
    std::size_t engine = config_.engines.size();
    for (std::size_t i = 0; i < config_.engines.size(); ++i) {
        if (config_.engines[i].matches(from)) {
            engine = i;
            break;
        }
    }
    if (engine == config_.engines.size()) {
        counters_.foreign.fetch_add(1, kRelaxed);
        return DatagramKind::Foreign;
    }
    if (bytes.size() > transport::kMaxRtpPacket) {
        counters_.malformed.fetch_add(1, kRelaxed);
        return DatagramKind::Malformed;
    }

    DatagramKind kind = DatagramKind::Malformed;
    if (transport::looks_like_rtcp(bytes)) {
        transport::RtcpCompound c;
        if (transport::parse_rtcp(bytes, c) == transport::Status::Ok) {
            kind = DatagramKind::Control;
            counters_.rtcp_received.fetch_add(1, kRelaxed);
            if (c.has_sr) {
                counters_.sr_received.fetch_add(1, kRelaxed);
                reception_.on_sender_report(c.sender_info.ntp_timestamp, now_ns);
            }
        }
    } else {
        transport::RtpView v;
        if (transport::RtpView::parse(bytes, v) == transport::Status::Ok && on_media_packet(v, now_ns)) {
            kind = DatagramKind::Media;
        }
    }
    if (kind == DatagramKind::Malformed) {
        counters_.malformed.fetch_add(1, kRelaxed);
        return kind;
    }
    if (!config_.engines[engine].port) destinations_[engine] = from;
    return kind;
}

bool SpeakerPipeline::on_media_packet(const transport::RtpView& v, std::int64_t now_ns) noexcept {
    const engine::PlayoutPush r = playout_.push(v, now_ns);
    if (r == engine::PlayoutPush::Malformed) return false;  // counted as malformed by the caller
    counters_.received.fetch_add(1, kRelaxed);
    if (r == engine::PlayoutPush::NewStream) reception_.reset(v.ssrc());
    if (reception_.ssrc() == v.ssrc()) reception_.on_packet(v.sequence(), v.timestamp(), now_ns);
    publish_playout_stats();
    return true;
}

void SpeakerPipeline::publish_playout_stats() noexcept {
    const auto& s = playout_.stats();
    counters_.lost.store(s.lost.load(kRelaxed), kRelaxed);
    counters_.late.store(s.late.load(kRelaxed), kRelaxed);
    counters_.duplicate.store(s.duplicate.load(kRelaxed), kRelaxed);
    counters_.reordered.store(s.reordered.load(kRelaxed), kRelaxed);
    counters_.concealed.store(s.concealed.load(kRelaxed), kRelaxed);
    counters_.fec_recovered.store(s.recovered_fec.load(kRelaxed), kRelaxed);
    counters_.underruns.store(s.underruns.load(kRelaxed), kRelaxed);
    counters_.overflow.store(s.overflows.load(kRelaxed), kRelaxed);
    counters_.ssrc_changes.store(s.ssrc_changes.load(kRelaxed), kRelaxed);
    counters_.decode_errors.store(s.decode_errors.load(kRelaxed), kRelaxed);
    counters_.playing_ssrc.store(s.ssrc.load(kRelaxed), kRelaxed);
    counters_.buffer_delay_ms.store(s.current_delay_ms.load(kRelaxed), kRelaxed);
    counters_.target_delay_ms.store(s.target_delay_ms.load(kRelaxed), kRelaxed);
    counters_.drift_ppm.store(s.drift_ppm.load(kRelaxed), kRelaxed);
}

void SpeakerPipeline::render(std::span<float> out, std::int64_t now_ns) noexcept {
    playout_.render(out, now_ns);
    if (gain_ != 1.0f) codecs::apply_gain(out, gain_);
    codecs::hard_limit(out);
    counters_.samples_played.fetch_add(out.size(), kRelaxed);
    publish_playout_stats();
}

bool SpeakerPipeline::take_report_request() noexcept { return playout_.take_stream_change(); }

std::size_t SpeakerPipeline::build_report(std::span<std::uint8_t> out, std::int64_t now_ns) noexcept {
    transport::RtcpWriter w(out);
    const std::uint32_t ssrc = config_.ssrc;
    transport::Status s = transport::Status::Ok;
    if (reception_.has_source()) {
        const transport::RtcpReportBlock block = reception_.make_report_block(now_ns);
        s = w.add_rr(ssrc, std::span<const transport::RtcpReportBlock>(&block, 1));
    } else {
        s = w.add_rr(ssrc, {});
    }
    if (s != transport::Status::Ok) return 0;
    if (w.add_sdes_cname(ssrc, config_.cluster_id) != transport::Status::Ok) return 0;

    const CountersSnapshot c = counters_.snapshot();
    transport::ClusterStatus st;
    st.playing_ssrc = c.playing_ssrc;
    st.volume_pct = static_cast<std::uint8_t>(volume_pct_);
    st.amplifier_on = amplifier_on_;
    st.buffer_delay_ms = static_cast<std::uint16_t>(std::clamp(c.buffer_delay_ms, 0, 0xFFFF));
    st.packets_received = clamp32(c.received);
    st.packets_lost = clamp32(c.lost);
    st.packets_late = clamp32(c.late);
    st.packets_malformed = clamp32(c.malformed);
    st.frames_concealed = clamp32(c.concealed);
    st.underruns = clamp32(c.underruns);
    const std::int64_t up = std::max<std::int64_t>(now_ns - start_ns_, 0) / 1'000'000'000;
    st.uptime_s = static_cast<std::uint32_t>(std::min<std::int64_t>(up, 0xFFFFFFFF));
    std::array<std::uint8_t, transport::kClusterStatusSize> status{};
    if (transport::encode_cluster_status(st, status) != transport::Status::Ok) return 0;
    if (w.add_app(ssrc, transport::kClusterStatusSubtype, transport::kClusterStatusAppName, status) !=
        transport::Status::Ok) {
        return 0;
    }
    return w.size();
}

void SpeakerPipeline::count_report_sent() noexcept { counters_.rtcp_sent.fetch_add(1, kRelaxed); }

}  // namespace loa::speaker
