// The wire the fan-out benchmarks send on: a veth pair inside a private user +
// net namespace (preferred), or loopback where namespaces are unavailable.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <vector>

namespace loa::bench {

enum class WireKind { veth, loopback };

struct Wire {
  WireKind kind = WireKind::loopback;
  // True when the process runs in a network namespace this bench created, so
  // nothing it sends can leave the machine or reach other processes.
  bool private_netns = false;
  // Device whose TX counter tells how many packets left ("veth0" or "lo").
  std::string device = "lo";
  // Human-readable explanation of how the wire was set up (or why it fell back).
  std::string note;

  [[nodiscard]] const char* name() const { return kind == WireKind::veth ? "veth" : "loopback"; }

  // Packets that left through `device` since the namespace was made. On
  // loopback, ICMP errors the kernel generates in reply are subtracted.
  // Thread: any. Returns 0 when the counters cannot be read.
  [[nodiscard]] std::uint64_t packets_out() const;

  // N destinations on this wire: 10.200.0.0/16 behind the veth neighbour, or
  // 127.1.0.0/16 on loopback. Beyond 64,770 addresses the port advances by 2.
  [[nodiscard]] std::vector<sockaddr_in> destinations(std::size_t n) const;
};

// Moves the calling process into a new user + net namespace (or a net
// namespace alone when already privileged) and builds the veth wire inside.
// Must be called while the process is still single-threaded. Never throws:
// on failure returns a loopback wire whose `note` says why.
// With `want_veth` false the namespace is still made but only its loopback is
// used (to compare against, or where veth is unwanted).
[[nodiscard]] Wire enter_bench_wire(bool want_veth = true);

// "a.b.c.d:port"
[[nodiscard]] std::string to_string(const sockaddr_in& addr);

}  // namespace loa::bench
