#include "loa/transport/rtcp_packet.h"

#include <algorithm>

#include "byte_order.h"

namespace loa::transport {

namespace {

constexpr std::size_t kHeaderSize = 4;
constexpr std::size_t kReportBlockSize = 24;
constexpr std::size_t kSenderInfoSize = 20;
constexpr std::size_t kMaxCount = 31;
constexpr std::uint8_t kSdesEnd = 0;
constexpr std::uint8_t kSdesCname = 1;






/// Writes the common header: version 2, no padding, `count`, `type`, and the
/// length word for a sub-packet of `total` bytes (a multiple of 4).
void write_header(std::span<std::uint8_t> b, std::uint8_t count, RtcpType type, std::size_t total) noexcept {
    b[0] = static_cast<std::uint8_t>(0x80 | count);
    b[1] = static_cast<std::uint8_t>(type);
    write_u16(b, 2, static_cast<std::uint16_t>(total / 4 - 1));
}

RtcpReportBlock read_block(std::span<const std::uint8_t> b) noexcept {
    RtcpReportBlock r;
    r.ssrc = read_u32(b, 0);
    r.fraction_lost = b[4];
    // 24-bit two's complement: shift into the top of a 32-bit word and back.
    const std::uint32_t raw = (std::uint32_t{b[5]} << 16) | (std::uint32_t{b[6]} << 8) | b[7];
    r.cumulative_lost = static_cast<std::int32_t>(raw << 8) >> 8;
    r.highest_seq = read_u32(b, 8);
    r.jitter = read_u32(b, 12);
    r.lsr = read_u32(b, 16);
    r.dlsr = read_u32(b, 20);
    return r;
}

void write_block(std::span<std::uint8_t> b, const RtcpReportBlock& r) noexcept {
    write_u32(b, 0, r.ssrc);
    b[4] = r.fraction_lost;
    // Clamp to the 24-bit signed range (RFC 3550 6.4.1).
    const std::int32_t lost = std::clamp<std::int32_t>(r.cumulative_lost, -0x800000, 0x7FFFFF);
    const auto raw = static_cast<std::uint32_t>(lost) & 0xFFFFFF;
    b[5] = static_cast<std::uint8_t>(raw >> 16);
    b[6] = static_cast<std::uint8_t>(raw >> 8);
    b[7] = static_cast<std::uint8_t>(raw);
    write_u32(b, 8, r.highest_seq);
    write_u32(b, 12, r.jitter);
    write_u32(b, 16, r.lsr);
    write_u32(b, 20, r.dlsr);
}

/// Reads `count` report blocks from `body` (which must hold them) into `out`.
void collect_blocks(std::span<const std::uint8_t> body, std::size_t count, RtcpCompound& out) noexcept {
    for (std::size_t i = 0; i < count; ++i) {
        if (out.block_count >= RtcpCompound::kMaxBlocks) return;
        out.blocks[out.block_count++] = read_block(body.subspan(i * kReportBlockSize, kReportBlockSize));
    }
}

/// Parses an SDES body (after the 4-byte header): `count` chunks.
Status parse_sdes(std::span<const std::uint8_t> body, std::size_t count, RtcpCompound& out) noexcept {
    std::size_t pos = 0;
    for (std::size_t c = 0; c < count; ++c) {
        if (body.size() - pos < 4) return Status::BadLength;
        RtcpCompound::Sdes chunk;
        chunk.ssrc = read_u32(body, pos);
        pos += 4;
        bool have_cname = false;
        for (;;) {
            if (pos >= body.size()) return Status::BadLength;  // no null item
            const std::uint8_t type = body[pos];
            if (type == kSdesEnd) {
                ++pos;
                break;
            }
            if (body.size() - pos < 2) return Status::BadLength;
            const std::size_t len = body[pos + 1];
            if (len > body.size() - pos - 2) return Status::BadLength;
            if (type == kSdesCname && !have_cname) {
                const auto text = body.subspan(pos + 2, len);
                chunk.cname = std::string_view(reinterpret_cast<const char*>(text.data()), text.size());
                have_cname = true;
            }
            pos += 2 + len;
        }
        // Chunks start on 32-bit boundaries (the body starts on one).
        const std::size_t aligned = (pos + 3) / 4 * 4;
        if (aligned > body.size()) return Status::BadLength;
        pos = aligned;
        if (out.sdes_count < RtcpCompound::kMaxSdes) out.sdes[out.sdes_count++] = chunk;
    }
    return Status::Ok;
}

}  // namespace

Status parse_rtcp(std::span<const std::uint8_t> packet, RtcpCompound& out,
                  bool require_report_first) noexcept {
    out = RtcpCompound{};
    if (packet.empty()) return Status::Truncated;
    std::size_t pos = 0;
    bool first = true;
    bool have_report = false;
    while (pos < packet.size()) {
        const std::size_t left = packet.size() - pos;
        if (left < kHeaderSize) return Status::Truncated;
        const std::uint8_t b0 = packet[pos];
        if ((b0 >> 6) != 2) return Status::BadVersion;
        const bool padding = (b0 & 0x20) != 0;
        const std::size_t count = b0 & 0x1F;
        const std::uint8_t type = packet[pos + 1];
        const std::size_t length = (std::size_t{packet[pos + 2]} << 8 | packet[pos + 3]) * 4 + 4;
        if (length > left) return Status::BadLength;
        if (first && require_report_first && type != static_cast<std::uint8_t>(RtcpType::SR) &&
            type != static_cast<std::uint8_t>(RtcpType::RR)) {
            return Status::BadPacketType;
        }
        first = false;

        std::size_t end = length;
        if (padding) {
            if (length != left) return Status::BadPadding;  // only the last may pad
            const std::size_t pad = packet[pos + length - 1];
            if (pad == 0 || pad > length - kHeaderSize) return Status::BadPadding;
            end -= pad;
        }
        const auto sub = packet.subspan(pos, end);
        const auto body = sub.subspan(kHeaderSize);

        switch (type) {
            case static_cast<std::uint8_t>(RtcpType::SR): {
                if (body.size() < 4 + kSenderInfoSize + count * kReportBlockSize) return Status::BadLength;
                if (!have_report) {
                    out.sender_ssrc = read_u32(body, 0);
                    have_report = true;
                }
                if (!out.has_sr) {
                    out.sender_info.ntp_timestamp = read_u64(body, 4);
                    out.sender_info.rtp_timestamp = read_u32(body, 12);
                    out.sender_info.packet_count = read_u32(body, 16);
                    out.sender_info.octet_count = read_u32(body, 20);
                    out.has_sr = true;
                }
                collect_blocks(body.subspan(4 + kSenderInfoSize), count, out);
                break;
            }
            case static_cast<std::uint8_t>(RtcpType::RR): {
                if (body.size() < 4 + count * kReportBlockSize) return Status::BadLength;
                if (!have_report) {
                    out.sender_ssrc = read_u32(body, 0);
                    have_report = true;
                }
                out.has_rr = true;
                collect_blocks(body.subspan(4), count, out);
                break;
            }
            case static_cast<std::uint8_t>(RtcpType::SDES): {
                const Status s = parse_sdes(body, count, out);
                if (s != Status::Ok) return s;
                break;
            }
            case static_cast<std::uint8_t>(RtcpType::BYE): {
                if (body.size() < count * 4) return Status::BadLength;
                for (std::size_t i = 0; i < count; ++i) {
                    if (out.bye_count < RtcpCompound::kMaxBye) out.bye[out.bye_count++] = read_u32(body, i * 4);
                }
                const std::size_t rest = body.size() - count * 4;
                if (rest > 0) {  // optional reason: length byte + text
                    const std::size_t reason = body[count * 4];
                    if (reason > rest - 1) return Status::BadLength;
                }
                break;
            }
            case static_cast<std::uint8_t>(RtcpType::APP): {
                if (body.size() < 8) return Status::BadLength;
                if (out.app_count < RtcpCompound::kMaxApp) {
                    RtcpCompound::App& app = out.apps[out.app_count++];
                    app.ssrc = read_u32(body, 0);
                    app.subtype = static_cast<std::uint8_t>(count);
                    for (std::size_t i = 0; i < 4; ++i) app.name[i] = static_cast<char>(body[4 + i]);
                    app.data = body.subspan(8);
                }
                break;
            }
            default:
                break;  // unknown type: header and length already validated
        }
        pos += length;
    }
    return Status::Ok;
}

Status RtcpWriter::add_sr(std::uint32_t ssrc, const RtcpSenderInfo& info,
                          std::span<const RtcpReportBlock> blocks) noexcept {
    if (blocks.size() > kMaxCount) return Status::BadLength;
    const std::size_t total = kHeaderSize + 4 + kSenderInfoSize + blocks.size() * kReportBlockSize;
    if (total > out_.size() - size_) return Status::BufferTooSmall;
    auto b = out_.subspan(size_, total);
    write_header(b, static_cast<std::uint8_t>(blocks.size()), RtcpType::SR, total);
    write_u32(b, 4, ssrc);
    write_u64(b, 8, info.ntp_timestamp);
    write_u32(b, 16, info.rtp_timestamp);
    write_u32(b, 20, info.packet_count);
    write_u32(b, 24, info.octet_count);
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        write_block(b.subspan(28 + i * kReportBlockSize, kReportBlockSize), blocks[i]);
    }
    size_ += total;
    return Status::Ok;
}

Status RtcpWriter::add_rr(std::uint32_t ssrc, std::span<const RtcpReportBlock> blocks) noexcept {
    if (blocks.size() > kMaxCount) return Status::BadLength;
    const std::size_t total = kHeaderSize + 4 + blocks.size() * kReportBlockSize;
    if (total > out_.size() - size_) return Status::BufferTooSmall;
    auto b = out_.subspan(size_, total);
    write_header(b, static_cast<std::uint8_t>(blocks.size()), RtcpType::RR, total);
    write_u32(b, 4, ssrc);
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        write_block(b.subspan(8 + i * kReportBlockSize, kReportBlockSize), blocks[i]);
    }
    size_ += total;
    return Status::Ok;
}

Status RtcpWriter::add_sdes_cname(std::uint32_t ssrc, std::string_view cname) noexcept {
    if (cname.size() > 255) return Status::BadLength;
    // Chunk: SSRC, CNAME item (type, length, text), null item, zero padding
    // to 32 bits (at least one null octet always ends the item list).
    const std::size_t chunk = (4 + 2 + cname.size() + 1 + 3) / 4 * 4;
    const std::size_t total = kHeaderSize + chunk;
    if (total > out_.size() - size_) return Status::BufferTooSmall;
    auto b = out_.subspan(size_, total);
    write_header(b, 1, RtcpType::SDES, total);
    write_u32(b, 4, ssrc);
    b[8] = kSdesCname;
    b[9] = static_cast<std::uint8_t>(cname.size());
    for (std::size_t i = 0; i < cname.size(); ++i) b[10 + i] = static_cast<std::uint8_t>(cname[i]);
    std::fill(b.begin() + static_cast<std::ptrdiff_t>(10 + cname.size()), b.end(), std::uint8_t{0});
    size_ += total;
    return Status::Ok;
}

Status RtcpWriter::add_bye(std::uint32_t ssrc) noexcept {
    const std::size_t total = kHeaderSize + 4;
    if (total > out_.size() - size_) return Status::BufferTooSmall;
    auto b = out_.subspan(size_, total);
    write_header(b, 1, RtcpType::BYE, total);
    write_u32(b, 4, ssrc);
    size_ += total;
    return Status::Ok;
}

Status RtcpWriter::add_app(std::uint32_t ssrc, std::uint8_t subtype, std::string_view name4,
                           std::span<const std::uint8_t> data) noexcept {
    if (subtype > kMaxCount) return Status::BadPacketType;
    if (name4.size() != 4 || data.size() % 4 != 0) return Status::BadLength;
    const std::size_t total = kHeaderSize + 8 + data.size();
    if (total / 4 - 1 > 0xFFFF) return Status::BadLength;
    if (total > out_.size() - size_) return Status::BufferTooSmall;
    auto b = out_.subspan(size_, total);
    write_header(b, subtype, RtcpType::APP, total);
    write_u32(b, 4, ssrc);
    for (std::size_t i = 0; i < 4; ++i) b[8 + i] = static_cast<std::uint8_t>(name4[i]);
    std::copy(data.begin(), data.end(), b.begin() + 12);
    size_ += total;
    return Status::Ok;
}

namespace {
constexpr std::int64_t kNsPerS = 1'000'000'000;
}  // namespace

std::uint64_t ntp_from_unix_ns(std::int64_t unix_ns) noexcept {
    std::int64_t secs = unix_ns / kNsPerS;
    std::int64_t rem = unix_ns % kNsPerS;
    if (rem < 0) {  // floor division for times before 1970
        rem += kNsPerS;
        secs -= 1;
    }
    const auto frac = ((static_cast<std::uint64_t>(rem) << 32) + static_cast<std::uint64_t>(kNsPerS / 2)) /
                      static_cast<std::uint64_t>(kNsPerS);
    const auto ntp_secs =
        static_cast<std::uint32_t>(static_cast<std::uint64_t>(secs) + kNtpUnixEpochOffsetS);
    return (std::uint64_t{ntp_secs} << 32) | frac;
}

std::int64_t unix_ns_from_ntp(std::uint64_t ntp) noexcept {
    const auto secs = static_cast<std::int64_t>(ntp >> 32) - static_cast<std::int64_t>(kNtpUnixEpochOffsetS);
    const std::uint64_t frac = ntp & 0xFFFFFFFFULL;
    const auto ns = static_cast<std::int64_t>((frac * static_cast<std::uint64_t>(kNsPerS) + (1ULL << 31)) >> 32);
    return secs * kNsPerS + ns;
}

}  // namespace loa::transport
