// loa-studio: captures a sound card (or reads a file, or generates a tone or a
// click train), encodes Opus and pushes RTP + RTCP to the engine's ingest
// address as a live feed. See /work/notes/studio_readme.md for usage.

#include <sysexits.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "loa-speaker/float_ring.h"
#include "loa-studio/audio_input.h"
#include "loa-studio/block_source.h"
#include "loa-studio/studio.h"
#include "loa/codecs/dsp.h"
#include "loa/codecs/status.h"
#include "loa/transport/udp_socket.h"

namespace {

struct Options {
    std::string to;
    std::string bind;
    std::string device;
    bool list_devices = false;
    std::string file;
    bool loop = false;
    double tone_hz = 0.0;
    int clicks_ms = 0;
    double level_db = -6.0;
    std::optional<std::uint32_t> ssrc;
    int ptime_ms = 20;
    int bitrate = 64000;
    std::string content = "speech";
    int payload_type = 111;
    bool no_fec = false;
    int expected_loss = 10;
    double duration_s = 0.0;
    std::string cname;
    bool stats_json = false;
    std::string send_times_file;
    bool quiet = false;
};

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "loa-studio";
    return buf;
}

loa::studio::SendLoopConfig loop_config(const Options& o) {
    std::random_device rd;
    loa::studio::SendLoopConfig c;
    auto& p = c.packetiser;
    p.ssrc = o.ssrc ? *o.ssrc : static_cast<std::uint32_t>(rd());
    p.first_sequence = static_cast<std::uint16_t>(rd());
    p.first_timestamp = static_cast<std::uint32_t>(rd());
    p.payload_type = static_cast<std::uint8_t>(o.payload_type);
    p.cname = o.cname.empty() ? host_name() : o.cname;
    p.opus.ptime_ms = o.ptime_ms;
    p.opus.bitrate_bps = o.bitrate;
    p.opus.content = o.content == "music" ? loa::codecs::Content::Music : loa::codecs::Content::Speech;
    p.opus.inband_fec = !o.no_fec;
    p.opus.expected_loss_pct = o.expected_loss;
    c.max_samples = static_cast<std::uint64_t>(std::llround(o.duration_s * 48000.0));
    c.record_click_times = !o.send_times_file.empty();
    loa::studio::validate(p);
    return c;
}

int run(const Options& o) {
    const auto to = loa::transport::parse_endpoint(o.to);
    if (to.port() == 0) throw std::invalid_argument("--to " + o.to + ": port 0 is not a destination");
    const auto bind = loa::transport::parse_endpoint(
        o.bind.empty() ? (to.address().is_v6() ? "[::]:0" : "0.0.0.0:0") : o.bind);
    if (bind.address().is_v6() != to.address().is_v6()) {
        throw std::invalid_argument("--bind " + o.bind + " and --to " + o.to + " are of different IP families");
    }
    const auto config = loop_config(o);
    const double amplitude = loa::codecs::db_to_gain(o.level_db);

    // Sources are created before the socket so that a bad --file or --device
    // fails before anything is sent.
    std::unique_ptr<loa::studio::BlockSource> source;
    std::unique_ptr<loa::studio::PortAudioInputs> pa;
    std::unique_ptr<loa::speaker::FloatRing> ring;
    std::unique_ptr<loa::studio::AudioInput> card;
    if (!o.file.empty()) {
        source = std::make_unique<loa::studio::FileSource>(o.file, o.loop);
    } else if (o.tone_hz > 0) {
        source = std::make_unique<loa::studio::ToneSource>(o.tone_hz, amplitude);
    } else if (o.clicks_ms > 0) {
        source = std::make_unique<loa::studio::ClickSource>(static_cast<std::uint64_t>(o.clicks_ms) * 48, amplitude);
    } else {
        pa = std::make_unique<loa::studio::PortAudioInputs>();
        const int dev = pa->find_input_device(o.device);
        ring = std::make_unique<loa::speaker::FloatRing>(48000);  // 1 s of slack for the io thread
        card = std::make_unique<loa::studio::AudioInput>(dev, *ring);
        source = std::make_unique<loa::studio::RingSource>(*ring);
    }

    boost::asio::io_context io;
    loa::studio::StudioNetConfig net;
    net.to = to;
    net.bind = bind;
    loa::studio::Studio studio(io, net, config, *source);
    std::cout << "sending " << to << " from " << studio.local_endpoint() << " ssrc " << config.packetiser.ssrc
              << std::endl;

    const bool meter = !o.quiet && ::isatty(STDOUT_FILENO) == 1;
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    boost::asio::steady_timer meter_timer(io);
    bool stopping = false;
    auto shutdown = [&] {
        if (stopping) return;
        stopping = true;
        studio.stop();
        boost::system::error_code ec;
        signals.cancel(ec);
        meter_timer.cancel();
        io.stop();
    };
    signals.async_wait([&](const boost::system::error_code& ec, int) {
        if (!ec) shutdown();
    });

    std::function<void()> print_meter;
    auto meter_deadline = std::chrono::steady_clock::now();
    print_meter = [&] {
        meter_deadline += std::chrono::milliseconds(100);
        meter_timer.expires_at(meter_deadline);
        meter_timer.async_wait([&](const boost::system::error_code& ec) {
            if (ec || stopping) return;
            const auto& s = studio.loop().stats();
            std::printf("\r%s  sent %llu pkts %.1f kB  rtcp %llu/%llu  ",
                        loa::studio::meter_bar(studio.loop().meter().take()).c_str(),
                        static_cast<unsigned long long>(s.packets_sent), static_cast<double>(s.bytes_sent) / 1000.0,
                        static_cast<unsigned long long>(s.rtcp_sent), static_cast<unsigned long long>(s.rtcp_received));
            std::fflush(stdout);
            print_meter();
        });
    };

    studio.start(shutdown);
    if (card) card->start();
    if (meter) print_meter();

    io.run();
    if (card) card->stop();
    shutdown();
    if (meter) std::printf("\n");

    auto& loop = studio.loop();
    auto& stats = loop.stats();
    if (card) {
        stats.underruns = card->underruns();
        stats.overruns = card->overruns();
    }
    int rc = 0;
    if (!loop.error().empty()) {
        std::cerr << "loa-studio: " << loop.error() << "\n";
        rc = 1;
    }
    if (!o.send_times_file.empty()) {
        std::ofstream out(o.send_times_file);
        for (const auto t : loop.click_times()) out << t << "\n";
        if (!out) {
            std::cerr << "loa-studio: cannot write " << o.send_times_file << "\n";
            rc = 1;
        }
    }
    std::cerr << "loa-studio counters:\n" << stats.to_text();
    std::cerr.flush();
    if (o.stats_json) std::cout << stats.to_json(config.packetiser.ssrc) << std::endl;
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"loa-studio: Loa live-feed sender (sound card / file / tone / clicks -> Opus RTP to the engine)"};
    Options o;
    app.add_option("--to", o.to, "engine ingest HOST:PORT (or [V6]:PORT)");
    app.add_option("--bind", o.bind, "local HOST:PORT to send from (default: any address, ephemeral port)");
    auto* device = app.add_option("--device", o.device, "PortAudio input device, index or name substring");
    app.add_flag("--list-devices", o.list_devices, "list PortAudio input devices and exit");
    auto* file = app.add_option("--file", o.file, "send this audio file (WAV, FLAC, Ogg, MP3)")
                     ->check(CLI::ExistingFile);
    auto* loop = app.add_flag("--loop", o.loop, "loop --file");
    auto* tone = app.add_option("--tone", o.tone_hz, "send a sine tone of HZ")->check(CLI::Range(20.0, 20000.0));
    auto* clicks = app.add_option("--clicks", o.clicks_ms, "send a 5 ms click every INTERVAL_MS")
                       ->check(CLI::Range(10, 60000));
    app.add_option("--level-db", o.level_db, "tone / click level in dBFS")->check(CLI::Range(-60.0, 0.0));
    file->excludes(tone)->excludes(clicks)->excludes(device);
    tone->excludes(clicks)->excludes(device);
    clicks->excludes(device);
    loop->needs(file);
    app.add_option("--ssrc", o.ssrc, "RTP SSRC (default: random)");
    app.add_option("--ptime", o.ptime_ms, "packet time in ms")->check(CLI::IsMember({10, 20, 40, 60}));
    app.add_option("--bitrate", o.bitrate, "Opus bitrate in b/s")->check(CLI::Range(6000, 510000));
    app.add_option("--content", o.content, "Opus tuning")->check(CLI::IsMember({"speech", "music"}));
    app.add_option("--payload-type", o.payload_type, "RTP payload type")->check(CLI::Range(96, 127));
    app.add_flag("--no-fec", o.no_fec, "turn Opus in-band FEC off (speech; music never has it)");
    app.add_option("--expected-loss", o.expected_loss, "expected loss in percent, sizes the FEC")
        ->check(CLI::Range(0, 100));
    app.add_option("--duration", o.duration_s, "stop after this many seconds of audio")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--cname", o.cname, "RTCP SDES CNAME (default: host name)");
    app.add_flag("--stats-json", o.stats_json, "print the counters as one JSON line on stdout at exit");
    app.add_option("--print-send-times", o.send_times_file,
                   "write each click's capture instant (CLOCK_MONOTONIC ns) to FILE at exit")
        ->needs(clicks);
    app.add_flag("-q,--quiet", o.quiet, "no live level meter even on a terminal");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : EX_USAGE;
    }

    try {
        if (o.list_devices) {
            loa::studio::PortAudioInputs pa;
            std::cout << pa.list_input_devices();
            return 0;
        }
        if (o.to.empty()) {
            std::cerr << "loa-studio: --to HOST:PORT is required\n" << app.help();
            return EX_USAGE;
        }
        if (!o.cname.empty() && o.cname.size() > 255) {
            std::cerr << "loa-studio: --cname is longer than 255 bytes\n";
            return EX_USAGE;
        }
        return run(o);
    } catch (const std::invalid_argument& e) {
        std::cerr << "loa-studio: " << e.what() << "\n";
        return EX_USAGE;
    } catch (const loa::codecs::Error& e) {
        std::cerr << "loa-studio: " << e.what() << "\n";
        return EX_NOINPUT;
    } catch (const std::exception& e) {
        std::cerr << "loa-studio: " << e.what() << "\n";
        return 1;
    }
}
