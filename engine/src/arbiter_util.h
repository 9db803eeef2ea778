#pragma once
// Small helpers shared by the arbiter's source files (topology.cpp,
// arbiter.cpp, arbiter_clusters.cpp). Private to engine/src.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "loa/engine/outcome.h"

namespace loa::engine::arbiter_util {

/// INVALID_ARGUMENT with `message`.
inline Outcome invalid(std::string message) { return Outcome::failure(RpcCode::InvalidArgument, std::move(message)); }

/// A vector index as the 32-bit index the topology and assignments use.
inline std::uint32_t index_of(std::size_t i) noexcept { return static_cast<std::uint32_t>(i); }

}  // namespace loa::engine::arbiter_util
