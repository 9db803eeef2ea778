#pragma once
// The control socket: a Boost.Asio Unix-socket server, plus an optional TCP
// listener, running the ControlService on its own thread (never the media
// thread). Both listeners share the framing and dispatch below; they differ
// only in who the peer is: on the Unix socket a token-less request from root
// or the engine's uid (SO_PEERCRED) is the local administrator, on TCP every
// request must carry a token (token-less -> UNAUTHENTICATED).
//
// Per connection: requests are read as varint-delimited Envelope frames and
// answered in order of completion with their request_id; several may be in
// flight. A frame longer than max_frame_bytes gets RESOURCE_EXHAUSTED, an
// unparsable one INVALID_ARGUMENT, and the connection is closed after that
// response. Responses wait in a bounded per-connection queue: a client that
// lets more than max_queued_frames pile up (it stopped reading) is
// disconnected, so it never holds up the thread or other clients. WatchEvents
// streams are pulled from the event log only while that queue has room, so a
// slow watcher falls behind (and resumes by seq) instead of growing memory.
// A steady timer calls ControlService::tick() every tick_interval_ms on the
// same thread, so periodic work never races a request.

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>

namespace loa::engine {

class ControlService;

struct ControlServerOptions {
    std::filesystem::path socket_path;
    /// Optional TCP listener "HOST:PORT" (IPv6 as [ADDR]:PORT; a bare port
    /// binds 127.0.0.1; port 0 picks a free port). Empty = no TCP listener.
    std::string tcp_listen;
    std::size_t max_frame_bytes = 4u << 20;
    std::size_t max_queued_frames = 1024;
    unsigned socket_mode = 0660;
    std::string socket_group = "loa";  // applied when that group exists
    /// Period of ControlService::tick() on the control thread (alert
    /// expiry, confirmation events); 0 = never.
    unsigned tick_interval_ms = 100;
};

class ControlServer {
public:
    /// Binds and listens (a stale socket file at the path is replaced; a
    /// missing parent folder is created), and binds the TCP listener when
    /// one is configured. Throws std::runtime_error with a clear message.
    /// `service` must outlive the server.
    ControlServer(ControlService& service, ControlServerOptions options);
    /// Stops (see stop()).
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    /// Starts the control thread. Call once, from the owning thread.
    void start();
    /// Closes every connection, joins the control thread, removes the socket
    /// file. Idempotent; from the owning thread.
    void stop();

    /// Records an engine message as an event (on the control thread).
    /// Thread-safe, never blocks on the database.
    void post_engine_message(std::string message);

    const std::filesystem::path& socket_path() const noexcept;
    /// The bound TCP address as "HOST:PORT" ("[ADDR]:PORT" for IPv6), with
    /// the real port when 0 was asked for; empty without a TCP listener.
    const std::string& tcp_endpoint() const noexcept;
    /// Connections currently open (for tests). Thread-safe.
    std::size_t connection_count() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace loa::engine
