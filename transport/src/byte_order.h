#pragma once
// Big-endian field access on byte spans, for the packet parsers and builders
// of this module. Callers check bounds before calling.

#include <cstddef>
#include <cstdint>
#include <span>

namespace loa::transport {

inline std::uint16_t read_u16(std::span<const std::uint8_t> b, std::size_t at) noexcept {
    return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}

inline std::uint32_t read_u32(std::span<const std::uint8_t> b, std::size_t at) noexcept {
    return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) | (std::uint32_t{b[at + 2]} << 8) |
           std::uint32_t{b[at + 3]};
}

inline std::uint64_t read_u64(std::span<const std::uint8_t> b, std::size_t at) noexcept {
    return (std::uint64_t{read_u32(b, at)} << 32) | read_u32(b, at + 4);
}

inline void write_u16(std::span<std::uint8_t> b, std::size_t at, std::uint16_t v) noexcept {
    b[at] = static_cast<std::uint8_t>(v >> 8);
    b[at + 1] = static_cast<std::uint8_t>(v);
}

inline void write_u32(std::span<std::uint8_t> b, std::size_t at, std::uint32_t v) noexcept {
    b[at] = static_cast<std::uint8_t>(v >> 24);
    b[at + 1] = static_cast<std::uint8_t>(v >> 16);
    b[at + 2] = static_cast<std::uint8_t>(v >> 8);
    b[at + 3] = static_cast<std::uint8_t>(v);
}

inline void write_u64(std::span<std::uint8_t> b, std::size_t at, std::uint64_t v) noexcept {
    write_u32(b, at, static_cast<std::uint32_t>(v >> 32));
    write_u32(b, at + 4, static_cast<std::uint32_t>(v));
}

}  // namespace loa::transport
