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
// A live studio (a run-time studio of the Store) may follow: the programme
// is then a studio source whose lead-in is that playlist (StudioSource::
// set_lead_in): chime and clip play `repeats` times as above, then the
// studio is heard, live (from the live edge, not what was said during the
// lead-in), until the alert expires or is cancelled. With a studio and
// neither chime nor clip the studio is heard at once. Such an alert must
// have an expiry: it has no last play to end it, and an amplifier forced on
// for good by a forgotten alert is worse than a refusal. The studio must be
// in the caller's subtree; it may already feed programmes or other alerts
// (a province studio on air with its normal programme goes live with an
// emergency at once): each reads it through its own queue and playout, and
// the others carry on untouched. Only when the studio already feeds
// StudioFeed::kMaxReaders of them is the alert refused (RESOURCE_EXHAUSTED).
// While the studio is silent the alert plays silence (not the studio's
// fallback clip).
//
// An alert ends at its expiry, after its last play when it has no expiry (or
// when the last play comes first; never for an alert with a studio), on
// CancelAlert, or when its programme disappears (e.g. stopped with
// StopProgramme). Ending is two steps: the
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
// was interrupted (at least one complete play); an alert with a studio
// whose plays were all over goes straight back to the studio.
//
// Confirmation: a targeted cluster (enabled, in a target zone) confirms when
// it reports playing the alert's SSRC with its amplifier on; it is offline
// when the engine has no live report from it. Targeted clusters come from an
// in-memory index of zones and enabled clusters, rebuilt (one Store scan)
// only when Store::topology_version() moves; each alert caches its targeted
// clusters for the index version it was computed with. Raising an alert and
// the once-a-second check therefore read no cluster table: a cluster added
// to (or moved into, or enabled in) a targeted zone during an alert is
// counted from the next look on.
//
// Threads: the control thread (the one that owns the Store).

#include <climits>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
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
    std::string studio;        // live studio after chime and clip until the end; "" = none (needs an expiry)
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

/// How many targeted clusters stand where (AlertConfirmation without the ids).
struct AlertCounts {
    std::size_t confirmed = 0;
    std::size_t not_confirmed = 0;
    std::size_t offline = 0;
    std::size_t targeted() const noexcept { return confirmed + not_confirmed + offline; }
    bool operator==(const AlertCounts&) const = default;
};

/// Targeted clusters by confirmation, each list ascending.
struct AlertConfirmation {
    std::vector<std::string> confirmed;      // playing the alert's SSRC, amplifier on
    std::vector<std::string> not_confirmed;  // online, not (yet) playing it
    std::vector<std::string> offline;        // no live report
    std::size_t targeted() const noexcept { return confirmed.size() + not_confirmed.size() + offline.size(); }
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
    bool studio_live = false;  // an alert with a studio past its lead-in: the studio is heard
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

    /// Checks (INVALID_ARGUMENT, PERMISSION_DENIED, UNAVAILABLE without a
    /// clip folder; for a studio: INVALID_ARGUMENT without an expiry,
    /// NOT_FOUND when unknown, PERMISSION_DENIED outside the caller's
    /// subtree) and puts the alert on the air; nothing is stored (row() gives
    /// what to store). The arbiter's and engine's errors come back unchanged
    /// (a studio that already has all its readers: RESOURCE_EXHAUSTED),
    /// nothing changed.
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
    /// The same, counts only (no cluster ids copied).
    AlertCounts counts(std::uint64_t id, const Caller& caller) const;
    /// How many clusters inside `caller`'s subtree the alert targets (no
    /// live state looked at); 0 when unknown.
    std::size_t targeted(std::uint64_t id, const Caller& caller) const;
    /// Alerts on the air whose confirmation counts changed since they were
    /// last announced (checked at most every kConfirmCheckMs, announced at
    /// most every kConfirmEventMinMs); the caller records an event for each.
    std::vector<std::pair<std::uint64_t, AlertCounts>> confirmation_changes(std::int64_t now_unix_ms);

    /// Restarts the alerts of store.alerts() (see above); returns one
    /// message per alert that could not be restarted (it is then due, Lost).
    std::vector<std::string> restore();
    std::size_t size() const noexcept { return entries_.size(); }

private:
    static constexpr std::uint32_t kNoZone = UINT32_MAX;

    /// Zones and enabled clusters as the Store had them at `version`.
    struct TopologyIndex {
        std::optional<std::uint64_t> version;  // nullopt: never built
        std::unordered_map<std::string, std::uint32_t> zone_by_id;
        std::vector<std::uint32_t> zone_parent;  // kNoZone for a root
        std::vector<std::string> cluster_id;     // enabled clusters, ascending id
        std::vector<std::uint32_t> cluster_zone;
    };
    struct Entry {
        AlertRow row;
        std::shared_ptr<PlaylistProgress> progress;  // the chime and clip plays; nullptr without
        int first_play = 0;  // plays done before this run (restore)
        std::uint32_t ssrc = 0;
        bool on_air = false;
        AlertEnd reason = AlertEnd::Expired;
        std::string detail;
        std::int64_t last_check_ms = 0;
        std::int64_t last_announce_ms = 0;
        std::optional<AlertCounts> announced;
        // Indices into index_.cluster_id of the targeted clusters, valid for index_.version == targets_version.
        mutable std::vector<std::uint32_t> targets;
        mutable std::optional<std::uint64_t> targets_version;
    };

    Outcome launch(Entry& e, int first_play);
    std::vector<std::string> zones_of(const AlertRow& row) const;
    bool in_scope(const Caller& caller, const std::vector<std::string>& zones) const;
    Outcome studio_check(const Caller& caller, const std::string& studio) const;
    /// The index, rebuilt first when the Store's topology moved on.
    const TopologyIndex& index() const;
    /// True when zone `zone_id` is `root` or below it ("" root: everything).
    bool zone_within(const std::string& zone_id, const std::string& root) const;
    bool zone_within(std::uint32_t zone, std::uint32_t root) const noexcept;
    /// The alert's targeted clusters (cached per index version), all of them.
    const std::vector<std::uint32_t>& targets_of(const Entry& e) const;
    /// Calls `f(cluster index)` for each targeted cluster inside `caller`'s subtree, ascending id.
    template <typename F>
    void for_each_target(const Entry& e, const Caller& caller, F&& f) const;
    enum class Standing { Confirmed, NotConfirmed, Offline };
    Standing standing(const Entry& e, const std::string& cluster_id) const;
    AlertCounts count(const Entry& e, const Caller& caller) const;
    std::int64_t play_length_ms(const AlertRow& row) const;

    Store& store_;
    ProgrammeManager& manager_;
    const Clock& clock_;
    std::optional<std::filesystem::path> clip_dir_;
    ClusterLiveFn live_;
    std::uint64_t next_id_ = 1;
    std::map<std::uint64_t, Entry> entries_;
    mutable TopologyIndex index_;
};

}  // namespace loa::engine
