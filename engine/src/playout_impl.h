#pragma once
// Playout's state (Playout::Impl) and the constants its source files share
// (playout.cpp, playout_fifo.cpp, playout_frames.cpp). Private to engine/src.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <vector>

#include "loa/codecs/audio_format.h"
#include "loa/codecs/opus_decoder.h"
#include "loa/codecs/resampler.h"
#include "loa/codecs/time_scale.h"
#include "loa/engine/delay_estimator.h"
#include "loa/engine/drift_controller.h"
#include "loa/engine/playout.h"
#include "loa/transport/jitter_buffer.h"

namespace loa::engine {

namespace playout_detail {

inline constexpr int kRate = codecs::kSampleRate;
inline constexpr double kSamplesPerMs = kRate / 1000.0;
/// Longest Opus packet (120 ms): the decode scratch size.
inline constexpr std::size_t kMaxDecode = static_cast<std::size_t>(kRate) * 120 / 1000;
/// Longest render() block honoured in one go (longer ones are split).
inline constexpr std::size_t kMaxBlock = codecs::kMaxFrameSamples;
/// Decoded samples waiting for the resampler: a block, a packet, an expansion
/// and some slack.
inline constexpr std::size_t kFifoCapacity = 4 * kMaxDecode;
/// Input the resampler wants beyond its output (filter length, rounding).
inline constexpr std::size_t kResamplerSlack = 64;
/// libopus concealment granularity (2.5 ms).
inline constexpr std::size_t kQuantum = kRate / 400;
/// Fade to silence over this long once concealment exceeds fade_after_ms.
inline constexpr double kFadeOutMs = 20.0;
/// Fade back in over this long when real audio follows a faded gap.
inline constexpr double kFadeInMs = 5.0;

/// Headroom on top of jitter quantile + packet time: the resampler's look-ahead,
/// the sliding minimum's lag under drift, the drift controller's transients.
inline constexpr double kSafetyMs = 2.0;
/// The drift controller ignores larger delay errors (ms).
inline constexpr double kDriftErrorLimitMs = 40.0;
// After a loss on a stream that carries in-band FEC, the adaptive target keeps
// one extra packet time for this long, so that the packet after a lost one
// (which holds its FEC copy) is usually here when the lost frame is due.
inline constexpr std::int64_t kFecHeadroomHoldNs = 20'000'000'000;
/// Time-stretch hysteresis (ms of delay error).
inline constexpr double kStretchOnMs = 4.0;
inline constexpr double kStretchOffMs = 1.0;

inline std::int64_t media_ns(std::int64_t samples) noexcept {
    // samples * 1e9 / 48000 without overflow for any realistic stream age.
    return samples * 62'500 / 3;
}

inline double ns_to_ms(std::int64_t ns) noexcept { return static_cast<double>(ns) / 1e6; }

}  // namespace playout_detail

struct Playout::Impl {
    explicit Impl(const PlayoutConfig& c);
    static PlayoutConfig sanitise(PlayoutConfig c);
    static transport::JitterBufferConfig jb_config(const PlayoutConfig& c);
    static DelayEstimatorConfig estimator_config(const PlayoutConfig& c);
    static DriftControllerConfig drift_config(const PlayoutConfig& c);

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

    // Stream state and the target delay (playout.cpp).
    std::int64_t extend_ts(std::uint32_t ts) noexcept;
    void reset_stream() noexcept;
    double packet_ms() const noexcept;
    void update_target() noexcept;
    /// Playout delay of the sample about to leave the FIFO, relative to the
    /// arrival of a packet with no network jitter, at consumer time t_ns.
    double delay_ms(std::int64_t t_ns) const noexcept;

    // The FIFO and what leaves it (playout_fifo.cpp).
    void reset_resampler() noexcept;
    void consume(std::size_t n) noexcept;
    /// Appends frame[from..to) to the FIFO, with the fade gain for concealment.
    void append(std::size_t from, std::size_t to, bool concealed) noexcept;
    /// Time-stretches the FIFO toward the target after a real frame arrived.
    void stretch(PlayoutStats& stats) noexcept;
    /// Fills `dst` from the FIFO through the drift resampler.
    void produce(std::span<float> dst, PlayoutStats& stats) noexcept;

    // Frames into the FIFO: decoded, rebuilt from FEC, waited for or concealed (playout_frames.cpp).
    std::size_t plc_length() const noexcept;
    /// `n` samples (a multiple of 2.5 ms) of concealment into `frame`.
    /// Counted in whole frames, and only while PLC still sounds: once faded
    /// out it is silence.
    void conceal(std::size_t n, PlayoutStats& stats) noexcept;
    /// Samples of concealment that may be played for one missing packet
    /// before its frame is given up (see PlayoutConfig::late_wait_ms).
    std::uint64_t wait_budget() const noexcept;
    /// Concealment for about `want` samples (whole 2.5 ms quanta, at most a
    /// frame and at most `most`) while waiting for a packet that may still come.
    void wait_piece(std::size_t want, PlayoutStats& stats,
                    std::uint64_t most = std::numeric_limits<std::uint64_t>::max()) noexcept;
    /// The frame at fifo_end_ts (its packet popped as Missing) from the next
    /// packet's in-band FEC, if that packet is here and has some. Played
    /// whole even after concealment that waited for it (`pending`): the
    /// delay grew by that much, and accelerate takes it back.
    bool try_fec(std::size_t n, PlayoutStats& stats) noexcept;
    /// The frame at fifo_end_ts is lost: concealment for what `pending` has
    /// not already covered.
    void give_up(std::size_t n, PlayoutStats& stats) noexcept;
    /// One step of waiting for a Missing packet (`await_seq`): play it if it
    /// came (push() kept it), else rebuild it from the next packet's FEC if
    /// that came, else conceal a little more, until the wait budget is spent.
    void await_step(std::size_t want, PlayoutStats& stats) noexcept;
    /// Decodes one packet whose media time is `ts32` into the FIFO.
    void play_packet(std::span<const std::uint8_t> payload, std::uint32_t ts32, PlayoutStats& stats) noexcept;
    /// Produces audio into the FIFO: the next decoded frame, its FEC or PLC
    /// replacement, or (nothing to play yet) `want` samples of concealment.
    void next_frame(std::size_t want, PlayoutStats& stats) noexcept;
    /// Drops audio when the delay is far above the target (a long stall
    /// delivered at once): whole packets, counted late.
    void skip_excess(PlayoutStats& stats) noexcept;
};

}  // namespace loa::engine
