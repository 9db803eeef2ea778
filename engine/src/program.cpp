#include "loa/engine/program.h"

#include <algorithm>
#include <array>
#include <random>

#include "loa/codecs/dsp.h"
#include "loa/transport/rtcp_packet.h"
#include "loa/transport/rtp_packet.h"

namespace loa::engine {

namespace {
codecs::OpusEncoderConfig encoder_config(const ProgramConfig& c) {
    codecs::OpusEncoderConfig e;
    e.bitrate_bps = c.bitrate_bps;
    e.complexity = c.complexity;
    e.ptime_ms = c.ptime_ms;
    e.content = c.content;
    e.inband_fec = c.content == codecs::Content::Speech;
    e.expected_loss_pct = c.expected_loss_pct;
    return e;
}
}  // namespace

Program::Program(const ProgramConfig& config, std::uint32_t group, std::string cname, const SourceContext& sources,
                 const DuckingSettings& ducking)
    : config_(config),
      ducking_(ducking),
      group_(group),
      cname_(std::move(cname)),
      frame_samples_(codecs::frame_samples(config.ptime_ms)),
      frames_per_report_(static_cast<std::uint64_t>(std::max(1, 1000 / config.ptime_ms))),
      encoder_(encoder_config(config)),
      mix_(frame_samples_),
      scratch_(frame_samples_),
      ramp_(frame_samples_),
      opus_(codecs::kMaxOpusPacketBytes) {
    for (const auto& s : config_.sources) {
        sources_.push_back(make_source(s, frame_samples_, sources));
        gains_.push_back(static_cast<float>(codecs::db_to_gain(s.gain_db)));
        if (s.duck_db < 0.0) {
            beds_.push_back(gains_.size() - 1);
            DuckerConfig d;
            d.duck_db = s.duck_db;
            d.attack_ms = ducking_.attack_ms;
            d.release_ms = ducking_.release_ms;
            d.hold_ms = ducking_.hold_ms;
            d.threshold_dbfs = ducking_.threshold_dbfs;
            d.sample_rate = codecs::kSampleRate;
            duckers_.emplace_back(d);
        } else {
            voices_.push_back(gains_.size() - 1);
        }
    }
    if (config_.alert) alert_element_ = encode_alert_element(*config_.alert);
    std::random_device rd;
    sequence_ = static_cast<std::uint16_t>(rd());
    timestamp_ = static_cast<std::uint32_t>(rd());
}

void Program::skip_frames(std::uint64_t frames) noexcept {
    sequence_ = static_cast<std::uint16_t>(sequence_ + frames);
    timestamp_ += static_cast<std::uint32_t>(frames * frame_samples_);
    frame_count_ += frames;
    counters_.frames_skipped.fetch_add(frames, std::memory_order_relaxed);
}

bool Program::rewind() {
    bool any = false;
    for (auto& s : sources_) any = s->rewind() || any;
    return any;
}

void Program::produce_frame(std::int64_t deadline_ns, std::int64_t unix_ns, transport::PacketPool& pool,
                            transport::FanoutSender& fanout, const Clock& clock) noexcept {
    if (paused_.load(std::memory_order_acquire)) {
        // Nothing pulled, encoded or sent; the RTP clock keeps time.
        for (auto& s : sources_) s->hold();
        timestamp_ += static_cast<std::uint32_t>(frame_samples_);
        ++frame_count_;
        resumed_ = true;
        counters_.frames_paused.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    // Mix.
    std::fill(mix_.begin(), mix_.end(), 0.0f);
    bool voice = false;
    for (const auto i : voices_) {
        sources_[i]->render(scratch_);
        if (!beds_.empty() && !voice) voice = Ducker::voice_present(scratch_, ducking_.threshold_dbfs);
        codecs::mix_into(mix_, scratch_, gains_[i]);
    }
    for (std::size_t b = 0; b < beds_.size(); ++b) {
        const auto i = beds_[b];
        sources_[i]->render(scratch_);
        duckers_[b].process(voice, ramp_);
        for (std::size_t k = 0; k < frame_samples_; ++k) mix_[k] += scratch_[k] * ramp_[k] * gains_[i];
    }
    codecs::hard_limit(mix_);

    // Encode once.
    const auto t0 = clock.now_ns();
    std::size_t opus_bytes = 0;
    const auto st = encoder_.encode(mix_, opus_, opus_bytes);
    counters_.encode_us.record((clock.now_ns() - t0) / 1000);
    const auto rtp_timestamp = timestamp_;
    timestamp_ += static_cast<std::uint32_t>(frame_samples_);
    const auto sequence = sequence_;
    ++frame_count_;
    if (st != codecs::Status::Ok) {
        counters_.encode_errors.fetch_add(1, std::memory_order_relaxed);
        return;  // timestamp moved on: receivers conceal the gap
    }
    ++sequence_;
    counters_.frames_encoded.fetch_add(1, std::memory_order_relaxed);

    // Packetise into a pooled slot shared by every destination.
    transport::PacketSlot* slot = pool.acquire();
    if (slot == nullptr) {
        counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    // Level, and for an alert the forced amplifier/volume, on every packet
    // (stream_signal.h): a speaker acts on whichever packet it gets first.
    const std::array<std::uint8_t, 1> level{static_cast<std::uint8_t>(config_.priority)};
    const std::array<transport::RtpExtensionElement, 2> ext_storage{
        {{kPriorityExtensionId, level}, {kAlertExtensionId, alert_element_}}};
    const std::span<const transport::RtpExtensionElement> ext(ext_storage.data(), config_.alert ? 2u : 1u);
    transport::RtpHeaderFields h;
    h.marker = first_packet_ || resumed_;
    h.payload_type = config_.payload_type;
    h.sequence = sequence;
    h.timestamp = rtp_timestamp;
    h.ssrc = config_.ssrc;
    std::size_t written = 0;
    if (transport::write_rtp(slot->data, h, ext, std::span(opus_.data(), opus_bytes), written) !=
        transport::Status::Ok) {
        transport::PacketPool::release(slot);
        counters_.encode_errors.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    first_packet_ = false;
    resumed_ = false;
    slot->size = written;
    slot->deadline_ns = deadline_ns;
    if (fanout.submit(group_, slot) != transport::Status::Ok) {
        counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
    }
    transport::PacketPool::release(slot);
    counters_.packets_sent.fetch_add(1, std::memory_order_relaxed);
    counters_.octets_sent.fetch_add(opus_bytes, std::memory_order_relaxed);

    if (frame_count_ % frames_per_report_ == 1 || frames_per_report_ == 1) {
        send_sender_report(unix_ns, pool, fanout);
    }
}

void Program::send_sender_report(std::int64_t unix_ns, transport::PacketPool& pool,
                                 transport::FanoutSender& fanout) noexcept {
    transport::PacketSlot* slot = pool.acquire();
    if (slot == nullptr) return;
    transport::RtcpWriter w(slot->data);
    transport::RtcpSenderInfo info;
    info.ntp_timestamp = transport::ntp_from_unix_ns(unix_ns);
    // The frame just sent started at `deadline_ns`; its RTP time is timestamp_ - one frame.
    info.rtp_timestamp = timestamp_ - static_cast<std::uint32_t>(frame_samples_);
    info.packet_count = static_cast<std::uint32_t>(counters_.packets_sent.load(std::memory_order_relaxed));
    info.octet_count = static_cast<std::uint32_t>(counters_.octets_sent.load(std::memory_order_relaxed));
    if (w.add_sr(config_.ssrc, info) != transport::Status::Ok ||
        w.add_sdes_cname(config_.ssrc, cname_) != transport::Status::Ok) {
        transport::PacketPool::release(slot);
        return;
    }
    slot->size = w.size();
    slot->deadline_ns = 0;  // not a media frame: kept out of the spread statistics
    if (fanout.submit(group_, slot) == transport::Status::Ok) {
        counters_.sr_sent.fetch_add(1, std::memory_order_relaxed);
    }
    transport::PacketPool::release(slot);
}

}  // namespace loa::engine
