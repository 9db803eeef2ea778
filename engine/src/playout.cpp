// Playout: the public calls (push, render, target delay, flush) and the
// per-stream state (timestamps, reset, the target delay).
#include "loa/engine/playout.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "playout_impl.h"

namespace loa::engine {

using namespace playout_detail;

Playout::Impl::Impl(const PlayoutConfig& c)
    : config(sanitise(c)),
      jb(jb_config(config)),
      resampler(codecs::ResamplerQuality::SincFastest),
      estimator(estimator_config(config)),
      drift(drift_config(config)),
      fifo(kFifoCapacity, 0.0f),
      frame(kMaxDecode, 0.0f),
      imposed(config.fixed_delay_ms),
      rescue(codecs::kMaxOpusPacketBytes, 0) {}

PlayoutConfig Playout::Impl::sanitise(PlayoutConfig c) {
    c.min_delay_ms = std::max(c.min_delay_ms, 0);
    c.max_delay_ms = std::clamp(c.max_delay_ms, 10, 10'000);
    c.capacity = std::max<std::size_t>(c.capacity, 8);
    c.fade_after_ms = std::max(c.fade_after_ms, 0);
    c.max_drift_ppm = std::clamp(c.max_drift_ppm, 0, 100'000);
    c.delay_quantile = std::clamp(c.delay_quantile, 0.5, 1.0);
    if (c.late_wait_ms) c.late_wait_ms = std::clamp(*c.late_wait_ms, 0, c.max_delay_ms);
    return c;
}

transport::JitterBufferConfig Playout::Impl::jb_config(const PlayoutConfig& c) {
    transport::JitterBufferConfig j;
    j.capacity = c.capacity;
    j.owner_paced = true;
    return j;
}

DelayEstimatorConfig Playout::Impl::estimator_config(const PlayoutConfig& c) {
    DelayEstimatorConfig e;
    e.max_delay_ms = c.max_delay_ms;
    e.quantile = c.delay_quantile;
    e.forget_factor = c.histogram_forget_factor;
    return e;
}

DriftControllerConfig Playout::Impl::drift_config(const PlayoutConfig& c) {
    DriftControllerConfig d;
    d.max_ppm = static_cast<double>(c.max_drift_ppm);
    return d;
}

std::int64_t Playout::Impl::extend_ts(std::uint32_t ts) noexcept {
    if (!ts_known) {
        ts_known = true;
        ts_ref32 = ts;
        ts_ref = static_cast<std::int64_t>(ts);
        return ts_ref;
    }
    const std::int64_t ext = ts_ref + static_cast<std::int32_t>(ts - ts_ref32);
    if (ext > ts_ref) {
        ts_ref = ext;
        ts_ref32 = ts;
    }
    return ext;
}

void Playout::Impl::reset_stream() noexcept {
    decoder.reset();
    reset_resampler();
    estimator.reset();
    drift.reset(false);
    fifo_len = 0;
    ts_known = false;
    playing = false;
    pending = 0;
    concealed_acc = 0;
    conceal_run = 0;
    gain = 1.0f;
    accelerating = false;
    expanding = false;
    fec_seen = false;
    loss_recent = false;
    awaiting = false;
    rescue_ready = false;
}

double Playout::Impl::packet_ms() const noexcept { return static_cast<double>(frame_samples) / kSamplesPerMs; }

void Playout::Impl::update_target() noexcept {
    const double block_ms = static_cast<double>(max_block) / kSamplesPerMs;
    const double floor_ms = std::max(packet_ms(), block_ms) + kSafetyMs;
    const auto max_ms = static_cast<double>(config.max_delay_ms);
    if (imposed) {
        const double lo = std::max(packet_ms(), block_ms);  // no headroom: the caller chose
        target_ms = std::clamp(static_cast<double>(*imposed), std::min(lo, max_ms), max_ms);
    } else {
        double adaptive = static_cast<double>(estimator.quantile_ms()) + floor_ms;
        if (fec_seen && loss_recent && render_now - last_loss_ns < kFecHeadroomHoldNs) adaptive += packet_ms();
        const double lo = std::max(static_cast<double>(config.min_delay_ms), floor_ms);
        target_ms = std::clamp(adaptive, std::min(lo, max_ms), max_ms);
    }
    wait_limit_ms = config.late_wait_ms ? static_cast<double>(*config.late_wait_ms) : packet_ms();
}

double Playout::Impl::delay_ms(std::int64_t t_ns) const noexcept {
    const std::int64_t play_ts =
        fifo_end_ts - static_cast<std::int64_t>(fifo_len) - std::llround(held_in_resampler);
    return ns_to_ms(t_ns - estimator.floor_ns() - media_ns(play_ts));
}

Playout::Playout(const PlayoutConfig& config) : impl_(std::make_unique<Impl>(config)) {
    impl_->update_target();
    stats_.target_delay_ms.store(static_cast<std::int32_t>(std::lround(impl_->target_ms)));
}

Playout::~Playout() = default;

PlayoutPush Playout::push(const transport::RtpView& packet, std::int64_t arrival_ns) noexcept {
    Impl& m = *impl_;
    stats_.received.fetch_add(1, std::memory_order_relaxed);
    const auto payload = packet.payload();
    if (payload.empty() || payload.size() > codecs::kMaxOpusPacketBytes ||
        codecs::OpusDecoder::packet_samples(payload) == 0 ||
        codecs::OpusDecoder::packet_samples(payload) > kMaxDecode) {
        return PlayoutPush::Malformed;
    }
    const auto r = m.jb.push(packet, arrival_ns);
    PlayoutPush result = PlayoutPush::Accepted;
    switch (r) {
        case transport::JitterPush::NewStream:
            m.reset_stream();
            m.stream_changed = true;
            stats_.ssrc_changes.fetch_add(1, std::memory_order_relaxed);
            stats_.ssrc.store(packet.ssrc(), std::memory_order_relaxed);
            result = PlayoutPush::NewStream;
            break;
        case transport::JitterPush::Accepted:
            break;
        case transport::JitterPush::Duplicate:
            stats_.duplicate.fetch_add(1, std::memory_order_relaxed);
            return PlayoutPush::Duplicate;
        case transport::JitterPush::Late:
            if (packet.ssrc() != m.jb.ssrc()) {
                stats_.late.fetch_add(1, std::memory_order_relaxed);
                return PlayoutPush::Late;  // straggler of the previous stream
            }
            if (m.awaiting && packet.sequence() == m.await_seq) {
                if (m.rescue_ready) {
                    stats_.duplicate.fetch_add(1, std::memory_order_relaxed);
                    return PlayoutPush::Duplicate;
                }
                // The packet the playout is waiting for: its frame is still
                // open, so it is played, not late (render() takes it from here).
                std::memcpy(m.rescue.data(), payload.data(), payload.size());
                m.rescue_len = payload.size();
                m.rescue_ts = packet.timestamp();
                m.rescue_ready = true;
                break;
            }
            stats_.late.fetch_add(1, std::memory_order_relaxed);
            result = PlayoutPush::Late;
            break;
    }
    if (result != PlayoutPush::Late && codecs::OpusDecoder::packet_has_fec(payload)) m.fec_seen = true;
    // Every packet of the stream, late ones included, feeds the delay statistics.
    const std::int64_t ts = m.extend_ts(packet.timestamp());
    const std::int64_t media = media_ns(ts);
    if (m.estimator.has_floor() &&
        std::llabs(arrival_ns - media - m.estimator.floor_ns()) > 10'000'000'000LL) {
        m.estimator.reset();  // the sender's timestamps jumped: start the statistics over
    }
    m.estimator.update(arrival_ns, media);
    const auto& js = m.jb.stats();
    stats_.reordered.store(js.reordered, std::memory_order_relaxed);
    stats_.overflows.store(js.overflow, std::memory_order_relaxed);
    stats_.lost.store(js.lost - m.rescued, std::memory_order_relaxed);
    return result;
}

void Playout::render(std::span<float> out, std::int64_t now_ns) noexcept {
    Impl& m = *impl_;
    // Very long blocks are rendered in pieces.
    while (out.size() > kMaxBlock) {
        render(out.first(kMaxBlock), now_ns);
        now_ns += media_ns(static_cast<std::int64_t>(kMaxBlock));
        out = out.subspan(kMaxBlock);
    }
    const std::size_t n = out.size();
    if (n == 0) return;
    m.max_block = std::max(m.max_block, n);
    const double dt = m.have_last_render ? static_cast<double>(now_ns - m.last_render_ns) / 1e9 : 0.0;
    m.have_last_render = true;
    m.last_render_ns = now_ns;
    m.render_now = now_ns;
    if (const std::uint64_t lost = m.jb.stats().lost; lost != m.lost_seen) {
        m.lost_seen = lost;
        m.loss_recent = true;
        m.last_loss_ns = now_ns;
    }
    m.update_target();

    std::size_t lead = 0;
    if (!m.playing) {
        const auto first = m.jb.has_stream() ? m.jb.peek_next() : std::nullopt;
        if (!first || !m.estimator.has_floor()) {
            std::fill(out.begin(), out.end(), 0.0f);
            stats_.current_delay_ms.store(0, std::memory_order_relaxed);
            stats_.target_delay_ms.store(static_cast<std::int32_t>(std::lround(m.target_ms)),
                                         std::memory_order_relaxed);
            return;
        }
        const std::int64_t first_ts = m.extend_ts(first->timestamp);
        const double d0 = ns_to_ms(now_ns - m.estimator.floor_ns() - media_ns(first_ts));
        const double block_ms = static_cast<double>(n) / kSamplesPerMs;
        if (d0 + block_ms < m.target_ms) {
            std::fill(out.begin(), out.end(), 0.0f);
            stats_.current_delay_ms.store(static_cast<std::int32_t>(std::lround(std::max(d0, 0.0))),
                                          std::memory_order_relaxed);
            stats_.target_delay_ms.store(static_cast<std::int32_t>(std::lround(m.target_ms)),
                                         std::memory_order_relaxed);
            return;
        }
        // Start now, after just enough silence that the delay is the target.
        lead = static_cast<std::size_t>(std::clamp((m.target_ms - d0) * kSamplesPerMs, 0.0, static_cast<double>(n)));
        m.playing = true;
        m.fifo_end_ts = first_ts;
        m.fifo_len = 0;
        m.pending = 0;
        m.reset_resampler();
        std::fill_n(out.begin(), lead, 0.0f);
    }

    const std::int64_t t_ns = now_ns + media_ns(static_cast<std::int64_t>(lead));
    m.render_error_ms = m.delay_ms(t_ns) - m.target_ms;
    m.stretched_ms = 0.0;
    m.skip_excess(stats_);
    // While waiting for a packet the delay grows by design (and shrinks back
    // when the loss is confirmed): not a clock difference, so the drift
    // controller holds still.
    // Errors beyond a few packet times are for time-stretching and skipping.
    if (m.config.drift_compensation && lead == 0 && dt > 0.0 && m.pending == 0 &&
        std::fabs(m.render_error_ms) < kDriftErrorLimitMs) {
        m.ppm = m.drift.update(m.render_error_ms, dt);
    }
    m.produce(out.subspan(lead), stats_);

    const auto& js = m.jb.stats();
    stats_.lost.store(js.lost - m.rescued, std::memory_order_relaxed);
    stats_.reordered.store(js.reordered, std::memory_order_relaxed);
    stats_.overflows.store(js.overflow, std::memory_order_relaxed);
    stats_.current_delay_ms.store(static_cast<std::int32_t>(std::lround(m.render_error_ms + m.target_ms)),
                                  std::memory_order_relaxed);
    stats_.target_delay_ms.store(static_cast<std::int32_t>(std::lround(m.target_ms)), std::memory_order_relaxed);
    stats_.drift_ppm.store(static_cast<std::int32_t>(std::lround(m.ppm)), std::memory_order_relaxed);
}

void Playout::set_target_delay_ms(std::optional<int> ms) noexcept {
    impl_->imposed = ms;
    impl_->update_target();
    stats_.target_delay_ms.store(static_cast<std::int32_t>(std::lround(impl_->target_ms)),
                                 std::memory_order_relaxed);
}

void Playout::flush() noexcept {
    impl_->jb.flush();
    impl_->reset_stream();
    stats_.ssrc.store(0, std::memory_order_relaxed);
    stats_.current_delay_ms.store(0, std::memory_order_relaxed);
}

bool Playout::take_stream_change() noexcept {
    const bool c = impl_->stream_changed;
    impl_->stream_changed = false;
    return c;
}

bool Playout::has_stream() const noexcept { return impl_->jb.has_stream(); }

}  // namespace loa::engine
