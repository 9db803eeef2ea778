#include "loa/engine/asrun.h"

#include <algorithm>

#include "loa/control/v1/control.pb.h"
#include "loa/engine/schedule_control.h"

namespace loa::engine {

namespace {
namespace pb = loa::control::v1;

std::string kind_of(std::uint64_t programme_id) {
    if (programme_id >= ScheduleControl::kProgrammeIdBase) return "schedule";
    if (programme_id >= AlertControl::kProgrammeIdBase) return "alert";
    return "programme";
}

std::string generic_reason(const std::string& kind) { return kind == "programme" ? "stopped" : "ended"; }

// The control plane's "its window closed" reads "window closed" in the log.
std::string tidy(std::string reason) {
    if (reason.rfind("its ", 0) == 0) reason.erase(0, 4);
    return reason;
}

std::optional<std::uint64_t> number_after(const std::string& text, std::string_view prefix) {
    if (text.rfind(prefix, 0) != 0) return std::nullopt;
    const auto digits = text.substr(prefix.size());
    if (digits.empty() || digits.size() > 19 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
    }
    return std::stoull(digits);
}

struct Ending {
    std::uint64_t programme_id = 0;
    std::string reason;
};

// What an event says about the end of a programme, if anything: the
// messages of control_programmes.cpp, control_schedules.cpp and
// control_alerts.cpp.
std::optional<Ending> ending_in(const EventRow& e) {
    if (e.kind == pb::PROGRAMME_STOPPED) {
        const auto id = number_after(e.subject, "programme/");
        if (!id) return std::nullopt;
        const auto needle = " stopped programme " + std::to_string(*id);
        const auto at = e.message.find(needle);
        if (at == std::string::npos) return Ending{*id, "stopped"};
        const auto after = at + needle.size();
        if (e.message.compare(after, 2, ": ") == 0) return Ending{*id, tidy(e.message.substr(after + 2))};
        if (after != e.message.size()) return Ending{*id, "stopped"};
        return Ending{*id, "stopped by " + e.message.substr(0, at)};
    }
    if (e.kind == pb::ALERT_ENDED) {
        const auto n = number_after(e.subject, "alert/");
        if (!n || *n >= AlertControl::kProgrammeIdBase) return std::nullopt;
        const auto at = e.message.rfind(" ended: ");
        return Ending{AlertControl::kProgrammeIdBase + *n,
                      at == std::string::npos ? std::string("ended") : tidy(e.message.substr(at + 8))};
    }
    return std::nullopt;
}

std::string joined(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : "; ") + n;
    return out;
}

bool due(const std::optional<std::int64_t>& last, std::int64_t now, std::int64_t interval) {
    // A wall clock set back starts the interval again.
    return !last || now - *last >= interval || now < *last;
}

}  // namespace

AsRunRecorder::AsRunRecorder(Store& store, const Clock& clock)
    : store_(store), clock_(clock), event_cursor_(store.last_event_seq()) {}

std::int64_t AsRunRecorder::recover() {
    std::int64_t n = 0;
    store_.write([&] { n = store_.close_open_asrun(std::string(kEngineStopped)); });
    return n;
}

void AsRunRecorder::on_started(const ProgrammeInfo& info) {
    const auto now = now_ms();
    auto& programme = programmes_[info.id];
    // A programme id started again without a stop in between: the old play is over.
    for (const auto key : programme.plays) close(plays_.at(key), now, generic_reason(kind_of(info.id)), false);
    programme.plays.clear();
    programme.name = info.name.empty() ? "programme-" + std::to_string(info.id) : info.name;
    std::vector<std::string> zones;
    for (const auto& z : info.target_zones) {
        if (std::find(zones.begin(), zones.end(), z) == zones.end()) zones.push_back(z);
    }
    for (const auto& z : zones) {
        Play p;
        p.row.programme_id = info.id;
        p.row.kind = kind_of(info.id);
        p.row.name = programme.name;
        p.row.zone_id = z;
        p.row.level = static_cast<int>(info.level);
        p.row.ssrc = info.ssrc;
        p.row.start_unix_ms = now;
        p.row.last_seen_unix_ms = now;
        const auto key = next_key_++;
        plays_.emplace(key, std::move(p));
        programme.plays.push_back(key);
    }
}

void AsRunRecorder::on_stopped(std::uint64_t id) {
    const auto it = programmes_.find(id);
    if (it == programmes_.end()) return;
    confirm(id);  // a last look: clusters that played it but had not been counted yet
    const auto now = now_ms();
    for (const auto key : it->second.plays) close(plays_.at(key), now, generic_reason(kind_of(id)), false);
    programmes_.erase(it);
}

void AsRunRecorder::close(Play& p, std::int64_t now, std::string reason, bool known) {
    if (p.closed) return;
    p.closed = true;
    p.row.end_unix_ms = std::max(now, p.row.start_unix_ms);
    p.row.last_seen_unix_ms = *p.row.end_unix_ms;
    if (p.preempted_since) {
        p.row.preempted_ms += std::max<std::int64_t>(0, *p.row.end_unix_ms - *p.preempted_since);
        p.preempted_since.reset();
    }
    p.row.end_reason = std::move(reason);
    p.reason_known = known;
    p.dirty = true;
}

std::string AsRunRecorder::name_of(std::uint64_t programme_id) const {
    const auto it = programmes_.find(programme_id);
    if (it != programmes_.end()) return it->second.name;
    return "programme-" + std::to_string(programme_id);
}

void AsRunRecorder::on_decided(const Assignment& a, const Topology& t) {
    const auto now = now_ms();
    // Open plays, and which of them each zone holds.
    std::vector<std::uint64_t> keys;
    std::vector<Play*> open;
    std::vector<std::vector<std::uint32_t>> by_zone(t.zone_count());
    bool any = false;
    for (auto& [key, p] : plays_) {
        if (p.closed) continue;
        const auto zone = t.zone_index(p.row.zone_id);  // a zone gone from the tree holds nothing
        if (zone) {
            by_zone[*zone].push_back(static_cast<std::uint32_t>(open.size()));
            any = true;
        }
        keys.push_back(key);
        open.push_back(&p);
    }
    // The clusters of each play's zone (a cluster belongs to its zone's
    // ancestors too), and the watch list of the confirmation pass.
    std::vector<std::vector<std::uint32_t>> clusters(open.size());
    watch_.clear();
    const auto n = std::min(t.cluster_count(), a.cluster_count());
    for (std::uint32_t c = 0; any && c < n; ++c) {
        std::vector<std::uint64_t> watching;
        for (auto z = t.cluster_zone(c); z != kNoIndex; z = t.zone_parent(z)) {
            for (const auto i : by_zone[z]) {
                clusters[i].push_back(c);
                watching.push_back(keys[i]);
            }
        }
        if (!watching.empty()) watch_.push_back({t.cluster_id(c), std::move(watching)});
    }
    for (std::size_t i = 0; i < open.size(); ++i) {
        Play& p = *open[i];
        const auto mine = a.find(p.row.programme_id);
        std::vector<std::uint32_t> taking;  // slots of the programmes taking its clusters
        for (const auto c : clusters[i]) {
            const auto heard = a.programme_of(c);
            if (heard == kNoIndex || heard == mine) continue;
            // A lower-ranked programme there is one it could not reach, not a preemption.
            if (mine != kNoIndex && heard > mine) continue;
            if (std::find(taking.begin(), taking.end(), heard) == taking.end()) taking.push_back(heard);
        }
        for (const auto slot : taking) {
            auto name = name_of(a.programme(slot).id);
            if (std::find(p.preemptors.begin(), p.preemptors.end(), name) == p.preemptors.end()) {
                p.preemptors.push_back(std::move(name));
                p.row.preempted_by = joined(p.preemptors);
                p.dirty = true;
            }
        }
        if (!taking.empty() && !p.preempted_since) p.preempted_since = now;
        if (taking.empty() && p.preempted_since) {
            p.row.preempted_ms += std::max<std::int64_t>(0, now - *p.preempted_since);
            p.preempted_since.reset();
            p.dirty = true;
        }
        const auto targeted = static_cast<std::uint32_t>(clusters[i].size());
        if (targeted != p.row.targeted) {
            p.row.targeted = targeted;
            p.dirty = true;
        }
    }
}

void AsRunRecorder::confirm(std::uint64_t only_programme) {
    if (!live_) return;
    auto wants = [&](const Play& p, const std::string& cluster) {
        return !p.closed && (only_programme == 0 || p.row.programme_id == only_programme) &&
               !p.confirmed.contains(cluster);
    };
    for (const auto& w : watch_) {
        // The live state is asked only for clusters some play still waits for.
        const bool wanted = std::any_of(w.plays.begin(), w.plays.end(), [&](std::uint64_t key) {
            const auto it = plays_.find(key);
            return it != plays_.end() && wants(it->second, w.cluster_id);
        });
        if (!wanted) continue;
        const auto live = live_(w.cluster_id);
        if (!live || !live->online || live->playing_ssrc == 0) continue;
        for (const auto key : w.plays) {
            const auto it = plays_.find(key);
            if (it == plays_.end() || !wants(it->second, w.cluster_id)) continue;
            Play& p = it->second;
            if (p.row.ssrc != live->playing_ssrc) continue;
            p.confirmed.insert(w.cluster_id);
            p.row.confirmed = static_cast<std::uint32_t>(p.confirmed.size());
            p.dirty = true;
        }
    }
}

void AsRunRecorder::resolve_reasons() {
    constexpr std::size_t kPage = 500;
    for (;;) {
        const auto events = store_.events_after(event_cursor_, kPage);
        for (const auto& e : events) {
            event_cursor_ = e.seq;
            const auto ending = ending_in(e);
            if (!ending) continue;
            for (auto& [key, p] : plays_) {
                if (!p.closed || p.reason_known || p.row.programme_id != ending->programme_id) continue;
                p.row.end_reason = ending->reason;
                p.reason_known = true;
                p.dirty = true;
            }
        }
        if (events.size() < kPage) break;
    }
}

void AsRunRecorder::flush(std::int64_t now) {
    resolve_reasons();
    bool any_open = false;
    bool any_dirty = false;
    for (auto& [key, p] : plays_) {
        if (!p.closed) {
            any_open = true;
            if (p.preempted_since) p.dirty = true;  // its preempted time grows
        }
        any_dirty = any_dirty || p.dirty;
    }
    const bool touch = any_open && due(last_touch_, now, kFlushIntervalMs);
    if (any_dirty || touch) {
        std::vector<std::pair<std::uint64_t, std::int64_t>> inserted;
        store_.write([&] {
            inserted.clear();
            for (auto& [key, p] : plays_) {
                if (!p.dirty) continue;
                AsRunRow r = p.row;
                if (!p.closed) {
                    r.last_seen_unix_ms = now;
                    if (p.preempted_since) r.preempted_ms += std::max<std::int64_t>(0, now - *p.preempted_since);
                }
                if (r.id == 0) {
                    inserted.emplace_back(key, store_.insert_asrun(r));
                } else {
                    store_.update_asrun(r);
                }
            }
            if (any_open) store_.touch_open_asrun(now);
        });
        for (const auto& [key, id] : inserted) plays_.at(key).row.id = id;
        for (auto& [key, p] : plays_) p.dirty = false;
        if (any_open) last_touch_ = now;
    }
    // Closed plays leave memory once written with their reason, or when no
    // event has told it within the grace.
    for (auto it = plays_.begin(); it != plays_.end();) {
        const Play& p = it->second;
        if (p.closed && (p.reason_known || now - *p.row.end_unix_ms >= kReasonGraceMs || now < *p.row.end_unix_ms)) {
            it = plays_.erase(it);
        } else {
            ++it;
        }
    }
}

std::int64_t AsRunRecorder::prune(std::int64_t now) {
    if (retention_days_ <= 0) return 0;
    const auto days = std::min(retention_days_, kMaxRetentionDays);
    const auto before = now - static_cast<std::int64_t>(days) * 86'400'000;
    std::int64_t n = 0;
    store_.write([&] { n = store_.prune_asrun(before); });
    return n;
}

void AsRunRecorder::tick(std::int64_t now) {
    if (due(last_confirm_, now, kConfirmIntervalMs)) {
        last_confirm_ = now;
        confirm(0);
    }
    if (due(last_flush_, now, kFlushIntervalMs)) {
        last_flush_ = now;
        flush(now);
    }
    if (retention_days_ > 0 && due(last_prune_, now, kPruneIntervalMs)) {
        last_prune_ = now;
        (void)prune(now);
    }
}

void AsRunRecorder::finish(std::int64_t now) {
    confirm(0);
    for (auto& [key, p] : plays_) close(p, now, std::string(kEngineStopped), true);
    programmes_.clear();
    watch_.clear();
    flush(now);
}

std::size_t AsRunRecorder::on_air() const noexcept {
    return static_cast<std::size_t>(
        std::count_if(plays_.begin(), plays_.end(), [](const auto& kv) { return !kv.second.closed; }));
}

std::size_t AsRunRecorder::pending() const noexcept {
    return static_cast<std::size_t>(std::count_if(plays_.begin(), plays_.end(), [](const auto& kv) {
        return kv.second.dirty || kv.second.closed;
    }));
}

}  // namespace loa::engine
