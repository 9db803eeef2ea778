// AlertCapture (see preempt_capture.h): the BPF filter, the ring and its reader thread.
#include "preempt_capture.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "bench_util.h"

namespace loa::bench::preempt {

namespace {

constexpr std::uint32_t kSnapBytes = 128;  // Ethernet + IPv4 + UDP + RTP header with its extension

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::uint32_t be32(const std::uint8_t* p) {
  return (static_cast<std::uint32_t>(p[0]) << 24) | (static_cast<std::uint32_t>(p[1]) << 16) |
         (static_cast<std::uint32_t>(p[2]) << 8) | p[3];
}


constexpr sock_filter stmt(std::uint16_t code, std::uint32_t k) { return sock_filter{code, 0, 0, k}; }
constexpr sock_filter jump(std::uint16_t code, std::uint32_t k, std::uint8_t jt, std::uint8_t jf) {
  return sock_filter{code, jt, jf, k};
}

// Classic BPF over an Ethernet frame: IPv4, UDP, not a fragment, RTP version
// 2 with the extension bit and no CSRC, a dynamic payload type, an RFC 8285
// one-byte extension block whose first element, or the element after a
// one-byte first one (the engine writes the level first), is the alert
// element (id 2, 2 bytes: header byte 0x21). Accepted packets are cut to
// kSnapBytes.
constexpr std::array<sock_filter, 21> kAlertFilter{{
    stmt(BPF_LD | BPF_H | BPF_ABS, 12),                  // 0  ethertype
    jump(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 18),    // 1  -> 20
    stmt(BPF_LD | BPF_B | BPF_ABS, 23),                  // 2  IP protocol
    jump(BPF_JMP | BPF_JEQ | BPF_K, 17, 0, 16),          // 3  -> 20
    stmt(BPF_LD | BPF_H | BPF_ABS, 20),                  // 4  flags + fragment offset
    jump(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, 14, 0),     // 5  -> 20
    stmt(BPF_LDX | BPF_B | BPF_MSH, 14),                 // 6  X = IP header length
    stmt(BPF_LD | BPF_B | BPF_IND, 22),                  // 7  RTP byte 0 (14 + X + 8)
    stmt(BPF_ALU | BPF_AND | BPF_K, 0xdf),               // 8  ignore the padding bit
    jump(BPF_JMP | BPF_JEQ | BPF_K, 0x90, 0, 10),        // 9  V=2, X=1, CC=0; -> 20
    stmt(BPF_LD | BPF_B | BPF_IND, 23),                  // 10 RTP byte 1
    stmt(BPF_ALU | BPF_AND | BPF_K, 0x7f),               // 11 payload type
    jump(BPF_JMP | BPF_JGE | BPF_K, 96, 0, 7),           // 12 -> 20 (RTCP lands below 96)
    stmt(BPF_LD | BPF_H | BPF_IND, 34),                  // 13 extension profile (RTP + 12)
    jump(BPF_JMP | BPF_JEQ | BPF_K, 0xBEDE, 0, 5),       // 14 -> 20
    stmt(BPF_LD | BPF_B | BPF_IND, 38),                  // 15 first element header (RTP + 16)
    jump(BPF_JMP | BPF_JEQ | BPF_K, 0x21, 2, 0),         // 16 -> 19
    stmt(BPF_LD | BPF_B | BPF_IND, 40),                  // 17 second element header (RTP + 18)
    jump(BPF_JMP | BPF_JEQ | BPF_K, 0x21, 0, 1),         // 18 -> 20
    stmt(BPF_RET | BPF_K, kSnapBytes),                   // 19 keep
    stmt(BPF_RET | BPF_K, 0),                            // 20 drop
}};

}  // namespace

std::uint64_t dest_key(std::uint32_t addr, std::uint16_t port) {
  return (static_cast<std::uint64_t>(addr) << 16) | port;
}

AlertCapture::AlertCapture(const std::string& device, const std::unordered_map<std::uint64_t, std::uint32_t>& index,
                           std::size_t destinations)
    : index_(index), first_ns_(destinations, 0) {
  fd_ = ::socket(AF_PACKET, SOCK_RAW, 0);  // protocol 0: nothing arrives before bind()
  if (fd_ < 0) throw std::runtime_error(std::string("AF_PACKET socket: ") + std::strerror(errno));
  try {
    sock_fprog prog{static_cast<unsigned short>(kAlertFilter.size()), const_cast<sock_filter*>(kAlertFilter.data())};
    check(::setsockopt(fd_, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog), "SO_ATTACH_FILTER");
    int version = TPACKET_V3;
    check(::setsockopt(fd_, SOL_PACKET, PACKET_VERSION, &version, sizeof version), "PACKET_VERSION");
    // About 200 bytes a packet in the ring: room for several full frames of alert packets.
    block_nr_ = std::clamp<std::size_t>(destinations * 200 * 4 / kBlockSize + 1, 8, 128);
    tpacket_req3 req{};
    req.tp_block_size = static_cast<unsigned>(kBlockSize);
    req.tp_block_nr = static_cast<unsigned>(block_nr_);
    req.tp_frame_size = 2048;
    req.tp_frame_nr = static_cast<unsigned>(kBlockSize / 2048 * block_nr_);
    req.tp_retire_blk_tov = 2;  // ms: a partly filled block reaches the reader soon
    check(::setsockopt(fd_, SOL_PACKET, PACKET_RX_RING, &req, sizeof req), "PACKET_RX_RING");
    void* map = ::mmap(nullptr, kBlockSize * block_nr_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (map == MAP_FAILED) throw std::runtime_error(std::string("mmap of the ring: ") + std::strerror(errno));
    ring_ = static_cast<std::uint8_t*>(map);
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = static_cast<int>(if_nametoindex(device.c_str()));
    if (sll.sll_ifindex == 0) throw std::runtime_error("no device " + device);
    check(::bind(fd_, reinterpret_cast<const sockaddr*>(&sll), sizeof sll), "bind to " + device);
  } catch (...) {
    close_all();
    throw;
  }
}

AlertCapture::~AlertCapture() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  close_all();
}

void AlertCapture::start(std::int64_t deadline_mono_ns) {
  deadline_ns_ = deadline_mono_ns;
  thread_ = std::thread([this] { run(); });
}

void AlertCapture::finish() {
  if (thread_.joinable()) thread_.join();
  close_all();
}

void AlertCapture::check(int rc, const std::string& what) {
  if (rc != 0) throw std::runtime_error(what + ": " + std::strerror(errno));
}

void AlertCapture::close_all() {
  if (ring_ != nullptr) {
    ::munmap(ring_, kBlockSize * block_nr_);
    ring_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void AlertCapture::run() {
  read_ring();
  const std::array<sock_filter, 1> drop_all{{stmt(BPF_RET | BPF_K, 0)}};
  sock_fprog prog{1, const_cast<sock_filter*>(drop_all.data())};
  (void)::setsockopt(fd_, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
  tpacket_stats_v3 st{};
  socklen_t len = sizeof st;
  if (::getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) {
    kernel_packets_ = st.tp_packets;
    kernel_drops_ = st.tp_drops;
  }
}

void AlertCapture::read_ring() {
  std::size_t cur = 0;
  while (!stop_.load(std::memory_order_relaxed) && seen_ < first_ns_.size() && mono_ns() < deadline_ns_) {
    auto* block = reinterpret_cast<tpacket_block_desc*>(ring_ + cur * kBlockSize);
    if ((__atomic_load_n(&block->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0) {
      pollfd p{fd_, POLLIN | POLLERR, 0};
      (void)::poll(&p, 1, 5);
      continue;
    }
    walk(*block);
    __atomic_store_n(&block->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    cur = (cur + 1) % block_nr_;
  }
}

void AlertCapture::walk(tpacket_block_desc& block) {
  auto* at = reinterpret_cast<std::uint8_t*>(&block) + block.hdr.bh1.offset_to_first_pkt;
  for (std::uint32_t i = 0; i < block.hdr.bh1.num_pkts; ++i) {
    const auto* h = reinterpret_cast<const tpacket3_hdr*>(at);
    const auto* sll = reinterpret_cast<const sockaddr_ll*>(at + kSllOffset);
    if (sll->sll_pkttype == PACKET_OUTGOING) {
      const std::int64_t ns = static_cast<std::int64_t>(h->tp_sec) * 1'000'000'000 + h->tp_nsec;
      on_packet(at + h->tp_mac, h->tp_snaplen, ns);
    }
    at += h->tp_next_offset;
  }
}

void AlertCapture::on_packet(const std::uint8_t* frame, std::uint32_t len, std::int64_t ns) {
  if (len < 14 + 20) return;
  const std::uint8_t* ip = frame + 14;
  const std::uint32_t ihl = (ip[0] & 0x0FU) * 4U;
  if (len < 14 + ihl + 8 + 12) return;
  ++packets_;
  const std::uint32_t dst = be32(ip + 16);
  const std::uint16_t port = be16(ip + ihl + 2);
  const std::uint32_t ssrc = be32(ip + ihl + 8 + 8);
  if (ssrc_ == 0) ssrc_ = ssrc;
  if (ssrc != ssrc_) ++other_ssrc_;
  const auto it = index_.find(dest_key(dst, port));
  if (it == index_.end()) {
    ++other_;
    return;
  }
  if (first_ns_[it->second] == 0) {
    first_ns_[it->second] = ns;
    ++seen_;
  }
}

}  // namespace loa::bench::preempt
