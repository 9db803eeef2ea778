#include "loa/transport/status.h"

namespace loa::transport {

const char* to_string(Status s) noexcept {
    switch (s) {
        case Status::Ok: return "ok";
        case Status::Truncated: return "truncated";
        case Status::BadVersion: return "bad version";
        case Status::BadCsrcCount: return "bad csrc count";
        case Status::BadExtension: return "bad header extension";
        case Status::BadPadding: return "bad padding";
        case Status::BadLength: return "bad length";
        case Status::BadPacketType: return "bad packet type";
        case Status::NotRtp: return "not rtp";
        case Status::BufferTooSmall: return "buffer too small";
        case Status::QueueFull: return "queue full";
        case Status::SocketError: return "socket error";
    }
    return "unknown";
}

}  // namespace loa::transport
