#include "loa-speaker/speaker_counters.h"

#include <cstdio>

namespace loa::speaker {

namespace {

std::string json_escape(const std::string& s) {
    std::string out;
    out.reserve(s.size() + 2);
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", u);
            out += buf;
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace

CountersSnapshot Counters::snapshot() const noexcept {
    constexpr auto r = std::memory_order_relaxed;
    CountersSnapshot s;
    s.received = received.load(r);
    s.lost = lost.load(r);
    s.late = late.load(r);
    s.duplicate = duplicate.load(r);
    s.malformed = malformed.load(r);
    s.foreign = foreign.load(r);
    s.concealed = concealed.load(r);
    s.fec_recovered = fec_recovered.load(r);
    s.reordered = reordered.load(r);
    s.underruns = underruns.load(r);
    s.rtcp_sent = rtcp_sent.load(r);
    s.rtcp_received = rtcp_received.load(r);
    s.sr_received = sr_received.load(r);
    s.decode_errors = decode_errors.load(r);
    s.overflow = overflow.load(r);
    s.ssrc_changes = ssrc_changes.load(r);
    s.samples_played = samples_played.load(r);
    s.playing_ssrc = playing_ssrc.load(r);
    s.buffer_delay_ms = buffer_delay_ms.load(r);
    s.target_delay_ms = target_delay_ms.load(r);
    s.drift_ppm = drift_ppm.load(r);
    s.outranked = outranked.load(r);
    s.amp_switches = amp_switches.load(r);
    s.volume_pct = volume_pct.load(r);
    s.amplifier_on = amplifier_on.load(r);
    s.alert = alert.load(r);
    return s;
}

#define LOA_COUNTER_FIELDS(X)                                                                   \
    X(received) X(lost) X(late) X(duplicate) X(malformed) X(foreign) X(concealed) X(fec_recovered) \
    X(reordered) X(underruns) X(rtcp_sent) X(rtcp_received) X(sr_received) X(decode_errors) X(overflow)      \
    X(ssrc_changes) X(samples_played) X(outranked) X(amp_switches)

std::string CountersSnapshot::to_text() const {
    std::string out;
    char line[96];
#define X(name)                                                                              \
    std::snprintf(line, sizeof line, "  %-14s %llu\n", #name, static_cast<unsigned long long>(name)); \
    out += line;
    LOA_COUNTER_FIELDS(X)
#undef X
    std::snprintf(line, sizeof line, "  %-14s 0x%08x\n", "playing_ssrc", playing_ssrc);
    out += line;
    std::snprintf(line, sizeof line, "  %-14s %d ms\n", "buffer_delay", buffer_delay_ms);
    out += line;
    std::snprintf(line, sizeof line, "  %-14s %d ms\n", "target_delay", target_delay_ms);
    out += line;
    std::snprintf(line, sizeof line, "  %-14s %d ppm\n", "drift", drift_ppm);
    out += line;
    std::snprintf(line, sizeof line, "  %-14s %d %%\n", "volume", volume_pct);
    out += line;
    std::snprintf(line, sizeof line, "  %-14s %s\n", "amplifier", amplifier_on ? "on" : "off");
    out += line;
    std::snprintf(line, sizeof line, "  %-14s %s\n", "alert", alert ? "yes" : "no");
    out += line;
    return out;
}

std::string CountersSnapshot::to_json(const std::string& cluster_id) const {
    std::string out = "{\"cluster_id\":\"" + json_escape(cluster_id) + "\"";
    out += ",\"playing_ssrc\":" + std::to_string(playing_ssrc);
#define X(name) out += ",\"" #name "\":" + std::to_string(name);
    LOA_COUNTER_FIELDS(X)
#undef X
    out += ",\"buffer_delay_ms\":" + std::to_string(buffer_delay_ms);
    out += ",\"target_delay_ms\":" + std::to_string(target_delay_ms);
    out += ",\"drift_ppm\":" + std::to_string(drift_ppm);
    out += ",\"volume_pct\":" + std::to_string(volume_pct);
    out += std::string(",\"amplifier_on\":") + (amplifier_on ? "true" : "false");
    out += std::string(",\"alert\":") + (alert ? "true" : "false");
    out += "}";
    return out;
}

#undef LOA_COUNTER_FIELDS

}  // namespace loa::speaker
