#include "programmes_cmd.h"

#include "output.h"

#include <cstdio>
#include <iostream>

#include <google/protobuf/util/json_util.h>

#include "loa/control/v1/control.pb.h"
#include "loa/engine/control_status.h"

namespace pb = loa::control::v1;
using loa::engine::ControlError;
using loa::engine::RpcCode;

namespace loactl {

namespace {

std::string state_name(pb::ProgrammeState s) {
    switch (s) {
        case pb::PROGRAMME_PLAYING: return "playing";
        case pb::PROGRAMME_PREEMPTED: return "preempted";
        case pb::PROGRAMME_HELD: return "held";
        default: return "-";
    }
}

// "-" without a background bed, else "CLIP (DB dB)", e.g. "3 (-20 dB)".
std::string bed_cell(const pb::Programme& p) {
    if (p.background_clip_id() == 0) return "-";
    char dip[32];
    std::snprintf(dip, sizeof dip, "%g", p.duck_db());
    return std::to_string(p.background_clip_id()) + " (" + dip + " dB)";
}

}  // namespace

void add_programmes_commands(CLI::App& app, ProgrammesCommands& cmds) {
    auto* p = app.add_subcommand("programmes", "run-time programmes, decided by priority per cluster");
    p->require_subcommand(1);
    cmds.start = p->add_subcommand("start", "start a programme to zones; prints its id");
    cmds.start->add_option("--zone", cmds.zones, "target zone (repeat for several)")->required();
    cmds.start->add_option("--level", cmds.level, "background, scheduled, commune, district, province, emergency");
    cmds.start->add_option("--name", cmds.name, "display name");
    auto* src = cmds.start->add_option_group("source", "what it plays");
    src->add_option("--tone", cmds.tone_hz, "a test tone of HZ");
    src->add_option("--clip-id", cmds.clip_id, "a catalogue clip (loactl clips list)");
    src->add_option("--clip", cmds.clip, "an audio file on the engine host (absolute path; admin only)");
    src->add_option("--studio", cmds.studio, "a declared studio");
    src->require_option(1);
    cmds.start->add_flag("--loop", cmds.loop, "clips: repeat until stopped (default: play once)");
    cmds.start
        ->add_option("--on-preempt", cmds.on_preempt,
                     "clips, when every cluster they reach is preempted: resume (pause, then go on where it "
                     "stopped), restart (pause, then play from the start) or drop (stop for good)")
        ->check(CLI::IsMember({"resume", "restart", "drop"}))
        ->capture_default_str();
    cmds.start->add_option("--background-clip", cmds.background_clip_id,
                           "a catalogue clip looped under the source as background music");
    cmds.start
        ->add_option("--duck-db", cmds.duck_db,
                     "with --background-clip: how far the music dips while the source carries voice (-60..0)")
        ->check(CLI::Range(-60.0, 0.0));
    cmds.stop = p->add_subcommand("stop", "stop a programme");
    cmds.stop->add_option("id", cmds.id, "programme id")->required();
    cmds.list = p->add_subcommand("list", "programmes in your scope with their state");
}

int run_programmes_command(const ProgrammesCommands& cmds, loa::engine::ControlClient& client,
                           const std::string& token, bool json, int timeout_ms) {
    client.set_token(token);
    if (cmds.start->parsed()) {
        pb::StartProgrammeRequest req;
        req.set_name(cmds.name);
        const auto level = parse_level(cmds.level);
        if (!level) return pb::INVALID_ARGUMENT;
        req.set_level(*level);
        for (const auto& z : cmds.zones) req.add_zone_ids(z);
        req.set_loop(cmds.loop);
        if (cmds.on_preempt == "restart") {
            req.set_preempt_policy(pb::PREEMPT_RESTART);
        } else if (cmds.on_preempt == "drop") {
            req.set_preempt_policy(pb::PREEMPT_DROP);
        } else {
            req.set_preempt_policy(pb::PREEMPT_RESUME);
        }
        req.set_background_clip_id(static_cast<std::uint64_t>(cmds.background_clip_id));
        req.set_duck_db(cmds.duck_db);
        if (cmds.clip_id != 0) {
            req.set_clip_id(static_cast<std::uint64_t>(cmds.clip_id));
        } else if (!cmds.clip.empty()) {
            req.set_clip_path(cmds.clip);
        } else if (!cmds.studio.empty()) {
            req.set_studio(cmds.studio);
        } else {
            req.set_tone_hz(cmds.tone_hz);
        }
        pb::StartProgrammeResponse r;
        if (const int rc = call(client, "StartProgramme", req, r, timeout_ms); rc != 0) return rc;
        if (json) std::cout << json_of(r) << "\n";
        else std::cout << r.id() << "\n";
        return 0;
    }
    if (cmds.stop->parsed()) {
        pb::StopProgrammeRequest req;
        req.set_id(cmds.id);
        pb::StopProgrammeResponse r;
        if (const int rc = call(client, "StopProgramme", req, r, timeout_ms); rc != 0) return rc;
        if (json) std::cout << json_of(r) << "\n";
        else std::cout << "programme " << cmds.id << " stopped\n";
        return 0;
    }
    pb::ListProgrammesResponse r;
    if (const int rc = call(client, "ListProgrammes", pb::ListProgrammesRequest(), r, timeout_ms); rc != 0) return rc;
    if (json) {
        std::cout << json_of(r) << "\n";
        return 0;
    }
    std::printf("%-6s %-20s %-10s %-10s %-9s %-14s %s\n", "ID", "NAME", "LEVEL", "STATE", "CLUSTERS", "BACKGROUND",
                "ZONES");
    for (const auto& p : r.programmes()) {
        const auto zones = joined(p.zone_ids(), ",");
        const auto clusters = std::to_string(p.clusters_hearing()) + "/" + std::to_string(p.clusters_targeted());
        std::printf("%-6llu %-20s %-10s %-10s %-9s %-14s %s\n", static_cast<unsigned long long>(p.id()),
                    p.name().c_str(), level_text(p.level()).c_str(),
                    p.paused() ? "paused" : state_name(p.state()).c_str(), clusters.c_str(), bed_cell(p).c_str(),
                    zones.c_str());
    }
    return 0;
}

}  // namespace loactl
