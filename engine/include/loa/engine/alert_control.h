#pragma once
// Emergency alerts, the engine side of RaiseAlert / CancelAlert / ListAlerts /
// GetAlertStatus (the Control service wraps them in transactions and events,
// control_alerts.cpp).
//
// An alert is a run-time programme the engine builds itself: a playlist
// (playlist.h) of the built-in attention chime and a catalogue clip, played
// `repeats` times `interval_ms` apart, sent at the alert's level (default
// EMERGENCY) to its target zones with the amplifier-on / forced-volume signal
// in every packet (ProgramConfig::alert). It starts through the
// ProgrammeManager, so the arbiter moves every targeted cluster to it at the
// next frame boundary and back to the best remaining programme when it ends.
//
// An alert ends at its expiry, after its last play when it has no expiry (or
// when the last play comes first), on CancelAlert, or when its programme
// disappears (e.g. stopped with StopProgramme). Ending is two steps: the
// control side first takes it off the air (take_off_air), then commits its
// end and forget()s it; until forget() it stays in due() so a failed commit
// is retried on the next tick.
//
// Scope: raising needs role operator, a level no higher than the caller's
// and target zones inside the caller's subtree (PERMISSION_DENIED); a clip
// must be global or in the caller's subtree. Cancelling needs the same as
// raising it would. Callers see alerts aimed at a zone of their subtree (or
// at a zone above theirs), and only the clusters of their subtree.
//
// Persistence: row() is the Store row of a raised alert (the caller inserts
// it with its event and the clip's `uses` reference). restore() restarts the
// alerts of the Store: an alert whose expiry has passed is reported due at
// once; the others play on until their expiry, resuming with the play that
// was interrupted (at least one complete play).
//
// Confirmation: a targeted cluster (enabled, in a target zone) confirms when
// it reports playing the alert's SSRC with its amplifier on; it is offline
// when the engine has no live report from it.
//
// Threads: the control thread (the one that owns the Store).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "loa/engine/auth.h"
#include "loa/engine/clock.h"
#include "loa/engine/outcome.h"
#include "loa/engine/playlist.h"
#include "loa/engine/programme_manager.h"
#include "loa/engine/store.h"

namespace loa::engine {

struct AlertRequest {
    std::string name = "alert";
    Priority level = Priority::Emergency;
    std::vector<std::string> target_zones;
    std::int64_t clip_id = 0;  // catalogue clip, 0 = none
    std::string studio;        // live studio after the clip (not wired yet: UNIMPLEMENTED)
    bool attention_tone = true;
    int repeats = 1;
    int interval_ms = 0;
    std::optional<std::int64_t> expires_unix_ms;  // nullopt: ends after its last play
    int volume_pct = 100;
};

/// What the engine last heard from a cluster, as far as confirmation goes.
struct ClusterLive {
    bool online = false;
    std::uint32_t playing_ssrc = 0;
    bool amplifier_on = false;
};
/// nullopt: the engine knows nothing live about that cluster (offline).
using ClusterLiveFn = std::function<std::optional<ClusterLive>(const std::string& cluster_id)>;

/// Targeted clusters by confirmation, each list ascending.
struct AlertConfirmation {
    std::vector<std::string> confirmed;      // playing the alert's SSRC, amplifier on
    std::vector<std::string> not_confirmed;  // online, not (yet) playing it
    std::vector<std::string> offline;        // no live report
    std::size_t targeted() const noexcept { return confirmed.size() + not_confirmed.size() + offline.size(); }
    bool same_counts(const AlertConfirmation& o) const noexcept {
        return confirmed.size() == o.confirmed.size() && not_confirmed.size() == o.not_confirmed.size() &&
               offline.size() == o.offline.size();
    }
};

enum class AlertEnd : std::uint8_t {
    Expired,    // its expiry passed
    Completed,  // every play done before any expiry
    Cancelled,  // CancelAlert
    Lost,       // its programme is gone, or it could not be restored
};
std::string_view to_string(AlertEnd e) noexcept;

struct AlertDue {
    std::uint64_t id = 0;
    AlertEnd reason = AlertEnd::Expired;
    std::string detail;  // for Lost: why
};

struct AlertState {
    AlertRow row;
    std::uint32_t ssrc = 0;
    bool on_air = false;
    std::uint32_t play = 0;  // 1-based play being heard, 0 before the first frame
};

class AlertControl {
public:
    /// Alert N runs as ProgrammeManager programme kProgrammeIdBase + N.
    static constexpr std::uint64_t kProgrammeIdBase = std::uint64_t{1} << 48;
    static constexpr int kMaxRepeats = 100;
    static constexpr int kMaxIntervalMs = 3'600'000;
    static constexpr std::int64_t kMaxLifetimeMs = 7LL * 24 * 3600 * 1000;
    /// Clips are played at this loudness (gain from the catalogue's
    /// measurement, limited to -20 .. +12 dB).
    static constexpr double kLoudnessTargetLufs = -16.0;
    /// Confirmation is looked at once a second; a change is announced at
    /// most every two seconds per alert.
    static constexpr std::int64_t kConfirmCheckMs = 1000;
    static constexpr std::int64_t kConfirmEventMinMs = 2000;

    AlertControl(Store& store, ProgrammeManager& manager, const Clock& clock);
    AlertControl(const AlertControl&) = delete;
    AlertControl& operator=(const AlertControl&) = delete;

    /// Where catalogue clips live (ClipCatalog::dir()); unset = alerts with a
    /// clip are refused with UNAVAILABLE. Set before restore().
    void set_clip_dir(std::filesystem::path dir) { clip_dir_ = std::move(dir); }
    /// Live state of clusters; unset = every cluster is offline.
    void set_cluster_live(ClusterLiveFn fn) { live_ = std::move(fn); }

    /// Checks (INVALID_ARGUMENT, PERMISSION_DENIED, UNIMPLEMENTED for a
    /// studio, UNAVAILABLE without a clip folder) and puts the alert on the
    /// air; nothing is stored (row() gives what to store). The arbiter's and
    /// engine's errors come back unchanged, nothing changed.
    Result<std::uint64_t> raise(const Caller& caller, const AlertRequest& request);
    /// NOT_FOUND or PERMISSION_DENIED when `caller` may not cancel alert `id`.
    Outcome may_cancel(const Caller& caller, std::uint64_t id) const;
    /// Whether `caller` may see alert `id` (false when unknown).
    bool visible(const Caller& caller, std::uint64_t id) const;

    /// Stops the alert's programme (clusters go back to the best remaining
    /// programme) and remembers why; it stays in due() until forget().
    /// False when unknown. Idempotent.
    bool take_off_air(std::uint64_t id, AlertEnd reason, std::string detail = {});
    /// Drops an alert whose end has been committed (or whose raise was not).
    void forget(std::uint64_t id);

    std::optional<AlertRow> row(std::uint64_t id) const;
    std::optional<AlertState> state(std::uint64_t id) const;
    /// Alerts `caller` may see, ascending id.
    std::vector<AlertState> list(const Caller& caller) const;
    /// Alerts that must end at `now_unix_ms`, and those taken off the air
    /// but not yet forgotten, ascending id.
    std::vector<AlertDue> due(std::int64_t now_unix_ms) const;
    /// The targeted clusters inside `caller`'s subtree, by confirmation.
    AlertConfirmation confirmation(std::uint64_t id, const Caller& caller) const;
    /// Alerts on the air whose confirmation counts changed since they were
    /// last announced (checked at most every kConfirmCheckMs, announced at
    /// most every kConfirmEventMinMs); the caller records an event for each.
    std::vector<std::pair<std::uint64_t, AlertConfirmation>> confirmation_changes(std::int64_t now_unix_ms);

    /// Restarts the alerts of store.alerts() (see above); returns one
    /// message per alert that could not be restarted (it is then due, Lost).
    std::vector<std::string> restore();
    std::size_t size() const noexcept { return entries_.size(); }

private:
    struct Entry {
        AlertRow row;
        std::shared_ptr<PlaylistProgress> progress;
        int first_play = 0;  // plays done before this run (restore)
        std::uint32_t ssrc = 0;
        bool on_air = false;
        AlertEnd reason = AlertEnd::Expired;
        std::string detail;
        std::int64_t last_check_ms = 0;
        std::int64_t last_announce_ms = 0;
        std::optional<AlertConfirmation> announced;
    };

    Outcome launch(Entry& e, int first_play);
    std::vector<std::string> zones_of(const AlertRow& row) const;
    bool in_scope(const Caller& caller, const std::vector<std::string>& zones) const;
    std::vector<std::string> targeted_clusters(const std::vector<std::string>& zones, const Caller& caller) const;
    AlertConfirmation confirm(const Entry& e, const Caller& caller) const;
    std::int64_t play_length_ms(const AlertRow& row) const;

    Store& store_;
    ProgrammeManager& manager_;
    const Clock& clock_;
    std::optional<std::filesystem::path> clip_dir_;
    ClusterLiveFn live_;
    std::uint64_t next_id_ = 1;
    std::map<std::uint64_t, Entry> entries_;
};

}  // namespace loa::engine
