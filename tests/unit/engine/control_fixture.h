#pragma once
// Shared by the control service tests (control_*_test.cpp): a ControlService
// over a fresh database with a manual clock, called through ControlCalls, and
// a snapshot of everything a call could change.

#include <sstream>
#include <string>

#include "control_calls.h"
#include "loa/engine/clock.h"
#include "loa/engine/control_service.h"
#include "loa/engine/store.h"
#include "temp_dir.h"

namespace loa::test {

struct ControlFixture : ControlCalls<ControlFixture> {
    TempDir dir{"loa-control"};
    loa::engine::Store store{dir / "state.db"};
    loa::engine::ManualClock clock{0, 1'700'000'000'000'000'000};
    loa::engine::ControlService service{store, clock, 1000};

    loa::engine::ControlService& control_service() { return service; }

    /// Registers a cluster without an address as the local admin.
    void cluster(const std::string& id, const std::string& zone_id) {
        loa::control::v1::RegisterClusterRequest c;
        c.set_id(id);
        c.set_zone_id(zone_id);
        ok<loa::control::v1::Cluster>("RegisterCluster", c);
    }

    /// Everything a call could change, as one comparable string.
    std::string snapshot() const {
        std::ostringstream os;
        for (const auto& z : store.zones()) os << "Z " << z.id << "|" << z.name << "|" << z.parent_id << "\n";
        for (const auto& c : store.clusters("", "", 100000)) os << "C " << c.id << "|" << c.zone_id << "|" << c.enabled << "\n";
        for (const auto& o : store.operators()) os << "O " << o.name << "|" << static_cast<int>(o.role) << "\n";
        os << "E " << store.last_event_seq();
        return os.str();
    }
};

}  // namespace loa::test
