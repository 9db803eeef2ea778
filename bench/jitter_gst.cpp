// `loa-bench jitter`'s GStreamer contender (see jitter_gst.h): its command line and the FIFO reader.
#include "jitter_gst.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bench_util.h"

namespace loa::bench::jitter {

std::vector<std::string> gst_jitter_argv(const std::string& gst_launch, int latency_ms, std::uint16_t port,
                                         const std::string& fifo) {
  return {gst_launch,
          "-q",
          "udpsrc",
          "address=127.0.0.1",
          "port=" + std::to_string(port),
          "caps=application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=96",
          "!",
          "rtpjitterbuffer",
          "do-lost=true",
          "latency=" + std::to_string(latency_ms),
          "!",
          "rtpopusdepay",
          "!",
          "opusdec",
          "use-inband-fec=true",
          "plc=true",
          "!",
          "audioconvert",
          "!",
          "audio/x-raw,format=F32LE,channels=1,rate=48000",
          "!",
          "filesink",
          "location=" + fifo,
          "buffer-mode=unbuffered",
          "sync=true"};
}

std::string join_argv(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

FifoReader::FifoReader(std::string path) : path_(std::move(path)) {
  out_.reserve(48000 * 120, 8000);
  thread_ = std::thread([this] { run(); });
}

FifoReader::~FifoReader() { finish(); }

void FifoReader::finish() {
  if (!thread_.joinable()) return;
  if (!opened_.load()) {
    // The writer never opened the FIFO: open and close it to release our open().
    const int fd = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
  }
  thread_.join();
}

void FifoReader::run() {
  const int fd = ::open(path_.c_str(), O_RDONLY);
  opened_.store(true);
  if (fd < 0) return;
  std::vector<char> buf(1 << 16);
  std::size_t carry = 0;  // bytes of an incomplete sample kept at buf's start
  std::vector<float> block;
  while (true) {
    const ssize_t n = ::read(fd, buf.data() + carry, buf.size() - carry);
    const std::int64_t now = mono_ns();
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      break;
    }
    const std::size_t have = carry + static_cast<std::size_t>(n);
    const std::size_t samples = have / sizeof(float);
    block.resize(samples);
    std::memcpy(block.data(), buf.data(), samples * sizeof(float));
    carry = have - samples * sizeof(float);
    std::memmove(buf.data(), buf.data() + samples * sizeof(float), carry);
    // The bytes were written when their first sample was due to play.
    if (samples > 0) out_.append(block, now);
  }
  ::close(fd);
}

}  // namespace loa::bench::jitter
