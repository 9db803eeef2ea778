#include "wire.h"

#include <arpa/inet.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "process.h"

namespace loa::bench {

namespace {

constexpr std::size_t kHostsPerPort = 255 * 254;  // x.y.0-254.1-254

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  f.flush();
  return static_cast<bool>(f);
}

// Reads the TX packet counter of `dev` from /proc/net/dev (per network
// namespace, unlike /sys which shows the mounting namespace).
std::uint64_t tx_packets(const std::string& dev) {
  std::ifstream f("/proc/net/dev");
  std::string line;
  while (std::getline(f, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name != dev) {
      continue;
    }
    std::istringstream fields(line.substr(colon + 1));
    std::uint64_t v = 0;
    // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets
    for (int i = 0; i < 10; ++i) {
      fields >> v;
    }
    return v;
  }
  return 0;
}

// Icmp OutMsgs from /proc/net/snmp (per network namespace).
std::uint64_t icmp_out_msgs() {
  std::ifstream f("/proc/net/snmp");
  std::string names;
  std::string values;
  while (std::getline(f, names) && std::getline(f, values)) {
    if (names.rfind("Icmp:", 0) != 0) {
      continue;
    }
    std::istringstream n(names.substr(5));
    std::istringstream v(values.substr(5));
    std::string key;
    std::uint64_t value = 0;
    while (n >> key && v >> value) {
      if (key == "OutMsgs") {
        return value;
      }
    }
  }
  return 0;
}

bool enter_namespace(std::string& why) {
  const uid_t uid = geteuid();
  const gid_t gid = getegid();
  // Privileged: a net namespace alone keeps the real root, so the engine's
  // SCHED_FIFO threads are allowed (a user namespace's root may not raise
  // real-time priority in the initial namespace).
  if (uid == 0 && unshare(CLONE_NEWNET) == 0) {
    why = "net namespace (privileged)";
    return true;
  }
  if (unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0) {
    write_file("/proc/self/setgroups", "deny");
    const bool maps = write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n") &&
                      write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n");
    if (!maps) {
      why = "user namespace created but uid/gid maps could not be written";
      return false;
    }
    why = "user + net namespace";
    return true;
  }
  const int user_err = errno;
  if (unshare(CLONE_NEWNET) == 0) {
    why = "net namespace (user namespace refused: " + std::string(std::strerror(user_err)) + ")";
    return true;
  }
  why = "cannot create a network namespace: " + std::string(std::strerror(errno)) +
        " (user namespace: " + std::strerror(user_err) + ")";
  return false;
}

}  // namespace

std::uint64_t Wire::packets_out() const {
  const std::uint64_t tx = tx_packets(device);
  if (kind == WireKind::veth) {
    return tx;
  }
  const std::uint64_t icmp = icmp_out_msgs();
  return tx > icmp ? tx - icmp : 0;
}

std::vector<sockaddr_in> Wire::destinations(std::size_t n) const {
  std::vector<sockaddr_in> out;
  out.reserve(n);
  const std::uint32_t base = kind == WireKind::veth ? 0x0AC80000U : 0x7F010000U;  // 10.200/16, 127.1/16
  const std::uint16_t port0 = kind == WireKind::veth ? 5004 : 9;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t j = i % kHostsPerPort;
    const auto third = static_cast<std::uint32_t>(j / 254);
    const auto fourth = static_cast<std::uint32_t>(j % 254 + 1);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(base | (third << 8) | fourth);
    a.sin_port = htons(static_cast<std::uint16_t>(port0 + 2 * (i / kHostsPerPort)));
    out.push_back(a);
  }
  return out;
}

Wire enter_bench_wire(bool want_veth) {
  Wire wire;
  std::string why;
  if (!enter_namespace(why)) {
    wire.note = "loopback in the host namespace: " + why;
    return wire;
  }
  wire.private_netns = true;
  const std::string log = "/tmp/loa-bench-wire." + std::to_string(getpid()) + ".log";
  auto ip = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "ip");
    return run_command(args, log);
  };
  if (!ip({"link", "set", "lo", "up"})) {
    wire.note = why + ", but `ip link set lo up` failed: " + tail_file(log, 300);
    return wire;
  }
  if (!want_veth) {
    wire.note = "loopback in a private " + why + " (requested with --wire loopback)";
    unlink(log.c_str());
    return wire;
  }
  // The far end veth1 keeps its own MAC; the static neighbour points at a MAC
  // nobody owns, so packets arriving on veth1 are PACKET_OTHERHOST and dropped
  // by the IP layer at once (no forwarding, no ICMP).
  const bool ok =
      ip({"link", "add", "veth0", "address", "02:00:00:00:00:01", "type", "veth", "peer", "name", "veth1",
          "address", "02:00:00:00:00:02"}) &&
      write_file("/proc/sys/net/ipv6/conf/veth0/disable_ipv6", "1") &&
      write_file("/proc/sys/net/ipv6/conf/veth1/disable_ipv6", "1") &&
      ip({"link", "set", "veth0", "up"}) && ip({"link", "set", "veth1", "up"}) &&
      ip({"addr", "add", "10.199.0.1/16", "dev", "veth0"}) &&
      ip({"neigh", "add", "10.200.255.254", "lladdr", "02:00:00:00:00:fe", "dev", "veth0", "nud", "permanent"}) &&
      ip({"route", "add", "10.200.0.0/16", "via", "10.200.255.254", "dev", "veth0", "onlink"});
  write_file("/proc/sys/net/ipv4/ip_forward", "0");
  if (!ok) {
    wire.note = "loopback in a private " + why + ": veth setup failed: " + tail_file(log, 300);
    unlink(log.c_str());
    return wire;
  }
  wire.kind = WireKind::veth;
  wire.device = "veth0";
  wire.note = "veth pair in a private " + why + "; 10.200.0.0/16 via a static neighbour, far end drops";
  unlink(log.c_str());
  return wire;
}

std::string to_string(const sockaddr_in& addr) {
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &addr.sin_addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(ntohs(addr.sin_port));
}

}  // namespace loa::bench
