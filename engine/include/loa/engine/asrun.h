#pragma once
// The as-run log: the broadcast record of every play of every run-time
// programme (API programmes, alerts, schedule windows), one row per play and
// target zone, kept in the Store (schema v9) and read by ListAsRun.
//
// A row opens when the ProgrammeManager starts the programme and closes when
// it stops. While it is on the air the recorder follows the arbiter's
// decisions: which clusters of the zone it targets, which programmes take
// clusters of the zone from it (preempted_by, preempted_ms: time during which
// at least one of them was taken), and, from the clusters' live reports,
// how many distinct clusters of the zone reported playing its SSRC
// (confirmed; a cluster counts when it is online and its last report names
// the SSRC, looked at every kConfirmIntervalMs and once more at the stop).
//
// End reasons come from what the control plane recorded: the event of the
// stop (PROGRAMME_STOPPED "... stopped programme N[: why]" or ALERT_ENDED
// "... ended: why") committed before, with, or up to kReasonGraceMs after the
// stop; without one the reason is generic ("stopped" for API programmes,
// "ended" for alerts and schedule windows). Plays cut by the engine stopping
// end with "engine stopped": at finish() for an orderly stop; after a crash,
// recover() closes them at the last time they were written.
//
// Cost: nothing here runs on the media thread, and no control call waits for
// the disk: starts, stops and decisions only change memory (a decision costs
// O(clusters x zone depth)); the tick writes what changed in one transaction
// every kFlushIntervalMs, and a confirmation pass asks the live state only
// for clusters of plays on the air that have not confirmed them yet.
//
// Retention: rows that ended more than retention_days ago are deleted, looked
// at every kPruneIntervalMs (0 days = kept for ever).
//
// Threads: the control thread only (the one that owns the Store and the
// ProgrammeManager).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "loa/engine/alert_control.h"
#include "loa/engine/clock.h"
#include "loa/engine/programme_manager.h"
#include "loa/engine/store.h"

namespace loa::engine {

class AsRunRecorder final : public ProgrammeObserver {
public:
    static constexpr std::int64_t kFlushIntervalMs = 1000;
    static constexpr std::int64_t kConfirmIntervalMs = 1000;
    static constexpr std::int64_t kPruneIntervalMs = 6LL * 3600 * 1000;
    static constexpr int kDefaultRetentionDays = 400;
    static constexpr int kMaxRetentionDays = 36500;
    /// How long after its end a play closed with a generic reason stays in
    /// memory, waiting for the event that says why it ended.
    static constexpr std::int64_t kReasonGraceMs = 3000;
    static constexpr std::string_view kEngineStopped = "engine stopped";

    /// Events committed before construction are never read for reasons.
    AsRunRecorder(Store& store, const Clock& clock);
    AsRunRecorder(const AsRunRecorder&) = delete;
    AsRunRecorder& operator=(const AsRunRecorder&) = delete;

    /// Live state of clusters; unset = nothing is ever confirmed.
    void set_cluster_live(ClusterLiveFn fn) { live_ = std::move(fn); }
    /// 0 = keep for ever; at most kMaxRetentionDays.
    void set_retention_days(int days) { retention_days_ = days; }

    /// Closes the rows a previous run left on the air (it ended without
    /// finish()) at their last written time, reason "engine stopped"; returns
    /// how many. Call before the first flush. Throws ControlError.
    std::int64_t recover();

    // ProgrammeObserver (the ProgrammeManager calls these).
    void on_started(const ProgrammeInfo& info) override;
    void on_stopped(std::uint64_t id) override;
    void on_decided(const Assignment& assignment, const Topology& topology) override;

    /// Periodic work (a ControlService tick hook): the confirmation pass, the
    /// flush and the prune when their intervals have passed. Throws
    /// ControlError when a write fails; nothing is lost, the next flush
    /// retries it.
    void tick(std::int64_t now_unix_ms);
    /// Writes everything pending in one transaction (nothing when nothing
    /// changed and the open rows were written within kFlushIntervalMs).
    /// Throws ControlError; what failed stays pending.
    void flush(std::int64_t now_unix_ms);
    /// Looks at the live state of the clusters of the plays on the air.
    void check_confirmations() { confirm(0); }
    /// Deletes rows older than the retention; returns how many. Throws ControlError.
    std::int64_t prune(std::int64_t now_unix_ms);
    /// Orderly stop: closes every play on the air ("engine stopped") and
    /// flushes. Throws ControlError (the rows then stay open in the Store and
    /// the next start's recover() closes them).
    void finish(std::int64_t now_unix_ms);

    /// Plays on the air.
    std::size_t on_air() const noexcept;
    /// Plays with changes not yet written, or closed ones awaiting their reason.
    std::size_t pending() const noexcept;

private:
    struct Play {
        AsRunRow row;  // row.id == 0 until inserted
        bool dirty = true;
        bool closed = false;
        bool reason_known = false;  // end reason from the record, not generic
        std::optional<std::int64_t> preempted_since;
        std::vector<std::string> preemptors;     // names, in order of first preemption
        std::unordered_set<std::string> confirmed;  // cluster ids
    };
    struct Programme {
        std::string name;
        std::vector<std::uint64_t> plays;  // keys into plays_ of its open plays
    };
    struct Watch {
        std::string cluster_id;
        std::vector<std::uint64_t> plays;  // open plays whose zone holds the cluster
    };

    std::int64_t now_ms() const { return clock_.unix_ns() / 1'000'000; }
    void close(Play& p, std::int64_t now, std::string reason, bool known);
    void confirm(std::uint64_t only_programme);
    void resolve_reasons();
    std::string name_of(std::uint64_t programme_id) const;

    Store& store_;
    const Clock& clock_;
    ClusterLiveFn live_;
    int retention_days_ = kDefaultRetentionDays;
    std::uint64_t next_key_ = 1;
    std::map<std::uint64_t, Play> plays_;  // by key = start order
    std::unordered_map<std::uint64_t, Programme> programmes_;  // on the air, by programme id
    std::vector<Watch> watch_;
    std::uint64_t event_cursor_ = 0;
    std::optional<std::int64_t> last_flush_;
    std::optional<std::int64_t> last_touch_;
    std::optional<std::int64_t> last_confirm_;
    std::optional<std::int64_t> last_prune_;
};

}  // namespace loa::engine
