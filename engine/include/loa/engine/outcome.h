#pragma once
// Expected-style results for control-side decisions (arbiter admission,
// schedule validation): a gRPC code plus an operator-facing message, returned
// rather than thrown so that callers on any thread can use them. The control
// service turns a failed Outcome into ControlError / a Response status.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

#include "loa/engine/control_status.h"

namespace loa::engine {

struct Outcome {
    RpcCode code = RpcCode::Ok;
    std::string message;

    static Outcome success() { return {}; }
    static Outcome failure(RpcCode code, std::string message) { return {code, std::move(message)}; }
    bool ok() const noexcept { return code == RpcCode::Ok; }
};

/// Either a value or a failed Outcome (never a successful one).
template <typename T>
class Result {
public:
    Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
    Result(Outcome error) : v_(std::move(error)) { assert(!std::get<Outcome>(v_).ok()); }  // NOLINT

    bool ok() const noexcept { return std::holds_alternative<T>(v_); }
    explicit operator bool() const noexcept { return ok(); }

    /// Precondition: ok().
    T& value() & { return std::get<T>(v_); }
    const T& value() const& { return std::get<T>(v_); }
    T&& value() && { return std::get<T>(std::move(v_)); }
    /// Precondition: !ok().
    const Outcome& error() const { return std::get<Outcome>(v_); }

private:
    std::variant<T, Outcome> v_;
};

}  // namespace loa::engine
