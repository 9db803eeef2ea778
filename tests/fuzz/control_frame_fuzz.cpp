// Fuzz target for control frames: splits the input into varint-delimited
// frames as the server does and dispatches each one through the control
// service (as the local administrator, against an in-memory store), checking
// that every answer is a valid status and echoes the request id.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "loa/engine/clock.h"
#include "loa/engine/control_service.h"
#include "loa/engine/store.h"

using namespace loa::engine;

#define FUZZ_CHECK(cond)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                 \
        }                                                                                 \
    } while (0)

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Store store(":memory:");
    static ManualClock clock;
    static ControlService service(store, clock, 0);
    const PeerInfo peer{true, true, 0};
    std::span<const std::uint8_t> in(data, size);
    constexpr std::size_t kMax = 64 * 1024;
    while (!in.empty()) {
        std::size_t h = 0;
        std::size_t b = 0;
        const auto st = peek_frame(in, kMax, h, b);
        if (st == FrameStatus::NeedMore) break;
        if (st == FrameStatus::TooLarge) {
            FUZZ_CHECK(in.size() >= 3);
            break;
        }
        if (st == FrameStatus::Malformed) break;
        FUZZ_CHECK(h >= 1 && h <= 5 && b <= kMax && h + b <= in.size());
        const auto body = in.subspan(h, b);
        const auto out = service.handle_frame(body, peer);
        const int code = static_cast<int>(out.response.code());
        FUZZ_CHECK(code >= 0 && code <= 16);
        FUZZ_CHECK(code == 0 || !out.response.message().empty());
        loa::control::v1::Envelope env;
        if (env.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
            FUZZ_CHECK(!out.close_connection);
            FUZZ_CHECK(out.response.request_id() == env.request_id());
        } else {
            FUZZ_CHECK(out.close_connection);
            break;
        }
        in = in.subspan(h + b);
    }
    return 0;
}
