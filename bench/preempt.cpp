#include "preempt.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench_util.h"
#include "engine_control.h"
#include "loa/codecs/wav_writer.h"
#include "loa/engine/clip_catalog.h"
#include "process.h"
#include "report.h"
#include "wire.h"

namespace loa::bench {

namespace {

namespace pb = loa::control::v1;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kNoWireDestinations = 1000;  // loopback: the receive side shares the sending CPUs
constexpr std::size_t kClustersPerCommune = 100;
constexpr double kTargetPacketP99Ms = 40.0;
constexpr double kTargetPacketMaxMs = 60.0;
constexpr double kTargetAudioP99Ms = 80.0;
constexpr std::uint32_t kSnapBytes = 128;  // Ethernet + IPv4 + UDP + RTP header with its extension
const char* const kProvince = "prov";
const char* const kDistrict = "prov.d";
const char* const kSpeakerCommune = "prov.d.spk";

struct PreemptOptions {
  std::size_t clusters = 10000;
  std::size_t speakers = 50;
  unsigned rounds = 5;
  unsigned seconds = 5;  // per round: how long to wait for every switch and confirmation
  unsigned poll_ms = 10;
  int speaker_block_ms = 10;
  bool json = false;
  bool no_wire = false;
  std::string bin_dir;
  bool keep_workdir = false;
};

void progress(const std::string& line) { std::cerr << "[loa-bench] preempt: " << line << std::endl; }

std::int64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

double ms_between(std::int64_t from_ns, std::int64_t to_ns) { return static_cast<double>(to_ns - from_ns) / 1e6; }

std::string default_bin_dir() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  return (self.parent_path().parent_path() / "apps").string();
}

std::string bin(const PreemptOptions& o, const std::string& name) {
  if (o.bin_dir.empty()) return name;
  const auto nested = std::filesystem::path(o.bin_dir) / name / name;  // a build tree: apps/<name>/<name>
  if (std::filesystem::exists(nested)) return nested.string();
  return (std::filesystem::path(o.bin_dir) / name).string();
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::uint32_t be32(const std::uint8_t* p) {
  return (static_cast<std::uint32_t>(p[0]) << 24) | (static_cast<std::uint32_t>(p[1]) << 16) |
         (static_cast<std::uint32_t>(p[2]) << 8) | p[3];
}

// Key of a destination: host-order IPv4 address and port.
std::uint64_t dest_key(std::uint32_t addr, std::uint16_t port) {
  return (static_cast<std::uint64_t>(addr) << 16) | port;
}

// ---- capture ---------------------------------------------------------------

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
  ~AlertCapture() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    close_all();
  }
  AlertCapture(const AlertCapture&) = delete;
  AlertCapture& operator=(const AlertCapture&) = delete;

  void start(std::int64_t deadline_mono_ns) {
    deadline_ns_ = deadline_mono_ns;
    thread_ = std::thread([this] { run(); });
  }
  // Returns once every destination was seen or the deadline passed, and
  // closes the socket.
  void finish() {
    if (thread_.joinable()) thread_.join();
    close_all();
  }

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

  static void check(int rc, const std::string& what) {
    if (rc != 0) throw std::runtime_error(what + ": " + std::strerror(errno));
  }

  void close_all() {
    if (ring_ != nullptr) {
      ::munmap(ring_, kBlockSize * block_nr_);
      ring_ = nullptr;
    }
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

  // Reads the ring until done, then lets nothing more in and reads the
  // kernel's counters: drops counted up to here are alert packets the
  // reader never saw (a destination's first one among them would make its
  // time late), later ones would not matter.
  void run() {
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

  void read_ring() {
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

  void walk(tpacket_block_desc& block) {
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

  void on_packet(const std::uint8_t* frame, std::uint32_t len, std::int64_t ns) {
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

// ---- speakers ---------------------------------------------------------------

struct SpeakerProc {
  std::string id;
  std::string log;
  std::string switch_log;
  std::uint16_t port = 0;
  ChildProcess proc;
};

struct Switch {
  std::uint32_t ssrc = 0;
  std::int64_t mono_ns = 0;
};

std::vector<Switch> read_switches(const std::string& path) {
  std::vector<Switch> out;
  std::ifstream f(path);
  Switch s;
  while (f >> s.ssrc >> s.mono_ns) out.push_back(s);
  return out;
}

// The first switch to `ssrc` at or after `from_ns`.
std::optional<std::int64_t> switched_to(const std::vector<Switch>& log, std::uint32_t ssrc, std::int64_t from_ns) {
  for (const auto& s : log) {
    if (s.ssrc == ssrc && s.mono_ns >= from_ns) return s.mono_ns;
  }
  return std::nullopt;
}

std::optional<std::uint16_t> listening_port(const std::string& log) {
  const std::string text = read_text(log);
  const auto at = text.find("listening ");
  if (at == std::string::npos) return std::nullopt;
  const auto eol = text.find('\n', at);
  if (eol == std::string::npos) return std::nullopt;
  const auto colon = text.rfind(':', eol);
  if (colon == std::string::npos || colon < at) return std::nullopt;
  return static_cast<std::uint16_t>(std::stoul(text.substr(colon + 1, eol - colon - 1)));
}

template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit) {
  const auto end = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// ---- engine and control ------------------------------------------------------

std::string commune_id(std::size_t i) {
  char b[32];
  std::snprintf(b, sizeof b, "prov.d.c%03zu", i);
  return b;
}

// The zones and every cluster go in as the config's seed (imported once, in
// one transaction, into the empty database of a fresh state directory).
void write_config(const std::string& path, const std::string& state_dir, const std::string& listen,
                  const std::string& ingest, std::span<const sockaddr_in> wire_dests,
                  const std::vector<SpeakerProc>& speakers) {
  std::ofstream f(path);
  f << "# generated by loa-bench preempt\n"
    << "[engine]\n"
    << "listen = \"" << listen << "\"\n"
    << "ingest_listen = \"" << ingest << "\"\n"
    << "fanout_threads = 2\n"
    << "state_dir = \"" << state_dir << "\"\n\n"
    << "[[zone]]\nid = \"" << kProvince << "\"\nkind = \"province\"\n"
    << "[[zone]]\nid = \"" << kDistrict << "\"\nkind = \"district\"\nparent = \"" << kProvince << "\"\n"
    << "[[zone]]\nid = \"" << kSpeakerCommune << "\"\nkind = \"commune\"\nparent = \"" << kDistrict << "\"\n";
  const std::size_t communes = (wire_dests.size() + kClustersPerCommune - 1) / kClustersPerCommune;
  for (std::size_t i = 0; i < communes; ++i) {
    f << "[[zone]]\nid = \"" << commune_id(i) << "\"\nkind = \"commune\"\nparent = \"" << kDistrict << "\"\n";
  }
  for (std::size_t i = 0; i < wire_dests.size(); ++i) {
    f << "[[cluster]]\nid = \"" << cluster_id(i) << "\"\naddress = \"" << to_string(wire_dests[i]) << "\"\nzone = \""
      << commune_id(i / kClustersPerCommune) << "\"\n";
  }
  for (const auto& s : speakers) {
    f << "[[cluster]]\nid = \"" << s.id << "\"\naddress = \"127.0.0.1:" << s.port << "\"\nzone = \""
      << kSpeakerCommune << "\"\n";
  }
  if (!f) throw std::runtime_error("cannot write " + path);
}

// A 3 s 660 Hz tone as the alert's message (the alert plays the built-in
// chime first, then this).
std::uint64_t upload_clip(engine::ControlClient& c, const std::string& path) {
  {
    codecs::WavWriter w(path, codecs::WavSampleFormat::Pcm16, 48000, 1);
    std::vector<float> pcm(3 * 48000);
    for (std::size_t i = 0; i < pcm.size(); ++i) {
      pcm[i] = static_cast<float>(0.3 * std::sin(2.0 * M_PI * 660.0 * static_cast<double>(i) / 48000.0));
    }
    if (w.write(pcm) != codecs::Status::Ok || w.close() != codecs::Status::Ok) {
      throw std::runtime_error("cannot write " + path);
    }
  }
  const std::string data = read_text(path);
  pb::BeginClipUploadRequest begin;
  begin.set_name("bench-alert-message");
  begin.set_total_size(data.size());
  begin.set_sha256(engine::Sha256::of_file(path));
  const auto b = call_ok<pb::BeginClipUploadResponse>(c, "BeginClipUpload", begin);
  const std::size_t chunk = b.max_chunk_bytes() > 0 ? b.max_chunk_bytes() : (1U << 20);
  for (std::size_t at = 0; at < data.size(); at += chunk) {
    pb::UploadClipChunkRequest req;
    req.set_upload_id(b.upload_id());
    req.set_offset(at);
    req.set_data(data.substr(at, chunk));
    (void)call_ok<pb::UploadClipChunkResponse>(c, "UploadClipChunk", req);
  }
  pb::FinishClipUploadRequest fin;
  fin.set_upload_id(b.upload_id());
  return call_ok<pb::Clip>(c, "FinishClipUpload", fin).id();
}

struct FanoutCount {
  std::uint64_t datagrams = 0;
  std::uint64_t errors = 0;
};

FanoutCount fanout_count(engine::ControlClient& c) {
  const auto s = call_ok<pb::GetStatusResponse>(c, "GetStatus", pb::GetStatusRequest());
  return {s.stats().fanout().datagrams_sent(), s.stats().fanout().send_errors()};
}

// TX counters of a device from /proc/net/dev (per network namespace).
struct DevCounters {
  std::uint64_t packets = 0;
  std::uint64_t errors = 0;  // errs + drop
};

DevCounters dev_counters(const std::string& dev) {
  std::ifstream f("/proc/net/dev");
  std::string line;
  while (std::getline(f, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name != dev) continue;
    std::istringstream fields(line.substr(colon + 1));
    std::array<std::uint64_t, 12> v{};
    for (auto& x : v) fields >> x;
    // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs drop
    return DevCounters{v[9], v[10] + v[11]};
  }
  return {};
}

// ---- results -----------------------------------------------------------------

struct Round {
  std::uint64_t alert_id = 0;
  std::uint32_t alert_ssrc = 0;
  std::uint32_t targeted = 0;
  double raise_call_ms = 0.0;
  bool captured = false;
  std::size_t switched = 0;
  std::vector<double> first_packet_ms;
  std::vector<double> first_audio_ms;
  std::vector<double> confirm_ms;
  std::uint64_t capture_packets = 0;
  std::uint64_t capture_drops = 0;
  std::uint64_t capture_other_ssrc = 0;
  std::uint64_t wire_tx_outer = 0;  // device TX from before the first to after the last engine count
  std::uint64_t wire_tx_inner = 0;  // device TX from after the first to before the last engine count
  std::uint64_t wire_tx_errors = 0;
  std::uint64_t engine_datagrams = 0;
  std::uint64_t send_errors = 0;
  std::optional<double> return_ms;  // cancel -> every speaker back on the schedule
};

struct Dist {
  std::optional<double> p50, p99, max;
  std::size_t n = 0;
};

Dist dist(const std::vector<double>& v) {
  return Dist{percentile(v, 50), percentile(v, 99), percentile(v, 100), v.size()};
}

JsonObject dist_json(const Dist& d) {
  JsonObject o;
  const auto r = [](std::optional<double> v) -> std::optional<double> {
    if (!v) return v;
    return std::round(*v * 1000.0) / 1000.0;
  };
  o.add("p50", r(d.p50)).add("p99", r(d.p99)).add("max", r(d.max));
  return o;
}

// ---- the scenario ------------------------------------------------------------

int run_preempt(PreemptOptions opt) {
  if (opt.bin_dir.empty()) opt.bin_dir = default_bin_dir();
  if (opt.speakers == 0) throw std::invalid_argument("--speakers must be at least 1");
  // The namespace must be entered while the process is single-threaded;
  // every child (engine, speakers) is started inside it.
  Wire wire = enter_bench_wire(!opt.no_wire);
  if (opt.no_wire && wire.private_netns) wire.note = "--no-wire: " + wire.note;
  const std::size_t n_wire =
      wire.kind == WireKind::veth ? opt.clusters : std::min(opt.clusters, kNoWireDestinations);
  progress(std::string("wire: ") + wire.name() + " (" + wire.note + ")");
  if (n_wire != opt.clusters) {
    progress("WARNING: no veth wire; " + std::to_string(n_wire) + " loopback destinations instead of " +
             std::to_string(opt.clusters));
  }
  const std::string load_before = load_average();

  const std::string workdir = open_workdir("", "loa-bench-preempt");
  const std::string state_dir = workdir + "/state";
  const std::string engine_log = workdir + "/engine.log";
  const auto dests = wire.destinations(n_wire);
  std::unordered_map<std::uint64_t, std::uint32_t> index;
  index.reserve(dests.size() * 2);
  for (std::size_t i = 0; i < dests.size(); ++i) {
    index.emplace(dest_key(ntohl(dests[i].sin_addr.s_addr), ntohs(dests[i].sin_port)), static_cast<std::uint32_t>(i));
  }

  std::vector<SpeakerProc> speakers;
  std::optional<ChildProcess> engine_proc;
  std::vector<Round> rounds;
  std::string error;
  std::string notes;
  std::uint32_t hearing = 0;
  const std::uint16_t engine_port = wire.private_netns ? 5004 : free_udp_port();
  try {
    // Speakers first: their ports go into the seed.
    progress("starting " + std::to_string(opt.speakers) + " loa-speaker processes on loopback");
    for (std::size_t i = 0; i < opt.speakers; ++i) {
      SpeakerProc s;
      char id[32];
      std::snprintf(id, sizeof id, "spk-%03zu", i);
      s.id = id;
      s.log = workdir + "/" + s.id + ".log";
      s.switch_log = workdir + "/" + s.id + ".switches";
      s.proc = ChildProcess::spawn({bin(opt, "loa-speaker"), "--cluster-id", s.id, "--listen", "127.0.0.1:0",
                                    "--engine", "127.0.0.1:" + std::to_string(engine_port), "--null", "--block-ms",
                                    std::to_string(opt.speaker_block_ms), "--switch-log", s.switch_log},
                                   s.log);
      speakers.push_back(std::move(s));
    }
    for (auto& s : speakers) {
      std::optional<std::uint16_t> port;
      if (!wait_until([&] { return (port = listening_port(s.log)).has_value() || !s.proc.running(); },
                      std::chrono::seconds(20)) ||
          !port) {
        throw std::runtime_error("loa-speaker " + s.id + " did not start: " + tail_file(s.log, 600));
      }
      s.port = *port;
    }

    const std::string config = workdir + "/engine.toml";
    const std::string listen = (wire.private_netns ? "0.0.0.0:" : "127.0.0.1:") + std::to_string(engine_port);
    write_config(config, state_dir, listen, "127.0.0.1:" + std::to_string(free_udp_port()), dests, speakers);
    progress("starting loa-engine: " + std::to_string(n_wire) + " wire clusters + " + std::to_string(opt.speakers) +
             " speakers seeded, state in " + state_dir);
    engine_proc = ChildProcess::spawn({bin(opt, "loa-engine"), "--config", config}, engine_log);
    const std::filesystem::path socket = std::filesystem::path(state_dir) / "control.sock";
    auto admin = connect_when_up(socket, *engine_proc, engine_log, std::chrono::seconds(60));

    // A viewer scoped to the speakers' commune: its GetAlertStatus walks 50
    // clusters, not the whole province (the poll stays cheap for the engine).
    pb::CreateOperatorRequest op;
    op.set_name("bench-viewer");
    op.set_role(pb::VIEWER);
    op.set_zone_id(kSpeakerCommune);
    op.set_max_level(pb::EMERGENCY);
    const auto viewer_token = call_ok<pb::CreateOperatorResponse>(*admin, "CreateOperator", op).token();
    auto viewer = std::make_unique<engine::ControlClient>(socket);
    viewer->set_token(viewer_token);

    const auto clip_id = upload_clip(*admin, workdir + "/message.wav");

    pb::StartProgrammeRequest sched;
    sched.set_name("schedule");
    sched.set_level(pb::SCHEDULED);
    sched.add_zone_ids(kProvince);
    sched.set_tone_hz(440.0);
    const auto sched_id = call_ok<pb::StartProgrammeResponse>(*admin, "StartProgramme", sched).id();
    std::uint32_t sched_ssrc = 0;
    const auto listed = call_ok<pb::ListProgrammesResponse>(*admin, "ListProgrammes", pb::ListProgrammesRequest());
    for (const auto& p : listed.programmes()) {
      if (p.id() == sched_id) {
        sched_ssrc = p.ssrc();
        hearing = p.clusters_hearing();
      }
    }
    progress("schedule programme " + std::to_string(sched_id) + " (ssrc " + std::to_string(sched_ssrc) + ") to " +
             std::to_string(hearing) + " clusters; waiting for every speaker to play it");
    const auto all_on = [&](std::uint32_t ssrc, std::int64_t since) {
      return std::all_of(speakers.begin(), speakers.end(), [&](const SpeakerProc& s) {
        const auto log = read_switches(s.switch_log);
        return !log.empty() && log.back().ssrc == ssrc && log.back().mono_ns >= since;
      });
    };
    if (!wait_until([&] { return all_on(sched_ssrc, 0); }, std::chrono::seconds(30))) {
      throw std::runtime_error("the speakers did not all start playing the schedule within 30 s");
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));  // steady state

    std::map<std::string, std::size_t> speaker_index;
    for (std::size_t i = 0; i < speakers.size(); ++i) speaker_index[speakers[i].id] = i;
    std::mt19937 rng(1);
    std::uniform_int_distribution<int> phase_us(0, 20000);

    for (unsigned r = 0; r < opt.rounds; ++r) {
      Round rd;
      std::unique_ptr<AlertCapture> cap;
      try {
        cap = std::make_unique<AlertCapture>(wire.device, index, dests.size());
      } catch (const std::exception& e) {
        if (notes.find("capture") == std::string::npos) notes += "capture unavailable: " + std::string(e.what()) + "; ";
      }
      // The device's TX counter read on both sides of each engine count brackets the engine's window.
      const DevCounters dev0 = dev_counters(wire.device);
      const FanoutCount before = fanout_count(*admin);
      const DevCounters dev1 = dev_counters(wire.device);
      // Spread the raise instant over the frame period from round to round.
      std::this_thread::sleep_for(std::chrono::microseconds(phase_us(rng)));

      pb::RaiseAlertRequest raise;
      raise.set_name("bench-" + std::to_string(r + 1));
      raise.add_zone_ids(kProvince);
      raise.set_clip_id(clip_id);
      raise.set_repeats(100);
      raise.set_duration_s(static_cast<double>(opt.seconds) + 60.0);  // ends by itself should the bench die
      const std::int64_t deadline = mono_ns() + static_cast<std::int64_t>(opt.seconds) * 1'000'000'000;
      if (cap) cap->start(deadline);
      // t0 on both clocks, just before the request is written.
      const std::int64_t t0_real = clock_ns(CLOCK_REALTIME);
      const std::int64_t t0 = mono_ns();
      const auto req_id = admin->send("RaiseAlert", raise);
      std::optional<pb::Response> resp;
      while ((resp = admin->read(30000)) && resp->request_id() != req_id) {
      }
      if (!resp) throw std::runtime_error("RaiseAlert: no response");
      rd.raise_call_ms = ms_between(t0, mono_ns());
      const auto raised = parse_reply<pb::RaiseAlertResponse>(*resp, "RaiseAlert");
      rd.alert_id = raised.id();
      rd.targeted = raised.clusters_targeted();

      // (c) confirmation as the bench sees it, polling every poll_ms.
      std::vector<std::optional<double>> confirmed(speakers.size());
      std::size_t n_confirmed = 0;
      pb::GetAlertStatusRequest st_req;
      st_req.set_id(rd.alert_id);
      while (n_confirmed < speakers.size() && mono_ns() < deadline) {
        const auto tick = Clock::now();
        const auto st = call_ok<pb::GetAlertStatusResponse>(*viewer, "GetAlertStatus", st_req);
        const double at = ms_between(t0, mono_ns());
        rd.alert_ssrc = st.alert().ssrc();
        for (const auto& id : st.confirmed()) {
          const auto it = speaker_index.find(id);
          if (it != speaker_index.end() && !confirmed[it->second]) {
            confirmed[it->second] = at;
            ++n_confirmed;
          }
        }
        std::this_thread::sleep_until(tick + std::chrono::milliseconds(opt.poll_ms));
      }
      for (const auto& c : confirmed) {
        if (c) rd.confirm_ms.push_back(*c);
      }

      // (a) first alert packet per wire destination.
      if (cap) {
        cap->finish();
        rd.captured = true;
        rd.switched = cap->seen();
        for (const auto ns : cap->first_ns()) {
          if (ns != 0) rd.first_packet_ms.push_back(ms_between(t0_real, ns));
        }
        rd.capture_packets = cap->packets();
        rd.capture_drops = cap->kernel_drops();
        rd.capture_other_ssrc = cap->other_ssrc();
        if (cap->first_ssrc() != 0 && rd.alert_ssrc != 0 && cap->first_ssrc() != rd.alert_ssrc) {
          notes += "round " + std::to_string(r + 1) + ": captured SSRC " + std::to_string(cap->first_ssrc()) +
                   " is not the alert's " + std::to_string(rd.alert_ssrc) + "; ";
        }
        cap.reset();
      }
      const DevCounters dev2 = dev_counters(wire.device);
      const FanoutCount after = fanout_count(*admin);
      const DevCounters dev3 = dev_counters(wire.device);
      rd.wire_tx_outer = dev3.packets - dev0.packets;
      rd.wire_tx_inner = dev2.packets - dev1.packets;
      rd.wire_tx_errors = dev3.errors - dev0.errors;
      rd.engine_datagrams = after.datagrams - before.datagrams;
      rd.send_errors = after.errors - before.errors;

      // (b) first alert audio decoded at each speaker.
      (void)wait_until([&] { return all_on(rd.alert_ssrc, t0); }, std::chrono::seconds(2));
      for (const auto& s : speakers) {
        if (const auto at = switched_to(read_switches(s.switch_log), rd.alert_ssrc, t0)) {
          rd.first_audio_ms.push_back(ms_between(t0, *at));
        }
      }

      pb::CancelAlertRequest cancel;
      cancel.set_id(rd.alert_id);
      const std::int64_t t_cancel = mono_ns();
      (void)call_ok<pb::CancelAlertResponse>(*admin, "CancelAlert", cancel);
      if (wait_until([&] { return all_on(sched_ssrc, t_cancel); }, std::chrono::seconds(15))) {
        double worst = 0.0;
        for (const auto& s : speakers) {
          if (const auto at = switched_to(read_switches(s.switch_log), sched_ssrc, t_cancel)) {
            worst = std::max(worst, ms_between(t_cancel, *at));
          }
        }
        rd.return_ms = worst;
      } else {
        notes += "round " + std::to_string(r + 1) + ": not every speaker returned to the schedule within 15 s; ";
      }
      progress("round " + std::to_string(r + 1) + "/" + std::to_string(opt.rounds) + ": switched " +
               (rd.captured ? std::to_string(rd.switched) + "/" + std::to_string(n_wire) : std::string("n/a")) +
               ", first packet p99 " + f3(percentile(rd.first_packet_ms, 99)) + " max " +
               f3(percentile(rd.first_packet_ms, 100)) + " ms; first audio " +
               std::to_string(rd.first_audio_ms.size()) + "/" + std::to_string(speakers.size()) + " p99 " +
               f3(percentile(rd.first_audio_ms, 99)) + " ms; confirmed " + std::to_string(rd.confirm_ms.size()) +
               " p99 " + f3(percentile(rd.confirm_ms, 99)) + " ms; RaiseAlert answered in " +
               fmt_fixed(rd.raise_call_ms, 1) + " ms");
      rounds.push_back(std::move(rd));
      std::this_thread::sleep_for(std::chrono::milliseconds(500));  // settle on the schedule
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
  for (auto& s : speakers) {
    if (s.proc.pid() > 0) (void)s.proc.stop(SIGTERM, std::chrono::seconds(5));
  }
  if (engine_proc) {
    const ExitInfo exit = engine_proc->stop(SIGTERM, std::chrono::seconds(10));
    if (error.empty() && !exit.exited_ok()) error = "loa-engine " + exit.describe() + ": " + tail_file(engine_log, 800);
  }
  const std::string load_after = load_average();

  // Pooled over the rounds; switched and confirmed are the worst round's.
  std::vector<double> packet_ms, audio_ms, confirm_ms, raise_ms;
  constexpr std::size_t kNone = SIZE_MAX;
  std::size_t switched = kNone;
  std::size_t confirmed = kNone;
  bool captured = !rounds.empty();
  std::uint64_t drops = 0;
  for (const auto& rd : rounds) {
    packet_ms.insert(packet_ms.end(), rd.first_packet_ms.begin(), rd.first_packet_ms.end());
    audio_ms.insert(audio_ms.end(), rd.first_audio_ms.begin(), rd.first_audio_ms.end());
    confirm_ms.insert(confirm_ms.end(), rd.confirm_ms.begin(), rd.confirm_ms.end());
    raise_ms.push_back(rd.raise_call_ms);
    captured = captured && rd.captured;
    if (rd.captured) switched = std::min(switched, rd.switched);
    confirmed = std::min(confirmed, rd.confirm_ms.size());
    drops += rd.capture_drops;
  }
  if (!captured) switched = kNone;
  const Dist packet = dist(packet_ms);
  const Dist audio = dist(audio_ms);
  const Dist confirm = dist(confirm_ms);
  const bool pass_packet = captured && packet.p99 && *packet.p99 <= kTargetPacketP99Ms && packet.max &&
                           *packet.max <= kTargetPacketMaxMs;
  const bool pass_audio = audio.p99 && *audio.p99 <= kTargetAudioP99Ms && audio.n == rounds.size() * opt.speakers;
  const bool pass_switched = captured && switched == n_wire && drops == 0;
  // The wire check (veth only): every frame goes to all wire clusters and
  // all speakers alike and only the former cross the veth, so the engine's
  // datagrams_sent over a round, scaled by N / (N + speakers), must fall
  // between the device TX counts read inside and outside the two engine
  // counts, give or take one frame's wire packets at each end (a shard
  // counts a frame's datagrams only once it has sent its whole slice); and
  // the device must have dropped nothing (the capture taps packets just
  // before the device counts them).
  const double wire_share = static_cast<double>(n_wire) / static_cast<double>(n_wire + opt.speakers);
  const double kSlack = static_cast<double>(n_wire);
  const auto wire_expected = [&](const Round& rd) { return static_cast<double>(rd.engine_datagrams) * wire_share; };
  const auto wire_ok = [&](const Round& rd) {
    const double e = wire_expected(rd);
    return rd.wire_tx_errors == 0 && e >= static_cast<double>(rd.wire_tx_inner) - kSlack &&
           e <= static_cast<double>(rd.wire_tx_outer) + kSlack;
  };
  std::optional<bool> pass_wire;
  if (wire.kind == WireKind::veth && !rounds.empty()) {
    pass_wire = std::all_of(rounds.begin(), rounds.end(), wire_ok);
  }
  const std::string machine = machine_line();

  if (opt.json) {
    JsonObject results;
    results.add("first_packet_ms", dist_json(packet))
        .add("first_audio_ms", dist_json(audio))
        .add("confirm_ms", dist_json(confirm));
    if (switched != kNone) {
      results.add_int("switched", static_cast<double>(switched))
          .add_int("missed", static_cast<double>(n_wire - switched));
    } else {
      results.add_null("switched").add_null("missed");
    }
    const std::optional<double> confirmed_json =
        confirmed != kNone ? std::optional<double>(static_cast<double>(confirmed)) : std::nullopt;
    results.add_int("confirmed", confirmed_json)
        .add_int("speakers", static_cast<double>(opt.speakers))
        .add_int("rounds", static_cast<double>(rounds.size()))
        .add_int("first_packet_samples", static_cast<double>(packet.n))
        .add_int("first_audio_samples", static_cast<double>(audio.n))
        .add_int("confirm_samples", static_cast<double>(confirm.n))
        .add("raise_call_ms", dist_json(dist(raise_ms)))
        .add_int("confirm_poll_ms", opt.poll_ms);
    std::string per_round = "[";
    for (std::size_t i = 0; i < rounds.size(); ++i) {
      const auto& rd = rounds[i];
      JsonObject o;
      o.add_int("alert_id", static_cast<double>(rd.alert_id))
          .add_int("clusters_targeted", rd.targeted)
          .add_int("switched", rd.captured ? std::optional<double>(static_cast<double>(rd.switched)) : std::nullopt)
          .add("first_packet_ms", dist_json(dist(rd.first_packet_ms)))
          .add("first_packet_min_ms", percentile(rd.first_packet_ms, 0))
          .add("first_audio_ms", dist_json(dist(rd.first_audio_ms)))
          .add("confirm_ms", dist_json(dist(rd.confirm_ms)))
          .add_int("confirmed", static_cast<double>(rd.confirm_ms.size()))
          .add("raise_call_ms", std::optional<double>(rd.raise_call_ms))
          .add_int("capture_packets", static_cast<double>(rd.capture_packets))
          .add_int("capture_drops", static_cast<double>(rd.capture_drops))
          .add_int("engine_datagrams_sent", static_cast<double>(rd.engine_datagrams))
          .add_int("engine_send_errors", static_cast<double>(rd.send_errors))
          .add("return_ms", rd.return_ms);
      if (wire.kind == WireKind::veth) {
        o.add_int("wire_tx_inner", static_cast<double>(rd.wire_tx_inner))
            .add_int("wire_tx_outer", static_cast<double>(rd.wire_tx_outer))
            .add_int("wire_tx_expected", wire_expected(rd))
            .add_int("wire_tx_errors", static_cast<double>(rd.wire_tx_errors))
            .add("wire_check", wire_ok(rd));
      }
      per_round += (i == 0 ? "" : ",") + o.str();
    }
    per_round += "]";
    JsonObject top;
    top.add("bench", "preempt")
        .add_int("clusters", static_cast<double>(opt.clusters))
        .add("results", results)
        .add_int("wire_destinations", static_cast<double>(n_wire))
        .add_int("clusters_hearing_schedule", hearing)
        .add("wire", wire.name())
        .add("wire_note", wire.note)
        .add("machine", machine)
        .add("load_before", load_before)
        .add("load_after", load_after)
        .add_int("speaker_block_ms", opt.speaker_block_ms)
        .add("pass_first_packet", pass_packet)
        .add("pass_first_audio", pass_audio)
        .add("pass_switched", pass_switched);
    if (pass_wire) {
      top.add("pass_wire_counts", *pass_wire);
    } else {
      top.add_null("pass_wire_counts");
    }
    top.add("pass", pass_packet && pass_audio && pass_switched && pass_wire.value_or(true) && error.empty())
        .add_raw("per_round", per_round);
    if (!notes.empty()) top.add("notes", notes);
    if (!error.empty()) top.add("error", error);
    std::cout << top.str() << std::endl;
  } else {
    std::printf("preempt: RaiseAlert to %zu wire clusters + %zu loa-speakers on %s, %zu round(s) (%s; load %s -> %s)\n",
                n_wire, opt.speakers, wire.name(), rounds.size(), machine.c_str(), load_before.c_str(),
                load_after.c_str());
    std::printf("  %s\n", wire.note.c_str());
    std::printf("%-40s %8s %9s %9s %9s\n", "from just before RaiseAlert is written", "samples", "p50 ms", "p99 ms",
                "max ms");
    const auto row = [](const char* name, const Dist& d) {
      std::printf("%-40s %8zu %9s %9s %9s\n", name, d.n, f3(d.p50).c_str(), f3(d.p99).c_str(), f3(d.max).c_str());
    };
    row("(a) first alert packet per wire dest", packet);
    row("(b) first alert audio decoded, speakers", audio);
    row("(c) confirmation seen by the bench", confirm);
    row("    RaiseAlert call answered", dist(raise_ms));
    const std::string switched_text = switched != kNone ? std::to_string(switched) : std::string("n/a");
    const std::string confirmed_text = confirmed != kNone ? std::to_string(confirmed) : std::string("n/a");
    std::printf("switched %s of %zu (worst round), confirmed %s of %zu (worst round), capture drops %llu; "
                "confirmation poll every %u ms\n",
                switched_text.c_str(), n_wire, confirmed_text.c_str(), opt.speakers,
                static_cast<unsigned long long>(drops), opt.poll_ms);
    for (std::size_t i = 0; i < rounds.size(); ++i) {
      const auto& rd = rounds[i];
      std::printf("  round %zu: first packet min %s ms; engine sent %llu datagrams (%llu errors)", i + 1,
                  f3(percentile(rd.first_packet_ms, 0)).c_str(), static_cast<unsigned long long>(rd.engine_datagrams),
                  static_cast<unsigned long long>(rd.send_errors));
      if (wire.kind == WireKind::veth) {
        std::printf("; %s TX %llu..%llu packets, expected %.0f, TX errors %llu: %s", wire.device.c_str(),
                    static_cast<unsigned long long>(rd.wire_tx_inner),
                    static_cast<unsigned long long>(rd.wire_tx_outer),
                    wire_expected(rd), static_cast<unsigned long long>(rd.wire_tx_errors),
                    wire_ok(rd) ? "ok" : "MISMATCH");
      }
      std::printf("\n");
    }
    std::printf("targets: first packet p99 <= %.0f ms and max <= %.0f ms: %s; first audio p99 <= %.0f ms: %s; "
                "every destination switched: %s; wire counts: %s\n",
                kTargetPacketP99Ms, kTargetPacketMaxMs, pass_packet ? "PASS" : "FAIL", kTargetAudioP99Ms,
                pass_audio ? "PASS" : "FAIL", pass_switched ? "PASS" : "FAIL",
                pass_wire ? (*pass_wire ? "PASS" : "FAIL") : "n/a");
    if (!notes.empty()) std::printf("notes: %s\n", notes.c_str());
    if (!error.empty()) std::printf("FAILED: %s\n", error.c_str());
  }
  if (!opt.keep_workdir) {
    std::error_code ec;
    std::filesystem::remove_all(workdir, ec);
  } else {
    progress("workdir kept: " + workdir);
  }
  return error.empty() ? 0 : 1;
}

}  // namespace

void add_preempt_scenario(CLI::App& app, int& exit_code) {
  auto opt = std::make_shared<PreemptOptions>();
  CLI::App* sub = app.add_subcommand(
      "preempt", "RaiseAlert while a schedule plays: first alert packet per destination, first alert audio at real "
                 "speakers, confirmation");
  sub->add_option("--clusters,-n", opt->clusters, "Wire clusters (unicast destinations on the veth)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{64770}));
  sub->add_option("--speakers", opt->speakers, "Real loa-speaker processes on loopback")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{500}));
  sub->add_option("--rounds", opt->rounds, "Alerts raised one after the other (cancelled in between)")
      ->capture_default_str()
      ->check(CLI::Range(1U, 100U));
  sub->add_option("--seconds,-s", opt->seconds, "Per round: how long to wait for every switch and confirmation")
      ->capture_default_str()
      ->check(CLI::Range(1U, 600U));
  sub->add_option("--poll-ms", opt->poll_ms, "GetAlertStatus poll interval (the confirmation times' resolution)")
      ->capture_default_str()
      ->check(CLI::Range(1U, 1000U));
  sub->add_option("--speaker-block-ms", opt->speaker_block_ms, "The speakers' render block (--block-ms)")
      ->capture_default_str()
      ->check(CLI::IsMember({5, 10, 20}));
  sub->add_flag("--json", opt->json, "Print one JSON object on stdout (progress goes to stderr)");
  sub->add_flag("--no-wire", opt->no_wire, "No veth: at most 1000 loopback destinations in a private namespace");
  sub->add_option("--bin-dir", opt->bin_dir, "Where loa-engine and loa-speaker are (default: this build)");
  sub->add_flag("--keep-workdir", opt->keep_workdir, "Keep the generated config, state, logs and switch logs");
  sub->callback([opt, &exit_code] {
    try {
      exit_code = run_preempt(*opt);
    } catch (const std::exception& e) {
      std::cerr << "loa-bench preempt: " << e.what() << std::endl;
      exit_code = 1;
    }
  });
}

}  // namespace loa::bench
