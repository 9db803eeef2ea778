// Fuzz target for the speaker's reading of a packet's level and alert
// elements (read_stream_signal) on whatever RtpView::parse accepts: a level
// read is always a defined Priority, a forced volume never exceeds 100, and
// an element written back from what was read reads the same.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "loa/engine/stream_signal.h"
#include "loa/transport/rtp_packet.h"

#define FUZZ_CHECK(cond)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                 \
        }                                                                                 \
    } while (0)

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace loa;
    transport::RtpView v;
    if (transport::RtpView::parse(std::span(data, size), v) != transport::Status::Ok) return 0;
    const auto signal = engine::read_stream_signal(v);
    if (signal.level) {
        const auto level = static_cast<int>(*signal.level);
        FUZZ_CHECK(level >= 0 && level <= static_cast<int>(engine::Priority::Emergency));
    }
    if (signal.alert) {
        FUZZ_CHECK(signal.alert->volume_pct <= 100);
        const auto bytes = engine::encode_alert_element(engine::AlertSignal{signal.alert->volume_pct});
        FUZZ_CHECK(bytes[1] == signal.alert->volume_pct);
        FUZZ_CHECK((bytes[0] & engine::kAlertFlagAmplifierOn) != 0);
    }
    return 0;
}
