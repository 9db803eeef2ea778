#include "studios_cmd.h"

#include "output.h"

#include <iostream>

#include "loa/control/v1/control.pb.h"

namespace pb = loa::control::v1;

namespace loactl {

namespace {

std::string criteria(const pb::Studio& s) {
    std::string out;
    if (s.has_ssrc()) out = "ssrc " + std::to_string(s.ssrc());
    if (!s.source_address().empty()) out += (out.empty() ? "" : ", ") + std::string("from ") + s.source_address();
    return out;
}

std::string delay(const pb::Studio& s) {
    if (s.fixed_delay_ms() > 0) return std::to_string(s.fixed_delay_ms()) + " ms fixed";
    return std::to_string(s.min_delay_ms()) + ".." + std::to_string(s.max_delay_ms()) + " ms";
}

std::string state(const pb::Studio& s) {
    if (!s.has_live()) return "not in engine";
    return s.receiving() ? "receiving" : "silent";
}

void print_studios(const google::protobuf::RepeatedPtrField<pb::Studio>& studios) {
    Table t({"NAME", "ZONE", "MATCH", "DELAY", "FALLBACK", "STATE", "LATCHED", "PROGRAMME", "PACKETS", "LOST", "LATE"});
    for (const auto& s : studios) {
        const auto& l = s.live();
        // A studio of the engine's config file has no zone: say so and name its programme.
        const std::string zone = s.config_program().empty() ? s.zone_id() : "(config)";
        const std::string programme = !s.config_program().empty() ? "config " + s.config_program()
                                      : s.programme_id() == 0     ? std::string("-")
                                                                  : std::to_string(s.programme_id());
        t.add({s.name(), zone, criteria(s), delay(s),
               s.fallback_clip_id() == 0 ? std::string("-") : "clip " + std::to_string(s.fallback_clip_id()),
               state(s), l.latched_address().empty() ? std::string("-") : l.latched_address(),
               programme, std::to_string(l.accepted()), std::to_string(l.lost()), std::to_string(l.late())});
    }
    t.print();
}

}  // namespace

void add_studios_commands(CLI::App& app, StudiosCommands& cmds) {
    auto* s = app.add_subcommand("studios", "live studios pushing to the engine's ingest socket");
    s->require_subcommand(1);
    cmds.declare = s->add_subcommand("declare", "declare a studio in a zone");
    cmds.declare->add_option("name", cmds.name, "studio name ([A-Za-z0-9._-])")->required();
    cmds.declare->add_option("--zone", cmds.zone, "zone it belongs to")->required();
    cmds.ssrc_opt = cmds.declare->add_option("--ssrc", cmds.ssrc, "SSRC of its RTP stream");
    cmds.address_opt = cmds.declare->add_option("--source-address", cmds.source_address,
                                                "IPv4 host its packets come from (no port)");
    cmds.declare->add_option("--min-delay-ms", cmds.min_delay_ms, "floor of the adaptive playout delay (0..2000)");
    cmds.declare->add_option("--max-delay-ms", cmds.max_delay_ms,
                             "ceiling of the adaptive playout delay (10..5000, default 500)");
    cmds.declare->add_option("--delay-ms", cmds.delay_ms, "impose this playout delay instead of adapting");
    cmds.fallback_opt =
        cmds.declare->add_option("--fallback-clip", cmds.fallback_clip, "catalogue clip looped while it is silent");
    cmds.list = s->add_subcommand("list", "studios in your scope with their live state");
    cmds.remove = s->add_subcommand("remove", "remove a studio (no programme may play it)");
    cmds.remove->add_option("name", cmds.name, "studio name")->required();
}

int run_studios_command(const StudiosCommands& cmds, loa::engine::ControlClient& client, const std::string& token,
                        bool json, int timeout_ms) {
    client.set_token(token);
    if (cmds.declare->parsed()) {
        pb::DeclareStudioRequest req;
        req.set_name(cmds.name);
        req.set_zone_id(cmds.zone);
        if (cmds.ssrc_opt->count() > 0) req.set_ssrc(cmds.ssrc);
        if (cmds.address_opt->count() > 0) req.set_source_address(cmds.source_address);
        req.set_min_delay_ms(cmds.min_delay_ms);
        req.set_max_delay_ms(cmds.max_delay_ms);
        req.set_fixed_delay_ms(cmds.delay_ms);
        if (cmds.fallback_opt->count() > 0) req.set_fallback_clip_id(cmds.fallback_clip);
        pb::Studio r;
        if (const int rc = call(client, "DeclareStudio", req, r, timeout_ms); rc != 0) return rc;
        if (json) {
            std::cout << json_of(r) << "\n";
        } else {
            std::cout << "studio " << r.name() << " declared in zone " << r.zone_id() << " (" << criteria(r) << ", "
                      << delay(r) << ")\n";
        }
        return 0;
    }
    if (cmds.remove->parsed()) {
        pb::RemoveStudioRequest req;
        req.set_name(cmds.name);
        pb::RemoveStudioResponse r;
        if (const int rc = call(client, "RemoveStudio", req, r, timeout_ms); rc != 0) return rc;
        if (json) std::cout << json_of(r) << "\n";
        else std::cout << "studio " << cmds.name << " removed\n";
        return 0;
    }
    pb::ListStudiosResponse r;
    if (const int rc = call(client, "ListStudios", pb::ListStudiosRequest(), r, timeout_ms); rc != 0) return rc;
    if (json) std::cout << json_of(r) << "\n";
    else print_studios(r.studios());
    return 0;
}

}  // namespace loactl
