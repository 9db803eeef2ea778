// Talking to a running loa-engine over its control socket, for the scenarios
// that do (control, preempt): connecting once it is up, checking and parsing
// replies, the ids the bench gives its clusters.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include "loa/control/v1/control.pb.h"
#include "loa/engine/control_client.h"
#pragma GCC diagnostic pop

#include "process.h"

namespace loa::bench {

// "c-000042": the id of the bench's cluster number `i`.
[[nodiscard]] std::string cluster_id(std::size_t i);

// Connects to the control socket, retrying while the engine starts. Throws
// std::runtime_error (with the end of `log`) when `child` exits first or the
// socket is not up within `timeout`.
[[nodiscard]] std::unique_ptr<engine::ControlClient> connect_when_up(const std::filesystem::path& socket,
                                                                     ChildProcess& child, const std::string& log,
                                                                     std::chrono::seconds timeout);

// Throws std::runtime_error naming `what` and the status unless `r` is OK.
void expect_ok(const loa::control::v1::Response& r, const std::string& what);

// The payload of an OK response as a `Reply`; throws std::runtime_error otherwise.
template <typename Reply>
Reply parse_reply(const loa::control::v1::Response& r, const std::string& what) {
  expect_ok(r, what);
  Reply out;
  if (!out.ParseFromString(r.payload())) throw std::runtime_error(what + ": unparsable response");
  return out;
}

// Calls `method` (60 s timeout) and returns its reply; throws unless it is OK.
template <typename Reply>
Reply call_ok(engine::ControlClient& c, const std::string& method, const google::protobuf::MessageLite& req) {
  return parse_reply<Reply>(c.call(method, req, 60000), method);
}

}  // namespace loa::bench
