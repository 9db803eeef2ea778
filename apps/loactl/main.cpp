// loactl: every control-API call from the command line. Human tables by
// default, --json prints each response through protobuf's JSON printer (one
// object per line).
//
// Exit status: 0 OK; otherwise the gRPC status code of the failed call
// (3 INVALID_ARGUMENT, 5 NOT_FOUND, 7 PERMISSION_DENIED, 14 UNAVAILABLE when
// the engine cannot be reached, 16 UNAUTHENTICATED, ...); 64 bad command line.

#include <sysexits.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <google/protobuf/util/json_util.h>

#include "loa/control/v1/control.pb.h"
#include "loa/engine/control_client.h"
#include "loa/engine/control_status.h"
#include "alerts_cmd.h"
#include "asrun_cmd.h"
#include "clips_cmd.h"
#include "output.h"
#include "programmes_cmd.h"
#include "schedules_cmd.h"
#include "studios_cmd.h"

namespace pb = loa::control::v1;
using loa::engine::ControlError;
using loa::engine::RpcCode;
using loactl::json_of;
using loactl::Table;

namespace {

struct Options {
    std::string socket = "/run/loa/control.sock";
    std::string host;  // HOST:PORT of the TCP listener; set = TCP instead of the socket
    std::string token;
    bool json = false;
    int timeout_ms = 30000;
};


std::string lower_enum(const std::string& name) {
    std::string out;
    for (const char c : name) out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    const auto p = out.find("_zone");
    if (p != std::string::npos) out.erase(p);
    return out;
}

std::string role_name(pb::Role r) { return lower_enum(pb::Role_Name(r)); }
std::string level_name(pb::Level l) { return lower_enum(pb::Level_Name(l)); }
std::string kind_name(pb::ZoneKind k) { return lower_enum(pb::ZoneKind_Name(k)); }

class Cli {
public:
    explicit Cli(Options o) : o_(std::move(o)) {}

    /// Runs one unary call; on success parses the payload into `out`.
    template <class Resp>
    bool call(const std::string& method, const google::protobuf::Message& req, Resp& out) {
        client().set_token(o_.token);
        const auto r = client().call(method, req, o_.timeout_ms);
        if (r.code() != pb::OK) {
            std::cerr << "loactl: " << method << ": " << pb::StatusCode_Name(r.code()) << ": " << r.message() << "\n";
            status_ = r.code();
            return false;
        }
        if (!out.ParseFromString(r.payload())) throw ControlError(RpcCode::Internal, "unreadable response from the engine");
        return true;
    }

    loa::engine::ControlClient& client() {
        if (!client_) {
            if (!o_.host.empty()) {
                client_ = std::make_unique<loa::engine::ControlClient>(loa::engine::TcpAddress{o_.host});
            } else {
                client_ = std::make_unique<loa::engine::ControlClient>(o_.socket);
            }
        }
        return *client_;
    }

    const Options& options() const { return o_; }
    int status() const { return status_; }
    void set_status(int s) { status_ = s; }

private:
    Options o_;
    std::unique_ptr<loa::engine::ControlClient> client_;
    int status_ = 0;
};

void print_zones(const pb::ListZonesResponse& r) {
    Table t({"ID", "KIND", "PARENT", "NAME"});
    for (const auto& z : r.zones()) t.add({z.id(), kind_name(z.kind()), z.parent_id(), z.name()});
    t.print();
}

void print_clusters(const std::vector<pb::Cluster>& cs) {
    Table t({"ID", "ZONE", "ENABLED", "STATE", "ADDRESS", "NAME"});
    for (const auto& c : cs) {
        std::string state = c.has_live() ? (c.live().online() ? "online" : "offline") : "unknown";
        std::string addr = !c.address().empty() ? c.address() : c.multicast_group();
        if (addr.empty() && c.has_live()) addr = c.live().address();
        t.add({c.id(), c.zone_id(), c.enabled() ? "yes" : "no", state, addr, c.name()});
    }
    t.print();
}

void print_operators(const pb::ListOperatorsResponse& r) {
    Table t({"NAME", "ROLE", "ZONE", "MAX LEVEL", "CREATED BY"});
    for (const auto& o : r.operators()) {
        t.add({o.name(), role_name(o.role()), o.zone_id().empty() ? "*" : o.zone_id(), level_name(o.max_level()),
               o.created_by()});
    }
    t.print();
}

template <class M>
void show(const Cli& cli, const M& m, void (*human)(const M&)) {
    if (cli.options().json) {
        std::cout << json_of(m) << "\n";
    } else {
        human(m);
    }
}

pb::ZoneKind parse_kind(const std::string& s) {
    if (s == "province") return pb::PROVINCE_ZONE;
    if (s == "district") return pb::DISTRICT_ZONE;
    if (s == "commune") return pb::COMMUNE_ZONE;
    if (s == "village") return pb::VILLAGE_ZONE;
    throw CLI::ValidationError("--kind", "must be province, district, commune or village");
}

pb::Role parse_role(const std::string& s) {
    pb::Role r{};
    std::string up;
    for (const char c : s) up.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    if (!pb::Role_Parse(up, &r) || r == pb::ROLE_UNSPECIFIED) throw CLI::ValidationError("--role", "must be viewer, operator or admin");
    return r;
}

pb::Level parse_level(const std::string& s) {
    pb::Level l{};
    std::string up;
    for (const char c : s) up.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    if (!pb::Level_Parse(up, &l) || l == pb::LEVEL_UNSPECIFIED) {
        throw CLI::ValidationError("--level", "must be background, scheduled, commune, district, province or emergency");
    }
    return l;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"loactl: drive a Loa engine through its control socket"};
    app.require_subcommand(1);
    Options o;
    if (const char* s = std::getenv("LOA_SOCKET")) o.socket = s;
    if (const char* t = std::getenv("LOA_TOKEN")) o.token = t;
    if (const char* h = std::getenv("LOA_HOST")) o.host = h;
    auto* socket_opt = app.add_option("--socket", o.socket, "control socket (env LOA_SOCKET)")->capture_default_str();
    auto* host_opt = app.add_option("--host", o.host,
                   "HOST:PORT of the engine's TCP control listener instead of the socket (env LOA_HOST); "
                   "every request then needs --token")
        ->excludes(socket_opt);
    app.add_option("--token", o.token, "operator token (env LOA_TOKEN); none = local admin by peer uid");
    app.add_flag("--json", o.json, "print responses as JSON (protobuf's printer), one object per line");
    app.add_option("--timeout-ms", o.timeout_ms, "how long to wait for an answer")->capture_default_str();

    // Arguments of every subcommand; only the chosen one's are used.
    std::string id, name, kind, parent, zone, address, multicast, role, level, page_token, root;
    unsigned page_size = 0;
    bool all_pages = false, disabled = false, from_now = false;
    std::uint64_t after_seq = 0;
    std::size_t count = 0;

    auto* status = app.add_subcommand("status", "engine counters, cluster state and who you are");

    auto* zones = app.add_subcommand("zones", "the zone tree (province > district > commune > village)");
    zones->require_subcommand(1);
    auto* zlist = zones->add_subcommand("list", "list zones in your scope");
    zlist->add_option("--root", root, "only this zone's subtree");
    auto* zcreate = zones->add_subcommand("create", "create a zone");
    zcreate->add_option("id", id, "zone id ([a-z0-9._-])")->required();
    zcreate->add_option("--name", name, "display name")->required();
    zcreate->add_option("--kind", kind, "province, district, commune or village")->required();
    zcreate->add_option("--parent", parent, "parent zone id (not for a province)");
    auto* zrename = zones->add_subcommand("rename", "rename a zone");
    zrename->add_option("id", id)->required();
    zrename->add_option("name", name)->required();
    auto* zmove = zones->add_subcommand("move", "move a zone under another parent");
    zmove->add_option("id", id)->required();
    zmove->add_option("parent", parent)->required();
    auto* zdelete = zones->add_subcommand("delete", "delete an empty zone");
    zdelete->add_option("id", id)->required();

    auto* clusters = app.add_subcommand("clusters", "speaker clusters");
    clusters->require_subcommand(1);
    auto* clist = clusters->add_subcommand("list", "list clusters with their live state");
    clist->add_option("--zone", zone, "only this zone's subtree");
    clist->add_option("--page-size", page_size, "clusters per page (default 100, at most 1000)");
    clist->add_option("--page-token", page_token, "continue after this page token");
    clist->add_flag("--all", all_pages, "follow every page");
    auto* cget = clusters->add_subcommand("get", "one cluster");
    cget->add_option("id", id)->required();
    auto* creg = clusters->add_subcommand("register", "register a cluster");
    creg->add_option("id", id, "cluster id (= the CNAME it reports)")->required();
    creg->add_option("--zone", zone, "zone it belongs to")->required();
    creg->add_option("--name", name, "display name (default: the id)");
    creg->add_option("--address", address, "host:port to send to (else latched from its reports)");
    creg->add_option("--multicast", multicast, "group:port it listens on");
    creg->add_flag("--disabled", disabled, "register it disabled");
    auto* cenable = clusters->add_subcommand("enable", "enable a cluster");
    cenable->add_option("id", id)->required();
    auto* cdisable = clusters->add_subcommand("disable", "disable a cluster");
    cdisable->add_option("id", id)->required();
    auto* cremove = clusters->add_subcommand("remove", "remove a cluster");
    cremove->add_option("id", id)->required();

    auto* ops = app.add_subcommand("operators", "operators and their tokens");
    ops->require_subcommand(1);
    auto* olist = ops->add_subcommand("list", "list operators in your scope");
    auto* ocreate = ops->add_subcommand("create", "create an operator and print its token (shown once)");
    ocreate->add_option("name", name)->required();
    ocreate->add_option("--role", role, "viewer, operator or admin")->required();
    ocreate->add_option("--zone", zone, "zone subtree it may act on (default: whole network)");
    ocreate->add_option("--level", level, "highest priority level it may use")->required();
    auto* orevoke = ops->add_subcommand("revoke", "revoke an operator's token");
    orevoke->add_option("name", name)->required();

    loactl::ClipsCommands clips_cmds;
    loactl::add_clips_commands(app, clips_cmds);
    loactl::ProgrammesCommands programmes_cmds;
    loactl::add_programmes_commands(app, programmes_cmds);
    loactl::AlertsCommands alerts_cmds;
    loactl::add_alerts_commands(app, alerts_cmds);
    loactl::StudiosCommands studios_cmds;
    loactl::add_studios_commands(app, studios_cmds);
    loactl::SchedulesCommands schedules_cmds;
    loactl::add_schedules_commands(app, schedules_cmds);
    loactl::AsRunCommands asrun_cmds;
    loactl::add_asrun_commands(app, asrun_cmds);

    auto* watch = app.add_subcommand("watch", "stream events");
    watch->add_option("--after", after_seq, "resume after this event seq");
    watch->add_flag("--from-now", from_now, "only new events");
    watch->add_option("--count", count, "stop after this many events (0 = until interrupted)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : EX_USAGE;
    }
    // An explicit --socket beats a LOA_HOST from the environment.
    if (socket_opt->count() > 0 && host_opt->count() == 0) o.host.clear();

    Cli cli(o);
    try {
        if (status->parsed()) {
            pb::GetStatusResponse r;
            if (cli.call("GetStatus", pb::GetStatusRequest(), r)) {
                show<pb::GetStatusResponse>(cli, r, [](const pb::GetStatusResponse& s) {
                    const auto& c = s.caller();
                    std::cout << "caller:    " << (c.operator_name().empty() ? "local admin" : c.operator_name()) << " ("
                              << role_name(c.role()) << ", " << (c.zone_id().empty() ? "whole network" : c.zone_id())
                              << ", up to " << level_name(c.max_level()) << ")\n";
                    std::cout << "uptime:    " << s.stats().uptime_ms() / 1000 << " s\n";
                    std::cout << "schema:    v" << s.schema_version() << ", last event " << s.last_event_seq() << "\n";
                    std::cout << "fan-out:   " << s.stats().fanout().datagrams_sent() << " datagrams sent, "
                              << s.stats().fanout().send_errors() << " errors\n";
                    std::cout << "clusters:  " << s.stats().clusters_online() << " online of "
                              << s.stats().clusters_known() << " known\n";
                    Table t({"PROGRAMME", "SSRC", "DESTINATIONS", "FRAMES", "LATE"});
                    for (const auto& p : s.stats().programs()) {
                        t.add({p.name(), std::to_string(p.ssrc()), std::to_string(p.destinations()),
                               std::to_string(p.frames_encoded()), std::to_string(p.frames_late())});
                    }
                    t.print();
                });
            }
        } else if (zlist->parsed()) {
            pb::ListZonesRequest req;
            req.set_root_id(root);
            pb::ListZonesResponse r;
            if (cli.call("ListZones", req, r)) show<pb::ListZonesResponse>(cli, r, print_zones);
        } else if (zcreate->parsed() || zrename->parsed() || zmove->parsed()) {
            pb::Zone z;
            bool ok = false;
            if (zcreate->parsed()) {
                pb::CreateZoneRequest req;
                req.set_id(id);
                req.set_name(name);
                req.set_kind(parse_kind(kind));
                req.set_parent_id(parent);
                ok = cli.call("CreateZone", req, z);
            } else if (zrename->parsed()) {
                pb::RenameZoneRequest req;
                req.set_id(id);
                req.set_name(name);
                ok = cli.call("RenameZone", req, z);
            } else {
                pb::MoveZoneRequest req;
                req.set_id(id);
                req.set_new_parent_id(parent);
                ok = cli.call("MoveZone", req, z);
            }
            if (ok) {
                show<pb::Zone>(cli, z, [](const pb::Zone& x) {
                    std::cout << "zone " << x.id() << " (" << kind_name(x.kind()) << ", '" << x.name() << "'"
                              << (x.parent_id().empty() ? std::string() : ", in " + x.parent_id()) << ")\n";
                });
            }
        } else if (zdelete->parsed()) {
            pb::DeleteZoneRequest req;
            req.set_id(id);
            pb::DeleteZoneResponse r;
            if (cli.call("DeleteZone", req, r)) {
                if (o.json) std::cout << json_of(r) << "\n";
                else std::cout << "zone " << id << " deleted\n";
            }
        } else if (clist->parsed()) {
            pb::ListClustersRequest req;
            req.set_zone_id(zone);
            req.set_page_size(page_size);
            req.set_page_token(page_token);
            std::vector<pb::Cluster> all;
            for (;;) {
                pb::ListClustersResponse r;
                if (!cli.call("ListClusters", req, r)) break;
                if (o.json) std::cout << json_of(r) << "\n";
                all.insert(all.end(), r.clusters().begin(), r.clusters().end());
                if (!all_pages || r.next_page_token().empty()) {
                    if (!o.json) {
                        print_clusters(all);
                        if (!r.next_page_token().empty()) std::cout << "(more: --page-token " << r.next_page_token() << ")\n";
                    }
                    break;
                }
                req.set_page_token(r.next_page_token());
            }
        } else if (cget->parsed() || creg->parsed() || cenable->parsed() || cdisable->parsed()) {
            pb::Cluster c;
            bool ok = false;
            if (cget->parsed()) {
                pb::GetClusterRequest req;
                req.set_id(id);
                ok = cli.call("GetCluster", req, c);
            } else if (creg->parsed()) {
                pb::RegisterClusterRequest req;
                req.set_id(id);
                req.set_name(name);
                req.set_zone_id(zone);
                req.set_address(address);
                req.set_multicast_group(multicast);
                req.set_disabled(disabled);
                ok = cli.call("RegisterCluster", req, c);
            } else {
                pb::SetClusterEnabledRequest req;
                req.set_id(id);
                req.set_enabled(cenable->parsed());
                ok = cli.call("SetClusterEnabled", req, c);
            }
            if (ok) {
                if (o.json) std::cout << json_of(c) << "\n";
                else print_clusters({c});
            }
        } else if (cremove->parsed()) {
            pb::RemoveClusterRequest req;
            req.set_id(id);
            pb::RemoveClusterResponse r;
            if (cli.call("RemoveCluster", req, r)) {
                if (o.json) std::cout << json_of(r) << "\n";
                else std::cout << "cluster " << id << " removed\n";
            }
        } else if (olist->parsed()) {
            pb::ListOperatorsResponse r;
            if (cli.call("ListOperators", pb::ListOperatorsRequest(), r)) show<pb::ListOperatorsResponse>(cli, r, print_operators);
        } else if (ocreate->parsed()) {
            pb::CreateOperatorRequest req;
            req.set_name(name);
            req.set_role(parse_role(role));
            req.set_zone_id(zone);
            req.set_max_level(parse_level(level));
            pb::CreateOperatorResponse r;
            if (cli.call("CreateOperator", req, r)) {
                if (o.json) {
                    std::cout << json_of(r) << "\n";
                } else {
                    std::cout << "operator " << r.operator_().name() << " created; token (shown once, keep it safe):\n"
                              << r.token() << "\n";
                }
            }
        } else if (orevoke->parsed()) {
            pb::RevokeOperatorRequest req;
            req.set_name(name);
            pb::RevokeOperatorResponse r;
            if (cli.call("RevokeOperator", req, r)) {
                if (o.json) std::cout << json_of(r) << "\n";
                else std::cout << "operator " << name << " revoked\n";
            }
        } else if (clips_cmds.parsed()) {
            cli.set_status(loactl::run_clips_command(clips_cmds, cli.client(), o.token, o.json, o.timeout_ms));
        } else if (programmes_cmds.parsed()) {
            cli.set_status(
                loactl::run_programmes_command(programmes_cmds, cli.client(), o.token, o.json, o.timeout_ms));
        } else if (alerts_cmds.parsed()) {
            cli.set_status(loactl::run_alerts_command(alerts_cmds, cli.client(), o.token, o.json, o.timeout_ms));
        } else if (studios_cmds.parsed()) {
            cli.set_status(loactl::run_studios_command(studios_cmds, cli.client(), o.token, o.json, o.timeout_ms));
        } else if (schedules_cmds.parsed()) {
            cli.set_status(
                loactl::run_schedules_command(schedules_cmds, cli.client(), o.token, o.json, o.timeout_ms));
        } else if (asrun_cmds.parsed()) {
            cli.set_status(loactl::run_asrun_command(asrun_cmds, cli.client(), o.token, o.json, o.timeout_ms));
        } else if (watch->parsed()) {
            pb::WatchEventsRequest req;
            req.set_after_seq(after_seq);
            req.set_from_now(from_now);
            auto& c = cli.client();
            c.set_token(o.token);
            const auto rid = c.send("WatchEvents", req);
            std::size_t seen = 0;
            for (;;) {
                auto r = c.read(-1);
                if (!r) throw ControlError(RpcCode::Unavailable, "the engine closed the connection");
                if (r->request_id() != rid) continue;
                if (r->code() != pb::OK) {
                    std::cerr << "loactl: WatchEvents: " << pb::StatusCode_Name(r->code()) << ": " << r->message() << "\n";
                    cli.set_status(r->code());
                    break;
                }
                pb::Event ev;
                if (!ev.ParseFromString(r->payload())) throw ControlError(RpcCode::Internal, "unreadable event");
                if (o.json) {
                    std::cout << json_of(ev) << std::endl;
                } else {
                    std::cout << ev.seq() << "  " << lower_enum(pb::EventKind_Name(ev.kind())) << "  " << ev.subject()
                              << "  " << ev.message() << std::endl;
                }
                if (!r->more()) break;
                if (count > 0 && ++seen >= count) break;
            }
        }
    } catch (const CLI::ValidationError& e) {
        std::cerr << "loactl: " << e.what() << "\n";
        return EX_USAGE;
    } catch (const ControlError& e) {
        std::cerr << "loactl: " << loa::engine::to_string(e.code()) << ": " << e.what() << "\n";
        return static_cast<int>(e.code());
    }
    return cli.status();
}
