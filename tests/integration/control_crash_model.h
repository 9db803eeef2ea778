#pragma once
// The model of control_crash_test: the zones, clusters and operators the
// acknowledged calls imply, and a seeded generator of mixed mutating calls,
// each with what it does to the model when it succeeds.

#include <algorithm>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <google/protobuf/message_lite.h>

#include "loa/control/v1/control.pb.h"

namespace loa::test::crash {

namespace pb = loa::control::v1;

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

inline std::string describe(const State& s) {
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
inline std::string diff(const State& expected, const State& actual) {
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

}  // namespace loa::test::crash
