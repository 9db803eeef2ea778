#include "loa-speaker/speaker_pipeline.h"

#include <algorithm>

#include "loa/codecs/dsp.h"
#include "loa/transport/cluster_status.h"
#include "loa/transport/rtcp_packet.h"
#include "loa/transport/rtp_packet.h"

namespace loa::speaker {

namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

transport::JitterBufferConfig jitter_config(const SpeakerConfig& c) {
    transport::JitterBufferConfig j;
    j.capacity = c.jitter_capacity;
    j.target_delay_ms = c.jitter_ms;
    j.clock_rate = codecs::kSampleRate;
    j.default_packet_samples = static_cast<std::uint32_t>(codecs::frame_samples(20));
    return j;
}

std::uint32_t clamp32(std::uint64_t v) noexcept {
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(v, 0xFFFFFFFFu));
}

}  // namespace

SpeakerPipeline::SpeakerPipeline(const SpeakerConfig& config, std::int64_t start_ns)
    : config_(config), start_ns_(start_ns), jb_(jitter_config(config)) {
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
        if (transport::RtpView::parse(bytes, v) == transport::Status::Ok) {
            kind = DatagramKind::Media;
            on_media_packet(v, now_ns);
        }
    }
    if (kind == DatagramKind::Malformed) {
        counters_.malformed.fetch_add(1, kRelaxed);
        return kind;
    }
    if (!config_.engines[engine].port) destinations_[engine] = from;
    return kind;
}

void SpeakerPipeline::on_media_packet(const transport::RtpView& v, std::int64_t now_ns) noexcept {
    counters_.received.fetch_add(1, kRelaxed);
    const transport::JitterPush r = jb_.push(v, now_ns);
    if (r == transport::JitterPush::NewStream) {
        reception_.reset(v.ssrc());
        counters_.playing_ssrc.store(v.ssrc(), kRelaxed);
        pcm_pos_ = pcm_len_;  // drop the rest of the old stream's frame
        report_requested_ = true;
    }
    if (reception_.ssrc() == v.ssrc() && jb_.ssrc() == v.ssrc()) {
        reception_.on_packet(v.sequence(), v.timestamp(), now_ns);
    }
    publish_jitter_stats();
}

void SpeakerPipeline::publish_jitter_stats() noexcept {
    const auto& s = jb_.stats();
    counters_.lost.store(s.lost, kRelaxed);
    counters_.late.store(s.late, kRelaxed);
    counters_.duplicate.store(s.duplicate, kRelaxed);
    counters_.underruns.store(s.underruns, kRelaxed);
    counters_.overflow.store(s.overflow, kRelaxed);
    counters_.ssrc_changes.store(s.ssrc_changes, kRelaxed);
}

std::size_t SpeakerPipeline::packet_samples() const noexcept {
    const std::size_t n = jb_.packet_samples();
    constexpr std::size_t kQuantum = codecs::kSampleRate / 400;  // 2.5 ms
    if (n == 0 || n > pcm_.size() || n % kQuantum != 0) return codecs::frame_samples(20);
    return n;
}

void SpeakerPipeline::produce(std::int64_t now_ns) noexcept {
    const std::size_t per = packet_samples();
    const auto long_gap_samples =
        static_cast<std::size_t>(config_.long_gap_ns / 1000 * codecs::kSampleRate / 1'000'000);
    const std::span<float> frame(pcm_.data(), per);

    bool silence = false;
    transport::JitterPacket pkt;
    switch (jb_.pop(now_ns, pkt)) {
        case transport::JitterPop::Packet: {
            if (pkt.ssrc != decoder_ssrc_ || !decoder_primed_) {
                if (pkt.ssrc != decoder_ssrc_) decoder_.reset();
                decoder_ssrc_ = pkt.ssrc;
            }
            std::size_t n = 0;
            if (decoder_.decode(pkt.payload, pcm_, n) == codecs::Status::Ok && n > 0 && n <= pcm_.size()) {
                pcm_len_ = n;
                decoder_primed_ = true;
                conceal_run_samples_ = 0;
                break;
            }
            counters_.decode_errors.fetch_add(1, kRelaxed);
            if (decoder_primed_ && decoder_.conceal(frame) == codecs::Status::Ok) {
                counters_.concealed.fetch_add(1, kRelaxed);
                conceal_run_samples_ += per;
                pcm_len_ = per;
            } else {
                silence = true;
            }
            break;
        }
        case transport::JitterPop::Missing: {
            if (!decoder_primed_ || conceal_run_samples_ >= long_gap_samples) {
                silence = true;
                break;
            }
            const auto next = jb_.peek_next();
            bool done = false;
            if (next && next->ssrc == decoder_ssrc_ &&
                decoder_.decode_fec(next->payload, frame) == codecs::Status::Ok) {
                if (codecs::OpusDecoder::packet_has_fec(next->payload)) {
                    counters_.fec_recovered.fetch_add(1, kRelaxed);
                } else {
                    counters_.concealed.fetch_add(1, kRelaxed);  // libopus fell back to PLC
                }
                done = true;
            } else if (decoder_.conceal(frame) == codecs::Status::Ok) {
                counters_.concealed.fetch_add(1, kRelaxed);
                done = true;
            }
            if (done) {
                conceal_run_samples_ += per;
                pcm_len_ = per;
            } else {
                silence = true;
            }
            break;
        }
        case transport::JitterPop::Buffering:
        case transport::JitterPop::Empty:
            silence = true;
            break;
    }
    if (silence) {
        std::fill(frame.begin(), frame.end(), 0.0f);
        pcm_len_ = per;
    }
    pcm_pos_ = 0;
    publish_jitter_stats();
}

void SpeakerPipeline::render(std::span<float> out, std::int64_t now_ns) noexcept {
    std::size_t done = 0;
    while (done < out.size()) {
        if (pcm_pos_ >= pcm_len_) produce(now_ns);
        const std::size_t n = std::min(out.size() - done, pcm_len_ - pcm_pos_);
        std::copy_n(pcm_.begin() + static_cast<std::ptrdiff_t>(pcm_pos_), n,
                    out.begin() + static_cast<std::ptrdiff_t>(done));
        pcm_pos_ += n;
        done += n;
    }
    if (gain_ != 1.0f) codecs::apply_gain(out, gain_);
    codecs::hard_limit(out);
    counters_.samples_played.fetch_add(out.size(), kRelaxed);
    const auto pending_ms = static_cast<int>((pcm_len_ - pcm_pos_) * 1000 / codecs::kSampleRate);
    counters_.buffer_delay_ms.store(jb_.buffered_ms() + pending_ms, kRelaxed);
}

bool SpeakerPipeline::take_report_request() noexcept {
    const bool r = report_requested_;
    report_requested_ = false;
    return r;
}

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
