#include "loa-speaker/speaker_pipeline.h"

#include <algorithm>

#include "loa/codecs/dsp.h"
#include "loa/transport/cluster_status.h"
#include "loa/transport/rtcp_packet.h"
#include "loa/transport/rtp_packet.h"

namespace loa::speaker {

namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

// A playing stream whose last packet is older than this many of its packet
// times (and than the floor and the playout delay) has ended, as far as
// preemption is concerned. One or two lost packets stay below it.
constexpr std::int64_t kQuietPackets = 3;
constexpr std::int64_t kQuietFloorNs = 60'000'000;
constexpr std::int64_t kDefaultPtimeNs = 20'000'000;  // until two packets tell
constexpr std::uint32_t kRtpClockHz = 48000;          // Opus RTP clock
constexpr std::uint32_t kMinPtimeTicks = 120;         // 2.5 ms
constexpr std::uint32_t kMaxPtimeTicks = 5760;        // 120 ms

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
    : config_(config),
      start_ns_(start_ns),
      playout_(playout_config(config)),
      amp_(AmpHookSettings{config.amp_command, config.amp_gpio, std::chrono::milliseconds(10000)}),
      hold_ns_(static_cast<std::int64_t>(config.preempt_hold_ms) * 1'000'000),
      idle_ns_(static_cast<std::int64_t>(config.amp_idle_ms) * 1'000'000),
      amp_auto_(config.amp_auto && amp_.configured()) {
    destinations_.resize(config_.engines.size());
    for (std::size_t i = 0; i < config_.engines.size(); ++i) {
        const auto& e = config_.engines[i];
        if (e.port) destinations_[i] = boost::asio::ip::udp::endpoint(e.address, *e.port);
    }
    base_volume_pct_ = volume_pct_ = std::clamp(config_.volume_pct, 0, 100);
    gain_ = target_gain_ = static_cast<float>(volume_pct_) / 100.0f;
    counters_.volume_pct.store(volume_pct_, kRelaxed);
    amp_.request(false);  // start from a known state
}

void SpeakerPipeline::set_volume(int pct) noexcept {
    base_volume_pct_ = std::clamp(pct, 0, 100);
    if (alert_) return;  // the alert's volume stays in force
    if (base_volume_pct_ != volume_pct_) {
        volume_pct_ = base_volume_pct_;
        target_gain_ = static_cast<float>(volume_pct_) / 100.0f;
        counters_.volume_pct.store(volume_pct_, kRelaxed);
        report_due_ = true;
    }
}

bool SpeakerPipeline::switch_amplifier_off(std::chrono::milliseconds timeout) {
    if (amplifier_on_) {
        amplifier_on_ = false;
        counters_.amplifier_on.store(false, kRelaxed);
        counters_.amp_switches.fetch_add(1, kRelaxed);
    }
    amp_.request(false);
    return amp_.wait_applied(timeout);
}

DatagramKind SpeakerPipeline::on_datagram(std::span<const std::uint8_t> bytes,
                                          const boost::asio::ip::udp::endpoint& from, std::int64_t now_ns,
                                          transport::Delivery delivery) noexcept {
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
            for (std::size_t i = 0; i < c.bye_count; ++i) {
                // The playing stream said goodbye: nothing is held for it any more.
                if (has_current_ && c.bye[i] == current_ssrc_) current_bye_ = true;
            }
        }
    } else {
        transport::RtpView v;
        if (transport::RtpView::parse(bytes, v) == transport::Status::Ok) kind = on_media_packet(v, now_ns, delivery);
    }
    if (kind == DatagramKind::Malformed) {
        counters_.malformed.fetch_add(1, kRelaxed);
        return kind;
    }
    if (!config_.engines[engine].port) destinations_[engine] = from;
    return kind;
}

bool SpeakerPipeline::outranked(std::uint32_t ssrc, int level, bool marker, transport::Delivery delivery,
                                std::int64_t now_ns) const noexcept {
    if (!has_current_ || ssrc == current_ssrc_) return false;
    // The playing stream ended (quiet for a few of its packet times, or a
    // BYE): anyone may take over.
    if (current_bye_ || now_ns - current_last_ns_ >= quiet_after_ns()) return false;
    if (level != current_level_) return level < current_level_;
    // Same level: a cluster's own (unicast) programme ranks at least as high
    // as its group's (multicast) one, whichever arrived first.
    const bool unicast = delivery == transport::Delivery::Unicast;
    if (unicast != current_unicast_) return current_unicast_;
    // Same level: the newest wins, but the stream just left returns only
    // with a programme's first packet (its stragglers are still in flight).
    return !marker && has_previous_ && ssrc == previous_ssrc_;
}

std::int64_t SpeakerPipeline::quiet_after_ns() const noexcept {
    const std::int64_t ptime = current_ptime_ns_ > 0 ? current_ptime_ns_ : kDefaultPtimeNs;
    const std::int64_t delay_ns = static_cast<std::int64_t>(counters_.target_delay_ms.load(kRelaxed)) * 1'000'000;
    return std::min(hold_ns_, std::max({kQuietPackets * ptime, kQuietFloorNs, delay_ns}));
}

void SpeakerPipeline::track_current(const transport::RtpView& v) noexcept {
    if (current_seen_) {
        const auto step = static_cast<std::uint16_t>(v.sequence() - current_seq_);
        if (step == 0 || step >= 0x8000) return;  // a duplicate or an older packet tells nothing new
        const std::uint32_t ticks = v.timestamp() - current_ts_;
        // Consecutive packets (or a few lost between them) give the packet
        // time; a jump in the timestamp (e.g. a resumed clip) does not.
        if (step <= 8 && ticks % step == 0) {
            const std::uint32_t per = ticks / step;
            if (per >= kMinPtimeTicks && per <= kMaxPtimeTicks) {
                current_ptime_ns_ = static_cast<std::int64_t>(per) * 1'000'000'000 / kRtpClockHz;
            }
        }
    }
    current_seen_ = true;
    current_seq_ = v.sequence();
    current_ts_ = v.timestamp();
}

DatagramKind SpeakerPipeline::on_media_packet(const transport::RtpView& v, std::int64_t now_ns,
                                              transport::Delivery delivery) noexcept {
    const engine::StreamSignal signal = engine::read_stream_signal(v);
    const int level = signal.level ? static_cast<int>(*signal.level) : kUnknownLevel;
    const bool unicast = delivery == transport::Delivery::Unicast;
    if (outranked(v.ssrc(), level, v.marker(), delivery, now_ns)) {
        counters_.outranked.fetch_add(1, kRelaxed);
        return DatagramKind::Outranked;
    }
    const engine::PlayoutPush r = playout_.push(v, now_ns);
    if (r == engine::PlayoutPush::Malformed) return DatagramKind::Malformed;  // counted by the caller
    counters_.received.fetch_add(1, kRelaxed);
    if (r == engine::PlayoutPush::NewStream) {
        // The playout flushed the old stream and plays this one as soon as
        // its delay allows: from here on this is the playing stream.
        reception_.reset(v.ssrc());
        if (has_current_ && current_ssrc_ != v.ssrc()) {
            has_previous_ = true;
            previous_ssrc_ = current_ssrc_;
        }
        has_current_ = true;
        current_ssrc_ = v.ssrc();
        current_level_ = level;
        current_ptime_ns_ = 0;
        current_seen_ = false;
        current_bye_ = false;
        current_unicast_ = unicast;
        alert_.reset();  // a new stream is an alert only if it says so
    }
    // Anything else of another SSRC was a straggler the playout refused.
    if (has_current_ && v.ssrc() == current_ssrc_) {
        current_last_ns_ = now_ns;
        if (v.marker()) current_bye_ = false;  // it starts again after its BYE
        if (unicast) current_unicast_ = true;
        track_current(v);
        if (signal.level) current_level_ = level;
        if (signal.alert) alert_ = signal.alert;
    }
    if (reception_.ssrc() == v.ssrc()) reception_.on_packet(v.sequence(), v.timestamp(), now_ns);
    publish_playout_stats();
    update_state(now_ns);
    return DatagramKind::Media;
}

void SpeakerPipeline::update_state(std::int64_t now_ns) noexcept {
    const std::int64_t quiet_ns = now_ns - current_last_ns_;
    if (alert_) {
        const std::int64_t delay_ns = static_cast<std::int64_t>(counters_.target_delay_ms.load(kRelaxed)) * 1'000'000;
        if (quiet_ns >= hold_ns_ + delay_ns) alert_.reset();  // the alert stream ended
    }
    counters_.alert.store(alert_.has_value(), kRelaxed);

    const int volume = alert_ ? alert_->volume_pct : base_volume_pct_;
    if (volume != volume_pct_) {
        volume_pct_ = volume;
        target_gain_ = static_cast<float>(volume) / 100.0f;
        counters_.volume_pct.store(volume, kRelaxed);
        report_due_ = true;
    }

    const bool playing = has_current_ && quiet_ns < idle_ns_;
    const bool amp = (alert_ && alert_->amplifier_on) || (amp_auto_ && playing);
    if (amp != amplifier_on_) {
        amplifier_on_ = amp;
        amp_.request(amp);
        counters_.amplifier_on.store(amp, kRelaxed);
        counters_.amp_switches.fetch_add(1, kRelaxed);
        report_due_ = true;
    }
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
    update_state(now_ns);
    playout_.render(out, now_ns);
    if (gain_ != target_gain_ && !out.empty()) {
        // A volume change ramps over this block instead of stepping (no click).
        const float step = (target_gain_ - gain_) / static_cast<float>(out.size());
        for (std::size_t i = 0; i < out.size(); ++i) out[i] *= gain_ + step * static_cast<float>(i + 1);
        gain_ = target_gain_;
    } else if (gain_ != 1.0f) {
        codecs::apply_gain(out, gain_);
    }
    codecs::hard_limit(out);
    counters_.samples_played.fetch_add(out.size(), kRelaxed);
    publish_playout_stats();
}

bool SpeakerPipeline::take_report_request() noexcept {
    const bool changed = playout_.take_stream_change();
    const bool due = report_due_;
    report_due_ = false;
    return changed || due;
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
    st.amplifier_on = amplifier_on_;  // volume_pct_ is the one in force (an alert's forced volume)
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
