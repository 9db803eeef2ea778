#pragma once
// SDP (RFC 8866) description of a programme's RTP stream, so any standard
// receiver (GStreamer, ffplay, VLC) can play it. The connection line names
// `receiver` when given, else the programme's multicast group, else its first
// unicast destination (pass the first cluster's address for cluster-only
// programmes: EngineConfig::destinations_of()).

#include <optional>
#include <string>

#include <boost/asio/ip/udp.hpp>

#include "loa/engine/config.h"

namespace loa::engine {

std::string make_sdp(const ProgramConfig& program, const std::string& origin_address, const std::string& cname,
                     const std::optional<boost::asio::ip::udp::endpoint>& receiver = std::nullopt,
                     int multicast_ttl = 8);

}  // namespace loa::engine
