#include "impair.h"

#include <signal.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "loa/transport/impair_proxy.h"
#include "loa/transport/impairment.h"
#include "report.h"

namespace loa::bench {

namespace {

namespace tr = loa::transport;

struct ImpairOptions {
  std::string listen;
  std::string to;
  double loss = -1.0;  // < 0: not given
  double burst = 0.0;  // 0: not given
  double uniform_loss = -1.0;
  std::vector<double> ge;  // p(good->bad), p(bad->good), loss in good, loss in bad
  std::vector<std::uint64_t> drop;
  std::vector<std::uint64_t> duplicate_list;
  double delay_ms = 0.0;
  double jitter_ms = 0.0;
  std::string jitter_dist = "normal";
  double pareto_shape = 2.0;
  double jitter_cap_ms = 0.0;
  bool fifo_jitter = false;
  double reorder = 0.0;
  double reorder_ms = 50.0;
  double duplicate = 0.0;
  double duplicate_ms = 0.0;
  std::uint64_t seed = 1;
  bool reverse_impaired = false;
  double duration_s = 0.0;
  bool json = false;
};

std::int64_t ms_to_ns(double ms, const char* what) {
  if (!(ms >= 0.0) || ms > 1e9) throw std::invalid_argument(std::string(what) + " must be >= 0 ms");
  return std::llround(ms * 1e6);
}

tr::ImpairmentConfig make_config(const ImpairOptions& o) {
  tr::ImpairmentConfig c;
  c.seed = o.seed;
  if (!o.ge.empty()) {
    if (o.ge.size() != 4) throw std::invalid_argument("--ge takes 4 values: P_GB,P_BG,LOSS_GOOD,LOSS_BAD");
    c.loss = tr::LossModel::GilbertElliott;
    c.gilbert_elliott = {o.ge[0], o.ge[1], o.ge[2], o.ge[3]};
  } else if (o.uniform_loss >= 0.0) {
    c.loss = tr::LossModel::Uniform;
    c.uniform_loss = o.uniform_loss;
  } else if (o.loss >= 0.0 && o.burst > 0.0) {
    c.loss = tr::LossModel::GilbertElliott;
    c.gilbert_elliott = tr::GilbertElliottParams::from_mean(o.loss, o.burst);
  } else if (o.loss >= 0.0) {
    c.loss = tr::LossModel::Uniform;
    c.uniform_loss = o.loss;
  } else if (o.burst > 0.0) {
    throw std::invalid_argument("--burst needs --loss");
  }
  c.drop_indices = o.drop;
  c.delay_ns = ms_to_ns(o.delay_ms, "--delay-ms");
  c.jitter_spread_ns = ms_to_ns(o.jitter_ms, "--jitter-ms");
  if (c.jitter_spread_ns > 0) {
    if (o.jitter_dist == "uniform") c.jitter = tr::JitterDistribution::Uniform;
    else if (o.jitter_dist == "pareto") c.jitter = tr::JitterDistribution::Pareto;
    else c.jitter = tr::JitterDistribution::Normal;
  }
  c.pareto_shape = o.pareto_shape;
  c.jitter_cap_ns = ms_to_ns(o.jitter_cap_ms, "--jitter-cap-ms");
  c.jitter_keeps_order = o.fifo_jitter;
  c.reorder_probability = o.reorder;
  c.reorder_delay_ns = ms_to_ns(o.reorder_ms, "--reorder-ms");
  c.duplicate_probability = o.duplicate;
  c.duplicate_indices = o.duplicate_list;
  c.duplicate_delay_ns = ms_to_ns(o.duplicate_ms, "--duplicate-ms");
  return c;
}

std::string describe_loss(const tr::ImpairmentConfig& c) {
  std::ostringstream s;
  switch (c.loss) {
    case tr::LossModel::None:
      s << "none";
      break;
    case tr::LossModel::Uniform:
      s << "uniform " << c.uniform_loss;
      break;
    case tr::LossModel::GilbertElliott: {
      const auto& g = c.gilbert_elliott;
      s << "gilbert-elliott p_gb=" << g.p_good_to_bad << " p_bg=" << g.p_bad_to_good << " loss_g=" << g.loss_in_good
        << " loss_b=" << g.loss_in_bad << " (mean " << g.mean_loss() << ")";
      break;
    }
  }
  if (!c.drop_indices.empty()) s << " + " << c.drop_indices.size() << " fixed drops";
  return s.str();
}

std::string endpoint_text(const boost::asio::ip::udp::endpoint& e) {
  std::ostringstream s;
  s << e;
  return s.str();
}

// Waits for SIGINT/SIGTERM (blocked in every thread by the caller) or the
// duration; returns the signal number, or 0 at the end of the duration.
int wait_for_signal(const sigset_t& signals, double duration_s) {
  if (duration_s <= 0.0) {
    int sig = 0;
    while (::sigwait(&signals, &sig) != 0) {
    }
    return sig;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(duration_s);
  while (true) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return 0;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    const int sig = ::sigtimedwait(&signals, nullptr, &ts);
    if (sig > 0) return sig;
  }
}

int run_impair(const ImpairOptions& o) {
  tr::ImpairProxyConfig config;
  config.listen = tr::parse_endpoint(o.listen, "0.0.0.0");
  config.target = tr::parse_endpoint(o.to, "127.0.0.1");
  config.forward = make_config(o);
  if (o.reverse_impaired) {
    config.reverse = config.forward;
    config.reverse->seed = tr::ImpairRng::derive_seed(o.seed, 0x7265766572736500ULL);
  }

  // Block the stop signals before the proxy thread starts so it inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  tr::ImpairProxy proxy(config);
  const auto started = std::chrono::steady_clock::now();
  proxy.start();
  std::cerr << "[loa-bench] impair: listening on " << proxy.local_endpoint() << ", forwarding to " << config.target
            << " from " << proxy.upstream_endpoint() << "; seed " << o.seed << ", loss "
            << describe_loss(config.forward) << ", delay " << o.delay_ms << " ms, jitter " << o.jitter_ms << " ms "
            << (config.forward.jitter_spread_ns > 0 ? o.jitter_dist : std::string("none")) << ", reorder " << o.reorder
            << ", duplicate " << o.duplicate << (o.reverse_impaired ? ", reverse impaired" : ", reverse clean")
            << std::endl;

  const int sig = wait_for_signal(signals, o.duration_s);
  proxy.stop();
  const double ran_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const tr::ImpairProxyStats s = proxy.stats();

  if (o.json) {
    JsonObject forward;
    forward.add_int("received", static_cast<double>(s.received))
        .add_int("forwarded", static_cast<double>(s.forwarded))
        .add_int("dropped", static_cast<double>(s.dropped))
        .add_int("duplicated", static_cast<double>(s.duplicated))
        .add_int("reordered", static_cast<double>(s.reordered));
    JsonObject reverse;
    reverse.add_int("received", static_cast<double>(s.reverse_received))
        .add_int("forwarded", static_cast<double>(s.reverse_forwarded))
        .add_int("dropped", static_cast<double>(s.reverse_dropped))
        .add_int("duplicated", static_cast<double>(s.reverse_duplicated))
        .add_int("reordered", static_cast<double>(s.reverse_reordered));
    JsonObject out;
    out.add("bench", "impair")
        .add("listen", endpoint_text(proxy.local_endpoint()))
        .add("target", endpoint_text(config.target))
        .add_int("seed", static_cast<double>(o.seed))
        .add("loss_model", describe_loss(config.forward))
        .add("duration_s", std::optional<double>(ran_s))
        .add("forward", forward)
        .add("reverse", reverse)
        .add_int("overflow", static_cast<double>(s.overflow))
        .add_int("send_errors", static_cast<double>(s.send_errors))
        .add_int("discarded_at_stop", static_cast<double>(s.held));
    std::cout << out.str() << std::endl;
  } else {
    std::cout << "impair: ran " << ran_s << " s" << (sig != 0 ? " (stopped by signal)" : "") << "\n"
              << "  forward  received " << s.received << "  forwarded " << s.forwarded << "  dropped " << s.dropped
              << "  duplicated " << s.duplicated << "  reordered " << s.reordered << "\n"
              << "  reverse  received " << s.reverse_received << "  forwarded " << s.reverse_forwarded
              << "  dropped " << s.reverse_dropped << "  duplicated " << s.reverse_duplicated << "  reordered "
              << s.reverse_reordered << "\n"
              << "  overflow " << s.overflow << "  send errors " << s.send_errors << "  discarded at stop " << s.held
              << std::endl;
  }
  return 0;
}

}  // namespace

void add_impair_command(CLI::App& app, int& exit_code) {
  auto opt = std::make_shared<ImpairOptions>();
  CLI::App* sub = app.add_subcommand(
      "impair",
      "UDP impairment proxy: seeded loss (uniform, Gilbert-Elliott bursts), delay, jitter, reordering, duplication");
  sub->add_option("--listen", opt->listen, "Local HOST:PORT clients send to (PORT alone: 0.0.0.0)")->required();
  sub->add_option("--to", opt->to, "Target HOST:PORT (PORT alone: 127.0.0.1)")->required();
  auto* loss = sub->add_option("--loss", opt->loss, "Mean loss rate; with --burst Gilbert-Elliott, else uniform")
                   ->check(CLI::Range(0.0, 1.0));
  auto* burst =
      sub->add_option("--burst", opt->burst, "Mean loss burst length in packets (>= 1), with --loss")->needs(loss);
  auto* uniform = sub->add_option("--uniform-loss", opt->uniform_loss, "Independent loss probability")
                      ->check(CLI::Range(0.0, 1.0))
                      ->excludes(loss)
                      ->excludes(burst);
  sub->add_option("--ge", opt->ge, "Gilbert-Elliott P_GB,P_BG,LOSS_GOOD,LOSS_BAD")
      ->delimiter(',')
      ->expected(4)
      ->excludes(loss)
      ->excludes(burst)
      ->excludes(uniform);
  sub->add_option("--drop", opt->drop, "Packet indices always dropped (0-based, comma separated)")->delimiter(',');
  sub->add_option("--delay-ms", opt->delay_ms, "Fixed one-way delay")->capture_default_str();
  sub->add_option("--jitter-ms", opt->jitter_ms, "Jitter spread (extra delay; ~95th percentile, uniform: maximum)")
      ->capture_default_str();
  sub->add_option("--jitter-dist", opt->jitter_dist, "Jitter distribution")
      ->check(CLI::IsMember({"normal", "pareto", "uniform"}))
      ->capture_default_str();
  sub->add_option("--pareto-shape", opt->pareto_shape, "Pareto tail shape (smaller = heavier)")->capture_default_str();
  sub->add_option("--jitter-cap-ms", opt->jitter_cap_ms, "Largest extra delay (0: 10 x spread)")->capture_default_str();
  sub->add_flag("--fifo-jitter", opt->fifo_jitter, "Jitter never reorders (a FIFO queue)");
  sub->add_option("--reorder", opt->reorder, "Probability a packet is held back so later ones overtake it")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--reorder-ms", opt->reorder_ms, "Hold-back of a reordered packet")->capture_default_str();
  sub->add_option("--duplicate", opt->duplicate, "Duplication probability")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--duplicate-list", opt->duplicate_list, "Packet indices always duplicated")->delimiter(',');
  sub->add_option("--duplicate-ms", opt->duplicate_ms, "Gap between a packet and its duplicate")
      ->capture_default_str();
  sub->add_option("--seed", opt->seed, "Seed: the same seed gives the same impairment")->capture_default_str();
  sub->add_flag("--reverse-impaired", opt->reverse_impaired,
                "Impair replies (target -> client) too, with their own random stream (default: clean)");
  sub->add_option("--duration", opt->duration_s, "Seconds to run (0: until SIGINT/SIGTERM)")->capture_default_str();
  sub->add_flag("--json", opt->json, "Print the counters as one JSON object on stdout");
  sub->callback([opt, &exit_code] {
    try {
      exit_code = run_impair(*opt);
    } catch (const std::exception& e) {
      std::cerr << "loa-bench impair: " << e.what() << std::endl;
      exit_code = 1;
    }
  });
}

}  // namespace loa::bench
