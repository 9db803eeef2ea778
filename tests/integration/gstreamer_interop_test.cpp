// Interop with GStreamer as the reference RTP/Opus peer, both directions:
// a GStreamer receiver built from Loa's exported SDP plays a Loa programme,
// and loa-speaker plays a stream sent by GStreamer's opusenc ! rtpopuspay.

#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <sstream>

#include "audio_check.h"
#include "integration_util.h"
#include "process.h"
#include "temp_dir.h"
#include "udp_receiver.h"

using namespace loa;

namespace {
const std::string kEngine = LOA_ENGINE_BIN;

struct SdpMedia {
    unsigned port = 0;
    int payload_type = -1;
    std::string encoding;
    int clock_rate = 0;
};

SdpMedia parse_sdp(const std::string& sdp) {
    SdpMedia m;
    std::smatch r;
    if (std::regex_search(sdp, r, std::regex("m=audio ([0-9]+) RTP/AVP ([0-9]+)"))) {
        m.port = static_cast<unsigned>(std::stoul(r[1]));
        m.payload_type = std::stoi(r[2]);
    }
    if (std::regex_search(sdp, r, std::regex("a=rtpmap:([0-9]+) ([A-Za-z0-9]+)/([0-9]+)"))) {
        m.encoding = r[2];
        m.clock_rate = std::stoi(r[3]);
    }
    return m;
}
}  // namespace

TEST_CASE("gstreamer_plays_loa_programme_from_sdp", "[integration][interop]") {
    test::TempDir dir("loa-gst-rx");
    unsigned port = 0;
    {
        test::UdpReceiver probe;  // find a free port for GStreamer to listen on
        port = probe.endpoint().port();
    }
    std::ostringstream cfg;
    cfg << "[engine]\nlisten = \"127.0.0.1:0\"\n"
        << "[[program]]\nname = \"interop\"\ndestinations = [\"127.0.0.1:" << port << "\"]\n"
        << "  [[program.source]]\n  type = \"tone\"\n  frequency = 1000\n  level_db = -6\n";
    std::ofstream(dir / "engine.toml") << cfg.str();

    // Export the SDP and build the receiving pipeline from it.
    test::Process sdp_proc({kEngine, "--config", (dir / "engine.toml").string(), "--sdp", "interop"});
    const auto sdp = sdp_proc.read_all(10000);
    REQUIRE(sdp_proc.wait(10000) == std::optional<int>(0));
    const auto media = parse_sdp(sdp);
    REQUIRE(media.port == port);
    REQUIRE(media.encoding == "opus");
    REQUIRE(media.clock_rate == 48000);
    const auto caps = "application/x-rtp,media=audio,clock-rate=" + std::to_string(media.clock_rate) +
                      ",encoding-name=OPUS,payload=" + std::to_string(media.payload_type);
    const auto out_wav = (dir / "gst.wav").string();
    test::Process gst({"gst-launch-1.0", "-q", "-e", "udpsrc", "address=127.0.0.1", "port=" + std::to_string(port),
                       "caps=" + caps, "!", "rtpjitterbuffer", "latency=100", "!", "rtpopusdepay", "!", "opusdec",
                       "!", "audioconvert", "!", "audio/x-raw,format=S16LE,channels=1", "!", "wavenc", "!",
                       "filesink", "location=" + out_wav},
                      (dir / "gst.log").string());

    test::Process engine({kEngine, "--config", (dir / "engine.toml").string(), "--duration", "4"},
                         (dir / "engine.log").string());
    REQUIRE(engine.wait(20000) == std::optional<int>(0));
    gst.signal(SIGINT);  // -e: EOS so wavenc finalises the header
    const auto grc = gst.wait(20000);
    REQUIRE(grc);
    const auto check = test::check_tone(test::read_wav(out_wav));
    CHECK(check.audible_samples >= 2 * 48000);
    CHECK(check.fit.frequency_hz == Approx(1000).margin(2));
    CHECK(check.fit.snr_db >= 20);
}

TEST_CASE("speaker_plays_gstreamer_stream", "[integration][interop]") {
    test::TempDir dir("loa-gst-tx");
    unsigned speaker_port = 0;
    const auto speaker_proc =
        test::start_speaker("gst-peer", dir / "speaker.wav", "127.0.0.1", speaker_port, dir / "speaker.log");
    test::Process& speaker = *speaker_proc;
    const auto port = std::to_string(speaker_port);

    // 3 s of a live 1 kHz tone, 20 ms Opus frames.
    test::Process gst({"gst-launch-1.0", "-q", "audiotestsrc", "is-live=true", "freq=1000", "volume=0.5",
                       "samplesperbuffer=960", "num-buffers=150", "!", "audio/x-raw,rate=48000,channels=1", "!",
                       "opusenc", "frame-size=20", "bitrate=64000", "!", "rtpopuspay", "pt=96", "!", "udpsink",
                       "host=127.0.0.1", "port=" + port, "bind-address=127.0.0.1"},
                      (dir / "gst.log").string());
    const auto grc = gst.wait(30000);
    REQUIRE(grc);
    CHECK(*grc == 0);
    speaker.signal(SIGTERM);
    const auto out = speaker.read_all(20000);
    REQUIRE(speaker.wait(20000) == std::optional<int>(0));
    INFO(out);
    const auto check = test::check_tone(test::read_wav(dir / "speaker.wav"));
    CHECK(check.audible_samples >= 2 * 48000);
    CHECK(check.fit.frequency_hz == Approx(1000).margin(2));
    // Judged in 100 ms windows: the speaker's adaptive playout may stretch by
    // whole pitch periods while it settles, which a single sine fit over the
    // whole output counts as noise although nothing audible happened.
    CHECK(test::tone_window_share(test::read_wav(dir / "speaker.wav"), 1000.0, 20.0) >= 0.9);
}
