#include "loa/engine/control_status.h"

namespace loa::engine {

std::string_view to_string(RpcCode code) noexcept {
    switch (code) {
        case RpcCode::Ok: return "OK";
        case RpcCode::Cancelled: return "CANCELLED";
        case RpcCode::Unknown: return "UNKNOWN";
        case RpcCode::InvalidArgument: return "INVALID_ARGUMENT";
        case RpcCode::DeadlineExceeded: return "DEADLINE_EXCEEDED";
        case RpcCode::NotFound: return "NOT_FOUND";
        case RpcCode::AlreadyExists: return "ALREADY_EXISTS";
        case RpcCode::PermissionDenied: return "PERMISSION_DENIED";
        case RpcCode::ResourceExhausted: return "RESOURCE_EXHAUSTED";
        case RpcCode::FailedPrecondition: return "FAILED_PRECONDITION";
        case RpcCode::Aborted: return "ABORTED";
        case RpcCode::OutOfRange: return "OUT_OF_RANGE";
        case RpcCode::Unimplemented: return "UNIMPLEMENTED";
        case RpcCode::Internal: return "INTERNAL";
        case RpcCode::Unavailable: return "UNAVAILABLE";
        case RpcCode::DataLoss: return "DATA_LOSS";
        case RpcCode::Unauthenticated: return "UNAUTHENTICATED";
    }
    return "UNKNOWN";
}

}  // namespace loa::engine
