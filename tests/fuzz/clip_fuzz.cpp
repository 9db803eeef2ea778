// Fuzz target: clip headers and bodies through ClipReader (libsndfile +
// libsamplerate). Any input must end in a clean codecs::Error or in audio,
// never a crash. The bytes are handed over as an in-memory file (memfd).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "loa/codecs/clip_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const int fd = memfd_create("clip", 0);
    if (fd < 0) return 0;
    std::size_t off = 0;
    while (off < size) {
        const auto n = ::write(fd, data + off, size - off);
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
    }
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    try {
        loa::codecs::ClipReader reader(path);
        std::vector<float> frame(960);
        // Bounded: at most ~2 s of audio per input.
        for (int i = 0; i < 100; ++i) {
            std::size_t got = 0;
            if (reader.read(frame, got) != loa::codecs::Status::Ok) break;
        }
        (void)reader.rewind();
    } catch (const loa::codecs::Error&) {
        // Undecodable input: the defined outcome.
    }
    ::close(fd);
    return 0;
}
