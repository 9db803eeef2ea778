#pragma once
// RAII wrapper around one libopus decoder (48 kHz mono). One owner thread;
// no allocation after construction.

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

    /// Decodes one packet into `out`; `samples` receives the count decoded.
    /// `out` must hold at least the packet's duration (kMaxFrameSamples is
    /// always enough). CorruptPacket on undecodable input (caller conceals).
    [[nodiscard]] Status decode(std::span<const std::uint8_t> packet, std::span<float> out,
                                std::size_t& samples) noexcept;

    /// Recovers the frame *before* `next_packet` from its in-band FEC data.
    /// `out.size()` is the number of samples to recover (one packet time).
    /// If the packet has no FEC, libopus falls back to PLC.
    [[nodiscard]] Status decode_fec(std::span<const std::uint8_t> next_packet,
                                    std::span<float> out) noexcept;

    /// Packet-loss concealment for `out.size()` samples (a multiple of 2.5 ms).
    [[nodiscard]] Status conceal(std::span<float> out) noexcept;

    /// Duration of `packet` in samples at 48 kHz, or 0 if it is malformed.
    static std::size_t packet_samples(std::span<const std::uint8_t> packet) noexcept;
    /// True if the packet carries in-band FEC (LBRR) data for the previous frame.
    static bool packet_has_fec(std::span<const std::uint8_t> packet) noexcept;

    void reset() noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace loa::codecs
