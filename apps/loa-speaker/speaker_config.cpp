#include "loa-speaker/speaker_config.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace loa::speaker {

namespace {

boost::asio::ip::address parse_address(const std::string& host, const std::string& text) {
    boost::system::error_code ec;
    auto a = boost::asio::ip::make_address(host, ec);
    if (ec) throw std::invalid_argument("invalid engine address '" + text + "' (numeric address expected)");
    return a;
}

std::uint16_t parse_port(const std::string& port, const std::string& text) {
    unsigned value = 0;
    const char* first = port.data();
    const char* last = port.data() + port.size();
    const auto [ptr, ec] = std::from_chars(first, last, value);
    if (port.empty() || ec != std::errc{} || ptr != last || value == 0 || value > 65535) {
        throw std::invalid_argument("invalid port in engine address '" + text + "'");
    }
    return static_cast<std::uint16_t>(value);
}

}  // namespace

boost::asio::ip::address normalize(const boost::asio::ip::address& a) noexcept {
    if (a.is_v6() && a.to_v6().is_v4_mapped()) {
        return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
    }
    return a;
}

bool EngineAddress::matches(const boost::asio::ip::udp::endpoint& from) const noexcept {
    if (normalize(from.address()) != address) return false;
    return !port || *port == from.port();
}

EngineAddress parse_engine_address(const std::string& text) {
    EngineAddress e;
    if (text.empty()) throw std::invalid_argument("empty engine address");
    if (text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string::npos) throw std::invalid_argument("missing ']' in engine address '" + text + "'");
        e.address = parse_address(text.substr(1, close - 1), text);
        const std::string rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') throw std::invalid_argument("invalid engine address '" + text + "'");
            e.port = parse_port(rest.substr(1), text);
        }
    } else {
        const auto colons = std::count(text.begin(), text.end(), ':');
        if (colons == 1) {
            const auto pos = text.find(':');
            e.address = parse_address(text.substr(0, pos), text);
            e.port = parse_port(text.substr(pos + 1), text);
        } else {
            e.address = parse_address(text, text);  // IPv4 or bare IPv6
        }
    }
    e.address = normalize(e.address);
    return e;
}

void validate(const SpeakerConfig& c) {
    if (c.cluster_id.empty() || c.cluster_id.size() > 255) {
        throw std::invalid_argument("cluster id must be 1..255 bytes");
    }
    if (c.engines.empty()) throw std::invalid_argument("at least one --engine is required");
    if (c.jitter_ms < 0 || c.jitter_ms > 2000) throw std::invalid_argument("--jitter-ms must be 0..2000");
    if (c.min_delay_ms < 0 || c.min_delay_ms > 2000) throw std::invalid_argument("--min-delay-ms must be 0..2000");
    if (c.max_delay_ms < 10 || c.max_delay_ms > 2000) throw std::invalid_argument("--max-delay-ms must be 10..2000");
    if (c.min_delay_ms > c.max_delay_ms) throw std::invalid_argument("--min-delay-ms must not exceed --max-delay-ms");
    if (c.volume_pct < 0 || c.volume_pct > 100) throw std::invalid_argument("--volume must be 0..100");
    if (c.report_interval_ms < 10 || c.report_interval_ms > 60000) {
        throw std::invalid_argument("--report-interval-ms must be 10..60000");
    }
    if (c.jitter_capacity < 8) throw std::invalid_argument("jitter buffer capacity must be >= 8");
    if (c.long_gap_ns < 0) throw std::invalid_argument("long gap must be >= 0");
    if (c.preempt_hold_ms < 0 || c.preempt_hold_ms > 60000) {
        throw std::invalid_argument("--preempt-hold-ms must be 0..60000");
    }
    if (c.amp_idle_ms < 0 || c.amp_idle_ms > 86'400'000) throw std::invalid_argument("--amp-idle must be 0..86400 s");
}

}  // namespace loa::speaker
