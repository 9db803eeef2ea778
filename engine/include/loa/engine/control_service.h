#pragma once
// The Control service (proto/loa/control/v1/control.proto): authenticates a
// request, checks its deadline, dispatches it by method name, checks the
// caller's role and scope, runs it against the Store (one transaction per
// mutating call, answered only after commit) and builds the Response.
//
// Threads: every method is called from the control thread only (the one that
// owns the Store). The callbacks it is given are called from that thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "loa/control/v1/control.pb.h"
#include "loa/engine/auth.h"
#include "loa/engine/clip_catalog.h"
#include "loa/engine/clock.h"
#include "loa/engine/control_status.h"
#include "loa/engine/store.h"

namespace loa::engine {

class ProgrammeControl;
class AlertControl;
class StudioControl;
class ScheduleControl;
class AsRunRecorder;

/// Who is at the other end of a connection.
struct PeerInfo {
    bool unix_socket = false;  // token-less admin is only possible on the Unix socket
    bool has_credentials = false;
    unsigned uid = 0xFFFFFFFFu;  // SO_PEERCRED uid
};

/// The engine's counters and cluster state (GetStatus).
using StatsProvider = std::function<loa::engine::v1::EngineStats()>;
/// Live state of one cluster, when the engine has heard from it.
using LiveStateProvider = std::function<std::optional<loa::engine::v1::ClusterState>(const std::string& id)>;
/// Live state of a page of clusters at once (ListClusters): sets `live` on
/// each of `clusters` the engine knows (by id), leaving the others as they are.
using LiveStatesProvider = std::function<void(std::span<loa::control::v1::Cluster* const> clusters)>;
/// Told the seq of every event committed to the store.
using EventListener = std::function<void(std::uint64_t seq)>;
/// Periodic work on the control thread (alert expiry, later schedules);
/// given the wall-clock time in Unix ms.
using TickHook = std::function<void(std::int64_t now_unix_ms)>;

/// What handle() produced: always a Response; for an accepted WatchEvents
/// also the stream to start (its Response is not sent: events follow).
struct CallOutcome {
    loa::control::v1::Response response;
    bool close_connection = false;  // the frame was unusable: send response, then close
    struct Watch {
        Caller caller;
        std::uint64_t after_seq = 0;
    };
    std::optional<Watch> watch;
};

class ControlService {
public:
    /// `engine_uid` is the uid that may act as local administrator besides root.
    ControlService(Store& store, const Clock& clock, unsigned engine_uid);

    void set_stats_provider(StatsProvider p) { stats_ = std::move(p); }
    void set_live_state_provider(LiveStateProvider p) { live_ = std::move(p); }
    /// ListClusters uses it, when given, instead of one LiveStateProvider
    /// call per row.
    void set_live_states_provider(LiveStatesProvider p) { live_page_ = std::move(p); }
    void set_event_listener(EventListener l) { listener_ = std::move(l); }
    /// Run-time programmes (StartProgramme, StopProgramme, ListProgrammes;
    /// control_programmes.cpp). nullptr (the default): those calls are
    /// UNAVAILABLE. The first non-null call adds a tick hook that commits the
    /// end of programmes their preemption policy dropped.
    void set_programme_control(ProgrammeControl* p);
    /// Emergency alerts (RaiseAlert, CancelAlert, ListAlerts, GetAlertStatus;
    /// control_alerts.cpp). nullptr (the default): those calls are
    /// UNAVAILABLE. The service gives it the live state provider.
    void set_alert_control(AlertControl* a);
    /// Run-time studios (DeclareStudio, ListStudios, RemoveStudio;
    /// control_studios.cpp). nullptr (the default): those calls are
    /// UNAVAILABLE.
    void set_studio_control(StudioControl* s) { studios_ = s; }
    /// Schedules (CreateSchedule, ListSchedules, DeleteSchedule,
    /// NextOccurrences; control_schedules.cpp). nullptr (the default): those
    /// calls are UNAVAILABLE. The first non-null call adds a tick hook that
    /// runs the schedules' windows (ScheduleControl::poll) and commits what
    /// they did.
    void set_schedule_control(ScheduleControl* s);
    /// The as-run log's recorder (control_asrun.cpp): ListAsRun writes what
    /// it holds before answering. The service gives it the live state
    /// provider; the first non-null call adds a tick hook that runs
    /// AsRunRecorder::tick. ListAsRun works without one (it reads the Store).
    void set_asrun_recorder(AsRunRecorder* r);

    /// Periodic work, called by the control server every ~100 ms: ends
    /// alerts that are due (expiry, last play), announces changes of their
    /// confirmation, then runs the added hooks. Never throws (failures are
    /// logged, and retried on the next tick where that makes sense).
    void tick(std::int64_t now_unix_ms);
    /// tick() at the service clock's current time.
    void tick() { tick(now_unix_ms()); }
    void add_tick_hook(TickHook hook) { tick_hooks_.push_back(std::move(hook)); }

    /// One frame body (the bytes after the varint length). Garbage yields
    /// INVALID_ARGUMENT with close_connection set.
    CallOutcome handle_frame(std::span<const std::uint8_t> body, const PeerInfo& peer);
    /// One decoded request.
    CallOutcome handle(const loa::control::v1::Envelope& request, const PeerInfo& peer);

    /// Events with seq > `after` the caller may see, oldest first, at most
    /// `limit`; `cursor` is set to the last seq examined (visible or not).
    std::vector<loa::control::v1::Event> events_for(const Caller& caller, std::uint64_t after, std::size_t limit,
                                                    std::uint64_t& cursor);
    /// Records an event from the engine (cluster online/offline, clip
    /// errors) and notifies the listener. Throws ControlError.
    void record_engine_message(const std::string& message);

    /// Short names of the methods this build implements.
    std::vector<std::string> methods() const;

    /// Clip files and uploads (<state_dir>/clips beside the database).
    ClipCatalog& clip_catalog() { return *clips_; }

private:
    using Handler = std::string (ControlService::*)(const Caller&, const std::string&);

    Caller authenticate(const loa::control::v1::Envelope& request, const PeerInfo& peer) const;
    std::int64_t now_unix_ms() const;
    std::uint64_t add_event(int kind, const std::string& subject, const std::string& zone_id,
                            const std::string& message);
    void notify(std::uint64_t seq);
    loa::control::v1::Cluster to_proto(const ClusterRow& c) const;

    std::string get_status(const Caller&, const std::string&);
    std::string list_zones(const Caller&, const std::string&);
    std::string create_zone(const Caller&, const std::string&);
    std::string rename_zone(const Caller&, const std::string&);
    std::string move_zone(const Caller&, const std::string&);
    std::string delete_zone(const Caller&, const std::string&);
    std::string list_clusters(const Caller&, const std::string&);
    std::string get_cluster(const Caller&, const std::string&);
    std::string register_cluster(const Caller&, const std::string&);
    std::string set_cluster_enabled(const Caller&, const std::string&);
    std::string remove_cluster(const Caller&, const std::string&);
    std::string list_operators(const Caller&, const std::string&);
    std::string create_operator(const Caller&, const std::string&);
    std::string revoke_operator(const Caller&, const std::string&);
    std::string start_programme(const Caller&, const std::string&);
    std::string stop_programme(const Caller&, const std::string&);
    std::string list_programmes(const Caller&, const std::string&);
    // Alerts (control_alerts.cpp).
    std::string raise_alert(const Caller&, const std::string&);
    std::string cancel_alert(const Caller&, const std::string&);
    std::string list_alerts(const Caller&, const std::string&);
    std::string get_alert_status(const Caller&, const std::string&);
    void tick_alerts(std::int64_t now_unix_ms);
    /// Deletes an ended alert's row (with its clip reference and an
    /// ALERT_ENDED event saying `why`), then forgets it. Throws ControlError.
    void commit_alert_end(std::uint64_t id, const std::string& why);
    // Studios (control_studios.cpp).
    std::string declare_studio(const Caller&, const std::string&);
    std::string list_studios(const Caller&, const std::string&);
    std::string remove_studio(const Caller&, const std::string&);
    // Schedules (control_schedules.cpp).
    std::string create_schedule(const Caller&, const std::string&);
    std::string list_schedules(const Caller&, const std::string&);
    std::string delete_schedule(const Caller&, const std::string&);
    std::string next_occurrences(const Caller&, const std::string&);
    /// Polls the schedules at `now_unix_ms` and commits their outbox (events,
    /// done marks). Throws ControlError when a commit fails (the rest stays
    /// queued for the next tick).
    void tick_schedules(std::int64_t now_unix_ms);
    /// Deletes the rows of programmes dropped by their preemption policy
    /// (control_programmes.cpp), with a PROGRAMME_STOPPED event each. Throws
    /// ControlError when a commit fails (retried on the next tick).
    void tick_programmes(std::int64_t now_unix_ms);
    // As-run log (control_asrun.cpp).
    std::string list_asrun(const Caller&, const std::string&);
    // Clips (control_clips.cpp).
    void open_clip_catalog();
    std::string begin_clip_upload(const Caller&, const std::string&);
    std::string upload_clip_chunk(const Caller&, const std::string&);
    std::string finish_clip_upload(const Caller&, const std::string&);
    std::string list_clips(const Caller&, const std::string&);
    std::string delete_clip(const Caller&, const std::string&);

    Store& store_;
    const Clock& clock_;
    unsigned engine_uid_;
    StatsProvider stats_;
    LiveStateProvider live_;
    LiveStatesProvider live_page_;
    std::vector<char> list_arena_block_;  // first block of ListClusters' arena, reused call after call
    // Tokens verified against the store, by token hash; forgotten as soon as
    // the store changes (Store::change_count), so a revoked token fails on
    // the very next request.
    mutable std::unordered_map<std::string, Caller> token_cache_;
    mutable std::uint64_t token_cache_changes_ = 0;
    EventListener listener_;
    std::unordered_map<std::string, Handler> handlers_;
    ProgrammeControl* programmes_ = nullptr;
    AlertControl* alerts_ = nullptr;
    StudioControl* studios_ = nullptr;
    ScheduleControl* schedules_ = nullptr;
    bool schedule_hook_added_ = false;
    bool programme_hook_added_ = false;
    AsRunRecorder* asrun_ = nullptr;
    bool asrun_hook_added_ = false;
    std::vector<TickHook> tick_hooks_;
    std::string tick_error_;  // last tick failure logged (logged again only when it changes)
    std::unique_ptr<ClipCatalog> clips_;
};

/// The frame codec: protobuf's varint-delimited format.
enum class FrameStatus { NeedMore, Complete, TooLarge, Malformed };

/// Looks for one frame at the start of `buffer`. On Complete, the body is
/// buffer[header_len, header_len + body_len). TooLarge as soon as the length
/// prefix exceeds `max_body`; Malformed when the prefix is not a valid 32-bit
/// varint.
FrameStatus peek_frame(std::span<const std::uint8_t> buffer, std::size_t max_body, std::size_t& header_len,
                       std::size_t& body_len) noexcept;
/// Serializes `message` with its varint length prefix.
std::string encode_frame(const google::protobuf::MessageLite& message);

}  // namespace loa::engine
