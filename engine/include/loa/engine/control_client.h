#pragma once
// A blocking client of the control socket (Unix or TCP), for loactl, tests
// and tools. Several requests may be sent before their responses are read.
//
// Threads: one thread at a time.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>

#include "loa/control/v1/control.pb.h"

namespace loa::engine {

/// The engine's TCP control listener: "HOST:PORT", HOST a name or an address
/// (IPv6 in brackets: "[::1]:7700").
struct TcpAddress {
    std::string host_port;
};

class ControlClient {
public:
    /// Connects to the Unix socket. Throws ControlError(UNAVAILABLE) when it cannot.
    explicit ControlClient(const std::filesystem::path& socket_path);
    /// Connects over TCP (every request then needs a token). Throws
    /// ControlError: INVALID_ARGUMENT for a malformed address, UNAVAILABLE
    /// when it cannot connect.
    explicit ControlClient(const TcpAddress& address);
    ~ControlClient();
    ControlClient(const ControlClient&) = delete;
    ControlClient& operator=(const ControlClient&) = delete;

    void set_token(std::string token) { token_ = std::move(token); }

    /// Sends a request and returns its request_id (ids count up from 1).
    std::uint64_t send(const std::string& method, const google::protobuf::MessageLite& request,
                       std::int64_t deadline_unix_ms = 0);
    /// Sends an envelope as given (request_id included).
    void send_envelope(const loa::control::v1::Envelope& envelope);
    /// Writes raw bytes (tests of bad input). Throws ControlError(UNAVAILABLE) on error.
    void send_raw(std::span<const std::uint8_t> bytes);
    /// Next response frame; nullopt when the server closed the connection or
    /// nothing arrived within `timeout_ms`. Throws ControlError(INTERNAL) on a
    /// malformed frame.
    std::optional<loa::control::v1::Response> read(int timeout_ms = 10000);
    /// True when the server has closed the connection (seen by read()).
    bool closed() const noexcept { return eof_; }

    /// send() then read responses until the one with the same id arrives
    /// (others are dropped). Throws ControlError(UNAVAILABLE) when the
    /// connection closes or times out first.
    loa::control::v1::Response call(const std::string& method, const google::protobuf::MessageLite& request,
                                    int timeout_ms = 30000);

private:
    int fd_ = -1;
    std::string token_;
    std::uint64_t next_id_ = 1;
    std::string inbuf_;
    bool eof_ = false;
};

}  // namespace loa::engine
