#include "loa/engine/stream_signal.h"

#include <algorithm>

namespace loa::engine {

std::array<std::uint8_t, kAlertElementSize> encode_alert_element(const AlertSignal& alert) noexcept {
    return {kAlertFlagAmplifierOn, std::min<std::uint8_t>(alert.volume_pct, 100)};
}

StreamSignal read_stream_signal(const transport::RtpView& packet) noexcept {
    StreamSignal s;
    if (const auto level = packet.find_extension(kPriorityExtensionId); level && !level->empty()) {
        if ((*level)[0] <= static_cast<std::uint8_t>(Priority::Emergency)) s.level = static_cast<Priority>((*level)[0]);
    }
    if (const auto alert = packet.find_extension(kAlertExtensionId); alert && alert->size() >= kAlertElementSize) {
        const std::uint8_t volume = (*alert)[1];
        if (volume <= 100) s.alert = AlertElement{((*alert)[0] & kAlertFlagAmplifierOn) != 0, volume};
    }
    return s;
}

}  // namespace loa::engine
