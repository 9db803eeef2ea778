#include "loa/transport/rtp_packet.h"

#include <algorithm>

#include "byte_order.h"

namespace loa::transport {

namespace {





constexpr std::uint8_t kOneByteTerminatorId = 15;
constexpr std::size_t kMaxCsrcs = 15;

}  // namespace

RtpExtensionReader::RtpExtensionReader(std::uint16_t profile,
                                       std::span<const std::uint8_t> block) noexcept
    : block_(block), one_byte_(profile == kOneByteExtensionProfile) {
    done_ = !is_rfc8285_profile(profile);
}

bool RtpExtensionReader::next(RtpExtensionElement& e) noexcept {
    while (!done_) {
        if (pos_ >= block_.size()) {
            done_ = true;
            break;
        }
        const std::uint8_t first = block_[pos_];
        if (first == 0) {  // padding byte (both forms)
            ++pos_;
            continue;
        }
        std::size_t header = 0;
        std::size_t len = 0;
        std::uint8_t id = 0;
        if (one_byte_) {
            id = static_cast<std::uint8_t>(first >> 4);
            if (id == kOneByteTerminatorId) {
                done_ = true;
                break;
            }
            if (id == 0) {  // id 0 with a non-zero length nibble: a padding byte
                ++pos_;
                continue;
            }
            header = 1;
            len = static_cast<std::size_t>(first & 0x0F) + 1;
        } else {
            if (pos_ + 2 > block_.size()) {
                done_ = true;
                malformed_ = true;
                break;
            }
            id = first;
            header = 2;
            len = block_[pos_ + 1];
        }
        if (len > block_.size() - pos_ - header) {
            done_ = true;
            malformed_ = true;
            break;
        }
        e.id = id;
        e.data = block_.subspan(pos_ + header, len);
        pos_ += header + len;
        return true;
    }
    return false;
}

Status RtpView::parse(std::span<const std::uint8_t> packet, RtpView& out) noexcept {
    if (packet.size() < kRtpHeaderSize) return Status::Truncated;
    const std::uint8_t b0 = packet[0];
    if ((b0 >> 6) != 2) return Status::BadVersion;
    if (looks_like_rtcp(packet)) return Status::NotRtp;

    const bool padding = (b0 & 0x20) != 0;
    const bool extension = (b0 & 0x10) != 0;
    const std::size_t cc = b0 & 0x0F;

    std::size_t pos = kRtpHeaderSize;
    if (cc * 4 > packet.size() - pos) return Status::BadCsrcCount;
    const auto csrcs = packet.subspan(pos, cc * 4);
    pos += cc * 4;

    std::uint16_t profile = 0;
    std::span<const std::uint8_t> ext_data;
    if (extension) {
        if (packet.size() - pos < 4) return Status::BadExtension;
        profile = read_u16(packet, pos);
        const std::size_t ext_len = std::size_t{read_u16(packet, pos + 2)} * 4;
        pos += 4;
        if (ext_len > packet.size() - pos) return Status::BadExtension;
        ext_data = packet.subspan(pos, ext_len);
        pos += ext_len;
        RtpExtensionReader reader(profile, ext_data);
        RtpExtensionElement e;
        while (reader.next(e)) {
        }
        if (reader.malformed()) return Status::BadExtension;
    }

    std::size_t end = packet.size();
    if (padding) {
        const std::size_t available = end - pos;
        if (available == 0) return Status::BadPadding;
        const std::size_t pad = packet[end - 1];
        if (pad == 0 || pad > available) return Status::BadPadding;
        end -= pad;
    }

    out.bytes_ = packet;
    out.payload_ = packet.subspan(pos, end - pos);
    out.ext_data_ = ext_data;
    out.csrcs_ = csrcs;
    out.timestamp_ = read_u32(packet, 4);
    out.ssrc_ = read_u32(packet, 8);
    out.sequence_ = read_u16(packet, 2);
    out.ext_profile_ = profile;
    out.payload_type_ = static_cast<std::uint8_t>(packet[1] & 0x7F);
    out.csrc_count_ = static_cast<std::uint8_t>(cc);
    out.marker_ = (packet[1] & 0x80) != 0;
    out.padding_ = padding;
    out.extension_ = extension;
    return Status::Ok;
}

std::uint32_t RtpView::csrc(std::size_t i) const noexcept {
    if (i >= csrc_count_) return 0;
    return read_u32(csrcs_, i * 4);
}

std::optional<std::span<const std::uint8_t>> RtpView::find_extension(std::uint8_t id) const noexcept {
    if (id == 0) return std::nullopt;
    RtpExtensionReader reader = extensions();
    RtpExtensionElement e;
    while (reader.next(e)) {
        if (e.id == id) return e.data;
    }
    return std::nullopt;
}

Status write_rtp(std::span<std::uint8_t> out, const RtpHeaderFields& header,
                 std::span<const RtpExtensionElement> extensions,
                 std::span<const std::uint8_t> payload, std::size_t& written) noexcept {
    written = 0;
    if (header.payload_type > 127) return Status::BadPacketType;
    const auto second = static_cast<std::uint8_t>((header.marker ? 0x80 : 0) | header.payload_type);
    if (second >= 192 && second <= 223) return Status::BadPacketType;
    if (header.csrcs.size() > kMaxCsrcs) return Status::BadCsrcCount;

    bool one_byte = true;
    for (const auto& e : extensions) {
        if (e.id == 0) return Status::BadExtension;
        if (e.id > 14 || e.data.empty() || e.data.size() > 16) one_byte = false;
    }
    std::size_t ext_body = 0;
    for (const auto& e : extensions) {
        if (!one_byte && e.data.size() > 255) return Status::BadExtension;
        ext_body += (one_byte ? 1 : 2) + e.data.size();
    }
    const std::size_t ext_padded = (ext_body + 3) / 4 * 4;
    if (ext_padded / 4 > 0xFFFF) return Status::BadExtension;

    const std::size_t header_len = kRtpHeaderSize + header.csrcs.size() * 4;
    const std::size_t ext_len = extensions.empty() ? 0 : 4 + ext_padded;
    const std::size_t total = header_len + ext_len + payload.size();
    if (total > out.size()) return Status::BufferTooSmall;

    out[0] = static_cast<std::uint8_t>(0x80 | (extensions.empty() ? 0 : 0x10) | header.csrcs.size());
    out[1] = second;
    write_u16(out, 2, header.sequence);
    write_u32(out, 4, header.timestamp);
    write_u32(out, 8, header.ssrc);
    std::size_t pos = kRtpHeaderSize;
    for (const std::uint32_t c : header.csrcs) {
        write_u32(out, pos, c);
        pos += 4;
    }
    if (!extensions.empty()) {
        write_u16(out, pos, one_byte ? kOneByteExtensionProfile : kTwoByteExtensionProfile);
        write_u16(out, pos + 2, static_cast<std::uint16_t>(ext_padded / 4));
        pos += 4;
        const std::size_t block_end = pos + ext_padded;
        for (const auto& e : extensions) {
            if (one_byte) {
                out[pos++] = static_cast<std::uint8_t>((std::size_t{e.id} << 4) | (e.data.size() - 1));
            } else {
                out[pos++] = e.id;
                out[pos++] = static_cast<std::uint8_t>(e.data.size());
            }
            std::copy(e.data.begin(), e.data.end(), out.begin() + static_cast<std::ptrdiff_t>(pos));
            pos += e.data.size();
        }
        std::fill(out.begin() + static_cast<std::ptrdiff_t>(pos),
                  out.begin() + static_cast<std::ptrdiff_t>(block_end), std::uint8_t{0});
        pos = block_end;
    }
    std::copy(payload.begin(), payload.end(), out.begin() + static_cast<std::ptrdiff_t>(pos));
    written = total;
    return Status::Ok;
}

bool looks_like_rtcp(std::span<const std::uint8_t> packet) noexcept {
    return packet.size() >= 2 && packet[1] >= 192 && packet[1] <= 223;
}

std::int64_t SequenceUnwrapper::unwrap(std::uint16_t seq) noexcept {
    if (!started_) {
        started_ = true;
        last_ = seq;
        return last_;
    }
    const auto last16 = static_cast<std::uint16_t>(last_ & 0xFFFF);
    const std::int64_t value = last_ + seq_delta(last16, seq);
    if (value > last_) last_ = value;
    return value;
}

}  // namespace loa::transport
