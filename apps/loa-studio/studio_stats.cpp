#include "loa-studio/studio_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace loa::studio {

std::string StudioStats::to_json(std::uint32_t ssrc) const {
    std::ostringstream o;
    o << "{\"ssrc\":" << ssrc << ",\"packets_sent\":" << packets_sent << ",\"bytes_sent\":" << bytes_sent
      << ",\"frames_encoded\":" << frames_encoded << ",\"encode_errors\":" << encode_errors
      << ",\"send_errors\":" << send_errors << ",\"rtcp_sent\":" << rtcp_sent
      << ",\"rtcp_received\":" << rtcp_received << ",\"rr_blocks\":" << rr_blocks
      << ",\"malformed_received\":" << malformed_received << ",\"samples_captured\":" << samples_captured
      << ",\"clicks\":" << clicks << ",\"pacer_resyncs\":" << pacer_resyncs << ",\"underruns\":" << underruns
      << ",\"overruns\":" << overruns;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4f", last_fraction_lost);
    o << ",\"last_fraction_lost\":" << buf << ",\"last_jitter\":" << last_jitter << "}";
    return o.str();
}

std::string StudioStats::to_text() const {
    std::ostringstream o;
    o << "  packets_sent " << packets_sent << "\n  bytes_sent " << bytes_sent << "\n  frames_encoded "
      << frames_encoded << "\n  encode_errors " << encode_errors << "\n  send_errors " << send_errors
      << "\n  rtcp_sent " << rtcp_sent << "\n  rtcp_received " << rtcp_received << "\n  rr_blocks " << rr_blocks
      << "\n  malformed_received " << malformed_received << "\n  samples_captured " << samples_captured
      << "\n  clicks " << clicks << "\n  pacer_resyncs " << pacer_resyncs << "\n  underruns " << underruns
      << "\n  overruns " << overruns << "\n";
    return o.str();
}

void LevelMeter::add(std::span<const float> block) noexcept {
    for (const float s : block) {
        const float a = std::fabs(s);
        peak_ = std::max(peak_, a);
        sum_squares_ += static_cast<double>(s) * static_cast<double>(s);
    }
    count_ += block.size();
}

LevelMeter::Reading LevelMeter::take() noexcept {
    Reading r;
    auto db = [](double v) { return v > 1e-6 ? std::max(-120.0, 20.0 * std::log10(v)) : -120.0; };
    r.peak_dbfs = db(static_cast<double>(peak_));
    r.rms_dbfs = count_ > 0 ? db(std::sqrt(sum_squares_ / static_cast<double>(count_))) : -120.0;
    peak_ = 0.0f;
    sum_squares_ = 0.0;
    count_ = 0;
    return r;
}

std::string meter_bar(const LevelMeter::Reading& r, int width) {
    auto cells = [width](double dbfs) {
        const double f = std::clamp((dbfs + 60.0) / 60.0, 0.0, 1.0);
        return static_cast<int>(std::lround(f * width));
    };
    const int rms = cells(r.rms_dbfs);
    const int pk = cells(r.peak_dbfs);
    std::string bar;
    for (int i = 0; i < width; ++i) bar += i < rms ? '#' : (i < pk ? '-' : ' ');
    char buf[96];
    std::snprintf(buf, sizeof buf, "%6.1f dBFS |%s| peak %6.1f", r.rms_dbfs, bar.c_str(), r.peak_dbfs);
    return buf;
}

}  // namespace loa::studio
