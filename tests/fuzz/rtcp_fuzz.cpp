// Fuzz target for parse_rtcp. On Ok, checks counts against capacities and
// that every span lies inside the input, then rebuilds the parsed content with
// RtcpWriter and checks the re-parse agrees. Aborts on any mismatch.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>
#include <vector>

#include "loa/transport/rtcp_packet.h"

using namespace loa::transport;

#define FUZZ_CHECK(cond)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                       \
        }                                                                       \
    } while (0)

namespace {

bool inside(const void* p, std::size_t n, const std::uint8_t* data, std::size_t size) {
    if (n == 0) return true;
    const auto* b = static_cast<const std::uint8_t*>(p);
    return b >= data && b + n <= data + size;
}

void check_bounds(const RtcpCompound& c, const std::uint8_t* data, std::size_t size) {
    FUZZ_CHECK(c.block_count <= RtcpCompound::kMaxBlocks);
    FUZZ_CHECK(c.sdes_count <= RtcpCompound::kMaxSdes);
    FUZZ_CHECK(c.bye_count <= RtcpCompound::kMaxBye);
    FUZZ_CHECK(c.app_count <= RtcpCompound::kMaxApp);
    for (std::size_t i = 0; i < c.sdes_count; ++i) {
        FUZZ_CHECK(c.sdes[i].cname.size() <= 255);
        FUZZ_CHECK(inside(c.sdes[i].cname.data(), c.sdes[i].cname.size(), data, size));
    }
    for (std::size_t i = 0; i < c.app_count; ++i) {
        FUZZ_CHECK(c.apps[i].subtype <= 31);
        FUZZ_CHECK(inside(c.apps[i].data.data(), c.apps[i].data.size(), data, size));
    }
    for (std::size_t i = 0; i < c.block_count; ++i) {
        FUZZ_CHECK(c.blocks[i].cumulative_lost >= -0x800000 && c.blocks[i].cumulative_lost <= 0x7FFFFF);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> in(data, size);
    RtcpCompound strict;
    RtcpCompound c;
    const Status s_strict = parse_rtcp(in, strict, true);
    const Status s = parse_rtcp(in, c, false);
    // Requiring SR/RR first only ever rejects more (strict parsing may stop
    // early with BadPacketType before reaching another error).
    if (s_strict == Status::Ok) FUZZ_CHECK(s == Status::Ok);
    if (s != Status::Ok) {
        FUZZ_CHECK(s_strict == s || s_strict == Status::BadPacketType);
        return 0;
    }
    FUZZ_CHECK(s_strict == Status::Ok || s_strict == Status::BadPacketType);
    FUZZ_CHECK(size >= 4 && size % 4 == 0);
    check_bounds(c, data, size);

    // Rebuild: SR and/or RR (all kept blocks go to the first), SDES CNAMEs,
    // BYEs, and APPs whose data is a whole number of words.
    std::vector<std::uint8_t> buf(4096 + 4 * size);
    RtcpWriter w(buf);
    const auto blocks = std::span(c.blocks).first(c.block_count);
    if (c.has_sr) FUZZ_CHECK(w.add_sr(c.sender_ssrc, c.sender_info, blocks) == Status::Ok);
    if (c.has_rr) FUZZ_CHECK(w.add_rr(c.sender_ssrc, c.has_sr ? decltype(blocks){} : blocks) == Status::Ok);
    for (std::size_t i = 0; i < c.sdes_count; ++i) {
        FUZZ_CHECK(w.add_sdes_cname(c.sdes[i].ssrc, c.sdes[i].cname) == Status::Ok);
    }
    for (std::size_t i = 0; i < c.bye_count; ++i) FUZZ_CHECK(w.add_bye(c.bye[i]) == Status::Ok);
    std::size_t apps = 0;
    for (std::size_t i = 0; i < c.app_count; ++i) {
        const auto& a = c.apps[i];
        if (a.data.size() % 4 != 0) continue;
        FUZZ_CHECK(w.add_app(a.ssrc, a.subtype, std::string_view(a.name.data(), 4), a.data) == Status::Ok);
        ++apps;
    }
    if (w.size() == 0) return 0;

    RtcpCompound r;
    FUZZ_CHECK(parse_rtcp(w.bytes(), r, false) == Status::Ok);
    FUZZ_CHECK(r.has_sr == c.has_sr && r.has_rr == c.has_rr);
    if (c.has_sr || c.has_rr) FUZZ_CHECK(r.sender_ssrc == c.sender_ssrc);
    if (c.has_sr) {
        FUZZ_CHECK(r.sender_info.ntp_timestamp == c.sender_info.ntp_timestamp);
        FUZZ_CHECK(r.sender_info.rtp_timestamp == c.sender_info.rtp_timestamp);
        FUZZ_CHECK(r.sender_info.packet_count == c.sender_info.packet_count);
        FUZZ_CHECK(r.sender_info.octet_count == c.sender_info.octet_count);
    }
    FUZZ_CHECK(r.block_count == c.block_count);
    for (std::size_t i = 0; i < c.block_count; ++i) {
        const auto& x = r.blocks[i];
        const auto& y = c.blocks[i];
        FUZZ_CHECK(x.ssrc == y.ssrc && x.fraction_lost == y.fraction_lost &&
                   x.cumulative_lost == y.cumulative_lost && x.highest_seq == y.highest_seq &&
                   x.jitter == y.jitter && x.lsr == y.lsr && x.dlsr == y.dlsr);
    }
    FUZZ_CHECK(r.sdes_count == c.sdes_count);
    for (std::size_t i = 0; i < c.sdes_count; ++i) {
        FUZZ_CHECK(r.sdes[i].ssrc == c.sdes[i].ssrc && r.sdes[i].cname == c.sdes[i].cname);
    }
    FUZZ_CHECK(r.bye_count == c.bye_count);
    for (std::size_t i = 0; i < c.bye_count; ++i) FUZZ_CHECK(r.bye[i] == c.bye[i]);
    FUZZ_CHECK(r.app_count == apps);
    return 0;
}
