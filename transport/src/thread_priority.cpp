#include "loa/transport/thread_priority.h"

#include <pthread.h>
#include <sched.h>

namespace loa::transport {

bool set_realtime_priority(int priority) noexcept {
    sched_param param{};
    param.sched_priority = priority;
    return pthread_setschedparam(pthread_self(), SCHED_FIFO, &param) == 0;
}

}  // namespace loa::transport
