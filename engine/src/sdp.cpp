#include "loa/engine/sdp.h"

#include <sstream>

namespace loa::engine {

std::string make_sdp(const ProgramConfig& p, const std::string& origin_address, const std::string& cname,
                     const std::optional<boost::asio::ip::udp::endpoint>& receiver, int multicast_ttl) {
    std::optional<boost::asio::ip::udp::endpoint> target = receiver;
    if (!target && p.multicast) target = p.multicast;
    if (!target && !p.destinations.empty()) target = p.destinations.front();
    const auto addr = target ? target->address() : boost::asio::ip::address(boost::asio::ip::address_v4::any());
    const unsigned port = target ? target->port() : 5004;
    const char* family = addr.is_v6() ? "IP6" : "IP4";

    std::ostringstream s;
    s << "v=0\r\n";
    s << "o=- " << p.ssrc << " 1 IN " << (origin_address.find(':') != std::string::npos ? "IP6" : "IP4") << ' '
      << origin_address << "\r\n";
    s << "s=" << p.name << "\r\n";
    s << "c=IN " << family << ' ' << addr.to_string();
    if (addr.is_v4() && addr.is_multicast()) s << '/' << multicast_ttl;
    s << "\r\n";
    s << "t=0 0\r\n";
    s << "m=audio " << port << " RTP/AVP " << static_cast<int>(p.payload_type) << "\r\n";
    s << "a=rtpmap:" << static_cast<int>(p.payload_type) << " opus/48000/2\r\n";
    s << "a=fmtp:" << static_cast<int>(p.payload_type) << " minptime=10;useinbandfec="
      << (p.content == codecs::Content::Speech ? 1 : 0) << ";stereo=0;sprop-stereo=0;maxaveragebitrate="
      << p.bitrate_bps << "\r\n";
    s << "a=ptime:" << p.ptime_ms << "\r\n";
    s << "a=extmap:" << static_cast<int>(kPriorityExtensionId) << ' ' << kPriorityExtensionUri << "\r\n";
    s << "a=rtcp-mux\r\n";
    s << "a=ssrc:" << p.ssrc << " cname:" << cname << "\r\n";
    s << "a=recvonly\r\n";
    return s.str();
}

}  // namespace loa::engine
