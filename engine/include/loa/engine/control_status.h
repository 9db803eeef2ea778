#pragma once
// Status of a control-plane call: the gRPC code numbers (equal to
// loa.control.v1.StatusCode) plus a human message. Control-plane code throws
// ControlError; the control service turns it into a Response.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace loa::engine {

enum class RpcCode : std::int32_t {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
};

/// "OK", "INVALID_ARGUMENT", ... (the gRPC spelling).
std::string_view to_string(RpcCode code) noexcept;

/// A failed control call. what() is the message shown to the operator.
class ControlError : public std::runtime_error {
public:
    ControlError(RpcCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    RpcCode code() const noexcept { return code_; }

private:
    RpcCode code_;
};

}  // namespace loa::engine
