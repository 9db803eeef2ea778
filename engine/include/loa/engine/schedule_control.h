#pragma once
// Schedules at run time, the engine side of CreateSchedule / ListSchedules /
// DeleteSchedule / NextOccurrences (the Control service wraps them in
// transactions and events, control_schedules.cpp).
//
// A schedule (schedule.h: when) plays a playlist (playlist.h: what) of
// catalogue clips, each normalised to kLoudnessTargetLufs from the loudness
// measured on upload (gain limited to -20 .. +12 dB) plus its own gain, and
// gaps of silence, at its level to its target zones. poll() runs on the
// control thread's tick: when a window opens it starts a run-time programme
// (id kProgrammeIdBase + schedule id) through the ProgrammeManager, so the
// arbiter decides per cluster as for any programme (an alert over it takes
// its clusters and gives them back when it ends, the schedule playing on
// unheard meanwhile); when the window closes, or the playlist ends first,
// or its programme disappears (StopProgramme), it stops the programme.
//
// A window found already running lateness L after its start (the engine
// restarted inside it, the schedule was created late, a start failed and is
// retried) plays from the top when L <= 2 s; beyond that per its late
// policy: Resume starts the playlist at offset L (a window past the end of
// its playlist plays nothing), Restart plays it from the top (cut at the
// window's planned end), Skip lets that window go. A window whose play is
// over (or was skipped) is remembered as done (persisted in the row), so a
// restart never plays it twice.
//
// A studio window plays a declared studio (StudioControl) live instead of a
// playlist: a Live programme with a studio source (the studio's fallback
// clip while it is silent), from the window's start to its end. It needs a
// duration or an end time (a live feed has no end of its own). Found
// running late it joins the feed as it is (Resume and Restart alike: there
// is no offset into a live feed); Skip lets the window go. A start the
// engine refuses (the studio already feeds StudioFeed::kMaxReaders
// programmes and alerts, the studio is not in the engine) fails like any
// other: announced once per window, tried again every kRetryMs.
//
// Every start, stop, skip and failed start is queued as a ScheduleChange in
// the outbox; the caller commits each (event, the row's done mark) and pops
// it, in order; a failed commit leaves it queued for the next tick.
//
// Scope: creating needs role operator, a level no higher than the caller's
// and target zones inside the caller's subtree (PERMISSION_DENIED); clips
// must be global or in the caller's subtree, a studio's zone inside the
// caller's subtree (PERMISSION_DENIED; NOT_FOUND for an unknown studio, as
// StartProgramme). Deleting needs the same as creating it would. Callers
// see schedules aimed at a zone of their subtree or at a zone above theirs.
//
// Threads: the control thread (the one that owns the Store).

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loa/engine/auth.h"
#include "loa/engine/clock.h"
#include "loa/engine/outcome.h"
#include "loa/engine/playlist.h"
#include "loa/engine/programme_manager.h"
#include "loa/engine/schedule.h"
#include "loa/engine/store.h"

namespace loa::engine {

struct ScheduleRequest {
    std::string name;
    Priority level = Priority::Scheduled;
    std::vector<std::string> target_zones;
    /// When: an empty time zone takes the default (set_default_time_zone);
    /// without a duration or end_time the window lasts as long as the
    /// playlist. The grace is always 2 s.
    ScheduleSpec spec;
    /// Local end time of day of the windows (instead of spec.duration or
    /// spec.end); at or before the start time it falls on the next day.
    std::optional<std::chrono::seconds> end_time;
    /// spec.first_date is taken as today's date in the schedule's time zone
    /// (at the clock's now).
    bool from_today = false;
    std::vector<ScheduleItemRow> items;  // 1..kMaxItems, at least one clip; empty with `studio`
    /// A studio window: the studio played live (then no items, and a
    /// duration or end time). Empty = a playlist.
    std::string studio;
};

/// One window, for listings.
struct ScheduleWindow {
    std::uint64_t schedule_id = 0;
    Occurrence occurrence;  // end always set (the playlist's length without a window)
    bool on_air = false;
};

/// A schedule with its live state.
struct ScheduleView {
    ScheduleRow row;
    std::int64_t playlist_ms = 0;
    std::uint64_t programme_id = 0;  // 0 = no window on air
    std::int64_t position_ms = 0;    // into the playlist, while on air
    std::string problem;             // why it cannot run; empty = none
};

/// Something poll() did that the caller records.
struct ScheduleChange {
    enum class Kind : std::uint8_t {
        Started,  // a window's programme went on air
        Stopped,  // it went off the air (`detail`: why); the window is done
        Skipped,  // a late window let go per policy; the window is done
        Failed,   // a window's programme could not start (`detail`); retried
    };
    Kind kind = Kind::Started;
    std::uint64_t schedule_id = 0;
    std::uint64_t programme_id = 0;
    std::int64_t window_start_unix_ms = 0;
    std::int64_t lateness_ms = 0;  // Started, Skipped
    std::int64_t offset_ms = 0;    // Started: where the playlist began
    std::string detail;
    // The schedule as it was (it may be gone by the time this is committed):
    std::string name;
    Priority level = Priority::Scheduled;
    std::string zones;         // comma-separated
    std::string window_local;  // "YYYY-MM-DD HH:MM:SS <time zone>"
    std::string studio;        // a studio window: the studio it plays; empty = a playlist
};

class ScheduleControl {
public:
    /// The window of schedule N runs as ProgrammeManager programme kProgrammeIdBase + N.
    static constexpr std::uint64_t kProgrammeIdBase = std::uint64_t{1} << 49;
    static constexpr double kLoudnessTargetLufs = -16.0;  // as alerts (AlertControl)
    static constexpr std::size_t kMaxItems = 100;
    static constexpr int kMaxGapMs = 3'600'000;
    static constexpr double kMinItemGainDb = -30.0;
    static constexpr double kMaxItemGainDb = 12.0;
    /// A failed start is tried again this long after.
    static constexpr std::int64_t kRetryMs = 5000;
    /// Packet time of schedule programmes; items are padded to whole frames.
    static constexpr int kPtimeMs = 20;

    ScheduleControl(Store& store, ProgrammeManager& manager, const Clock& clock);
    ScheduleControl(const ScheduleControl&) = delete;
    ScheduleControl& operator=(const ScheduleControl&) = delete;

    /// Where catalogue clips live (ClipCatalog::dir()); unset = schedules are
    /// refused with UNAVAILABLE. Set before restore().
    void set_clip_dir(std::filesystem::path dir) { clip_dir_ = std::move(dir); }
    /// Time zone of requests that name none (default Asia/Ho_Chi_Minh).
    void set_default_time_zone(std::string tz) { default_tz_ = std::move(tz); }
    const std::string& default_time_zone() const noexcept { return default_tz_; }

    /// Checks the request (INVALID_ARGUMENT with the schedule library's
    /// message, unknown zone or clip, both or neither of playlist and
    /// studio, a studio without a window end; NOT_FOUND for an unknown
    /// studio; PERMISSION_DENIED; UNAVAILABLE for a playlist without a clip
    /// folder) and returns the row to insert (id 0). Nothing is stored or
    /// started.
    Result<ScheduleRow> check_create(const Caller& caller, const ScheduleRequest& request) const;
    /// Takes part a committed row (with its id) in the next poll(). Rows that
    /// cannot run (a time zone gone from the system) are kept, with their
    /// problem shown, so that they can be deleted.
    void add(const ScheduleRow& row);
    /// NOT_FOUND or PERMISSION_DENIED when `caller` may not delete it.
    Outcome may_delete(const Caller& caller, std::uint64_t id) const;
    /// Stops its programme (if on air) and forgets it; true when it was on air.
    bool remove(std::uint64_t id);
    bool visible(const Caller& caller, std::uint64_t id) const;

    std::optional<ScheduleView> view(std::uint64_t id) const;
    /// Schedules `caller` may see, ascending id.
    std::vector<ScheduleView> list(const Caller& caller) const;
    /// The window on air (if any) and the next `count` windows of schedule `id`.
    std::vector<ScheduleWindow> next_windows(std::uint64_t id, Instant now, std::size_t count) const;
    /// Windows of the schedules `caller` may see that are on air or running
    /// at `now`, or start before `until`; by start, then schedule id; at
    /// most `limit`.
    std::vector<ScheduleWindow> windows(const Caller& caller, Instant now, Instant until,
                                        std::size_t limit = 10000) const;

    /// Starts and stops the windows' programmes at `now` (see above) and
    /// queues what it did in the outbox.
    void poll(Instant now);
    const std::deque<ScheduleChange>& outbox() const noexcept { return outbox_; }
    /// Drops the oldest change of the outbox (it has been committed).
    void pop_change() {
        if (!outbox_.empty()) outbox_.pop_front();
    }

    /// Loads store.schedules(); the first poll() then applies each running
    /// window's late policy. Returns one message per schedule that cannot run.
    std::vector<std::string> restore();
    std::size_t size() const noexcept { return entries_.size(); }

    /// Zone ids of a row's comma-separated list.
    static std::vector<std::string> zones_of(const ScheduleRow& row);
    /// The library spec of a stored row (no validation).
    static std::optional<ScheduleSpec> spec_of(const ScheduleRow& row);

private:
    struct Entry {
        ScheduleRow row;
        std::optional<Schedule> schedule;  // nullopt: cannot run (problem)
        std::string problem;
        std::int64_t playlist_ms = 0;
        // On air:
        bool on_air = false;
        Occurrence window;  // end set
        std::int64_t offset_ms = 0;
        std::shared_ptr<PlaylistProgress> progress;
        // A failed start:
        std::int64_t retry_at_ms = 0;
        std::int64_t failed_start_ms = 0;  // window whose failure was announced
    };

    bool in_scope(const Caller& caller, const std::vector<std::string>& zones) const;
    Outcome launch(Entry& e, const Occurrence& window, std::int64_t offset_ms);
    std::int64_t playlist_length_ms(const ScheduleRow& row) const;
    Outcome studio_check(const Caller& caller, const std::string& name) const;
    // The playlist of a playlist schedule, from `offset_ms` (UNAVAILABLE
    // without a clip folder, FAILED_PRECONDITION for a clip gone).
    Result<std::shared_ptr<PlaylistSpec>> playlist_of(const ScheduleRow& row, std::int64_t offset_ms) const;
    Entry make_entry(const ScheduleRow& row) const;

    Store& store_;
    ProgrammeManager& manager_;
    const Clock& clock_;
    std::optional<std::filesystem::path> clip_dir_;
    std::string default_tz_{kDefaultTimeZone};
    std::map<std::uint64_t, Entry> entries_;
    std::deque<ScheduleChange> outbox_;
};

/// "YYYY-MM-DD" -> date (nullopt when not of that form or not a date).
std::optional<std::chrono::year_month_day> parse_local_date(const std::string& text);
/// "HH:MM" or "HH:MM:SS" -> seconds into the day (nullopt when not of that form, out of range).
std::optional<std::chrono::seconds> parse_time_of_day(const std::string& text);
std::string format_local_date(const std::chrono::year_month_day& d);
std::string format_time_of_day(std::chrono::seconds s);
/// "YYYY-MM-DD HH:MM:SS".
std::string format_local_time(std::chrono::local_seconds t);

}  // namespace loa::engine
