#pragma once
// The media logic of a speaker, free of sockets and clocks: classifies each
// received datagram (engine filter, RTP/RTCP demux, parse), feeds the jitter
// buffer, decodes with FEC/PLC into output frames, keeps the RFC 3550
// reception statistics and builds the RTCP compound report (RR + SDES CNAME
// + APP "LOAS" status).
//
// Threads: one owner thread (the speaker's io thread) calls every method
// except counters(), whose atomics may be read from any thread. Nothing here
// allocates after construction.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <boost/asio/ip/udp.hpp>

#include "loa-speaker/reception_stats.h"
#include "loa-speaker/speaker_config.h"
#include "loa-speaker/speaker_counters.h"
#include "loa/codecs/audio_format.h"
#include "loa/codecs/opus_decoder.h"
#include "loa/transport/jitter_buffer.h"

namespace loa::speaker {

/// What on_datagram() did with a datagram.
enum class DatagramKind {
    Media,      // RTP from an engine, handed to the jitter buffer
    Control,    // RTCP from an engine
    Foreign,    // source is not an engine: dropped
    Malformed,  // failed to parse: dropped
};

/// Largest RTCP compound report the speaker writes.
inline constexpr std::size_t kMaxReportBytes = 512;

class SpeakerPipeline {
public:
    /// `config` must be validated; `config.ssrc` must be non-zero here.
    /// `start_ns`: monotonic time of start (uptime reference).
    SpeakerPipeline(const SpeakerConfig& config, std::int64_t start_ns);

    /// Owner thread. Handles one received datagram. `now_ns`: monotonic
    /// arrival time.
    DatagramKind on_datagram(std::span<const std::uint8_t> bytes,
                             const boost::asio::ip::udp::endpoint& from, std::int64_t now_ns) noexcept;

    /// Owner thread. Produces exactly out.size() samples of output audio
    /// (48 kHz mono), pulling packets from the jitter buffer as needed.
    void render(std::span<float> out, std::int64_t now_ns) noexcept;

    /// True once after the played SSRC changed (a report is due at once).
    bool take_report_request() noexcept;

    /// Owner thread. Writes the RTCP compound report into `out`; returns its
    /// size (0 if `out` is too small).
    std::size_t build_report(std::span<std::uint8_t> out, std::int64_t now_ns) noexcept;

    /// Where reports go: per engine, its address:port if a port was given,
    /// else the source last seen from it (nullopt until then).
    std::span<const std::optional<boost::asio::ip::udp::endpoint>> report_destinations() const noexcept {
        return destinations_;
    }

    /// Owner thread. Counts one report handed to the socket.
    void count_report_sent() noexcept;

    void set_volume(int pct) noexcept;
    void set_amplifier(bool on) noexcept { amplifier_on_ = on; }

    std::uint32_t own_ssrc() const noexcept { return config_.ssrc; }
    const SpeakerConfig& config() const noexcept { return config_; }
    const Counters& counters() const noexcept { return counters_; }
    const transport::JitterBuffer& jitter_buffer() const noexcept { return jb_; }

private:
    void on_media_packet(const transport::RtpView& v, std::int64_t now_ns) noexcept;
    void produce(std::int64_t now_ns) noexcept;
    std::size_t packet_samples() const noexcept;
    void publish_jitter_stats() noexcept;

    SpeakerConfig config_;
    std::int64_t start_ns_;
    transport::JitterBuffer jb_;
    codecs::OpusDecoder decoder_;
    ReceptionStats reception_;
    Counters counters_;
    std::vector<std::optional<boost::asio::ip::udp::endpoint>> destinations_;

    std::array<float, codecs::kMaxFrameSamples> pcm_{};
    std::size_t pcm_len_ = 0;
    std::size_t pcm_pos_ = 0;
    std::uint32_t decoder_ssrc_ = 0;
    bool decoder_primed_ = false;         // decoded a packet since the last reset
    std::size_t conceal_run_samples_ = 0; // consecutive concealed samples
    float gain_ = 1.0f;
    int volume_pct_ = 100;
    bool amplifier_on_ = false;
    bool report_requested_ = false;
};

}  // namespace loa::speaker
