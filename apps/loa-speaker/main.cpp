// loa-speaker: receives a programme's RTP from the engine, plays it through
// the sound card (or writes a WAV file, or discards it), and reports its state
// to the engine over RTCP. See /work/notes/speaker_readme.md for usage.

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

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
    std::string out;
    bool null_sink = false;
    std::string device;
    bool list_devices = false;
    int jitter_ms = 60;
    double duration_s = 0.0;
    int report_interval_ms = 1000;
    int volume = 100;
    bool stats_json = false;
    std::string wav_format = "pcm16";
};

int run(const Options& o) {
    SpeakerConfig cfg;
    cfg.cluster_id = o.cluster_id;
    for (const auto& e : o.engines) cfg.engines.push_back(loa::speaker::parse_engine_address(e));
    cfg.jitter_ms = o.jitter_ms;
    cfg.volume_pct = o.volume;
    cfg.report_interval_ms = o.report_interval_ms;
    loa::speaker::validate(cfg);

    const auto listen = loa::transport::parse_endpoint(o.listen);
    std::optional<boost::asio::ip::address> group;
    if (!o.group.empty()) {
        boost::system::error_code ec;
        group = boost::asio::ip::make_address(o.group, ec);
        if (ec || !group->is_multicast()) throw std::invalid_argument("--group: not a multicast address: " + o.group);
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
    Speaker speaker(io, cfg, listen, group);
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
    speaker.start();
    if (wav) {
        speaker.start_clocked_playout([&](std::span<const float> frame) {
            if (wav->write(frame) != loa::codecs::Status::Ok && !wav_failed) {
                wav_failed = true;
                std::cerr << "loa-speaker: writing " << o.out << " failed (disk full?); audio is discarded\n";
            }
        });
    } else if (o.null_sink) {
        speaker.start_clocked_playout(nullptr);
    } else {
        speaker.start_ring_playout(*ring, 3 * 960);
        card->start();
    }

    io.run();

    if (card) card->stop();
    int rc = 0;
    if (wav && wav->close() != loa::codecs::Status::Ok) {
        std::cerr << "loa-speaker: closing " << o.out << " failed\n";
        rc = 1;
    }
    if (wav_failed) rc = 1;

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
    auto* out = app.add_option("--out", o.out, "write the played audio to this WAV file");
    auto* null_sink = app.add_flag("--null", o.null_sink, "discard the played audio (no sound card)");
    auto* device = app.add_option("--device", o.device, "PortAudio output device, index or name substring");
    out->excludes(null_sink)->excludes(device);
    null_sink->excludes(device);
    app.add_option("--wav-format", o.wav_format, "WAV sample format for --out")
        ->check(CLI::IsMember({"pcm16", "float"}));
    app.add_flag("--list-devices", o.list_devices, "list PortAudio output devices and exit");
    app.add_option("--jitter-ms", o.jitter_ms, "jitter buffer target delay in ms")->check(CLI::Range(0, 2000));
    app.add_option("--duration", o.duration_s, "stop after this many seconds")->check(CLI::NonNegativeNumber);
    app.add_option("--report-interval-ms", o.report_interval_ms, "RTCP report period in ms")
        ->check(CLI::Range(10, 60000));
    app.add_option("--volume", o.volume, "software volume 0..100")->check(CLI::Range(0, 100));
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
