// loa-speaker: receives a programme's RTP from the engine, plays it through
// the sound card (or writes a WAV file, or discards it), and reports its state
// to the engine over RTCP. See /work/notes/speaker_readme.md for usage.

#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <span>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "loa-speaker/audio_device.h"
#include "loa-speaker/float_ring.h"
#include "loa-speaker/speaker.h"
#include "loa/codecs/wav_writer.h"
#include "loa/transport/udp_socket.h"

namespace {

using loa::speaker::Speaker;
using loa::speaker::SpeakerConfig;

struct Options {
    std::string cluster_id;
    std::string listen;
    std::vector<std::string> engines;
    std::string group;
    std::string group_interface;
    std::string out;
    bool null_sink = false;
    std::string device;
    bool list_devices = false;
    int jitter_ms = 0;
    int min_delay_ms = 0;
    int max_delay_ms = 500;
    double duration_s = 0.0;
    int report_interval_ms = 1000;
    int volume = 100;
    bool stats_json = false;
    std::string wav_format = "pcm16";
    std::string click_times;
    double click_threshold = 0.1;
    std::string switch_log;
    int block_ms = 20;
    int preempt_hold_ms = 500;
    std::string amp_command;
    std::string amp_gpio;
    bool amp_auto = true;
    double amp_idle_s = 10.0;
};

// --click-times: a zero-buffer timestamped sink for latency measurements
// (loa-bench latency). Sample i of a block handed over at `play_ns` plays at
// play_ns + i / 48 kHz; a click onset is the first sample at or above the
// threshold after at least 50 ms below it. Times are CLOCK_MONOTONIC (the
// steady clock), like loa-studio --print-send-times.
struct ClickLog {
    double threshold = 0.1;
    std::int64_t block_ns = 0;
    std::int64_t next_play_ns = std::numeric_limits<std::int64_t>::min();
    std::int64_t last_loud_ns = std::numeric_limits<std::int64_t>::min() / 2;
    std::vector<std::int64_t> onsets;

    void scan(std::span<const float> block) {
        const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count();
        // Blocks rendered together after a stall play one after the other.
        const std::int64_t play = std::max(now, next_play_ns);
        next_play_ns = play + block_ns;
        for (std::size_t i = 0; i < block.size(); ++i) {
            if (static_cast<double>(std::fabs(block[i])) < threshold) continue;
            const std::int64_t t = play + static_cast<std::int64_t>(i) * 1'000'000'000 / 48000;
            if (t - last_loud_ns >= 50'000'000) onsets.push_back(t);
            last_loud_ns = t;
        }
    }
};

// --switch-log: one "ssrc monotonic_ns" line per stream switch, written (and
// flushed) when the first frame of the new stream has been decoded, i.e. in
// the render that decoded it (CLOCK_MONOTONIC, the steady clock). For
// loa-bench preempt, which compares these times with its own on one host.
// Checked after every render: the playout names the new SSRC as soon as its
// first packet is pushed, and its decoded-frame counter moves only in render.
struct SwitchLog {
    std::FILE* file = nullptr;
    std::uint32_t logged_ssrc = 0;
    std::uint64_t decoded_before = 0;

    void check(const loa::engine::PlayoutStats& s) {
        const std::uint32_t ssrc = s.ssrc.load(std::memory_order_relaxed);
        const std::uint64_t decoded = s.frames_decoded.load(std::memory_order_relaxed);
        if (ssrc != 0 && ssrc != logged_ssrc && decoded > decoded_before) {
            const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                         std::chrono::steady_clock::now().time_since_epoch())
                                         .count();
            std::fprintf(file, "%u %lld\n", static_cast<unsigned>(ssrc), static_cast<long long>(now));
            std::fflush(file);
            logged_ssrc = ssrc;
        }
        decoded_before = decoded;
    }
};

int run(const Options& o) {
    SpeakerConfig cfg;
    cfg.cluster_id = o.cluster_id;
    for (const auto& e : o.engines) cfg.engines.push_back(loa::speaker::parse_engine_address(e));
    cfg.jitter_ms = o.jitter_ms;
    cfg.min_delay_ms = o.min_delay_ms;
    cfg.max_delay_ms = o.max_delay_ms;
    cfg.volume_pct = o.volume;
    cfg.report_interval_ms = o.report_interval_ms;
    cfg.preempt_hold_ms = o.preempt_hold_ms;
    cfg.amp_command = o.amp_command;
    cfg.amp_gpio = o.amp_gpio;
    cfg.amp_auto = o.amp_auto;
    cfg.amp_idle_ms = static_cast<int>(std::lround(o.amp_idle_s * 1000.0));
    loa::speaker::validate(cfg);
    if (!cfg.amp_gpio.empty() && ::access(cfg.amp_gpio.c_str(), W_OK) != 0) {
        throw std::invalid_argument("--amp-gpio: cannot write " + cfg.amp_gpio);
    }

    const auto listen = loa::transport::parse_endpoint(o.listen);
    std::optional<boost::asio::ip::address> group;
    if (!o.group.empty()) {
        boost::system::error_code ec;
        group = boost::asio::ip::make_address(o.group, ec);
        if (ec || !group->is_multicast()) throw std::invalid_argument("--group: not a multicast address: " + o.group);
    }
    std::optional<boost::asio::ip::address> group_interface;
    if (!o.group_interface.empty()) {
        if (!group) throw std::invalid_argument("--group-interface needs --group");
        boost::system::error_code ec;
        group_interface = boost::asio::ip::make_address(o.group_interface, ec);
        if (ec || group_interface->is_multicast() || group_interface->is_v4() != group->is_v4()) {
            throw std::invalid_argument("--group-interface: not a local address of the group's family: " +
                                        o.group_interface);
        }
    }

    if (!o.click_times.empty() && o.out.empty() && !o.null_sink) {
        throw std::invalid_argument("--click-times needs --null or --out (a clocked sink)");
    }
    if (!o.switch_log.empty() && o.out.empty() && !o.null_sink) {
        throw std::invalid_argument("--switch-log needs --null or --out (a clocked sink)");
    }
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> switch_file(nullptr, &std::fclose);
    if (!o.switch_log.empty()) {
        switch_file.reset(std::fopen(o.switch_log.c_str(), "w"));
        if (!switch_file) throw std::invalid_argument("--switch-log: cannot write " + o.switch_log);
    }
    // Sinks are created before the socket so that a bad --out or --device
    // fails before anything is announced.
    std::unique_ptr<loa::codecs::WavWriter> wav;
    std::unique_ptr<loa::speaker::PortAudioLibrary> pa;
    std::unique_ptr<loa::speaker::FloatRing> ring;
    std::unique_ptr<loa::speaker::AudioOutput> card;
    if (!o.out.empty()) {
        const auto fmt = o.wav_format == "float" ? loa::codecs::WavSampleFormat::Float32
                                                 : loa::codecs::WavSampleFormat::Pcm16;
        wav = std::make_unique<loa::codecs::WavWriter>(o.out, fmt);
    } else if (!o.null_sink) {
        pa = std::make_unique<loa::speaker::PortAudioLibrary>();
        const int dev = pa->find_output_device(o.device);
        ring = std::make_unique<loa::speaker::FloatRing>(48000);  // 1 s, far above the fill target
        card = std::make_unique<loa::speaker::AudioOutput>(dev, *ring);
    }

    boost::asio::io_context io;
    Speaker speaker(io, cfg, listen, group, group_interface);
    std::cout << "listening " << speaker.local_endpoint() << std::endl;

    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    boost::asio::steady_timer duration_timer(io);
    bool stopping = false;
    auto shutdown = [&] {
        if (stopping) return;
        stopping = true;
        speaker.stop();
        boost::system::error_code ec;
        signals.cancel(ec);
        duration_timer.cancel();
        io.stop();
    };
    signals.async_wait([&](const boost::system::error_code& ec, int) {
        if (!ec) shutdown();
    });
    if (o.duration_s > 0) {
        duration_timer.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(o.duration_s)));
        duration_timer.async_wait([&](const boost::system::error_code& ec) {
            if (!ec) shutdown();
        });
    }

    bool wav_failed = false;
    const auto block_samples = static_cast<std::size_t>(o.block_ms) * 48;
    std::unique_ptr<ClickLog> clicks;
    if (!o.click_times.empty()) {
        clicks = std::make_unique<ClickLog>();
        clicks->threshold = o.click_threshold;
        clicks->block_ns = static_cast<std::int64_t>(o.block_ms) * 1'000'000;
        clicks->onsets.reserve(1 << 16);
    }
    std::unique_ptr<SwitchLog> switches;
    if (switch_file) {
        switches = std::make_unique<SwitchLog>();
        switches->file = switch_file.get();
    }
    speaker.start();
    if (wav) {
        speaker.start_clocked_playout(
            [&](std::span<const float> frame) {
                if (clicks) clicks->scan(frame);
                if (switches) switches->check(speaker.pipeline().playout().stats());
                if (wav->write(frame) != loa::codecs::Status::Ok && !wav_failed) {
                    wav_failed = true;
                    std::cerr << "loa-speaker: writing " << o.out << " failed (disk full?); audio is discarded\n";
                }
            },
            block_samples);
    } else if (o.null_sink) {
        if (clicks || switches) {
            speaker.start_clocked_playout(
                [&](std::span<const float> frame) {
                    if (clicks) clicks->scan(frame);
                    if (switches) switches->check(speaker.pipeline().playout().stats());
                },
                block_samples);
        } else {
            speaker.start_clocked_playout(nullptr, block_samples);
        }
    } else {
        // 5 ms blocks, about 10-20 ms ahead of the card (it reads 10 ms at a time).
        speaker.start_ring_playout(*ring, 960, 240);
        card->start();
    }

    io.run();

    if (card) card->stop();
    // Nothing plays any more: the amplifier goes off (bounded wait for the hook).
    if (!speaker.pipeline().switch_amplifier_off(std::chrono::seconds(12))) {
        std::cerr << "loa-speaker: the amplifier hook did not finish switching off\n";
    }
    int rc = 0;
    if (wav && wav->close() != loa::codecs::Status::Ok) {
        std::cerr << "loa-speaker: closing " << o.out << " failed\n";
        rc = 1;
    }
    if (wav_failed) rc = 1;
    if (clicks) {
        std::ofstream f(o.click_times);
        for (const auto t : clicks->onsets) f << t << "\n";
        if (!f) {
            std::cerr << "loa-speaker: cannot write " << o.click_times << "\n";
            rc = 1;
        }
    }

    const auto snap = speaker.counters().snapshot();
    std::cerr << "loa-speaker " << cfg.cluster_id << " counters:\n" << snap.to_text();
    if (card) std::cerr << "  card_underruns " << card->underruns() << "\n";
    std::cerr.flush();
    if (o.stats_json) std::cout << snap.to_json(cfg.cluster_id) << std::endl;
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"loa-speaker: Loa speaker-cluster receiver (RTP/Opus in, sound card / WAV / null out)"};
    Options o;
    app.add_option("--cluster-id", o.cluster_id, "cluster id, sent as RTCP SDES CNAME");
    app.add_option("--listen", o.listen, "HOST:PORT to receive RTP/RTCP on (port 0 = ephemeral)");
    app.add_option("--engine", o.engines, "engine HOST[:PORT] media is accepted from (repeatable)");
    app.add_option("--group", o.group, "multicast group to join on the listen socket");
    app.add_option("--group-interface", o.group_interface,
                   "local address of the interface to join --group on (default: the kernel's choice)");
    auto* out = app.add_option("--out", o.out, "write the played audio to this WAV file");
    auto* null_sink = app.add_flag("--null", o.null_sink, "discard the played audio (no sound card)");
    auto* device = app.add_option("--device", o.device, "PortAudio output device, index or name substring");
    out->excludes(null_sink)->excludes(device);
    null_sink->excludes(device);
    app.add_option("--wav-format", o.wav_format, "WAV sample format for --out")
        ->check(CLI::IsMember({"pcm16", "float"}));
    app.add_flag("--list-devices", o.list_devices, "list PortAudio output devices and exit");
    auto* click_times = app.add_option("--click-times", o.click_times,
                                       "with --null/--out: write each click onset's play time (CLOCK_MONOTONIC ns, "
                                       "zero-buffer sink) to FILE at exit, for loa-bench latency");
    click_times->excludes(device);
    app.add_option("--switch-log", o.switch_log,
                   "with --null/--out: append \"SSRC MONOTONIC_NS\" to FILE each time the first frame of a new "
                   "stream is decoded (CLOCK_MONOTONIC), for loa-bench preempt")
        ->excludes(device);
    app.add_option("--click-threshold", o.click_threshold, "level a click onset crosses (--click-times)")
        ->check(CLI::Range(0.001, 1.0));
    app.add_option("--block-ms", o.block_ms, "with --null/--out: render blocks of this many ms (a card's period)")
        ->check(CLI::IsMember({5, 10, 20}));
    app.add_option("--jitter-ms", o.jitter_ms,
                   "impose a fixed playout delay in ms (0 = adaptive: follows the measured network jitter)")
        ->check(CLI::Range(0, 2000));
    app.add_option("--min-delay-ms", o.min_delay_ms, "floor of the adaptive playout delay in ms")
        ->check(CLI::Range(0, 2000));
    app.add_option("--max-delay-ms", o.max_delay_ms, "ceiling of the playout delay in ms")
        ->check(CLI::Range(10, 2000));
    app.add_option("--duration", o.duration_s, "stop after this many seconds")->check(CLI::NonNegativeNumber);
    app.add_option("--report-interval-ms", o.report_interval_ms, "RTCP report period in ms")
        ->check(CLI::Range(10, 60000));
    app.add_option("--volume", o.volume, "software volume 0..100")->check(CLI::Range(0, 100));
    app.add_option("--preempt-hold-ms", o.preempt_hold_ms,
                   "upper bound (ms) of ignoring a lower-priority stream: it is ignored only while the playing "
                   "one is alive, i.e. until that has been silent for 3 packet times (at least 60 ms and the "
                   "playout delay) or sent an RTCP BYE, and never longer than this")
        ->check(CLI::Range(0, 60000));
    app.add_option("--amp-command", o.amp_command,
                   "amplifier hook: run PROG on|off (no shell) when the amplifier is to switch");
    app.add_option("--amp-gpio", o.amp_gpio,
                   "amplifier hook: write 1/0 to this file (e.g. /sys/class/gpio/gpioN/value)");
    app.add_flag("--amp-auto,!--no-amp-auto", o.amp_auto,
                 "with a hook: amplifier on while a stream plays, off after --amp-idle (default on); "
                 "alerts always force it on");
    app.add_option("--amp-idle", o.amp_idle_s, "seconds without a stream before the amplifier goes off")
        ->check(CLI::Range(0.0, 86400.0));
    app.add_flag("--stats-json", o.stats_json, "print the counters as one JSON line on stdout at exit");
    CLI11_PARSE(app, argc, argv);

    try {
        if (o.list_devices) {
            loa::speaker::PortAudioLibrary pa;
            std::cout << pa.list_output_devices();
            return 0;
        }
        if (o.cluster_id.empty() || o.listen.empty() || o.engines.empty()) {
            std::cerr << "loa-speaker: --cluster-id, --listen and --engine are required\n" << app.help();
            return 2;
        }
        return run(o);
    } catch (const std::invalid_argument& e) {
        std::cerr << "loa-speaker: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "loa-speaker: " << e.what() << "\n";
        return 1;
    }
}
