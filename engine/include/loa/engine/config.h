#pragma once
// The engine's TOML configuration: process settings, clusters, live studios
// and programmes.
// load_config() validates everything before anything starts; a problem is a
// ConfigError naming the file, the key and what is wrong (loa-engine exits 78).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/ip/udp.hpp>

#include "loa/codecs/opus_encoder.h"
#include "loa/engine/ducker.h"
#include "loa/engine/priority.h"

namespace loa::engine {

class ConfigError : public std::runtime_error {
public:
    ConfigError(std::string file, std::string key, const std::string& problem);
    const std::string& file() const noexcept { return file_; }
    const std::string& key() const noexcept { return key_; }

private:
    std::string file_;
    std::string key_;
};

struct PlaylistSpec;  // loa/engine/playlist.h

struct SourceConfig {
    enum class Type { Tone, Clip, Studio, Playlist };
    Type type = Type::Tone;
    double gain_db = 0.0;
    // Ducking: 0 = an ordinary source; below 0 (down to -60) this source is a
    // background bed that dips by duck_db while any non-bed source of the
    // same programme carries voice (loa/engine/ducker.h).
    double duck_db = 0.0;
    // tone
    double frequency_hz = 1000.0;
    double level_db = -12.0;  // dBFS peak of the sine
    // clip
    std::filesystem::path path;  // absolute (resolved against the config's folder)
    bool loop = true;
    // studio: a live feed declared by a [[studio]] table
    std::string studio;                             // the studio's name
    std::optional<std::filesystem::path> fallback;  // looped while the studio is silent; nullopt = silence
    // playlist (run-time programmes only, e.g. alerts): items, repeats, interval;
    // given with type Studio it is the studio's lead-in, played before the live feed
    std::shared_ptr<const PlaylistSpec> playlist;
};

/// A live studio ([[studio]]): recognised on the ingest socket by its SSRC,
/// its sender's address, or both; it may feed only the programme it names.
struct StudioConfig {
    std::string name;
    std::optional<std::uint32_t> ssrc;
    std::optional<boost::asio::ip::address> source_address;  // host only: a NAT may change the port
    // Several studios may match one packet (e.g. one by SSRC, one by host): the first declared takes it.
    std::string program;                                     // the programme allowed to play it
    // Seed only: a [[studio]] naming a `zone` (and no `program`) is imported
    // into the state database once and then feeds run-time programmes.
    std::string zone;
    // The studio's adaptive playout (loa::engine::PlayoutConfig).
    int min_delay_ms = 0;
    int max_delay_ms = 500;
    std::optional<int> fixed_delay_ms;  // imposed target delay; unset = adaptive
};

struct ClusterConfig {
    std::string id;  // equals the CNAME the speaker reports
    boost::asio::ip::udp::endpoint address;
};

/// A [[cluster]] that names a `zone` is also part of the seed.
struct ClusterSeedConfig {
    std::string id;
    std::string zone;  // a [[zone]] id
    std::string name;  // display name; empty = the id
};

/// [[zone]]: part of the seed imported once into an empty state database
/// (engine.state_dir); afterwards the database, changed through the control
/// API, is the source of truth. Listed parents first.
struct ZoneConfig {
    std::string id;
    std::string name;
    std::string kind;    // "province", "district", "commune" or "village"
    std::string parent;  // empty for a province
};

/// The alert state of an alert programme: every speaker that plays it
/// switches its amplifier on and plays at this forced software volume for as
/// long as the programme's packets arrive. It travels in every RTP packet of
/// the programme (kAlertExtensionId, layout in stream_signal.h), so a speaker
/// applies it from whichever packet reaches it first.
struct AlertSignal {
    std::uint8_t volume_pct = 100;  // forced volume, 0..100 (larger values are sent as 100)
};

struct ProgramConfig {
    std::string name;
    std::uint32_t ssrc = 0;  // derived from the name unless configured
    std::uint8_t payload_type = 96;
    int ptime_ms = 20;
    int bitrate_bps = 64000;
    int complexity = 9;
    codecs::Content content = codecs::Content::Speech;
    int expected_loss_pct = 10;
    Priority priority = Priority::Scheduled;
    std::vector<std::string> clusters;                           // cluster ids
    std::vector<boost::asio::ip::udp::endpoint> destinations;    // plain unicast addresses
    std::optional<boost::asio::ip::udp::endpoint> multicast;     // group:port
    std::optional<std::filesystem::path> sdp_file;               // written at start
    std::vector<SourceConfig> sources;
    /// Set for an alert programme (RaiseAlert): see AlertSignal.
    std::optional<AlertSignal> alert;
};

/// [engine] duck_*: the envelope every background bed of every programme
/// (config, run-time, scheduled, alert) follows when it dips under voice;
/// how deep it dips is each bed's own duck_db. Defaults are DuckerConfig's.
struct DuckingSettings {
    double attack_ms = DuckerConfig{}.attack_ms;            // full dip from full gain
    double release_ms = DuckerConfig{}.release_ms;          // full return from the dip
    double hold_ms = DuckerConfig{}.hold_ms;                // stays down this long after the last voice frame
    double threshold_dbfs = DuckerConfig{}.threshold_dbfs;  // a voice frame above this RMS level ducks the beds
};

struct EngineSettings {
    boost::asio::ip::udp::endpoint listen{boost::asio::ip::address_v4::any(), 5004};
    std::optional<boost::asio::ip::udp::endpoint> listen_v6;
    /// IPv4 address studios push their RTP to (opened only when a [[studio]] is declared).
    boost::asio::ip::udp::endpoint ingest_listen{boost::asio::ip::address_v4::any(), 5006};
    std::size_t fanout_threads = 2;
    std::size_t fanout_batch = 1024;
    int cluster_timeout_s = 15;
    int multicast_ttl = 8;
    bool multicast_loop = true;
    std::optional<boost::asio::ip::address> multicast_interface;
    std::string cname = "loa-engine";
    std::string log_level = "info";
    /// SCHED_FIFO priority of the media thread and fan-out shards (1..99);
    /// 0 keeps normal scheduling. Needs CAP_SYS_NICE or an RLIMIT_RTPRIO
    /// (systemd LimitRTPRIO=); without it the engine warns and runs normally.
    int realtime_priority = 10;
    /// Folder of the persistent state (state.db). Unset = no control plane
    /// and no persistent state (the engine runs from its config alone).
    std::optional<std::filesystem::path> state_dir;
    /// IANA time zone of schedules created without one.
    std::string time_zone = "Asia/Ho_Chi_Minh";
    /// Days the as-run log keeps a play after its end (0 = for ever).
    int asrun_retention_days = 400;
    /// How background beds dip under voice (duck_attack_ms, duck_release_ms,
    /// duck_hold_ms, duck_threshold_dbfs).
    DuckingSettings ducking;
};

/// [control]: the control socket (used only when engine.state_dir is set).
struct ControlSettings {
    std::optional<std::filesystem::path> socket;  // default: <state_dir>/control.sock
    std::size_t max_frame_bytes = 4u << 20;       // larger requests get RESOURCE_EXHAUSTED
    std::optional<std::string> tcp_listen;        // "HOST:PORT" (bare port = 127.0.0.1); unset = no TCP
};

struct EngineConfig {
    std::filesystem::path file;
    EngineSettings engine;
    ControlSettings control;
    std::vector<ClusterConfig> clusters;
    std::vector<ZoneConfig> zones;                   // seed only
    std::vector<ClusterSeedConfig> cluster_seeds;   // seed only, in [[cluster]] order
    std::vector<StudioConfig> studios;
    std::vector<StudioConfig> studio_seeds;          // seed only: [[studio]] tables with a zone
    std::vector<ProgramConfig> programs;

    const ClusterConfig* find_cluster(const std::string& id) const noexcept;
    const ZoneConfig* find_zone(const std::string& id) const noexcept;
    const StudioConfig* find_studio(const std::string& name) const noexcept;
    const ProgramConfig* find_program(const std::string& name) const noexcept;
    /// Every address a programme is sent to: its clusters' addresses, its
    /// plain destinations, then its multicast group.
    std::vector<boost::asio::ip::udp::endpoint> destinations_of(const ProgramConfig& program) const;
};

/// Reads and validates `path`. Throws ConfigError.
EngineConfig load_config(const std::filesystem::path& path);
/// Same, from TOML text; relative clip paths resolve against `base_dir`.
EngineConfig parse_config(const std::string& toml_text, const std::string& file_name,
                          const std::filesystem::path& base_dir);

/// Stable SSRC for a programme name (FNV-1a), used when none is configured so
/// that an exported SDP stays valid across restarts.
std::uint32_t ssrc_for_name(const std::string& name) noexcept;

}  // namespace loa::engine
