#pragma once
// Shared by the alert tests (alerts_*_test.cpp): zones P > D > {A, B} with
// clusters a and c in A and b in B (c has no address), two listening
// sockets for a and b, and a control side (service, programmes, alerts; with
// `with_studios` run-time studios too) that can be torn down without ending
// anything, as a killed engine would, and built again on the same database.
// Also what the tests use to judge an alert's audio.

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <sstream>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "control_calls.h"
#include "engine_test_util.h"
#include "loa/codecs/tone_analysis.h"
#include "loa/engine/alert_control.h"
#include "loa/engine/clock.h"
#include "loa/engine/cluster_registry.h"
#include "loa/engine/control_service.h"
#include "loa/engine/engine.h"
#include "loa/engine/playlist.h"
#include "loa/engine/programme_control.h"
#include "loa/engine/programme_manager.h"
#include "loa/engine/store.h"
#include "loa/engine/studio_control.h"
#include "rtp_listener.h"
#include "temp_dir.h"

namespace loa::test {

inline constexpr std::size_t kAlertFrame = 960;  // 20 ms at 48 kHz

/// The tones of a stretch, in order: 100 ms windows fitted with an SNR of
/// 20 dB or more, equal neighbours collapsed.
inline std::vector<int> tones_of(std::span<const float> pcm) {
    std::vector<int> out;
    for (std::size_t at = 0; at + 4800 <= pcm.size(); at += 4800) {
        const auto fit = loa::codecs::fit_tone(pcm.subspan(at, 4800));
        if (fit.snr_db < 20.0) continue;
        const int hz = static_cast<int>(std::lround(fit.frequency_hz));
        if (out.empty() || std::abs(out.back() - hz) > 5) out.push_back(hz);
    }
    return out;
}

/// One run of consecutive frames with the same (play, item) tag.
struct PlaylistRun {
    std::uint32_t play = 0;
    std::uint32_t item = 0;
    std::vector<float> pcm;
};

/// Plays a playlist source to its end (waiting for the producer, never for
/// the clock) and cuts what it played into runs by tag.
inline std::vector<PlaylistRun> play_out(loa::engine::PlaylistSource& src, std::size_t max_frames = 20000) {
    std::vector<PlaylistRun> runs;
    std::array<float, kAlertFrame> frame{};
    for (std::size_t n = 0; n < max_frames; ++n) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (src.buffered() == 0 && !src.produced_all() && std::chrono::steady_clock::now() < until) {
            std::this_thread::yield();
        }
        if (!src.render(frame)) return runs;
        const auto play = src.progress().play.load();
        const auto item = src.progress().item.load();
        if (runs.empty() || runs.back().play != play || runs.back().item != item) runs.push_back({play, item, {}});
        runs.back().pcm.insert(runs.back().pcm.end(), frame.begin(), frame.end());
    }
    FAIL("the playlist did not end");
    return runs;
}

inline float peak_of(const std::vector<float>& pcm) {
    float p = 0.0f;
    for (const float v : pcm) p = std::max(p, std::abs(v));
    return p;
}

class AlertsFixture : public ControlCalls<AlertsFixture> {
public:
    TempDir dir;
    loa::engine::Store store{dir / "state.db"};
    loa::engine::ManualClock clock{0, 1'700'000'000'000'000'000};
    loa::engine::SystemClock media_clock;
    loa::engine::Engine engine;
    RtpListener a, b;
    loa::engine::ClusterRegistry registry{
        {{"a", boost::asio::ip::udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 6001)},
         {"b", boost::asio::ip::udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 6002)},
         {"c", boost::asio::ip::udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 6003)}},
        15'000'000'000};
    std::unique_ptr<loa::engine::ControlService> service;
    std::unique_ptr<loa::engine::ProgrammeManager> manager;
    std::unique_ptr<loa::engine::ProgrammeControl> programmes;
    std::unique_ptr<loa::engine::StudioControl> studios;  // with_studios only
    std::unique_ptr<loa::engine::AlertControl> alerts;
    std::vector<std::string> restore_problems;

    /// `start_media`: run the engine's media thread (else the test plays
    /// sources itself); `with_studios`: an ingest socket and run-time studios.
    AlertsFixture(const std::string& dir_name, bool start_media, bool with_studios)
        : dir(dir_name),
          engine(with_studios ? studio_engine_config(dir.path()) : loopback_engine_config(), media_clock),
          with_studios_(with_studios) {
        store.write([&] {
            store.insert_zone({"P", "Province", loa::engine::ZoneKind::Province, ""});
            store.insert_zone({"D", "District", loa::engine::ZoneKind::District, "P"});
            store.insert_zone({"A", "Commune A", loa::engine::ZoneKind::Commune, "D"});
            store.insert_zone({"B", "Commune B", loa::engine::ZoneKind::Commune, "D"});
            store.insert_cluster({"a", "a", "A", a.address(), "", true});
            store.insert_cluster({"b", "b", "B", b.address(), "", true});
            store.insert_cluster({"c", "c", "A", "", "", true});
        });
        if (start_media) engine.start();
        open();
    }
    ~AlertsFixture() {
        close();
        engine.stop();
    }
    AlertsFixture(const AlertsFixture&) = delete;
    AlertsFixture& operator=(const AlertsFixture&) = delete;

    loa::engine::ControlService& control_service() { return *service; }

    /// Builds the control side as loa-engine does, restoring what the
    /// database holds (alerts' problems in restore_problems).
    void open() {
        service = std::make_unique<loa::engine::ControlService>(store, clock, 1000);
        manager = std::make_unique<loa::engine::ProgrammeManager>(engine);
        programmes = std::make_unique<loa::engine::ProgrammeControl>(store, *manager, clock);
        programmes->set_clip_dir(service->clip_catalog().dir());
        REQUIRE(programmes->refresh_topology().ok());
        if (with_studios_) {
            studios = std::make_unique<loa::engine::StudioControl>(store, engine);
            REQUIRE(studios->restore().empty());
            service->set_studio_control(studios.get());
        }
        REQUIRE(programmes->restore().empty());
        service->set_programme_control(programmes.get());
        alerts = std::make_unique<loa::engine::AlertControl>(store, *manager, clock);
        alerts->set_clip_dir(service->clip_catalog().dir());
        service->set_alert_control(alerts.get());
        restore_problems = alerts->restore();
        service->set_live_state_provider([this](const std::string& id) -> std::optional<loa::engine::v1::ClusterState> {
            const auto snap = registry.find(id);
            if (!snap) return std::nullopt;
            loa::engine::v1::ClusterState st;
            st.set_id(snap->id);
            st.set_online(snap->online);
            if (snap->has_status) {
                st.set_playing_ssrc(snap->status.playing_ssrc);
                st.set_amplifier_on(snap->status.amplifier_on);
            }
            return st;
        });
    }
    /// Drops the control side without ending anything (a crash, as far as
    /// the database is concerned).
    void close() {
        if (!service) return;
        service->set_alert_control(nullptr);
        service->set_programme_control(nullptr);
        if (studios) service->set_studio_control(nullptr);
        alerts.reset();
        studios.reset();
        programmes.reset();
        manager.reset();
        service.reset();
    }

    std::int64_t now_ms() const { return clock.unix_ns() / 1'000'000; }
    void advance_ms(std::int64_t ms) { clock.advance(ms * 1'000'000); }

    /// Events of `kind` after seq `after`, oldest first.
    std::vector<loa::engine::EventRow> events_of(int kind, std::uint64_t after = 0) const {
        std::vector<loa::engine::EventRow> out;
        for (auto& e : store.events_after(after, 1000)) {
            if (e.kind == kind) out.push_back(std::move(e));
        }
        return out;
    }

    /// The alert's programme inside the engine; nullptr once it is off the air.
    const loa::engine::Program* programme_of(std::uint64_t alert_id) {
        const auto group = manager->group_of(loa::engine::AlertControl::kProgrammeIdBase + alert_id);
        return group ? engine.runtime_programme(*group) : nullptr;
    }

private:
    bool with_studios_;
};

/// The alerts of catalogue clips (no studios) in a folder "loa-alerts".
struct ClipAlertsFixture : AlertsFixture {
    explicit ClipAlertsFixture(bool start_media) : AlertsFixture("loa-alerts", start_media, false) {}

    /// "flood" to `zones`, playing `clip`, expiring after 60 s.
    loa::control::v1::RaiseAlertRequest alert_to(std::vector<std::string> zones, std::uint64_t clip) const {
        loa::control::v1::RaiseAlertRequest r;
        r.set_name("flood");
        for (const auto& z : zones) r.add_zone_ids(z);
        r.set_clip_id(clip);
        r.set_duration_s(60);
        return r;
    }

    /// The alert's playlist source inside the engine (engine not started only).
    loa::engine::PlaylistSource* source_of(std::uint64_t alert_id) {
        const auto group = manager->group_of(loa::engine::AlertControl::kProgrammeIdBase + alert_id);
        REQUIRE(group);
        const loa::engine::Program* p = engine.runtime_programme(*group);
        REQUIRE(p != nullptr);
        REQUIRE(p->sources().size() == 1);
        return dynamic_cast<loa::engine::PlaylistSource*>(p->sources().front().get());
    }

    /// What must not change when a call is refused.
    std::string snapshot() const {
        std::ostringstream os;
        os << store.alerts().size() << "|" << store.last_event_seq() << "|" << manager->list().size() << "|"
           << alerts->size() << "|" << store.meta("last_alert_id").value_or("-");
        for (const auto& c : store.clips()) os << "|" << c.id << ":" << c.uses;
        return os.str();
    }
};

}  // namespace loa::test
