#pragma once
// RAII wrapper around one libopus decoder (48 kHz mono). One owner thread;
// no allocation after construction. Every method is real-time safe and never
// throws on packet data; a moved-from decoder returns Internal.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "loa/codecs/status.h"

namespace loa::codecs {

class OpusDecoder {
public:
    OpusDecoder();
    ~OpusDecoder();
    OpusDecoder(const OpusDecoder&) = delete;
    OpusDecoder& operator=(const OpusDecoder&) = delete;
    OpusDecoder(OpusDecoder&&) noexcept;
    OpusDecoder& operator=(OpusDecoder&&) noexcept;

    /// Decodes one packet into `out`; `samples` receives the count decoded
    /// (0 on error). `out` must hold at least the packet's duration
    /// (kMaxFrameSamples is enough for every packet Loa produces; longer
    /// outside packets, up to 120 ms, give BufferTooSmall). CorruptPacket on
    /// undecodable input (caller conceals).
    [[nodiscard]] Status decode(std::span<const std::uint8_t> packet, std::span<float> out,
                                std::size_t& samples) noexcept;

    /// Recovers the frame *before* `next_packet` from its in-band FEC data.
    /// `out.size()` is the number of samples to recover (one packet time, a
    /// multiple of 2.5 ms, at most 120 ms; else BadArgument). If the packet has
    /// no FEC, libopus falls back to PLC; if out is longer than the FEC data,
    /// the start is concealed and the end recovered. Afterwards decode
    /// `next_packet` normally. CorruptPacket (out zeroed) on a malformed packet.
    [[nodiscard]] Status decode_fec(std::span<const std::uint8_t> next_packet,
                                    std::span<float> out) noexcept;

    /// Packet-loss concealment for `out.size()` samples (a multiple of 2.5 ms,
    /// at most 120 ms; else BadArgument).
    [[nodiscard]] Status conceal(std::span<float> out) noexcept;

    /// Duration of `packet` in samples at 48 kHz, or 0 if it is malformed.
    static std::size_t packet_samples(std::span<const std::uint8_t> packet) noexcept;
    /// True if the packet carries in-band FEC (LBRR) data for the previous frame.
    /// libopus 1.3.1 has no opus_packet_has_lbrr(), so this reads the SILK
    /// header flags of the packet's first frame itself (RFC 6716 4.2.3);
    /// always false for CELT-only and malformed packets.
    static bool packet_has_fec(std::span<const std::uint8_t> packet) noexcept;

    /// Forgets all decoder state (e.g. on a stream switch).
    void reset() noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace loa::codecs
