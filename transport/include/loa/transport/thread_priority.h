#pragma once
// Real-time scheduling for the threads that carry media (the engine's media
// thread, fan-out shards). Called once by the thread itself at start.

namespace loa::transport {

/// Switches the calling thread to SCHED_FIFO at `priority` (1..99).
/// Returns false (and leaves scheduling unchanged) when the process may not
/// (no CAP_SYS_NICE and RLIMIT_RTPRIO too low).
bool set_realtime_priority(int priority) noexcept;

}  // namespace loa::transport
