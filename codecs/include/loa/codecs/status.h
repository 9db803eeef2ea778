#pragma once
// Status codes of the codecs module. Media-plane calls return them instead of
// throwing; start-up calls (opening a clip, creating a codec) may throw
// codecs::Error carrying the same code and a message.

#include <stdexcept>
#include <string>

namespace loa::codecs {

enum class Status {
    Ok = 0,
    BadArgument,     // caller passed a size or setting the codec does not accept
    BufferTooSmall,  // output span cannot hold the result
    CorruptPacket,   // payload could not be decoded; caller should conceal
    EndOfStream,     // clip has no more audio (and does not loop)
    Unsupported,     // file format or codec feature not available
    IoError,         // file could not be read
    Internal,        // the C library reported an unexpected failure
};

const char* to_string(Status s) noexcept;

class Error : public std::runtime_error {
public:
    Error(Status status, const std::string& what) : std::runtime_error(what), status_(status) {}
    Status status() const noexcept { return status_; }

private:
    Status status_;
};

}  // namespace loa::codecs
