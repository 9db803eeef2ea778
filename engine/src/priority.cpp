#include "loa/engine/priority.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace loa::engine {

namespace {
constexpr std::array<std::string_view, 6> kNames = {"background", "scheduled", "commune",
                                                    "district",   "province",  "emergency"};
}

std::string_view to_string(Priority p) noexcept {
    const auto i = static_cast<std::size_t>(p);
    return i < kNames.size() ? kNames[i] : "unknown";
}

std::optional<Priority> parse_priority(std::string_view text) noexcept {
    std::string lower(text);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (std::size_t i = 0; i < kNames.size(); ++i) {
        if (lower == kNames[i]) return static_cast<Priority>(i);
    }
    return std::nullopt;
}

}  // namespace loa::engine
