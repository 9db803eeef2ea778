// loa-engine: the Loa daemon. Reads its TOML config, plays every programme it
// declares to its clusters, and stops cleanly on SIGINT/SIGTERM.
//
// Exit status: 0 clean stop, 78 (EX_CONFIG) bad configuration, 1 start-up
// failure (socket, encoder), 2 bad command line.

#include <signal.h>
#include <sysexits.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <unistd.h>

#include <google/protobuf/util/json_util.h>

#include "loa/engine/alert_control.h"
#include "loa/engine/asrun.h"
#include "loa/engine/config.h"
#include "loa/engine/control_seed.h"
#include "loa/engine/control_server.h"
#include "loa/engine/control_service.h"
#include "loa/engine/engine.h"
#include "loa/engine/programme_control.h"
#include "loa/engine/programme_manager.h"
#include "loa/engine/sdp.h"
#include "loa/engine/store.h"
#include "loa/engine/schedule_control.h"
#include "loa/engine/studio_control.h"

namespace {

// Where the exported SDP says the stream goes: the group, else the first destination.
std::optional<boost::asio::ip::udp::endpoint> first_receiver(const loa::engine::EngineConfig& config,
                                                             const loa::engine::ProgramConfig& p) {
    if (p.multicast) return p.multicast;
    const auto all = config.destinations_of(p);
    if (all.empty()) return std::nullopt;
    return all.front();
}

int print_sdp(const loa::engine::EngineConfig& config, const std::string& name) {
    const auto* p = config.find_program(name);
    if (p == nullptr) {
        std::cerr << "loa-engine: no programme named '" << name << "' in " << config.file.string() << "\n";
        return EX_USAGE;
    }
    auto origin = config.engine.listen.address();
    if (origin.is_unspecified()) origin = boost::asio::ip::make_address("127.0.0.1");
    std::cout << loa::engine::make_sdp(*p, origin.to_string(), config.engine.cname, first_receiver(config, *p),
                                       config.engine.multicast_ttl);
    return 0;
}

void write_sdp_files(const loa::engine::EngineConfig& config, const boost::asio::ip::udp::endpoint& local) {
    auto origin = local.address();
    if (origin.is_unspecified()) origin = boost::asio::ip::make_address("127.0.0.1");
    for (const auto& p : config.programs) {
        if (!p.sdp_file) continue;
        std::ofstream out(*p.sdp_file);
        out << loa::engine::make_sdp(p, origin.to_string(), config.engine.cname, first_receiver(config, p),
                                     config.engine.multicast_ttl);
        if (!out) {
            spdlog::error("cannot write SDP file {} for programme '{}'", p.sdp_file->string(), p.name);
        } else {
            spdlog::info("programme '{}': SDP written to {}", p.name, p.sdp_file->string());
        }
    }
}

// The live state of one cluster as the control API shows it.
void fill_cluster_state(const loa::engine::ClusterSnapshot& snap, loa::engine::v1::ClusterState& st) {
    st.set_id(snap.id);
    if (snap.report_address) {
        st.set_address(snap.report_address->address().to_string() + ":" + std::to_string(snap.report_address->port()));
    }
    st.set_online(snap.online);
    st.set_last_report_unix_ms(snap.last_report_unix_ns / 1'000'000);
    st.set_reports(snap.reports);
    if (snap.has_status) {
        st.set_playing_ssrc(snap.status.playing_ssrc);
        st.set_volume_pct(snap.status.volume_pct);
        st.set_amplifier_on(snap.status.amplifier_on);
        st.set_buffer_delay_ms(snap.status.buffer_delay_ms);
    }
}

// The control plane (store + service + socket), present when engine.state_dir is set.
struct ControlPlane {
    std::unique_ptr<loa::engine::Store> store;
    std::unique_ptr<loa::engine::AsRunRecorder> asrun;                // the as-run log (watches the programmes)
    std::unique_ptr<loa::engine::ProgrammeManager> programmes;        // run-time programmes
    std::unique_ptr<loa::engine::ProgrammeControl> programme_control;
    std::unique_ptr<loa::engine::AlertControl> alerts;                // emergency alerts (run-time programmes)
    std::unique_ptr<loa::engine::StudioControl> studios;              // run-time studios (before programmes use them)
    std::unique_ptr<loa::engine::ScheduleControl> schedules;          // schedules (their windows start programmes)
    std::unique_ptr<loa::engine::ControlService> service;
    std::unique_ptr<loa::engine::ControlServer> server;
};

std::unique_ptr<ControlPlane> open_control_plane(const loa::engine::EngineConfig& config,
                                                 const loa::engine::Clock& clock, loa::engine::Engine& engine) {
    const auto& dir = *config.engine.state_dir;
    std::filesystem::create_directories(dir);
    auto cp = std::make_unique<ControlPlane>();
    cp->store = std::make_unique<loa::engine::Store>(dir / "state.db");
    // The config's seed ([[zone]], [[cluster]] with a zone) goes in once, into an empty database.
    const auto seed = loa::engine::import_seed(*cp->store, config, clock);
    spdlog::info("control: {}", seed.summary);
    cp->service = std::make_unique<loa::engine::ControlService>(*cp->store, clock, static_cast<unsigned>(::geteuid()));
    // Run-time programmes: created here, then used only by the control server's thread.
    cp->programmes = std::make_unique<loa::engine::ProgrammeManager>(engine);
    // The as-run log sees every programme from the first restored one on;
    // plays a crash left open are closed first.
    cp->asrun = std::make_unique<loa::engine::AsRunRecorder>(*cp->store, clock);
    cp->asrun->set_retention_days(config.engine.asrun_retention_days);
    try {
        if (const auto n = cp->asrun->recover(); n > 0) {
            spdlog::info("control: {} as-run row(s) left open by the last run closed", n);
        }
    } catch (const std::exception& e) {
        spdlog::warn("control: as-run rows left open by the last run not closed: {}", e.what());
    }
    cp->programmes->set_observer(cp->asrun.get());
    cp->programme_control = std::make_unique<loa::engine::ProgrammeControl>(*cp->store, *cp->programmes, clock);
    cp->programme_control->set_clip_dir(cp->service->clip_catalog().dir());
    if (const auto o = cp->programme_control->refresh_topology(); !o.ok()) {
        spdlog::warn("control: zones and clusters not usable for programmes: {}", o.message);
    }
    // Studios of the database first: restored programmes may play them.
    cp->studios = std::make_unique<loa::engine::StudioControl>(*cp->store, engine);
    for (const auto& problem : cp->studios->restore()) spdlog::warn("control: {}", problem);
    if (const auto n = engine.runtime_studios().size(); n > 0) spdlog::info("control: {} studio(s) restored", n);
    cp->service->set_studio_control(cp->studios.get());
    for (const auto& problem : cp->programme_control->restore()) spdlog::warn("control: {}", problem);
    if (const auto n = cp->programmes->list().size(); n > 0) spdlog::info("control: {} programme(s) restored", n);
    cp->service->set_programme_control(cp->programme_control.get());
    cp->alerts = std::make_unique<loa::engine::AlertControl>(*cp->store, *cp->programmes, clock);
    cp->alerts->set_clip_dir(cp->service->clip_catalog().dir());
    cp->service->set_alert_control(cp->alerts.get());
    for (const auto& problem : cp->alerts->restore()) spdlog::warn("control: {}", problem);
    if (const auto n = cp->alerts->size(); n > 0) spdlog::info("control: {} alert(s) restored", n);
    // Schedules: a window running now starts on the first tick, per its late policy.
    cp->schedules = std::make_unique<loa::engine::ScheduleControl>(*cp->store, *cp->programmes, clock);
    cp->schedules->set_clip_dir(cp->service->clip_catalog().dir());
    cp->schedules->set_default_time_zone(config.engine.time_zone);
    for (const auto& problem : cp->schedules->restore()) spdlog::warn("control: {}", problem);
    if (const auto n = cp->schedules->size(); n > 0) spdlog::info("control: {} schedule(s) restored", n);
    cp->service->set_schedule_control(cp->schedules.get());
    // After the schedules: their stop events are committed before the log's flush reads them.
    cp->service->set_asrun_recorder(cp->asrun.get());
    cp->service->set_stats_provider([&engine] {
        loa::engine::v1::EngineStats stats;
        engine.stats(stats, /*with_clusters=*/false);  // ListClusters carries the live state, by scope
        return stats;
    });
    cp->service->set_live_state_provider([&engine](const std::string& id) -> std::optional<loa::engine::v1::ClusterState> {
        const auto snap = engine.clusters().find(id);
        if (!snap) return std::nullopt;
        loa::engine::v1::ClusterState st;
        fill_cluster_state(*snap, st);
        return st;
    });
    // ListClusters: a page under one registry lock, written in place (no snapshot copies).
    cp->service->set_live_states_provider([&engine](std::span<loa::control::v1::Cluster* const> page) {
        std::vector<const std::string*> ids;
        ids.reserve(page.size());
        for (const auto* c : page) ids.push_back(&c->id());
        engine.clusters().visit(ids, [&](std::size_t i, const loa::engine::ClusterSnapshot& snap) {
            fill_cluster_state(snap, *page[i]->mutable_live());
        });
    });
    loa::engine::ControlServerOptions opts;
    opts.socket_path = config.control.socket ? *config.control.socket : dir / "control.sock";
    opts.max_frame_bytes = config.control.max_frame_bytes;
    opts.tcp_listen = config.control.tcp_listen.value_or("");
    cp->server = std::make_unique<loa::engine::ControlServer>(*cp->service, opts);
    return cp;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"loa-engine: Loa audio distribution engine"};
    std::string config_path;
    std::string sdp_program;
    std::string stats_out;
    double duration_s = 0;
    bool check_only = false;
    app.add_option("-c,--config", config_path, "TOML configuration file")->required();
    app.add_option("--sdp", sdp_program, "print the SDP of PROGRAMME and exit");
    app.add_option("--stats-out", stats_out, "write counters and cluster state as JSON to FILE at exit");
    app.add_option("--duration", duration_s, "stop after SECONDS (0 = run until SIGINT/SIGTERM)")
        ->check(CLI::NonNegativeNumber);
    app.add_flag("--check", check_only, "validate the configuration and exit");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : EX_USAGE;
    }

    auto logger = spdlog::stderr_color_mt("loa");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");

    loa::engine::EngineConfig config;
    try {
        config = loa::engine::load_config(config_path);
    } catch (const loa::engine::ConfigError& e) {
        std::cerr << "loa-engine: configuration error: " << e.what() << "\n";
        return EX_CONFIG;
    }
    spdlog::set_level(spdlog::level::from_str(config.engine.log_level));
    if (!sdp_program.empty()) return print_sdp(config, sdp_program);
    if (check_only) {
        std::cout << config_path << ": ok (" << config.programs.size() << " programmes, " << config.clusters.size()
                  << " clusters, " << config.studios.size() << " studios)\n";
        return 0;
    }

    // Block the stop signals in every thread; main waits for them below.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    loa::engine::SystemClock clock;
    std::unique_ptr<ControlPlane> control;  // set before the engine starts, read by its I/O thread
    std::unique_ptr<loa::engine::Engine> engine;
    try {
        engine = std::make_unique<loa::engine::Engine>(config, clock, [&control](const std::string& m) {
            spdlog::warn("{}", m);
            if (control) control->server->post_engine_message(m);
        });
    } catch (const std::exception& e) {
        spdlog::critical("cannot start: {}", e.what());
        return 1;
    }
    if (config.engine.state_dir) {
        try {
            control = open_control_plane(config, clock, *engine);
        } catch (const std::exception& e) {
            spdlog::critical("cannot start the control plane: {}", e.what());
            return 1;
        }
    }
    const auto local = engine->local_endpoint();
    write_sdp_files(config, local);
    engine->start();
    // Served only once the engine runs: control calls (run-time programmes)
    // then come from the server's thread alone.
    if (control) control->server->start();
    std::printf("listening %s:%u\n", local.address().to_string().c_str(), static_cast<unsigned>(local.port()));
    // With the control plane, its lines come first (readers wait for them).
    const auto print_ingest = [&engine] {
        if (const auto ingest = engine->ingest_endpoint()) {
            std::printf("ingest %s:%u\n", ingest->address().to_string().c_str(), static_cast<unsigned>(ingest->port()));
        }
    };
    if (!control) print_ingest();
    if (engine->realtime_refused()) {
        spdlog::warn("real-time priority {} refused (needs CAP_SYS_NICE or LimitRTPRIO=); running with normal "
                     "scheduling", config.engine.realtime_priority);
    }
    if (control) {
        std::printf("control %s\n", control->server->socket_path().c_str());
        if (!control->server->tcp_endpoint().empty()) {
            std::printf("control-tcp %s\n", control->server->tcp_endpoint().c_str());
        }
        spdlog::info("control socket {} (state in {}, schema v{})", control->server->socket_path().string(),
                     control->store->path().string(), control->store->schema_version());
        print_ingest();
    }
    std::fflush(stdout);
    for (const auto& p : engine->programs()) {
        spdlog::info("programme '{}' ssrc {} ({} ms, {} b/s) to {} destination(s)", p->config().name, p->ssrc(),
                     p->config().ptime_ms, p->config().bitrate_bps, engine->destination_count(*p));
    }
    if (const auto ingest = engine->ingest_endpoint()) {
        for (const auto& s : config.studios) {
            spdlog::info("studio '{}' ({}{}{}) feeds programme '{}'; ingest on {}:{}", s.name,
                         s.ssrc ? "ssrc " + std::to_string(*s.ssrc) : std::string(),
                         s.ssrc && s.source_address ? ", " : "",
                         s.source_address ? "from " + s.source_address->to_string() : std::string(), s.program,
                         ingest->address().to_string(), ingest->port());
        }
    }

    // Under systemd (Type=notify): tell it we are up, and keep its watchdog
    // fed from this thread while waiting for a stop signal.
    sd_notify(0, "READY=1");
    std::uint64_t watchdog_us = 0;
    if (sd_watchdog_enabled(0, &watchdog_us) <= 0) watchdog_us = 0;

    loa::engine::SystemClock wait_clock;
    const auto stop_at = duration_s > 0 ? wait_clock.now_ns() + static_cast<std::int64_t>(duration_s * 1e9) : 0;
    int sig = 0;
    for (;;) {
        std::int64_t wait_ns = 3'600'000'000'000;
        if (watchdog_us > 0) wait_ns = static_cast<std::int64_t>(watchdog_us) * 1000 / 2;
        if (stop_at > 0) {
            const auto left = stop_at - wait_clock.now_ns();
            if (left <= 0) break;
            wait_ns = std::min(wait_ns, left);
        }
        timespec ts{};
        ts.tv_sec = static_cast<time_t>(wait_ns / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(wait_ns % 1'000'000'000);
        siginfo_t info{};
        sig = sigtimedwait(&stop_signals, &info, &ts);
        if (sig > 0) break;
        if (watchdog_us > 0) sd_notify(0, "WATCHDOG=1");
    }
    sd_notify(0, "STOPPING=1");
    spdlog::info("stopping ({})", sig > 0 ? strsignal(sig) : "duration reached");
    engine->stop();
    if (control) {
        control->server->stop();
        // The plays on the air end here ("engine stopped"), before their programmes go.
        try {
            control->asrun->finish(clock.unix_ns() / 1'000'000);
        } catch (const std::exception& e) {
            spdlog::warn("as-run log not closed ({}): the next start closes it", e.what());
        }
        control->programmes->set_observer(nullptr);
        control->service->set_asrun_recorder(nullptr);
        // Run-time programmes go before the engine they live in.
        control->service->set_programme_control(nullptr);
        control->service->set_alert_control(nullptr);
        control->service->set_studio_control(nullptr);
        control->service->set_schedule_control(nullptr);
        control->schedules.reset();
        control->alerts.reset();
        control->programme_control.reset();
        control->programmes.reset();
    }
    const auto json = engine->stats_json();
    if (!stats_out.empty()) {
        std::ofstream out(stats_out);
        out << json << "\n";
        if (!out) spdlog::error("cannot write stats to {}", stats_out);
    }
    const auto fs = engine->fanout_stats();
    spdlog::info("sent {} datagrams ({} errors, {} frames missed, {} dropped)", fs.datagrams_sent, fs.send_errors,
                 fs.frames_missed, fs.frames_dropped);
    return 0;
}
