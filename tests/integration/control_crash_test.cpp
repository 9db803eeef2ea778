// Crash durability of the control plane: a client issues 1,000 seeded, mixed
// mutating calls (zones, clusters, operators) against a real loa-engine while
// the engine is killed with SIGKILL at seeded points, sometimes between calls,
// sometimes with a call in flight, and restarted. After every restart and at
// the end the state read back through the API must be exactly what the
// acknowledged calls imply (a call in flight at the kill may or may not have
// applied: both outcomes are accepted), tokens of surviving operators still
// authenticate and revoked ones do not, state.db passes PRAGMA
// integrity_check (opened read-only), and no temporary file is left in the
// state directory.
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration_util.h"
#include "loa/engine/control_client.h"
#include "loa/engine/control_status.h"
#include "process.h"
#include "temp_dir.h"

using namespace loa;
namespace pb = loa::control::v1;

namespace {

const std::string kEngine = LOA_ENGINE_BIN;

// ---- the model ---------------------------------------------------------------

struct ZoneM {
    std::string name;
    int kind = 1;  // 1 province .. 4 village
    std::string parent;
    bool operator==(const ZoneM&) const = default;
};

struct ClusterM {
    std::string name;
    std::string zone;
    std::string address;
    bool enabled = true;
    bool operator==(const ClusterM&) const = default;
};

struct OperatorM {
    int role = 1;
    std::string zone;
    int level = 1;
    bool operator==(const OperatorM&) const = default;
};

struct State {
    std::map<std::string, ZoneM> zones;
    std::map<std::string, ClusterM> clusters;
    std::map<std::string, OperatorM> operators;
    bool operator==(const State&) const = default;
};

std::string describe(const State& s) {
    std::ostringstream o;
    o << s.zones.size() << " zones, " << s.clusters.size() << " clusters, " << s.operators.size() << " operators\n";
    for (const auto& [id, z] : s.zones) o << "  zone " << id << " '" << z.name << "' kind " << z.kind << " parent '" << z.parent << "'\n";
    for (const auto& [id, c] : s.clusters) {
        o << "  cluster " << id << " '" << c.name << "' zone " << c.zone << " addr '" << c.address << "' "
          << (c.enabled ? "enabled" : "disabled") << "\n";
    }
    for (const auto& [n, op] : s.operators) {
        o << "  operator " << n << " role " << op.role << " zone '" << op.zone << "' level " << op.level << "\n";
    }
    return o.str();
}

// Lines of `a` not in `b` and vice versa: what a mismatch report shows.
std::string diff(const State& expected, const State& actual) {
    auto lines = [](const State& s) {
        std::vector<std::string> v;
        std::istringstream in(describe(s));
        for (std::string l; std::getline(in, l);) v.push_back(l);
        return v;
    };
    const auto e = lines(expected);
    const auto a = lines(actual);
    std::string out;
    for (const auto& l : e) {
        if (std::find(a.begin(), a.end(), l) == a.end()) out += "missing: " + l + "\n";
    }
    for (const auto& l : a) {
        if (std::find(e.begin(), e.end(), l) == e.end()) out += "unexpected: " + l + "\n";
    }
    return out;
}

// One mutating call: the method, its serialized request, and what the state
// becomes if it succeeds (nullopt when the model says it cannot succeed).
struct Op {
    std::string method;
    std::string payload;  // serialized request (for the report)
    std::unique_ptr<google::protobuf::MessageLite> request;
    std::function<std::optional<State>(const State&)> apply;
};

template <class M>
Op make_op(std::string method, M req, std::function<std::optional<State>(const State&)> apply) {
    Op op;
    op.method = std::move(method);
    op.payload = req.ShortDebugString();
    op.request = std::make_unique<M>(std::move(req));
    op.apply = std::move(apply);
    return op;
}

class Generator {
public:
    explicit Generator(std::uint64_t seed) : rng_(seed) {}

    std::mt19937_64& rng() { return rng_; }
    int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
    bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }

    Op next(const State& s) {
        const int w = uniform(0, 99);
        if (w < 18) return create_zone(s);
        if (w < 26) return rename_zone(s);
        if (w < 31) return move_zone(s);
        if (w < 38) return delete_zone(s);
        if (w < 60) return register_cluster(s);
        if (w < 80) return set_enabled(s);
        if (w < 87) return remove_cluster(s);
        if (w < 95) return create_operator(s);
        return revoke_operator(s);
    }

private:
    template <class Map>
    std::string existing(const Map& m, const std::string& fallback) {
        if (m.empty()) return fallback;
        auto it = m.begin();
        std::advance(it, uniform(0, static_cast<int>(m.size()) - 1));
        return it->first;
    }
    // An id from a pool of `n` ("z7"), preferably one `m` does not hold yet.
    template <class Map>
    std::string fresh(const Map& m, const char* prefix, int n) {
        std::string id;
        for (int tries = 0; tries < 8; ++tries) {
            id = prefix + std::to_string(uniform(0, n - 1));
            if (!m.contains(id) || chance(0.05)) break;  // now and then a duplicate on purpose
        }
        return id;
    }
    std::string name() { return "name-" + std::to_string(uniform(0, 999999)); }

    Op create_zone(const State& s) {
        pb::CreateZoneRequest r;
        r.set_id(chance(0.02) ? "Bad Id" : fresh(s.zones, "z", 64));
        r.set_name(name());
        std::vector<std::string> parents;
        for (const auto& [id, z] : s.zones) {
            if (z.kind < 4) parents.push_back(id);
        }
        if (parents.empty() || chance(0.12)) {
            r.set_kind(pb::PROVINCE_ZONE);
        } else {
            const auto& p = parents[static_cast<std::size_t>(uniform(0, static_cast<int>(parents.size()) - 1))];
            r.set_parent_id(p);
            r.set_kind(static_cast<pb::ZoneKind>(s.zones.at(p).kind + (chance(0.03) ? 2 : 1)));  // rarely a wrong level
        }
        return make_op("CreateZone", r, [r](const State& st) -> std::optional<State> {
            if (st.zones.contains(r.id())) return std::nullopt;
            State n = st;
            n.zones[r.id()] = ZoneM{r.name(), static_cast<int>(r.kind()), r.parent_id()};
            return n;
        });
    }

    Op rename_zone(const State& s) {
        pb::RenameZoneRequest r;
        r.set_id(existing(s.zones, "z-none"));
        r.set_name(name());
        return make_op("RenameZone", r, [r](const State& st) -> std::optional<State> {
            if (!st.zones.contains(r.id())) return std::nullopt;
            State n = st;
            n.zones[r.id()].name = r.name();
            return n;
        });
    }

    Op move_zone(const State& s) {
        pb::MoveZoneRequest r;
        std::vector<std::string> movable;
        for (const auto& [id, z] : s.zones) {
            if (z.kind > 1) movable.push_back(id);
        }
        if (movable.empty()) {
            r.set_id(existing(s.zones, "z-none"));
            r.set_new_parent_id("z-none");
        } else {
            r.set_id(movable[static_cast<std::size_t>(uniform(0, static_cast<int>(movable.size()) - 1))]);
            std::vector<std::string> parents;
            for (const auto& [id, z] : s.zones) {
                if (z.kind == s.zones.at(r.id()).kind - 1) parents.push_back(id);
            }
            r.set_new_parent_id(parents[static_cast<std::size_t>(uniform(0, static_cast<int>(parents.size()) - 1))]);
        }
        return make_op("MoveZone", r, [r](const State& st) -> std::optional<State> {
            if (!st.zones.contains(r.id())) return std::nullopt;
            State n = st;
            n.zones[r.id()].parent = r.new_parent_id();
            return n;
        });
    }

    Op delete_zone(const State& s) {
        pb::DeleteZoneRequest r;
        std::vector<std::string> empty;
        for (const auto& [id, z] : s.zones) {
            bool used = false;
            for (const auto& [cid, c] : s.zones) used = used || c.parent == id;
            for (const auto& [cid, c] : s.clusters) used = used || c.zone == id;
            for (const auto& [on, o] : s.operators) used = used || o.zone == id;
            if (!used) empty.push_back(id);
        }
        if (!empty.empty() && chance(0.8)) {
            r.set_id(empty[static_cast<std::size_t>(uniform(0, static_cast<int>(empty.size()) - 1))]);
        } else {
            r.set_id(existing(s.zones, "z-none"));  // often not empty: FAILED_PRECONDITION
        }
        return make_op("DeleteZone", r, [r](const State& st) -> std::optional<State> {
            if (!st.zones.contains(r.id())) return std::nullopt;
            State n = st;
            n.zones.erase(r.id());
            return n;
        });
    }

    Op register_cluster(const State& s) {
        pb::RegisterClusterRequest r;
        r.set_id(fresh(s.clusters, "c", 160));
        if (chance(0.7)) r.set_name(name());
        r.set_zone_id(chance(0.03) ? "z-none" : existing(s.zones, "z-none"));
        if (chance(0.6)) r.set_address("127.0.0.1:" + std::to_string(uniform(20000, 29999)));
        r.set_disabled(chance(0.3));
        return make_op("RegisterCluster", r, [r](const State& st) -> std::optional<State> {
            if (st.clusters.contains(r.id()) || !st.zones.contains(r.zone_id())) return std::nullopt;
            State n = st;
            n.clusters[r.id()] = ClusterM{r.name().empty() ? r.id() : r.name(), r.zone_id(), r.address(), !r.disabled()};
            return n;
        });
    }

    Op set_enabled(const State& s) {
        pb::SetClusterEnabledRequest r;
        r.set_id(existing(s.clusters, "c-none"));
        r.set_enabled(chance(0.5));
        return make_op("SetClusterEnabled", r, [r](const State& st) -> std::optional<State> {
            if (!st.clusters.contains(r.id())) return std::nullopt;
            State n = st;
            n.clusters[r.id()].enabled = r.enabled();
            return n;
        });
    }

    Op remove_cluster(const State& s) {
        pb::RemoveClusterRequest r;
        r.set_id(chance(0.05) ? "c-none" : existing(s.clusters, "c-none"));
        return make_op("RemoveCluster", r, [r](const State& st) -> std::optional<State> {
            if (!st.clusters.contains(r.id())) return std::nullopt;
            State n = st;
            n.clusters.erase(r.id());
            return n;
        });
    }

    Op create_operator(const State& s) {
        pb::CreateOperatorRequest r;
        r.set_name(fresh(s.operators, "op", 40));
        r.set_role(static_cast<pb::Role>(uniform(1, 3)));
        r.set_max_level(static_cast<pb::Level>(uniform(1, 6)));
        if (chance(0.6)) r.set_zone_id(existing(s.zones, "z-none"));
        return make_op("CreateOperator", r, [r](const State& st) -> std::optional<State> {
            if (st.operators.contains(r.name()) || (!r.zone_id().empty() && !st.zones.contains(r.zone_id()))) {
                return std::nullopt;
            }
            State n = st;
            n.operators[r.name()] = OperatorM{static_cast<int>(r.role()), r.zone_id(), static_cast<int>(r.max_level())};
            return n;
        });
    }

    Op revoke_operator(const State& s) {
        pb::RevokeOperatorRequest r;
        r.set_name(existing(s.operators, "op-none"));
        return make_op("RevokeOperator", r, [r](const State& st) -> std::optional<State> {
            if (!st.operators.contains(r.name())) return std::nullopt;
            State n = st;
            n.operators.erase(r.name());
            return n;
        });
    }

    std::mt19937_64 rng_;
};

// ---- the engine --------------------------------------------------------------

class Engine {
public:
    explicit Engine(const test::TempDir& dir) : dir_(dir), socket_(dir / "control.sock") {
        std::ofstream(dir / "engine.toml") << "[engine]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\n"
                                           << "[control]\nsocket = \"control.sock\"\n";
    }

    // Starts the engine and waits for its `control <socket>` line.
    void start() {
        ++starts_;
        proc_ = std::make_unique<test::Process>(
            std::vector<std::string>{kEngine, "--config", (dir_ / "engine.toml").string()},
            (dir_ / ("engine-" + std::to_string(starts_) + ".log")).string());
        bool ready = false;
        for (int i = 0; i < 8 && !ready; ++i) {
            const auto line = proc_->read_line(20000);
            REQUIRE(line);
            ready = *line == "control " + socket_.string();
        }
        REQUIRE(ready);
    }

    void kill() {
        proc_->signal(SIGKILL);
        REQUIRE(proc_->wait(20000) == std::optional<int>(-SIGKILL));
        proc_.reset();
    }

    void stop() {
        proc_->signal(SIGTERM);
        REQUIRE(proc_->wait(20000) == std::optional<int>(0));
        proc_.reset();
    }

    const std::filesystem::path& socket() const { return socket_; }
    int starts() const { return starts_; }

private:
    const test::TempDir& dir_;
    std::filesystem::path socket_;
    std::unique_ptr<test::Process> proc_;
    int starts_ = 0;
};

pb::Response call_ok(engine::ControlClient& c, const std::string& method, const google::protobuf::MessageLite& req) {
    const auto r = c.call(method, req);
    INFO(method << ": " << r.message());
    REQUIRE(r.code() == pb::OK);
    return r;
}

State read_state(engine::ControlClient& c) {
    State s;
    pb::ListZonesResponse zones;
    REQUIRE(zones.ParseFromString(call_ok(c, "ListZones", pb::ListZonesRequest()).payload()));
    for (const auto& z : zones.zones()) s.zones[z.id()] = ZoneM{z.name(), static_cast<int>(z.kind()), z.parent_id()};
    pb::ListClustersRequest lc;
    lc.set_page_size(1000);
    for (;;) {
        pb::ListClustersResponse page;
        REQUIRE(page.ParseFromString(call_ok(c, "ListClusters", lc).payload()));
        for (const auto& cl : page.clusters()) {
            s.clusters[cl.id()] = ClusterM{cl.name(), cl.zone_id(), cl.address(), cl.enabled()};
        }
        if (page.next_page_token().empty()) break;
        lc.set_page_token(page.next_page_token());
    }
    pb::ListOperatorsResponse ops;
    REQUIRE(ops.ParseFromString(call_ok(c, "ListOperators", pb::ListOperatorsRequest()).payload()));
    for (const auto& o : ops.operators()) {
        s.operators[o.name()] = OperatorM{static_cast<int>(o.role()), o.zone_id(), static_cast<int>(o.max_level())};
    }
    return s;
}

// The state database opened read-only (the engine is dead or running): its
// PRAGMA integrity_check, and the row counts of the three tables.
struct DbCheck {
    std::string integrity;
    std::int64_t zones = -1, clusters = -1, operators = -1;
};

DbCheck check_db(const std::filesystem::path& db_path) {
    DbCheck out;
    sqlite3* db = nullptr;
    const int rc = sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    if (rc != SQLITE_OK) {
        out.integrity = std::string("open failed: ") + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return out;
    }
    sqlite3_busy_timeout(db, 5000);
    const auto query = [&](const char* sql, const std::function<void(sqlite3_stmt*)>& row) {
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) {
            out.integrity += std::string(" prepare failed: ") + sqlite3_errmsg(db);
            return;
        }
        int s = 0;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) row(st);
        if (s != SQLITE_DONE) out.integrity += std::string(" step failed: ") + sqlite3_errmsg(db);
        sqlite3_finalize(st);
    };
    query("PRAGMA integrity_check", [&](sqlite3_stmt* st) {
        if (!out.integrity.empty()) out.integrity += "; ";
        out.integrity += reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    });
    query("SELECT count(*) FROM zones", [&](sqlite3_stmt* st) { out.zones = sqlite3_column_int64(st, 0); });
    query("SELECT count(*) FROM clusters", [&](sqlite3_stmt* st) { out.clusters = sqlite3_column_int64(st, 0); });
    query("SELECT count(*) FROM operators", [&](sqlite3_stmt* st) { out.operators = sqlite3_column_int64(st, 0); });
    sqlite3_close(db);
    return out;
}

// Files in the state directory that look like a temporary or partial write.
std::vector<std::string> temp_files(const std::filesystem::path& state_dir) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(state_dir)) {
        const auto name = e.path().filename().string();
        if (name.find(".tmp") != std::string::npos || name.find(".part") != std::string::npos ||
            name.rfind("tmp", 0) == 0) {
            out.push_back(e.path().string());
        }
    }
    return out;
}

}  // namespace

TEST_CASE("control_acknowledged_changes_survive_sigkill", "[integration][control]") {
    constexpr int kCalls = 1000;
    // A fixed seed; LOA_CRASH_SEED replays another one (to chase a failure).
    const std::uint64_t kSeed = std::getenv("LOA_CRASH_SEED") ? std::stoull(std::getenv("LOA_CRASH_SEED")) : 0x10a5eed;
    test::TempDir dir("loa-crash");
    Engine engine(dir);
    Generator gen(kSeed);
    const auto state_dir = dir / "state";

    State model;                               // exactly what the acknowledged calls imply
    std::map<std::string, std::string> live_tokens;  // operator -> token of its acknowledged creation
    std::vector<std::string> dead_tokens;      // tokens of operators known to be gone
    std::map<std::string, int> acked;          // method -> acknowledged calls
    int refused = 0, unknown = 0, unknown_applied = 0, kills = 0, inflight_kills = 0;

    // After a kill: the database is sound, nothing temporary is left, and
    // after the restart the state is the model, or (when a call was in flight)
    // the model with that call applied. The model then becomes what was found.
    const auto restart_and_check = [&](const std::optional<State>& alternative) -> std::unique_ptr<engine::ControlClient> {
        const auto db = check_db(state_dir / "state.db");
        INFO("after kill " << kills);
        REQUIRE(db.integrity == "ok");
        REQUIRE(temp_files(state_dir).empty());
        engine.start();
        auto client = std::make_unique<engine::ControlClient>(engine.socket());
        const State found = read_state(*client);
        const bool as_model = found == model;
        const bool as_alternative = alternative && found == *alternative;
        INFO("restart " << engine.starts() << ": differences from the acknowledged state:\n" << diff(model, found));
        REQUIRE((as_model || as_alternative));
        if (!as_model) ++unknown_applied;
        REQUIRE(db.zones == static_cast<std::int64_t>(found.zones.size()));
        REQUIRE(db.clusters == static_cast<std::int64_t>(found.clusters.size()));
        REQUIRE(db.operators == static_cast<std::int64_t>(found.operators.size()));
        model = found;
        for (auto it = live_tokens.begin(); it != live_tokens.end();) {
            if (!model.operators.contains(it->first)) {
                dead_tokens.push_back(it->second);
                it = live_tokens.erase(it);
            } else {
                ++it;
            }
        }
        return client;
    };

    // The outcome of one answered call: OK changes the model, any other code
    // changes nothing (the call's transaction was rolled back).
    const auto settle = [&](const Op& op, const pb::Response& r) {
        INFO(op.method << " " << op.payload << " -> " << r.code() << " " << r.message());
        REQUIRE((r.code() == pb::OK || r.code() == pb::INVALID_ARGUMENT || r.code() == pb::NOT_FOUND ||
                 r.code() == pb::ALREADY_EXISTS || r.code() == pb::FAILED_PRECONDITION));
        if (r.code() != pb::OK) {
            ++refused;
            return;
        }
        ++acked[op.method];
        auto next = op.apply(model);
        REQUIRE(next);  // the model agrees that this call could succeed
        model = std::move(*next);
        if (op.method == "CreateOperator") {
            pb::CreateOperatorResponse cr;
            REQUIRE(cr.ParseFromString(r.payload()));
            live_tokens[cr.operator_().name()] = cr.token();
        } else if (op.method == "RevokeOperator") {
            const auto& name = static_cast<const pb::RevokeOperatorRequest&>(*op.request).name();
            if (const auto it = live_tokens.find(name); it != live_tokens.end()) {
                dead_tokens.push_back(it->second);
                live_tokens.erase(it);
            }
        }
    };

    engine.start();
    auto client = std::make_unique<engine::ControlClient>(engine.socket());
    int next_kill = gen.uniform(20, 180);
    for (int i = 0; i < kCalls; ++i) {
        const Op op = gen.next(model);
        if (i != next_kill) {
            settle(op, client->call(op.method, *op.request));
            continue;
        }
        next_kill = i + gen.uniform(20, 180);
        ++kills;
        if (gen.chance(0.5)) {
            // Between calls: this one is answered, then the engine dies.
            settle(op, client->call(op.method, *op.request));
            engine.kill();
            client = restart_and_check(std::nullopt);
            continue;
        }
        // With the call in flight: the kill lands at once or a seeded 0..1.5 ms
        // after the request was sent, i.e. before, during or after its commit.
        // The pause only picks the kill point; no check depends on its length.
        ++inflight_kills;
        const int delay_us = gen.chance(0.3) ? 0 : gen.uniform(0, 1500);
        const auto id = client->send(op.method, *op.request);
        if (delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
        engine.kill();
        std::optional<pb::Response> answer;
        try {
            while (auto r = client->read(5000)) {
                if (r->request_id() == id) {
                    answer = std::move(r);
                    break;
                }
            }
        } catch (const engine::ControlError&) {
            // A frame cut by the kill: no answer.
        }
        std::optional<State> alternative;
        if (answer) {
            settle(op, *answer);  // answered before the kill: acknowledged (or refused) as usual
        } else {
            ++unknown;
            alternative = op.apply(model);
        }
        client = restart_and_check(alternative);
    }

    // The end: state through the API once more, tokens, then a last crash and
    // the database read directly.
    REQUIRE(read_state(*client) == model);
    for (const auto& [name, token] : live_tokens) {
        engine::ControlClient c(engine.socket());
        c.set_token(token);
        const auto r = c.call("GetStatus", pb::GetStatusRequest());
        INFO("token of " << name << ": " << r.message());
        REQUIRE(r.code() == pb::OK);
        pb::GetStatusResponse st;
        REQUIRE(st.ParseFromString(r.payload()));
        REQUIRE(st.caller().operator_name() == name);
    }
    for (const auto& token : dead_tokens) {
        engine::ControlClient c(engine.socket());
        c.set_token(token);
        REQUIRE(c.call("GetStatus", pb::GetStatusRequest()).code() == pb::UNAUTHENTICATED);
    }
    client.reset();
    engine.kill();
    const auto db = check_db(state_dir / "state.db");
    REQUIRE(db.integrity == "ok");
    REQUIRE(db.zones == static_cast<std::int64_t>(model.zones.size()));
    REQUIRE(db.clusters == static_cast<std::int64_t>(model.clusters.size()));
    REQUIRE(db.operators == static_cast<std::int64_t>(model.operators.size()));
    REQUIRE(temp_files(state_dir).empty());

    int total_acked = 0;
    std::ostringstream summary;
    for (const auto& [m, n] : acked) {
        total_acked += n;
        summary << " " << m << "=" << n;
    }
    INFO("acknowledged:" << summary.str());
    // The mix must have exercised something: most calls acknowledged, several kills of each kind.
    REQUIRE(total_acked >= kCalls / 2);
    REQUIRE(kills >= 5);
    REQUIRE(inflight_kills >= 2);
    REQUIRE(model.clusters.size() >= 5);
    std::printf("crash test: %d calls, %d acknowledged (%s ), %d refused, %d unknown (%d applied), %d kills (%d in flight), "
                "final %s",
                kCalls, total_acked, summary.str().c_str(), refused, unknown, unknown_applied, kills, inflight_kills,
                describe(model).substr(0, describe(model).find('\n') + 1).c_str());
}
