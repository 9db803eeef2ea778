// The control scenario's load: the flood of read calls, the mutating call
// and the late-frame counters (see control_load.h).
#include "control_load.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "report.h"

namespace loa::bench::control_load {

namespace {

namespace pb = loa::control::v1;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kPageSize = 100;
constexpr std::size_t kMutatingMaxCalls = 2000;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

void fill_latency(LevelResult& r, std::vector<double>& ms) {
  r.p50_ms = percentile(ms, 50);
  r.p99_ms = percentile(ms, 99);
  r.max_ms = percentile(ms, 100);
}

}  // namespace

LateFrames late_frames(engine::ControlClient& c) {
  const auto r = c.call("GetStatus", pb::GetStatusRequest());
  expect_ok(r, "GetStatus");
  pb::GetStatusResponse s;
  if (!s.ParseFromString(r.payload())) {
    throw std::runtime_error("GetStatus: unparsable response");
  }
  LateFrames f;
  for (const auto& p : s.stats().programs()) {
    f.late += p.frames_late();
    f.skipped += p.frames_skipped();
  }
  f.missed = s.stats().fanout().frames_missed();
  return f;
}

LevelResult run_level(const std::filesystem::path& socket, unsigned clients, unsigned seconds, std::size_t clusters) {
  LevelResult res;
  res.clients = clients;
  std::vector<std::unique_ptr<engine::ControlClient>> conns;
  for (unsigned i = 0; i < clients; ++i) {
    conns.push_back(std::make_unique<engine::ControlClient>(socket));
  }
  std::vector<std::vector<double>> lat(clients);
  std::vector<std::vector<double>> lat_list(clients);    // the ListClusters share of lat
  std::vector<std::vector<double>> lat_status(clients);  // the GetStatus share
  std::vector<std::uint64_t> errors(clients, 0);
  std::vector<std::string> first_error(clients);
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  std::atomic<unsigned> ready{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      auto& c = *conns[t];
      auto& l = lat[t];
      auto& ll = lat_list[t];
      auto& ls = lat_status[t];
      l.reserve(200000);
      ll.reserve(100000);
      ls.reserve(100000);
      std::uint64_t x = 0x9E3779B97F4A7C15ULL * (t + 1);
      const pb::GetStatusRequest status;
      pb::ListClustersRequest list;
      list.set_page_size(static_cast<std::uint32_t>(kPageSize));
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
        std::this_thread::yield();
      }
      for (std::uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        const bool is_list = (i + t) % 2 == 1;
        if (is_list) {
          x ^= x << 13;
          x ^= x >> 7;
          x ^= x << 17;
          const std::size_t start = clusters > kPageSize ? x % (clusters - kPageSize) : 0;
          list.set_page_token(start == 0 ? std::string() : cluster_id(start - 1));
        }
        const auto t0 = Clock::now();
        try {
          const auto r = is_list ? c.call("ListClusters", list) : c.call("GetStatus", status);
          const double ms = ms_since(t0);
          l.push_back(ms);
          (is_list ? ll : ls).push_back(ms);
          if (r.code() != pb::OK) {
            if (errors[t]++ == 0) {
              first_error[t] = pb::StatusCode_Name(r.code()) + " " + r.message();
            }
          }
        } catch (const std::exception& e) {
          if (errors[t]++ == 0) {
            first_error[t] = e.what();
          }
          break;
        }
      }
    });
  }
  while (ready.load() < clients) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const auto t0 = Clock::now();
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop.store(true);
  for (auto& th : threads) {
    th.join();
  }
  // Every call counted has completed; the stop flag ends each thread's last one.
  res.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> all;
  std::vector<double> lists;
  std::vector<double> statuses;
  for (unsigned t = 0; t < clients; ++t) {
    all.insert(all.end(), lat[t].begin(), lat[t].end());
    lists.insert(lists.end(), lat_list[t].begin(), lat_list[t].end());
    statuses.insert(statuses.end(), lat_status[t].begin(), lat_status[t].end());
    res.errors += errors[t];
    if (res.first_error.empty()) {
      res.first_error = first_error[t];
    }
  }
  res.calls = all.size();
  res.calls_per_s = static_cast<double>(res.calls) / res.seconds;
  auto method = [](std::vector<double>& ms) {
    MethodLatency m;
    m.calls = ms.size();
    m.p50_ms = percentile(ms, 50);
    m.p99_ms = percentile(ms, 99);
    m.max_ms = percentile(ms, 100);
    return m;
  };
  res.get_status = method(statuses);
  res.list_clusters = method(lists);
  fill_latency(res, all);
  return res;
}

LevelResult run_mutating(engine::ControlClient& c, unsigned seconds, std::size_t clusters) {
  LevelResult res;
  res.clients = 1;
  std::vector<double> ms;
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::seconds(seconds);
  for (std::size_t i = 0; i < kMutatingMaxCalls && Clock::now() < end; ++i) {
    pb::SetClusterEnabledRequest req;
    req.set_id(cluster_id(i % clusters));
    req.set_enabled((i / clusters) % 2 == 1);  // first pass disables, second enables again
    const auto t = Clock::now();
    const auto r = c.call("SetClusterEnabled", req);
    ms.push_back(ms_since(t));
    if (r.code() != pb::OK && res.errors++ == 0) {
      res.first_error = pb::StatusCode_Name(r.code()) + " " + r.message();
    }
  }
  res.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  res.calls = ms.size();
  res.calls_per_s = static_cast<double>(res.calls) / res.seconds;
  fill_latency(res, ms);
  return res;
}

}  // namespace loa::bench::control_load
