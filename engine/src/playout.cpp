#include "loa/engine/playout.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "loa/codecs/audio_format.h"
#include "loa/codecs/opus_decoder.h"
#include "loa/codecs/resampler.h"
#include "loa/codecs/time_scale.h"
#include "loa/engine/delay_estimator.h"
#include "loa/engine/drift_controller.h"
#include "loa/transport/jitter_buffer.h"

namespace loa::engine {

namespace {

constexpr int kRate = codecs::kSampleRate;
constexpr double kSamplesPerMs = kRate / 1000.0;
/// Longest Opus packet (120 ms): the decode scratch size.
constexpr std::size_t kMaxDecode = static_cast<std::size_t>(kRate) * 120 / 1000;
/// Longest render() block honoured in one go (longer ones are split).
constexpr std::size_t kMaxBlock = codecs::kMaxFrameSamples;
/// Decoded samples waiting for the resampler: a block, a packet, an expansion
/// and some slack.
constexpr std::size_t kFifoCapacity = 4 * kMaxDecode;
/// Input the resampler wants beyond its output (filter length, rounding).
constexpr std::size_t kResamplerSlack = 64;
/// libopus concealment granularity (2.5 ms).
constexpr std::size_t kQuantum = kRate / 400;
/// Fade to silence over this long once concealment exceeds fade_after_ms.
constexpr double kFadeOutMs = 20.0;
/// Fade back in over this long when real audio follows a faded gap.
constexpr double kFadeInMs = 5.0;

/// Headroom on top of jitter quantile + packet time: the resampler's look-ahead,
/// the sliding minimum's lag under drift, the drift controller's transients.
constexpr double kSafetyMs = 2.0;
/// The drift controller ignores larger delay errors (ms).
constexpr double kDriftErrorLimitMs = 40.0;
// After a loss on a stream that carries in-band FEC, the adaptive target keeps
// one extra packet time for this long, so that the packet after a lost one
// (which holds its FEC copy) is usually here when the lost frame is due.
constexpr std::int64_t kFecHeadroomHoldNs = 20'000'000'000;
/// Time-stretch hysteresis (ms of delay error).
constexpr double kStretchOnMs = 4.0;
constexpr double kStretchOffMs = 1.0;

std::int64_t media_ns(std::int64_t samples) noexcept {
    // samples * 1e9 / 48000 without overflow for any realistic stream age.
    return samples * 62'500 / 3;
}

double ns_to_ms(std::int64_t ns) noexcept { return static_cast<double>(ns) / 1e6; }

}  // namespace

struct Playout::Impl {
    explicit Impl(const PlayoutConfig& c)
        : config(sanitise(c)),
          jb(jb_config(config)),
          resampler(codecs::ResamplerQuality::SincFastest),
          estimator(estimator_config(config)),
          drift(drift_config(config)),
          fifo(kFifoCapacity, 0.0f),
          frame(kMaxDecode, 0.0f),
          imposed(config.fixed_delay_ms),
          rescue(codecs::kMaxOpusPacketBytes, 0) {}

    static PlayoutConfig sanitise(PlayoutConfig c) {
        c.min_delay_ms = std::max(c.min_delay_ms, 0);
        c.max_delay_ms = std::clamp(c.max_delay_ms, 10, 10'000);
        c.capacity = std::max<std::size_t>(c.capacity, 8);
        c.fade_after_ms = std::max(c.fade_after_ms, 0);
        c.max_drift_ppm = std::clamp(c.max_drift_ppm, 0, 100'000);
        c.delay_quantile = std::clamp(c.delay_quantile, 0.5, 1.0);
        if (c.late_wait_ms) c.late_wait_ms = std::clamp(*c.late_wait_ms, 0, c.max_delay_ms);
        return c;
    }
    static transport::JitterBufferConfig jb_config(const PlayoutConfig& c) {
        transport::JitterBufferConfig j;
        j.capacity = c.capacity;
        j.owner_paced = true;
        return j;
    }
    static DelayEstimatorConfig estimator_config(const PlayoutConfig& c) {
        DelayEstimatorConfig e;
        e.max_delay_ms = c.max_delay_ms;
        e.quantile = c.delay_quantile;
        e.forget_factor = c.histogram_forget_factor;
        return e;
    }
    static DriftControllerConfig drift_config(const PlayoutConfig& c) {
        DriftControllerConfig d;
        d.max_ppm = static_cast<double>(c.max_drift_ppm);
        return d;
    }

    PlayoutConfig config;
    transport::JitterBuffer jb;
    codecs::OpusDecoder decoder;
    codecs::Resampler resampler;
    codecs::TimeScale stretcher;
    DelayEstimator estimator;
    DriftController drift;
    std::vector<float> fifo;   // decoded samples not yet given to the resampler
    std::size_t fifo_len = 0;
    double held_in_resampler = 0.0;  // input taken by the resampler and not yet played out
    std::vector<float> frame;  // decode scratch

    std::optional<int> imposed;
    double target_ms = 20.0;
    std::size_t max_block = 0;

    // Timestamp unwrapping (per stream).
    bool ts_known = false;
    std::uint32_t ts_ref32 = 0;
    std::int64_t ts_ref = 0;

    bool playing = false;
    std::int64_t fifo_end_ts = 0;   // media time (samples) just after the FIFO's last sample
    std::size_t frame_samples = 960;  // packet time, from decoded packets
    std::uint64_t pending = 0;      // samples concealed while waiting for a packet that may still come
    std::uint64_t concealed_acc = 0;  // concealed samples not yet counted as a whole frame
    std::uint64_t conceal_run = 0;  // consecutive concealed samples
    float gain = 1.0f;              // fade gain at the end of the last frame
    bool accelerating = false;
    bool expanding = false;
    double ppm = 0.0;
    bool have_last_render = false;
    std::int64_t last_render_ns = 0;
    std::int64_t render_now = 0;
    double render_error_ms = 0.0;   // delay error at the start of this render()
    double stretched_ms = 0.0;      // net delay change by stretching during this render()
    bool stream_changed = false;
    bool fec_seen = false;            // the current stream carries in-band FEC
    std::uint64_t lost_seen = 0;      // jitter buffer's lost counter at the last render
    bool loss_recent = false;
    std::int64_t last_loss_ns = 0;
    double wait_limit_ms = 0.0;       // wait budget for a missing packet (update_target())

    // Waiting for a packet popped as Missing (see await_step()).
    bool awaiting = false;
    std::uint16_t await_seq = 0;
    bool rescue_ready = false;        // push() kept the awaited packet here
    std::vector<std::uint8_t> rescue;
    std::size_t rescue_len = 0;
    std::uint32_t rescue_ts = 0;
    std::uint64_t rescued = 0;        // popped as lost by the jitter buffer, yet played

    std::int64_t extend_ts(std::uint32_t ts) noexcept {
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

    void reset_stream() noexcept {
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

    double packet_ms() const noexcept { return static_cast<double>(frame_samples) / kSamplesPerMs; }

    void update_target() noexcept {
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

    /// Playout delay of the sample about to leave the FIFO, relative to the
    /// arrival of a packet with no network jitter, at consumer time t_ns.
    double delay_ms(std::int64_t t_ns) const noexcept {
        const std::int64_t play_ts =
            fifo_end_ts - static_cast<std::int64_t>(fifo_len) - std::llround(held_in_resampler);
        return ns_to_ms(t_ns - estimator.floor_ns() - media_ns(play_ts));
    }

    void reset_resampler() noexcept {
        resampler.reset();
        held_in_resampler = 0.0;
    }

    void consume(std::size_t n) noexcept {
        n = std::min(n, fifo_len);
        if (n == 0) return;
        fifo_len -= n;
        if (fifo_len > 0) std::memmove(fifo.data(), fifo.data() + n, fifo_len * sizeof(float));
    }

    /// Appends frame[from..to) to the FIFO, with the fade gain for concealment.
    void append(std::size_t from, std::size_t to, bool concealed) noexcept {
        std::size_t n = std::min(to - std::min(from, to), kFifoCapacity - fifo_len);
        float* dst = fifo.data() + fifo_len;
        const float* src = frame.data() + from;
        const double fade_after = config.fade_after_ms * kSamplesPerMs;
        const double fade_len = kFadeOutMs * kSamplesPerMs;
        if (concealed) {
            for (std::size_t i = 0; i < n; ++i) {
                const double pos = static_cast<double>(conceal_run + i);
                float g = 1.0f;
                if (pos > fade_after) g = static_cast<float>(std::max(0.0, 1.0 - (pos - fade_after) / fade_len));
                g = std::min(g, gain < 1.0f ? gain : g);  // never fade back up while concealing
                dst[i] = src[i] * g;
                gain = g;
            }
            conceal_run += n;
        } else {
            if (gain < 1.0f) {
                const double in_len = kFadeInMs * kSamplesPerMs;
                const float g0 = gain;
                for (std::size_t i = 0; i < n; ++i) {
                    const double t = std::min(1.0, static_cast<double>(i + 1) / in_len);
                    const float g = g0 + (1.0f - g0) * static_cast<float>(t);
                    dst[i] = src[i] * g;
                }
            } else {
                std::memcpy(dst, src, n * sizeof(float));
            }
            gain = 1.0f;
            conceal_run = 0;
        }
        fifo_len += n;
    }

    std::size_t plc_length() const noexcept {
        std::size_t n = frame_samples - frame_samples % kQuantum;
        return std::clamp<std::size_t>(n, kQuantum, kMaxDecode);
    }

    /// `n` samples (a multiple of 2.5 ms) of concealment into `frame`.
    /// Counted in whole frames, and only while PLC still sounds: once faded
    /// out it is silence.
    void conceal(std::size_t n, PlayoutStats& stats) noexcept {
        const double fade_end = config.fade_after_ms * kSamplesPerMs + kFadeOutMs * kSamplesPerMs;
        if (static_cast<double>(conceal_run) >= fade_end) {
            std::fill_n(frame.begin(), n, 0.0f);  // faded out: no need to run the decoder
            return;
        }
        if (decoder.conceal(std::span<float>(frame.data(), n)) != codecs::Status::Ok) {
            std::fill_n(frame.begin(), n, 0.0f);
        }
        concealed_acc += n;
        while (concealed_acc >= frame_samples) {
            concealed_acc -= frame_samples;
            stats.concealed.fetch_add(1, std::memory_order_relaxed);
        }
    }

    /// Time-stretches the FIFO toward the target after a real frame arrived.
    void stretch(PlayoutStats& stats) noexcept {
        const double err = render_error_ms + stretched_ms;
        const std::span<float> region(fifo.data(), fifo_len);
        if (err > kStretchOnMs || (accelerating && err > kStretchOffMs)) {
            expanding = false;
            const auto max_remove = static_cast<std::size_t>(std::max(0.0, (err - 0.5) * kSamplesPerMs));
            const auto r = stretcher.accelerate(region, max_remove);
            accelerating = r.samples > 0;
            if (r.samples > 0) {
                fifo_len -= r.samples;
                stretched_ms -= static_cast<double>(r.samples) / kSamplesPerMs;
                stats.accelerated_samples.fetch_add(r.samples, std::memory_order_relaxed);
            }
        } else if (err < -kStretchOnMs || (expanding && err < -kStretchOffMs)) {
            accelerating = false;
            const auto max_insert = static_cast<std::size_t>(std::max(0.0, (-err + 0.5) * kSamplesPerMs));
            const std::span<float> room(fifo.data(), kFifoCapacity);
            const auto r = stretcher.expand(room, fifo_len, max_insert);
            expanding = r.samples > 0;
            if (r.samples > 0) {
                fifo_len += r.samples;
                stretched_ms += static_cast<double>(r.samples) / kSamplesPerMs;
                stats.expanded_samples.fetch_add(r.samples, std::memory_order_relaxed);
            }
        } else {
            accelerating = false;
            expanding = false;
        }
    }

    /// Samples of concealment that may be played for one missing packet
    /// before its frame is given up (see PlayoutConfig::late_wait_ms).
    std::uint64_t wait_budget() const noexcept {
        return static_cast<std::uint64_t>(std::max(0.0, wait_limit_ms) * kSamplesPerMs);
    }

    /// Concealment for about `want` samples (whole 2.5 ms quanta, at most a
    /// frame and at most `most`) while waiting for a packet that may still come.
    void wait_piece(std::size_t want, PlayoutStats& stats,
                    std::uint64_t most = std::numeric_limits<std::uint64_t>::max()) noexcept {
        std::size_t n = (want + kQuantum - 1) / kQuantum * kQuantum;
        n = std::clamp(n, kQuantum, plc_length());
        if (most < n) n = std::max<std::size_t>(kQuantum, static_cast<std::size_t>(most) / kQuantum * kQuantum);
        pending += n;
        conceal(n, stats);
        append(0, n, true);
    }

    /// The frame at fifo_end_ts (its packet popped as Missing) from the next
    /// packet's in-band FEC, if that packet is here and has some. Played
    /// whole even after concealment that waited for it (`pending`): the
    /// delay grew by that much, and accelerate takes it back.
    bool try_fec(std::size_t n, PlayoutStats& stats) noexcept {
        const auto next = jb.peek_next();
        if (!next || !codecs::OpusDecoder::packet_has_fec(next->payload) ||
            decoder.decode_fec(next->payload, std::span<float>(frame.data(), n)) != codecs::Status::Ok) {
            return false;
        }
        pending = 0;
        fifo_end_ts += static_cast<std::int64_t>(n);
        stats.recovered_fec.fetch_add(1, std::memory_order_relaxed);
        append(0, n, false);
        stretch(stats);
        return true;
    }

    /// The frame at fifo_end_ts is lost: concealment for what `pending` has
    /// not already covered.
    void give_up(std::size_t n, PlayoutStats& stats) noexcept {
        const auto covered = static_cast<std::size_t>(std::min<std::uint64_t>(pending, n));
        pending -= covered;
        fifo_end_ts += static_cast<std::int64_t>(n);
        if (covered == n) return;
        conceal(n - covered, stats);
        append(0, n - covered, true);
    }

    /// One step of waiting for a Missing packet (`await_seq`): play it if it
    /// came (push() kept it), else rebuild it from the next packet's FEC if
    /// that came, else conceal a little more, until the wait budget is spent.
    void await_step(std::size_t want, PlayoutStats& stats) noexcept {
        const std::size_t n = plc_length();
        if (rescue_ready) {
            awaiting = false;
            rescue_ready = false;
            ++rescued;
            stats.late_played.fetch_add(1, std::memory_order_relaxed);
            // It plays whole, after the concealment that waited for it: the
            // delay grew by `pending`, and accelerate takes it back.
            pending = 0;
            play_packet(std::span<const std::uint8_t>(rescue.data(), rescue_len), rescue_ts, stats);
            return;
        }
        if (try_fec(n, stats)) {
            awaiting = false;
            return;
        }
        if (pending < wait_budget()) {
            wait_piece(want, stats, wait_budget() - pending);
            return;
        }
        awaiting = false;
        give_up(n, stats);
    }

    /// Decodes one packet whose media time is `ts32` into the FIFO.
    void play_packet(std::span<const std::uint8_t> payload, std::uint32_t ts32, PlayoutStats& stats) noexcept {
        const std::int64_t ts = extend_ts(ts32);
        if (ts != fifo_end_ts) fifo_end_ts = ts;  // DTX gap or timestamp jump: play it now
        std::size_t n = 0;
        if (decoder.decode(payload, frame, n) != codecs::Status::Ok || n == 0) {
            stats.decode_errors.fetch_add(1, std::memory_order_relaxed);
            n = plc_length();
            conceal(n, stats);
            fifo_end_ts += static_cast<std::int64_t>(n);
            append(0, n, true);
            return;
        }
        if (n % kQuantum == 0) frame_samples = n;
        stats.frames_decoded.fetch_add(1, std::memory_order_relaxed);
        fifo_end_ts += static_cast<std::int64_t>(n);
        append(0, n, false);
        stretch(stats);
    }

    /// Produces audio into the FIFO: the next decoded frame, its FEC or PLC
    /// replacement, or (nothing to play yet) `want` samples of concealment.
    void next_frame(std::size_t want, PlayoutStats& stats) noexcept {
        if (fifo_len + 2 * kMaxDecode > kFifoCapacity) return;  // cannot happen: the caller drains first
        if (awaiting) {
            await_step(want, stats);
            return;
        }
        transport::JitterPacket pkt;
        const transport::JitterPop r = jb.pop(render_now, pkt);
        switch (r) {
            case transport::JitterPop::Packet: {
                if (pending > 0) {
                    // The packet we concealed for came after all: the buffer ran dry.
                    if (!pkt.marker) stats.underruns.fetch_add(1, std::memory_order_relaxed);
                    pending = 0;
                }
                play_packet(pkt.payload, pkt.timestamp, stats);
                return;
            }
            case transport::JitterPop::Missing: {
                // Not here while later ones are: lost, or only late.
                const std::size_t n = plc_length();
                if (try_fec(n, stats)) return;
                if (wait_budget() > pending) {
                    // No FEC for it yet either: keep its frame open for a
                    // while (see await_step()).
                    awaiting = true;
                    await_seq = static_cast<std::uint16_t>(jb.play_position() - 1);
                    rescue_ready = false;
                    wait_piece(want, stats, wait_budget() - pending);
                    return;
                }
                give_up(n, stats);
                return;
            }
            case transport::JitterPop::Empty:
                // Nothing here: conceal just what is needed and wait; if the
                // packet still comes it is played (the delay grew), if later
                // ones come first this concealment stands for it.
                wait_piece(want, stats);
                return;
            case transport::JitterPop::Buffering:
                break;
        }
        const std::size_t n = plc_length();
        std::fill_n(frame.begin(), n, 0.0f);
        append(0, n, false);
    }

    /// Drops audio when the delay is far above the target (a long stall
    /// delivered at once): whole packets, counted late.
    void skip_excess(PlayoutStats& stats) noexcept {
        const double limit = std::max(150.0, 2.0 * target_ms);
        // While concealing for a missing packet the delay only looks high:
        // if the packet is lost, the concealment stands for it.
        if (pending > 0 || render_error_ms <= limit) return;
        double err = render_error_ms;
        const double keep = target_ms * 0.5;
        // Old decoded audio first.
        err -= static_cast<double>(fifo_len) / kSamplesPerMs;
        fifo_len = 0;
        pending = 0;
        while (err > keep) {
            transport::JitterPacket pkt;
            const auto r = jb.pop(render_now, pkt);
            if (r == transport::JitterPop::Packet) {
                fifo_end_ts = extend_ts(pkt.timestamp) + static_cast<std::int64_t>(frame_samples);
                stats.late.fetch_add(1, std::memory_order_relaxed);
            } else if (r == transport::JitterPop::Missing) {
                fifo_end_ts += static_cast<std::int64_t>(frame_samples);
            } else {
                break;
            }
            err -= packet_ms();
        }
        reset_resampler();
        decoder.reset();
        accelerating = expanding = false;
        render_error_ms = delay_ms(render_now) - target_ms;
    }

    /// Fills `dst` from the FIFO through the drift resampler.
    void produce(std::span<float> dst, PlayoutStats& stats) noexcept {
        std::size_t done = 0;
        int guard = 0;
        const double in_per_out = 1.0 + ppm * 1e-6;
        const double ratio = 1.0 / in_per_out;
        while (done < dst.size()) {
            if (++guard > 256) {
                std::fill(dst.begin() + static_cast<std::ptrdiff_t>(done), dst.end(), 0.0f);
                return;
            }
            const std::size_t remaining = dst.size() - done;
            if (!config.drift_compensation) {
                if (fifo_len == 0) {
                    next_frame(remaining, stats);
                    continue;
                }
                const std::size_t k = std::min(fifo_len, remaining);
                std::memcpy(dst.data() + done, fifo.data(), k * sizeof(float));
                consume(k);
                done += k;
                continue;
            }
            const auto need_in = static_cast<std::size_t>(std::ceil(static_cast<double>(remaining) * in_per_out));
            if (fifo_len == 0) {
                next_frame(need_in + kResamplerSlack / 2, stats);
                continue;
            }
            const auto need = static_cast<std::size_t>(std::ceil(static_cast<double>(remaining) * in_per_out)) +
                              kResamplerSlack;
            std::size_t used = 0;
            std::size_t gen = 0;
            // Offer only what this block needs, so the converter's own store stays small.
            const std::size_t offer = std::min(fifo_len, need);
            if (resampler.process(std::span<const float>(fifo.data(), offer), dst.subspan(done), ratio, used,
                                  gen) != codecs::Status::Ok) {
                reset_resampler();
                continue;
            }
            consume(used);
            done += gen;
            held_in_resampler += static_cast<double>(used) - static_cast<double>(gen) * in_per_out;
            if (done < dst.size() && (used == 0 || fifo_len == 0)) {
                const std::size_t left = dst.size() - done;
                const auto want = static_cast<std::size_t>(std::ceil(static_cast<double>(left) * in_per_out));
                next_frame(want + kResamplerSlack / 2, stats);
            }
        }
    }
};

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
