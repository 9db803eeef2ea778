// Playout::Impl: the next frame into the FIFO, decoded, rebuilt from the
// next packet's FEC, waited for or concealed, and skipping an excess delay.
#include <algorithm>
#include <cstring>
#include <limits>

#include "playout_impl.h"

namespace loa::engine {

using namespace playout_detail;

std::size_t Playout::Impl::plc_length() const noexcept {
    std::size_t n = frame_samples - frame_samples % kQuantum;
    return std::clamp<std::size_t>(n, kQuantum, kMaxDecode);
}

void Playout::Impl::conceal(std::size_t n, PlayoutStats& stats) noexcept {
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

std::uint64_t Playout::Impl::wait_budget() const noexcept {
    return static_cast<std::uint64_t>(std::max(0.0, wait_limit_ms) * kSamplesPerMs);
}

void Playout::Impl::wait_piece(std::size_t want, PlayoutStats& stats, std::uint64_t most) noexcept {
    std::size_t n = (want + kQuantum - 1) / kQuantum * kQuantum;
    n = std::clamp(n, kQuantum, plc_length());
    if (most < n) n = std::max<std::size_t>(kQuantum, static_cast<std::size_t>(most) / kQuantum * kQuantum);
    pending += n;
    conceal(n, stats);
    append(0, n, true);
}

bool Playout::Impl::try_fec(std::size_t n, PlayoutStats& stats) noexcept {
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

void Playout::Impl::give_up(std::size_t n, PlayoutStats& stats) noexcept {
    const auto covered = static_cast<std::size_t>(std::min<std::uint64_t>(pending, n));
    pending -= covered;
    fifo_end_ts += static_cast<std::int64_t>(n);
    if (covered == n) return;
    conceal(n - covered, stats);
    append(0, n - covered, true);
}

void Playout::Impl::await_step(std::size_t want, PlayoutStats& stats) noexcept {
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

void Playout::Impl::play_packet(std::span<const std::uint8_t> payload, std::uint32_t ts32, PlayoutStats& stats) noexcept {
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

void Playout::Impl::next_frame(std::size_t want, PlayoutStats& stats) noexcept {
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

void Playout::Impl::skip_excess(PlayoutStats& stats) noexcept {
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

}  // namespace loa::engine
