#pragma once
// Test helper: counts heap allocations (global operator new) made by the
// calling thread between start and stop, so a test can show that media-thread
// code it runs on its own thread does not allocate. The replacement operator
// new/delete live in allocation_counter.cpp (linked into this test binary;
// they forward to malloc/free and count nothing unless a thread asks).

#include <cstddef>

namespace loa::test {

void start_counting_allocations() noexcept;
/// Allocations since start_counting_allocations() on this thread.
std::size_t stop_counting_allocations() noexcept;

}  // namespace loa::test
