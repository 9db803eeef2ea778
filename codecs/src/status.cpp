#include "loa/codecs/status.h"

namespace loa::codecs {

const char* to_string(Status s) noexcept {
    switch (s) {
        case Status::Ok: return "ok";
        case Status::BadArgument: return "bad argument";
        case Status::BufferTooSmall: return "buffer too small";
        case Status::CorruptPacket: return "corrupt packet";
        case Status::EndOfStream: return "end of stream";
        case Status::Unsupported: return "unsupported";
        case Status::IoError: return "i/o error";
        case Status::Internal: return "internal error";
    }
    return "unknown";
}

}  // namespace loa::codecs
