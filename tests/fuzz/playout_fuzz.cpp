// Fuzz target for engine::Playout's packet input (the jitter buffer, the
// decoder's FEC/PLC decisions, time-stretch and drift code behind it). The
// input is a script of operations, each starting with one byte:
//   0  raw datagram: 2-byte length, then that many bytes, parsed as RTP
//   1  built packet: sequence step (int8), timestamp step (int8 x 120),
//      flags (bit 0: second SSRC, bit 1: marker), payload length, payload
//   2  render: block length (byte + 1) x 24 samples (up to 128 ms)
//   3  advance the clock by byte x 0.5 ms
//   4  control: 0 adaptive target, 255 flush, else impose byte x 4 ms
// Checks that every output sample is finite and that the stats stay sane.
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <vector>

#include "loa/engine/playout.h"
#include "loa/transport/rtp_packet.h"

using namespace loa;

#define FUZZ_CHECK(cond)                                                                    \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                   \
        }                                                                                   \
    } while (0)

namespace {

struct Reader {
    const std::uint8_t* data;
    std::size_t size;
    std::size_t pos = 0;

    bool more() const { return pos < size; }
    std::uint8_t byte() { return pos < size ? data[pos++] : 0; }
    std::span<const std::uint8_t> take(std::size_t n) {
        n = std::min(n, size - pos);
        const auto s = std::span<const std::uint8_t>(data + pos, n);
        pos += n;
        return s;
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    engine::PlayoutConfig cfg;
    cfg.capacity = 32;
    engine::Playout p(cfg);
    Reader in{data, size};
    std::int64_t now = 1'000'000'000;
    std::uint16_t seq = 100;
    std::uint32_t ts = 5000;
    std::vector<float> out(128 * 48);
    std::array<std::uint8_t, transport::kMaxRtpPacket> pkt{};
    int ops = 0;
    while (in.more() && ++ops < 4000) {
        switch (in.byte() % 5) {
            case 0: {
                const std::size_t len = static_cast<std::size_t>(in.byte()) | (static_cast<std::size_t>(in.byte()) << 8);
                const auto bytes = in.take(len % (transport::kMaxRtpPacket + 1));
                transport::RtpView v;
                if (transport::RtpView::parse(bytes, v) == transport::Status::Ok) p.push(v, now);
                break;
            }
            case 1: {
                seq = static_cast<std::uint16_t>(seq + static_cast<std::int8_t>(in.byte()));
                ts += static_cast<std::uint32_t>(static_cast<std::int32_t>(static_cast<std::int8_t>(in.byte())) * 120);
                const std::uint8_t flags = in.byte();
                const auto payload = in.take(in.byte());
                transport::RtpHeaderFields h;
                h.payload_type = 111;
                h.sequence = seq;
                h.timestamp = ts;
                h.ssrc = (flags & 1) != 0 ? 0x2222 : 0x1111;
                h.marker = (flags & 2) != 0;
                std::size_t written = 0;
                if (transport::write_rtp(pkt, h, {}, payload, written) == transport::Status::Ok) {
                    transport::RtpView v;
                    FUZZ_CHECK(transport::RtpView::parse(std::span<const std::uint8_t>(pkt.data(), written), v) ==
                               transport::Status::Ok);
                    p.push(v, now);
                }
                break;
            }
            case 2: {
                const std::size_t n = (static_cast<std::size_t>(in.byte()) + 1) * 24;
                const auto block = std::span<float>(out).first(n);
                p.render(block, now);
                for (const float s : block) FUZZ_CHECK(std::isfinite(s));
                now += static_cast<std::int64_t>(n) * 1'000'000'000 / 48000;
                break;
            }
            case 3:
                now += static_cast<std::int64_t>(in.byte()) * 500'000;
                break;
            case 4: {
                const std::uint8_t b = in.byte();
                if (b == 0) {
                    p.set_target_delay_ms(std::nullopt);
                } else if (b == 255) {
                    p.flush();
                    FUZZ_CHECK(!p.has_stream());
                } else {
                    p.set_target_delay_ms(b * 4);
                }
                break;
            }
        }
        const auto& st = p.stats();
        FUZZ_CHECK(st.target_delay_ms.load() >= 0 && st.target_delay_ms.load() <= cfg.max_delay_ms);
        FUZZ_CHECK(std::abs(st.drift_ppm.load()) <= cfg.max_drift_ppm);
        FUZZ_CHECK(st.duplicate.load() + st.late.load() <= st.received.load());
    }
    return 0;
}
