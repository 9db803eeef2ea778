// Fuzz target for decode_cluster_status. On Ok, encode -> decode must give
// the same status, and the encoding must carry the input's v1 fields.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "loa/transport/cluster_status.h"

using namespace loa::transport;

#define FUZZ_CHECK(cond)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                       \
        }                                                                       \
    } while (0)

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> in(data, size);
    ClusterStatus s;
    const Status st = decode_cluster_status(in, s);
    if (st != Status::Ok) {
        FUZZ_CHECK(st == Status::Truncated || st == Status::BadVersion);
        FUZZ_CHECK(size < kClusterStatusSize || data[0] == 0);
        return 0;
    }
    FUZZ_CHECK(size >= kClusterStatusSize && data[0] != 0);
    FUZZ_CHECK(s.volume_pct <= 100);

    std::array<std::uint8_t, kClusterStatusSize> buf{};
    FUZZ_CHECK(encode_cluster_status(s, buf) == Status::Ok);
    FUZZ_CHECK(buf[0] == kClusterStatusVersion);
    // Every field byte except flags' reserved bits, volume (clamped) and the
    // reserved bytes is carried over unchanged.
    for (std::size_t i = 4; i < kClusterStatusSize; ++i) {
        if (i == 6 || i == 7) continue;
        FUZZ_CHECK(buf[i] == data[i]);
    }
    FUZZ_CHECK((buf[1] & 1) == (data[1] & 1));

    ClusterStatus t;
    FUZZ_CHECK(decode_cluster_status(buf, t) == Status::Ok);
    FUZZ_CHECK(t.playing_ssrc == s.playing_ssrc && t.volume_pct == s.volume_pct &&
               t.amplifier_on == s.amplifier_on && t.buffer_delay_ms == s.buffer_delay_ms &&
               t.packets_received == s.packets_received && t.packets_lost == s.packets_lost &&
               t.packets_late == s.packets_late && t.packets_malformed == s.packets_malformed &&
               t.frames_concealed == s.frames_concealed && t.underruns == s.underruns &&
               t.uptime_s == s.uptime_s);
    return 0;
}
