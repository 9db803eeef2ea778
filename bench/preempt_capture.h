// `loa-bench preempt`'s capture of the first alert packet to each wire
// destination (AF_PACKET, TPACKET_V3 ring, classic BPF filter).
#pragma once

#include <linux/if_packet.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace loa::bench::preempt {

// Key of a destination: host-order IPv4 address and port.
std::uint64_t dest_key(std::uint32_t addr, std::uint16_t port);

// The first alert packet sent to each wire destination, from a TPACKET_V3
// ring of an AF_PACKET socket bound to the wire's device with kAlertFilter.
// Only outgoing packets count. The kernel stamps each packet (CLOCK_REALTIME)
// when the device's transmit path hands it to the packet taps, which happens
// inside the sender's sendmmsg call, before it returns. Open it before the
// alert is raised; start() runs the reader thread until every destination
// was seen or the deadline passed.
class AlertCapture {
 public:
  AlertCapture(const std::string& device, const std::unordered_map<std::uint64_t, std::uint32_t>& index,
               std::size_t destinations);
  ~AlertCapture();
  AlertCapture(const AlertCapture&) = delete;
  AlertCapture& operator=(const AlertCapture&) = delete;

  void start(std::int64_t deadline_mono_ns);
  // Returns once every destination was seen or the deadline passed, and
  // closes the socket.
  void finish();

  // CLOCK_REALTIME ns of each destination's first alert packet; 0 = never seen.
  [[nodiscard]] const std::vector<std::int64_t>& first_ns() const { return first_ns_; }
  [[nodiscard]] std::size_t seen() const { return seen_; }
  [[nodiscard]] std::uint64_t packets() const { return packets_; }
  [[nodiscard]] std::uint64_t other_destinations() const { return other_; }
  [[nodiscard]] std::uint64_t kernel_packets() const { return kernel_packets_; }
  [[nodiscard]] std::uint64_t kernel_drops() const { return kernel_drops_; }
  [[nodiscard]] std::uint32_t first_ssrc() const { return ssrc_; }
  [[nodiscard]] std::uint64_t other_ssrc() const { return other_ssrc_; }

 private:
  static constexpr std::size_t kBlockSize = 1U << 20;
  // Where the sockaddr_ll follows each packet's header (TPACKET_ALIGN).
  static constexpr std::size_t kSllOffset =
      (sizeof(tpacket3_hdr) + TPACKET_ALIGNMENT - 1) & ~static_cast<std::size_t>(TPACKET_ALIGNMENT - 1);

  static void check(int rc, const std::string& what);
  void close_all();
  // Reads the ring until done, then lets nothing more in and reads the
  // kernel's counters: drops counted up to here are alert packets the
  // reader never saw (a destination's first one among them would make its
  // time late), later ones would not matter.
  void run();
  void read_ring();
  void walk(tpacket_block_desc& block);
  void on_packet(const std::uint8_t* frame, std::uint32_t len, std::int64_t ns);

  const std::unordered_map<std::uint64_t, std::uint32_t>& index_;
  std::vector<std::int64_t> first_ns_;
  int fd_ = -1;
  std::uint8_t* ring_ = nullptr;
  std::size_t block_nr_ = 0;
  std::int64_t deadline_ns_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::size_t seen_ = 0;
  std::uint64_t packets_ = 0;
  std::uint64_t other_ = 0;
  std::uint64_t kernel_packets_ = 0;
  std::uint64_t kernel_drops_ = 0;
  std::uint32_t ssrc_ = 0;
  std::uint64_t other_ssrc_ = 0;
};

}  // namespace loa::bench::preempt
